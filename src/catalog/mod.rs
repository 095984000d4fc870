//! The SQL catalog: a DataFusion `SessionContext` with catalog `aws`, schema `ec2` and its
//! tables, schema `organizations` (table `accounts`), `information_schema`, and the SQL entry: one statement per request, its unquoted
//! names resolved in any case to the real (camelCase) ones, errors in words a SQL user can
//! act on. The Flight layer asks it for a context per statement.

mod aliases;
mod duplicates;
mod error;
mod names;
mod options;
mod params;
mod parse;
mod rewrite;
mod table_args;
mod writes;
mod yields;

pub use error::SqlError;
pub use names::{KnownNames, MetadataFilter};
pub use parse::await_hint;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SQLOptions;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider,
};
use datafusion::common::{DataFusionError, Result, TableReference};
use datafusion::execution::context::SessionContext;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionConfig;

use crate::ec2::Ec2Clients;
use crate::table::{
    AwaitLimits, AwsOptions, InsertReports, MaxWatch, OrgAccountsTable, RegionSet,
    StoreImageTasksTable, WatchFunction, ACCOUNTS_TABLE, DEFAULT_MAX_WATCH, INSERT_REPORT,
    ORGANIZATIONS_SCHEMA, TABLE_NAME, WATCH_FUNCTION,
};
use options::check_client_option;

/// The catalog every table lives in.
pub const CATALOG: &str = "aws";
/// The schema of the EC2 tables.
pub const SCHEMA: &str = "ec2";

/// Default memory all running statements together may hold for sorts, joins, aggregates
/// and buffers (`--max-memory`): 1 GiB, for a server on a small machine.
pub const DEFAULT_MAX_MEMORY: usize = 1024 * 1024 * 1024;

/// The server's tables, shared by every statement.
#[derive(Debug, Clone)]
pub struct Catalog {
    catalog: Arc<MemoryCatalogProvider>,
    default_regions: RegionSet,
    /// Shared by every session: one memory pool for the whole server.
    runtime: Arc<RuntimeEnv>,
    /// Most AWS calls one statement may make; `None` = no limit.
    max_aws_calls: Option<usize>,
    /// The reports of INSERTs that did not create every row (`insert_report(id)`).
    reports: InsertReports,
    /// The names statements may use, read from the catalog once, when first needed.
    names: Arc<tokio::sync::OnceCell<Arc<KnownNames>>>,
    /// `watch_store_image_tasks(...)` over the table.
    watch: Arc<WatchFunction>,
    /// The longest a watch may run (`--max-watch`).
    max_watch: Duration,
    /// The server's bounds on AWAIT, handed to every session.
    await_limits: AwaitLimits,
}

impl Catalog {
    /// The catalog `aws` with schema `ec2` and its tables reading through `clients`.
    pub fn new(clients: Ec2Clients, regions: RegionSet, read_only: bool) -> Result<Self> {
        let schema = Arc::new(MemorySchemaProvider::new());
        let organizations = Arc::new(MemorySchemaProvider::new());
        organizations.register_table(
            ACCOUNTS_TABLE.to_owned(),
            Arc::new(OrgAccountsTable::new(clients.clone())),
        )?;
        let table =
            Arc::new(StoreImageTasksTable::new(clients, regions.clone()).with_read_only(read_only));
        let reports = table.reports().clone();
        let watch = Arc::new(WatchFunction::new(Arc::clone(&table)));
        schema.register_table(TABLE_NAME.to_owned(), table)?;
        let catalog = Arc::new(MemoryCatalogProvider::new());
        catalog.register_schema(SCHEMA, schema)?;
        catalog.register_schema(ORGANIZATIONS_SCHEMA, organizations)?;
        Ok(Catalog {
            catalog,
            reports,
            watch,
            max_watch: DEFAULT_MAX_WATCH,
            names: Arc::default(),
            default_regions: regions,
            runtime: runtime(DEFAULT_MAX_MEMORY)?,
            max_aws_calls: Some(crate::ec2::DEFAULT_MAX_CALLS_PER_QUERY),
            await_limits: AwaitLimits::default(),
        })
    }

    /// The same catalog, where an awaiting INSERT (`/*+ AWAIT */`, `aws.await`) waits at
    /// most `limits.max_await` and polls at most every `limits.min_interval`.
    pub fn with_await_limits(mut self, limits: AwaitLimits) -> Self {
        self.await_limits = limits;
        self
    }

    /// The same catalog, where one statement may make at most `calls` AWS read calls
    /// (`--max-aws-calls-per-query`; `None` = no limit): a plan that needs more is refused
    /// before the first call, and a scan that reaches the budget stops with an error.
    pub fn with_max_aws_calls_per_query(mut self, calls: Option<usize>) -> Self {
        self.max_aws_calls = calls;
        self
    }

