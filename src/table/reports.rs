//! The whole report of an INSERT that did not create every row, one row per row, as a
//! result set: `SELECT * FROM insert_report('<id>')`. An error message cannot carry it (gRPC
//! clients cap an error at a few KB: the message is cut at 4 KB, about 150 rows), so the
//! message names the report and the server keeps it for [`REPORT_TTL`]. Reports live on
//! the server that ran the INSERT (its log has the same report, whole); a replica that did
//! not run it says so.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::Expr;
use moka::sync::Cache;

use super::error::{ReportRow, TableError};

/// How long the server keeps a report.
pub const REPORT_TTL: Duration = Duration::from_secs(3600);
/// Most report rows kept, all reports together (an INSERT has at most 1,000 rows).
const MAX_ROWS_KEPT: u64 = 500_000;

/// The name of the table function.
pub const INSERT_REPORT: &str = "insert_report";

/// The report's columns.
static REPORT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("region", false),
        text("amiId", false),
        text("bucket", false),
        // created, would_create (dry run), refused, unconfirmed (created by this or a
        // concurrent statement), not_sent
        text("outcome", false),
        text("s3objectKey", true),
        text("errorCode", true),
        text("errorMessage", true),
        text("requestId", true),
    ]))
});

/// The reports of this server's INSERTs, by id.
#[derive(Debug, Clone)]
pub struct InsertReports {
    reports: Cache<String, RecordBatch>,
}

impl Default for InsertReports {
    fn default() -> Self {
        InsertReports {
            reports: Cache::builder()
                .time_to_live(REPORT_TTL)
                .max_capacity(MAX_ROWS_KEPT)
                .weigher(|_, batch: &RecordBatch| batch.num_rows().max(1) as u32)
                .build(),
        }
    }
}

impl InsertReports {
    /// Keeps the report of `failure` (an `InsertFailed`); its id.
    pub fn keep(&self, failure: &TableError) -> Result<String> {
        let batch = report_batch(&failure.report_rows())?;
        let id = uuid::Uuid::new_v4().to_string();
        self.reports.insert(id.clone(), batch);
        Ok(id)
    }

    /// The table function `insert_report(id)` over these reports.
    pub fn function(&self) -> Arc<dyn TableFunctionImpl> {
        Arc::new(ReportFunction(self.clone()))
    }
}

/// The columns of an INSERT's report: region, amiId, bucket, outcome, s3objectKey,
/// errorCode, errorMessage, requestId.
pub fn report_schema() -> SchemaRef {
    Arc::clone(&REPORT_SCHEMA)
}

/// `rows` as one batch of [`report_schema`].
pub fn report_batch(rows: &[ReportRow<'_>]) -> Result<RecordBatch> {
    let column = |value: for<'r> fn(&'r ReportRow<'r>) -> Option<&'r str>| {
        Arc::new(rows.iter().map(value).collect::<StringArray>()) as _
    };
    let columns = vec![
        column(|r| Some(r.region)),
        column(|r| Some(r.ami_id)),
        column(|r| Some(r.bucket)),
        column(|r| Some(r.outcome)),
        column(|r| r.object_key),
        column(|r| r.error_code),
        column(|r| r.error_message),
        column(|r| r.request_id),
    ];
    Ok(RecordBatch::try_new(Arc::clone(&REPORT_SCHEMA), columns)?)
}

/// Where a dry-run INSERT leaves its rows (`would_create`, one per row), for a caller that
/// shows them as a result set. The caller puts one in the statement's session config
/// (`SessionConfig::set_extension`) before it runs the INSERT, and takes the rows after;
/// without one the dry run is only logged (it returns 0 rows affected either way).
#[derive(Debug, Default)]
pub struct DryRunRows(std::sync::Mutex<Option<RecordBatch>>);

impl DryRunRows {
    /// Leaves the rows of a dry run.
    pub(crate) fn put(&self, batch: RecordBatch) {
        *self.0.lock().expect("dry run rows lock") = Some(batch);
    }

    /// The rows the dry run left (in [`report_schema`]), if it ran and checked any.
    pub fn take(&self) -> Option<RecordBatch> {
        self.0.lock().expect("dry run rows lock").take()
    }
}

#[derive(Debug)]
struct ReportFunction(InsertReports);

impl TableFunctionImpl for ReportFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let id = match args.exprs() {
            [Expr::Literal(ScalarValue::Utf8(Some(id)), _)] => id.trim(),
            _ => {
                return plan_err!(
                    "{INSERT_REPORT} takes one argument, the report id a failed INSERT named: \
                     {INSERT_REPORT}('...')"
                )
            }
        };
        let Some(batch) = self.0.reports.get(id) else {
            return plan_err!(
                "no INSERT report `{id}` on this server: a report stays {} hour on the server \
                 that ran the INSERT (its log has it too, line `INSERT did not create every \
                 row`)",
                REPORT_TTL.as_secs() / 3600
            );
        };
        Ok(Arc::new(MemTable::try_new(
            Arc::clone(&REPORT_SCHEMA),
            vec![vec![batch]],
        )?))
    }
}
