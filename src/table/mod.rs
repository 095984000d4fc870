//! The `store_image_tasks` table: its Arrow schema and page-to-batch conversion (`schema`),
//! which predicates become API parameters (`pushdown`), the DataFusion `TableProvider`
//! (`provider`), the scan `ExecutionPlan` that streams one batch per API page (`scan`), and
//! the `DataSink` behind INSERT (`sink`, checked by `validate`), and the whole reports of
//! INSERTs that did not create every row (`reports`, the `insert_report` table function).
//! Nothing here knows about Flight.

mod error;
mod options;
mod provider;
mod pushdown;
mod reports;
mod scan;
mod schema;
mod sink;
mod validate;

pub use error::{CreatedRow, NotSentRow, RefusedRow, ReportRow, TableError};
pub use options::AwsOptions;
pub use provider::{RegionSet, StoreImageTasksTable};
pub use reports::{report_schema, InsertReports, INSERT_REPORT};
pub use scan::{ScanPartition, StoreImageTasksExec};
pub use schema::{store_image_tasks_schema, tasks_to_batch, TABLE_NAME};
pub use sink::MAX_ROWS_PER_INSERT;
