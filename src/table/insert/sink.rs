//! The DataFusion `DataSink` behind `INSERT INTO store_image_tasks`: glue that runs the
//! pipeline of [`super`] (rows → validate → create → report, then await under AWAIT) on the
//! statement's input, counted as a running write so that shutdown waits for its report.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::datasource::sink::DataSink;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};

use super::awaiting::{self, AwaitPlan, Awaited, AwaitedTasks};
use super::report::{self, DryRunRows, InsertReports, Tally};
use super::validate::Rules;
use super::{create, invalid, rows, validate};
use crate::ec2::Ec2Clients;

/// Creates store image tasks from INSERTed rows.
#[derive(Debug)]
pub(crate) struct StoreImageTasksSink {
    pub(crate) clients: Ec2Clients,
    pub(crate) default_region: String,
    /// The server's own account: a row that names none is created in it.
    pub(crate) account: String,
    /// The regions enabled in the server's own account.
    pub(crate) enabled_regions: Vec<String>,
    pub(crate) dry_run: bool,
    pub(crate) schema: SchemaRef,
    pub(crate) reports: InsertReports,
    /// Where a dry run leaves its rows, when the statement's caller shows them.
    pub(crate) dry_run_rows: Option<Arc<DryRunRows>>,
    /// How to await the created tasks (`INSERT /*+ AWAIT */`, `aws.await`), if at all.
    pub(crate) awaiting: Option<AwaitPlan>,
    /// Where an awaiting INSERT leaves how its tasks ended, for the statement's result.
    pub(crate) awaited: Option<Arc<AwaitedTasks>>,
}

impl DisplayAs for StoreImageTasksSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "StoreImageTasksSink: CreateStoreImageTask per row")?;
        if self.dry_run {
            write!(f, " (DryRun)")?;
        }
        if let Some(plan) = &self.awaiting {
            write!(
                f,
                ", then AWAIT: DescribeStoreImageTasks with ImageIds per account and region \
                 every {}, for at most {}",
                humantime::format_duration(plan.interval),
                humantime::format_duration(plan.timeout)
            )?;
        }
        Ok(())
    }
}

#[async_trait]
impl DataSink for StoreImageTasksSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> Result<u64> {
        // Counted until the report is made, checks included: shutdown waits for it and stops
        // its creates at the end of the grace (see WriteGate).
        let _running = self.clients.writes().enter();
        // 1. rows: every row is read before the first AWS call.
        let batches = rows::collect(data).await?;
        let given = rows::read(&batches).map_err(invalid)?;
        // 2. validate: the accounts the rows name are readied first (roles assumed,
        // enabled regions listed), then every row is judged.
        validate::read_only(&given).map_err(invalid)?;
        let mut reachable = vec![self.account.clone()];
        reachable.extend(
            self.clients
                .member_accounts()
                .into_iter()
                .filter(|a| *a != self.account),
        );
        let named = validate::accounts_named(&given, &self.account, &reachable);
        let accounts =
            create::reach(&self.clients, &self.account, &self.enabled_regions, named).await?;
        let rules = Rules {
            home: &self.account,
            default_region: &self.default_region,
            reachable: &reachable,
            accounts: &accounts,
        };
        let valid = validate::rows(&given, rules).map_err(invalid)?;
        // 3. create: tasks are claimed per statement (see ec2::claims).
        create::none_in_progress(&self.clients, &valid).await?;
        let requests = create::requests(valid, self.dry_run, rand::random());
        let outcomes = create::create_all(&self.clients, requests).await;
        // 4. report
        let tally = Tally::of(outcomes, self.dry_run);
        let created: Vec<Awaited> = tally
            .created
            .iter()
            .map(|row| Awaited::of(&self.account, row))
            .collect();
        let count = report::answer(
            tally,
            self.dry_run,
            &self.reports,
            self.dry_run_rows.as_deref(),
        )?;
        // 5. await: every row was created (otherwise the statement failed above).
        let Some(plan) = self.awaiting else {
            return Ok(count);
        };
        if self.dry_run {
            tracing::info!("dry run with AWAIT: {}", super::awaiting::NOTHING_TO_AWAIT);
            return Ok(count);
        }
        let ends = awaiting::await_all(
            &self.clients,
            &self.account,
            created,
            plan,
            &self.clients.writes(),
        )
        .await?;
        if let Some(slot) = &self.awaited {
            slot.put(awaiting::AwaitOutcome {
                own_account: self.account.clone(),
                tasks: ends,
            });
        }
        Ok(count)
    }
}
