//! `INSERT INTO store_image_tasks` as a pipeline, one file per stage, each stage's input
//! the previous one's output:
//!
//! 1. **rows** ([`rows`]): the statement's record batches are read whole (at most
//!    [`MAX_ROWS_PER_INSERT`] rows, so nothing is sent for a statement that is too big)
//!    and become typed rows: `region`, `amiId` and `bucket` as trimmed text, and which
//!    read-only columns were given.
//! 2. **validate** ([`validate`]): every rule a row must pass before any create, as pure
//!    functions: no read-only column given, an account the server reaches (an empty one
//!    is the server's own) whose role could be assumed ([`create::reach`] readies each
//!    account the rows name first), a region name of a region enabled in that account (an
//!    empty one is the default region), an AMI id and a bucket name by AWS's naming rules
//!    (`table::naming`), each (account, region, AMI) once. One bad row refuses the
//!    statement with every problem listed, and nothing is created.
//! 3. **create** ([`create`]): one `DescribeStoreImageTasks` per account and region
//!    refuses the statement when a task for one of its AMIs is already in progress there
//!    (the rule is in [`validate`]); then one `CreateStoreImageTask` per row through its
//!    account's clients, exactly once (the state machine of `ec2::create`), a few at a
//!    time per account and region.
//! 4. **report** ([`report`]): every row's outcome is sorted into created, refused,
//!    created by this or a concurrent statement, and not sent; the statement returns the
//!    count created, or fails with a report of every row, kept on the server for
//!    `insert_report('<id>')`. A dry run (`aws.dry_run`) creates nothing, affects 0 rows
//!    and leaves its `would_create` rows for a caller that shows them ([`DryRunRows`]).
//!
//! 5. **await** ([`awaiting`]), only under `INSERT /*+ AWAIT */` or `aws.await`: once every
//!    row was created, the statement polls `DescribeStoreImageTasks` (`ImageIds`) until
//!    every task it created is `Completed` or `Failed`, and its result says how each ended.
//!
//! [`sink`] is the DataFusion `DataSink` that runs the stages in order.

pub(crate) mod awaiting;
pub(crate) mod create;
pub(crate) mod report;
pub(crate) mod rows;
pub(crate) mod sink;
pub(crate) mod validate;

use datafusion::common::DataFusionError;

use super::error::TableError;

pub use awaiting::{
    dry_run_note, dry_run_schema, is_awaiting, AwaitEnd, AwaitError, AwaitLimits, AwaitOutcome,
    AwaitedTasks, TaskEnd, LOWEST_AWAIT_INTERVAL, NOTHING_TO_AWAIT,
};
pub use report::{
    insert_result, report_batch, report_schema, DryRunRows, InsertReports, INSERT_REPORT,
};
pub use rows::MAX_ROWS_PER_INSERT;

/// A refused statement (nothing was sent to AWS), as DataFusion carries it.
pub(crate) fn invalid(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(TableError::Invalid(message)))
}
