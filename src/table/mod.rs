//! The `store_image_tasks` table: its Arrow schema and page-to-batch conversion (`schema`),
//! which predicates become API parameters (`pushdown`), the DataFusion `TableProvider`
//! (`provider`), the scan `ExecutionPlan` that streams one batch per API page (`scan`), and
//! INSERT as a pipeline (`insert`: rows → validate → create → report, its `DataSink` and
//! the `insert_report` table function), the naming rules of AWS identifiers (`naming`),
//! region predicates and the errors about regions (`regions`), account predicates and the
//! errors about accounts (`accounts`), the accounts a query skipped under
//! `aws.on_account_error = 'skip'` (`skips`), the table `aws.organizations.accounts`
//! (`org_accounts`), and the `watch_store_image_tasks` table function that streams tasks
//! as they progress (`watch`).
//! Nothing here knows about Flight.

mod accounts;
mod error;
mod insert;
pub mod naming;
mod options;
mod org_accounts;
mod provider;
mod pushdown;
mod regions;
mod scan;
mod schema;
pub mod skips;
mod watch;

pub use error::{CreatedRow, NotSentRow, RefusedRow, ReportRow, TableError};
pub use insert::{
    dry_run_note, dry_run_schema, insert_result, is_awaiting, report_batch, report_schema,
    AwaitEnd, AwaitError, AwaitLimits, AwaitOutcome, AwaitedTasks, DryRunRows, InsertReports,
    TaskEnd, INSERT_REPORT, LOWEST_AWAIT_INTERVAL, MAX_ROWS_PER_INSERT, NOTHING_TO_AWAIT,
};
pub use naming::is_region_name;
pub use options::AwsOptions;
pub use org_accounts::{
    accounts_to_batch, org_accounts_schema, OrgAccountsTable, ACCOUNTS_TABLE, ORGANIZATIONS_SCHEMA,
};
pub use provider::StoreImageTasksTable;
pub use regions::RegionSet;
pub use scan::{ScanPartition, StoreImageTasksExec};
pub use schema::{
    store_image_tasks_schema, tasks_to_batch, tasks_to_projected_batch, COMMENT, INSERTABLE,
    TABLE_NAME,
};
pub use skips::{SkipReason, SkippedAccount, SkippedAccounts, SKIPPED_ACCOUNTS_KEY};
pub use watch::{
    watch_schema, watch_timeout, MaxWatch, Until, WatchArgs, WatchExec, WatchFunction,
    DEFAULT_INTERVAL, DEFAULT_MAX_WATCH, MIN_INTERVAL, OBSERVED_AT, WATCH_FUNCTION,
    WATCH_PARAMETERS,
};
