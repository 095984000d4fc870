//! The `store_image_tasks` table: its Arrow schema and page-to-batch conversion (`schema`),
//! which predicates become API parameters (`pushdown`), the DataFusion `TableProvider`
//! (`provider`), the scan `ExecutionPlan` that streams one batch per API page (`scan`), and
//! the `DataSink` behind INSERT (`sink`, checked by `validate`), region names and the
//! errors about them (`regions`), and the whole reports of INSERTs that did not create
//! every row (`reports`, the `insert_report` table function).
//! Nothing here knows about Flight.

mod error;
mod naming;
mod options;
mod provider;
mod pushdown;
mod regions;
mod reports;
mod scan;
mod schema;
mod sink;

pub use error::{CreatedRow, NotSentRow, RefusedRow, ReportRow, TableError};
pub use options::AwsOptions;
pub use provider::{RegionSet, StoreImageTasksTable};
pub(crate) use naming::is_region_name;
pub use reports::{report_batch, report_schema, DryRunRows, InsertReports, INSERT_REPORT};
pub use scan::{ScanPartition, StoreImageTasksExec};
pub use schema::{store_image_tasks_schema, tasks_to_batch, COMMENT, INSERTABLE, TABLE_NAME};
pub use sink::MAX_ROWS_PER_INSERT;