    /// The same catalog, where a watch (`watch_store_image_tasks`) may run at most `max`
    /// (`--max-watch`; zero refuses every watch): a longer timeout is refused, and the
    /// default timeout is at most this.
    pub fn with_max_watch(mut self, max: Duration) -> Self {
        self.max_watch = max;
        self
    }

    /// The same catalog, with at most `bytes` of memory for all running statements together
    /// (`--max-memory`): a statement that needs more fails with RESOURCE_EXHAUSTED.
    pub fn with_max_memory(mut self, bytes: usize) -> Result<Self> {
        self.runtime = runtime(bytes)?;
        Ok(self)
    }

    /// The regions asked when a query names none.
    pub fn default_regions(&self) -> &RegionSet {
        &self.default_regions
    }

    /// A fresh session over the shared tables, with `catalog`/`schema` as the defaults for
    /// unqualified names (`aws`/`ec2` when `None`) and `options` set as by `SET key = value`
    /// (DataFusion's settings and the `aws.*` ones). An unknown option, one clients may not
    /// set, or a value out of its range is an error that names it.
    pub fn session<'a>(
        &self,
        catalog: Option<&str>,
        schema: Option<&str>,
        options: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<SessionContext> {
        let options_iter = options;
        let mut config = SessionConfig::new()
            .with_option_extension(AwsOptions::default())
            .with_default_catalog_and_schema(catalog.unwrap_or(CATALOG), schema.unwrap_or(SCHEMA))
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(true);
        if let Some(max) = self.max_aws_calls {
            // A session is opened per statement: each gets a budget of its own.
            config = config.with_extension(Arc::new(crate::ec2::CallBudget::new(max)));
        }
        config = config.with_extension(Arc::new(MaxWatch(self.max_watch)));
        config = config.with_extension(Arc::new(self.await_limits));
        let options = config.options_mut();
        // Column names are the seed's camelCase (amiId, storeTaskState): keep identifiers
        // as written instead of renaming the columns.
        options.sql_parser.enable_ident_normalization = false;
        // Flight SQL clients (JDBC 18.x in particular) cannot read the View types.
        options.sql_parser.map_string_types_to_utf8view = false;
        for (key, value) in options_iter {
            check_client_option(key, value, |name| {
                options
                    .entries()
                    .iter()
                    .any(|e| e.key.eq_ignore_ascii_case(name))
            })?;
            // A value that does not parse is the client's mistake: say which option.
            options.set(key, value).map_err(|e| {
                use datafusion::error::DataFusionError;
                match e.find_root() {
                    DataFusionError::Configuration(_) => e,
                    root => DataFusionError::Configuration(format!(
                        "invalid value `{value}` for {key}: {root}"
                    )),
                }
            })?;
        }
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(Arc::clone(&self.runtime))
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(yields::YieldingJoins))
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_udtf(INSERT_REPORT, self.reports.function());
        ctx.register_udtf(WATCH_FUNCTION, Arc::clone(&self.watch) as _);
        ctx.register_catalog(
            CATALOG,
            Arc::clone(&self.catalog) as Arc<dyn CatalogProvider>,
        );
        Ok(ctx)
    }

    /// Plans `sql` in `ctx` and binds `parameters`: one row for a query, one or many for
    /// `INSERT ... VALUES (?, ...)`. DDL and session statements are refused here: they
    /// would change shared state or be lost with the request; so is a write anywhere but
    /// at the top of the plan (see `writes`, which words the refusal of a hidden one).
    pub async fn plan(
        &self,
        ctx: &SessionContext,
        sql: &str,
        parameters: &[RecordBatch],
    ) -> Result<DataFrame> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_statements(false);
        let mut state = ctx.state();
        let names = self.names().await?;
        let (plan, hints) = plan_statement(&state, sql, &names).await?;
        // A statement refused at its top is worded for the client by the Flight layer's
        // admission (`flight::admit`), which names what the server does instead.
        options.verify_plan(&plan)?;
        writes::refuse_hidden_writes(&plan)?;
        let plan = params::bind(plan, parameters)?;
        if hints.await_tasks {
            // `INSERT /*+ AWAIT */` is `aws.await = true` for this statement.
            state.config_mut().options_mut().set("aws.await", "true")?;
        }
        Ok(DataFrame::new(state, plan))
    }

    /// The names statements may use (see `names`): the catalog's catalogs, schemas, tables
    /// and columns, and `insert_report` with its columns.
    pub async fn names(&self) -> Result<Arc<KnownNames>> {
        let names = self
            .names
            .get_or_try_init(|| async {
                Ok::<_, DataFusionError>(names::of_catalog(&self.tables().await?))
            })
            .await?;
        Ok(Arc::clone(names))
    }

    /// The catalogs, schemas and tables for the Flight SQL metadata commands, read from
    /// `information_schema.tables` (so its own views are listed too), sorted.
    pub async fn tables(&self) -> Result<Vec<TableInfo>> {
        let ctx = self.session(None, None, [])?;
        let batches = ctx
            .sql(
                "SELECT table_catalog, table_schema, table_name, table_type \
                 FROM information_schema.tables",
            )
            .await?
            .collect()
            .await?;
        let mut out = Vec::new();
        for batch in &batches {
            let column = |i: usize| -> Result<Vec<String>> {
                let array = cast(batch.column(i), &DataType::Utf8)?;
                Ok(array
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.unwrap_or_default().to_owned())
                    .collect())
            };
            let (catalogs, schemas, names, types) =
                (column(0)?, column(1)?, column(2)?, column(3)?);
            for i in 0..batch.num_rows() {
                let reference = TableReference::full(
                    catalogs[i].as_str(),
                    schemas[i].as_str(),
                    names[i].as_str(),
                );
                let schema = ctx.table_provider(reference).await?.schema();
                out.push(TableInfo {
                    catalog: catalogs[i].clone(),
                    schema: schemas[i].clone(),
                    name: names[i].clone(),
                    table_type: match types[i].as_str() {
                        "BASE TABLE" => "TABLE".to_owned(),
                        other => other.to_owned(),
                    },
                    arrow_schema: schema,
                });
            }
        }
        out.sort_by(|a, b| (&a.catalog, &a.schema, &a.name).cmp(&(&b.catalog, &b.schema, &b.name)));
        Ok(out)
    }
}

