//! The `store_image_tasks` table: its Arrow schema and page-to-batch conversion (`schema`),
//! which predicates become API parameters (`pushdown`), the DataFusion `TableProvider`
//! (`provider`) and the scan `ExecutionPlan` that streams one batch per API page (`scan`).
//! Nothing here knows about Flight.

mod options;
mod provider;
mod pushdown;
mod scan;
mod schema;

pub use options::AwsOptions;
pub use provider::{RegionSet, StoreImageTasksTable};
pub use scan::StoreImageTasksExec;
pub use schema::{store_image_tasks_schema, tasks_to_batch, TABLE_NAME};
