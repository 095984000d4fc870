//! `StoreImageTasksTable`, the DataFusion `TableProvider` of `aws.ec2.store_image_tasks`.
//! It decides which regions a query asks and hands the rest to the scan plan. A DataFusion
//! application can register it in its own `SessionContext`.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::{project_schema, DataFusionError, Result};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{lit, Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

use super::error::TableError;
use super::insert::sink::StoreImageTasksSink;
use super::insert::{DryRunRows, InsertReports};
use super::naming;
use super::options::AwsOptions;
use super::pushdown;
use super::regions::{self, RegionSet};
use super::scan::{ScanPartition, StoreImageTasksExec};
use super::schema::store_image_tasks_schema;
use crate::ec2::{CallBudget, Ec2Clients, MAX_IMAGE_IDS};

/// The `store_image_tasks` table: `SELECT` runs `DescribeStoreImageTasks` in each region.
#[derive(Debug)]
pub struct StoreImageTasksTable {
    clients: Ec2Clients,
    regions: RegionSet,
    read_only: bool,
    /// `region`'s default in INSERT: the default region.
    region_default: Expr,
    /// The reports of INSERTs that did not create every row.
    reports: InsertReports,
}

impl StoreImageTasksTable {
    /// A table reading through `clients`, asking `regions` by default.
    pub fn new(clients: Ec2Clients, regions: RegionSet) -> Self {
        let region_default = lit(clients.default_region().to_owned());
        StoreImageTasksTable {
            clients,
            regions,
            read_only: false,
            region_default,
            reports: InsertReports::default(),
        }
    }

    /// Where the reports of its INSERTs are kept (serve them with
    /// `ctx.register_udtf(INSERT_REPORT, reports.function())`).
    pub fn reports(&self) -> &InsertReports {
        &self.reports
    }

    /// Refuse every INSERT (before any AWS call) when `read_only`.
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Every region enabled for the account (`DescribeRegions`, looked up once).
    pub async fn enabled_regions(&self) -> Result<Vec<String>> {
        self.clients
            .enabled_regions()
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))
    }

    /// The regions asked when a query names none.
    pub async fn default_regions(&self) -> Result<Vec<String>> {
        match &self.regions {
            RegionSet::Default => Ok(vec![self.clients.default_region().to_owned()]),
            RegionSet::All => self.enabled_regions().await,
            RegionSet::List(regions) => Ok(regions.clone()),
        }
    }

    /// Refuses a region predicate naming something that is not a region name (a typo, an
    /// injection attempt): it would match no row, and an empty answer would pass for "no
    /// tasks there". A well-formed name is asked, configured or not.
    async fn check_region_names(&self, named: &BTreeSet<String>) -> Result<()> {
        if named.iter().all(|r| naming::is_region_name(r)) {
            return Ok(());
        }
        let configured = self.default_regions().await;
        let mut known: BTreeSet<String> = configured.iter().flatten().cloned().collect();
        known.extend(self.clients.known_enabled_regions().into_iter().flatten());
        let configured = match configured {
            Ok(list) if self.regions == RegionSet::All => {
                format!("every region enabled for the account ({})", list.join(", "))
            }
            Ok(list) => list.join(", "),
            Err(_) => "every region enabled for the account".to_owned(),
        };
        regions::check_named(named, &configured, &known).map_err(refused)
    }
}

#[async_trait]
impl TableProvider for StoreImageTasksTable {
    fn schema(&self) -> SchemaRef {
        store_image_tasks_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        (column == "region").then_some(&self.region_default)
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(pushdown::support(filters))
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let use_cache = options(state).use_cache().map_err(refused)?;
        let api = pushdown::plan(filters, limit);
        if !api.named_regions.is_empty() {
            self.check_region_names(&api.named_regions).await?;
        }
        let regions: BTreeSet<String> = match api.regions {
            Some(chosen) => chosen,
            None => self.default_regions().await?.into_iter().collect(),
        };
        let partitions: Vec<ScanPartition> = regions
            .iter()
            .flat_map(|region| {
                api.requests.iter().map(|request| ScanPartition {
                    region: region.clone(),
                    request: request.clone(),
                })
            })
            .collect();
        // The statement's budget of AWS calls: each partition makes at least one call, so
        // a plan with more partitions than the budget is refused before the first.
        let budget = state.config().get_extension::<CallBudget>();
        if let Some(budget) = &budget {
            if partitions.len() > budget.max() {
                return Err(refused(format!(
                    "this query needs at least {} DescribeStoreImageTasks calls ({} region(s) \
                     x {} request(s): AWS takes at most {MAX_IMAGE_IDS} AMI ids per call); \
                     this server allows {} per statement (--max-aws-calls-per-query). Narrow \
                     it: fewer regions (WHERE region = ...) or fewer AMI ids, or split it",
                    partitions.len(),
                    regions.len(),
                    api.requests.len(),
                    budget.max()
                )));
            }
        }
        let projected = project_schema(&self.schema(), projection)?;
        Ok(Arc::new(
            StoreImageTasksExec::new(
                self.clients.clone(),
                partitions,
                projection.cloned(),
                projected,
                limit,
                use_cache,
            )
            .with_budget(budget),
        ))
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.read_only {
            return Err(DataFusionError::External(Box::new(TableError::ReadOnly)));
        }
        if insert_op != InsertOp::Append {
            return Err(refused(format!(
                "store_image_tasks takes INSERT INTO only, not {insert_op}: store tasks cannot \
                 be overwritten or replaced"
            )));
        }
        let dry_run = options(state).dry_run;
        let sink = StoreImageTasksSink {
            clients: self.clients.clone(),
            default_region: self.clients.default_region().to_owned(),
            enabled_regions: self.enabled_regions().await?,
            dry_run,
            schema: self.schema(),
            reports: self.reports.clone(),
            dry_run_rows: state.config().get_extension::<DryRunRows>(),
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }

    async fn update(
        &self,
        _state: &dyn Session,
        _assignments: Vec<(String, Expr)>,
        _filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Err(refused(SELECT_AND_INSERT_ONLY.replace("{}", "UPDATE")))
    }

    async fn delete_from(
        &self,
        _state: &dyn Session,
        _filters: Vec<Expr>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Err(refused(SELECT_AND_INSERT_ONLY.replace("{}", "DELETE")))
    }

    async fn truncate(&self, _state: &dyn Session) -> Result<Arc<dyn ExecutionPlan>> {
        Err(refused(SELECT_AND_INSERT_ONLY.replace("{}", "TRUNCATE")))
    }
}

const SELECT_AND_INSERT_ONLY: &str = "store_image_tasks supports SELECT and INSERT only; {} is \
    not possible because AWS has no API to change or delete a store image task";

/// The session's `aws.*` settings.
fn options(state: &dyn Session) -> AwsOptions {
    AwsOptions::of(state.config_options())
}

fn refused(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(TableError::Invalid(message)))
}
