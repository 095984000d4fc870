//! `StoreImageTasksTable`, the DataFusion `TableProvider` of `aws.ec2.store_image_tasks`.
//! It decides which accounts and regions a query asks and hands the rest to the scan plan. A DataFusion
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

use super::accounts;
use super::error::TableError;
use super::insert::sink::StoreImageTasksSink;
use super::insert::{DryRunRows, InsertReports};
use super::naming;
use super::options::AwsOptions;
use super::pushdown;
use super::regions::{self, RegionSet};
use super::scan::{ScanPartition, StoreImageTasksExec};
use super::schema::store_image_tasks_schema;
use super::skips::{self, SkipReason, SkippedAccount, SkippedAccounts};
use crate::ec2::{CallBudget, Ec2Clients, MAX_IMAGE_IDS};
use futures::StreamExt;

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

    /// The clients it reads through.
    pub(crate) fn clients(&self) -> &Ec2Clients {
        &self.clients
    }

    /// Refuse every INSERT (before any AWS call) when `read_only`.
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The id of the account the server's credentials belong to (STS `GetCallerIdentity`,
    /// asked once).
    pub async fn account(&self) -> Result<String> {
        self.clients
            .account()
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))
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

    /// The accounts a query may ask: the home account first, then the configured and
    /// discovered ones (the first query of a server that discovers them waits for the
    /// organization's first listing; a failed one fails it, naming ListAccounts' code and
    /// request id).
    pub async fn reachable_accounts(&self) -> Result<Vec<String>> {
        let mut accounts = vec![self.account().await?];
        self.clients.discover().await.map_err(external)?;
        for member in self.clients.member_accounts() {
            if !accounts.contains(&member) {
                accounts.push(member);
            }
        }
        Ok(accounts)
    }

    /// The regions asked in the account of `clients` when a query names none: its own
    /// configured ones, else the server's.
    async fn regions_of(&self, clients: &Ec2Clients) -> Result<Vec<String>> {
        if let Some(regions) = clients.account_regions() {
            return Ok(regions.to_vec());
        }
        match &self.regions {
            RegionSet::Default => Ok(vec![clients.default_region().to_owned()]),
            RegionSet::All => clients.enabled_regions().await.map_err(external),
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
        // `account` has none: an INSERT that leaves it out gives NULL, which the sink reads
        // as the server's own account (known only once STS has answered).
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
        let aws_options = options(state);
        let use_cache = aws_options.use_cache().map_err(refused)?;
        let skip = aws_options.skip_account_errors();
        let skips = state.config().get_extension::<SkippedAccounts>();
        let api = pushdown::plan(filters, limit);
        if !api.named_regions.is_empty() {
            self.check_region_names(&api.named_regions).await?;
        }
        let reachable = self.reachable_accounts().await?;
        if !api.named_accounts.is_empty() {
            accounts::check_named(&api.named_accounts, &reachable).map_err(refused)?;
        }
        let chosen: Vec<Ec2Clients> = reachable
            .iter()
            .filter(|a| {
                api.accounts
                    .as_ref()
                    .is_none_or(|chosen| chosen.contains(*a))
            })
            .filter_map(|a| self.clients.for_account(a))
            .collect();
        // Every role the query needs is assumed now, before the schema is answered: an
        // account that cannot be reached fails the statement, naming the account, the role,
        // AWS's code and request id (the credentials are kept for the scan); under
        // `aws.on_account_error = 'skip'` it is left out and reported instead.
        let ready: Vec<_> = futures::stream::iter(chosen.clone())
            .map(|clients| async move { clients.ready().await })
            .buffered(ASSUME_AT_ONCE)
            .collect()
            .await;
        let mut reached = Vec::with_capacity(chosen.len());
        for (clients, result) in chosen.into_iter().zip(ready) {
            match result {
                Ok(()) => reached.push(clients),
                Err(e) if skip && skippable_role_failure(&e) => {
                    let account = clients.known_account().unwrap_or_default();
                    let skipped = SkippedAccount::of(&account, SkipReason::AssumeRole, &e);
                    skips::record(self.clients.metrics(), skips.as_deref(), skipped);
                }
                Err(e) => return Err(DataFusionError::External(Box::new(e))),
            }
        }
        let chosen = reached;
        // The clients of the accounts asked, kept by the plan: a refresh of the
        // organization's accounts while the query runs does not change them.
        let mut accounts_asked = std::collections::BTreeMap::new();
        let mut partitions = Vec::new();
        let mut region_count = BTreeSet::new();
        for clients in &chosen {
            let account = clients.account().await.map_err(external)?;
            accounts_asked.insert(account.clone(), clients.clone());
            let mut regions: BTreeSet<String> = match &api.regions {
                Some(chosen) => chosen.clone(),
                None => self.regions_of(clients).await?.into_iter().collect(),
            };
            if skip {
                // Regions the account has not enabled are left out now, so that the
                // FlightInfo already reports them; when the enabled regions cannot be
                // listed, a refused first call skips the region during the scan instead.
                if let Ok(enabled) = clients.enabled_regions().await {
                    regions.retain(|region| {
                        let on = enabled.contains(region);
                        if !on {
                            let skipped = SkippedAccount {
                                account: account.clone(),
                                reason: SkipReason::RegionNotEnabled,
                                role_arn: clients.role_arn().map(str::to_owned),
                                region: Some(region.clone()),
                                code: None,
                                request_id: None,
                                message: format!(
                                    "account {account}: {} (DescribeRegions)",
                                    regions::not_enabled(region, &enabled)
                                ),
                            };
                            skips::record(self.clients.metrics(), skips.as_deref(), skipped);
                        }
                        on
                    });
                }
            }
            for region in regions {
                region_count.insert(region.clone());
                for request in &api.requests {
                    partitions.push(ScanPartition {
                        account: account.clone(),
                        region: region.clone(),
                        request: request.clone(),
                    });
                }
            }
        }
        // The statement's budget of AWS calls: each partition makes at least one call, so
        // a plan with more partitions than the budget is refused before the first.
        let budget = state.config().get_extension::<CallBudget>();
        if let Some(budget) = &budget {
            if partitions.len() > budget.max() {
                return Err(refused(format!(
                    "this query needs at least {} DescribeStoreImageTasks calls ({} \
                     account(s) x {} region(s) x {} request(s): AWS takes at most \
                     {MAX_IMAGE_IDS} AMI ids per call); this server allows {} per statement \
                     (--max-aws-calls-per-query). Narrow it: fewer accounts (WHERE account = \
                     ...), fewer regions (WHERE region = ...) or fewer AMI ids, or split it",
                    partitions.len(),
                    chosen.len(),
                    region_count.len(),
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
            .with_budget(budget)
            .with_skips(skip, skips)
            .with_accounts(accounts_asked),
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
        // The organization's accounts are known before the rows are checked (the first
        // statement waits for the first listing).
        self.clients.discover().await.map_err(external)?;
        let sink = StoreImageTasksSink {
            clients: self.clients.clone(),
            default_region: self.clients.default_region().to_owned(),
            account: self.account().await?,
            enabled_regions: self.enabled_regions().await?,
            dry_run,
            schema: sink_schema(),
            reports: self.reports.clone(),
            dry_run_rows: state.config().get_extension::<DryRunRows>(),
            awaiting: super::insert::awaiting::plan(state)?,
            awaited: state
                .config()
                .get_extension::<super::insert::AwaitedTasks>(),
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

/// The schema INSERT's rows arrive in: the table's, where `account` may be NULL (the server's
/// own account; an INSERT that leaves it out gives NULL).
fn sink_schema() -> SchemaRef {
    let schema = store_image_tasks_schema();
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "account" => Arc::new(f.as_ref().clone().with_nullable(true)),
            _ => Arc::clone(f),
        })
        .collect();
    Arc::new(datafusion::arrow::datatypes::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ))
}

/// The session's `aws.*` settings.
fn options(state: &dyn Session) -> AwsOptions {
    AwsOptions::of(state.config_options())
}

fn external(e: crate::ec2::AwsError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Whether a failed AssumeRole may be skipped under `aws.on_account_error = 'skip'`: the
/// role refused (AccessDenied, a suspended account), not throttling or a network failure.
fn skippable_role_failure(e: &crate::ec2::AwsError) -> bool {
    e.role_arn.is_some() && e.kind == crate::ec2::AwsErrorKind::PermissionDenied
}

/// Roles assumed at once while a query is planned: the first query over an organization of
/// 100 accounts assumes 99 roles in two rounds of STS calls, not seven (STS allows an
/// account hundreds of AssumeRole calls a second).
const ASSUME_AT_ONCE: usize = 64;

fn refused(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(TableError::Invalid(message)))
}