/// Plans `sql` in a DataFusion application's own `ctx` the way the server does: unquoted
/// names resolve in any case to the tables and columns registered in `ctx` (so
/// `SELECT AMIID FROM STORE_IMAGE_TASKS` finds `amiId` without turning off
/// `enable_ident_normalization`), quoted names stay exact, one statement, and errors say
/// which name was not found. `ctx.sql(...)` keeps DataFusion's own rules. Unlike the
/// server, it refuses nothing: DDL and `SET` run as `ctx.sql` would run them.
pub async fn sql_any_case(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    let names = names::of_session(ctx).await?;
    let (plan, _) = plan_statement(&ctx.state(), sql, &names).await?;
    ctx.execute_logical_plan(plan).await
}

/// One SQL statement planned with `names`: parsed with unquoted names resolved in any case,
/// StackQL's INSERT column names renamed, duplicate select names aliased when DataFusion
/// would refuse them, and an unknown name explained; with the statement's hints
/// (`INSERT /*+ AWAIT */`). The server and [`sql_any_case`] share it.
async fn plan_statement(
    state: &datafusion::execution::SessionState,
    sql: &str,
    names: &KnownNames,
) -> Result<(datafusion::logical_expr::LogicalPlan, parse::Hints)> {
    let parser = &state.config().options().sql_parser;
    let (mut statement, hints) = parse::statement(
        sql,
        parser.dialect.as_ref(),
        parser.recursion_limit.get(),
        names,
    )?;
    aliases::rename_insert_columns(&mut statement);
    table_args::name_arguments(&mut statement)?;
    let plan = match state.statement_to_plan(statement.clone()).await {
        Ok(plan) => Ok(plan),
        // Two select items of one name (`x, CAST(x AS VARCHAR)`): plan again with the
        // later ones aliased, or report the first error.
        Err(e) if duplicates::is_duplicate_names(&e) => {
            if !duplicates::alias_duplicates(&mut statement) {
                return Err(e);
            }
            state.statement_to_plan(statement).await.map_err(|_| e)
        }
        Err(e) => Err(names::explain_unknown(e, names)),
    }?;
    Ok((plan, hints))
}

/// The runtime every session shares: a memory pool of `max_memory` bytes (the error names
/// the largest consumers), and no spilling: the server writes no temporary files.
fn runtime(max_memory: usize) -> Result<Arc<RuntimeEnv>> {
    RuntimeEnvBuilder::new()
        .with_memory_limit(max_memory, 1.0)
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()
}

/// One table as the Flight SQL metadata commands list it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// Its catalog.
    pub catalog: String,
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// `TABLE`, `VIEW`, `LOCAL TEMPORARY`.
    pub table_type: String,
    /// Its Arrow schema.
    pub arrow_schema: SchemaRef,
}
