//! Stage 4 of INSERT: what the statement answers. Every row's outcome is sorted
//! ([`Tally::of`], each logged): created, refused, created by this or a concurrent
//! statement (`unconfirmed`), or not sent (the server was shutting down). When every row
//! was created the statement returns the count (0 for a dry run, which creates nothing);
//! otherwise it fails with [`TableError::InsertFailed`], which counts every row.
//!
//! The whole report of such an INSERT, one row per row, is a result set:
//! `SELECT * FROM insert_report('<id>')`. An error message cannot carry it (gRPC
//! clients cap an error at a few KB: the message is cut at 4 KB, about 150 rows), so the
//! message names the report and the server keeps it for [`REPORT_TTL`]. Reports live on
//! the server that ran the INSERT (its log has the same report, whole); a replica that did
//! not run it says so. A dry run whose every row would be created leaves its
//! `would_create` rows in [`DryRunRows`] for a caller that shows them.
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{plan_err, DataFusionError, Result, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::Expr;
use moka::sync::Cache;

use super::awaiting::{result_columns, AwaitOutcome};
use super::create::Outcome;
use crate::ec2::CreateOutcome;
use crate::table::error::{CreatedRow, NotSentRow, RefusedRow, ReportRow, TableError};

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
        text("account", false),
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

/// The columns of an INSERT's report: account, region, amiId, bucket, outcome,
/// s3objectKey, errorCode, errorMessage, requestId.
pub fn report_schema() -> SchemaRef {
    Arc::clone(&REPORT_SCHEMA)
}

/// `rows` as one batch of [`report_schema`].
pub fn report_batch(rows: &[ReportRow<'_>]) -> Result<RecordBatch> {
    let column = |value: for<'r> fn(&'r ReportRow<'r>) -> Option<&'r str>| {
        Arc::new(rows.iter().map(value).collect::<StringArray>()) as _
    };
    let columns = vec![
        column(|r| Some(r.account)),
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

/// Where an INSERT that created every row leaves its rows (in [`report_schema`], one per
/// row: `created`, or a dry run's `would_create`), for a caller that shows them: a dry
/// run's rows as a result set, a real INSERT's regions in its result ([`insert_result`]).
/// The caller puts one in the statement's session config (`SessionConfig::set_extension`)
/// before it runs the INSERT, and takes the rows after; without one the rows are only
/// logged (the statement returns its count either way).
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

impl CreatedRow {
    /// This row in a report, with `outcome`.
    fn report_row(&self, outcome: &'static str) -> ReportRow<'_> {
        ReportRow {
            account: &self.account,
            region: &self.region,
            ami_id: &self.ami_id,
            bucket: &self.bucket,
            outcome,
            object_key: Some(&self.object_key),
            error_code: None,
            error_message: None,
            request_id: None,
        }
    }
}

/// The result of an INSERT that created `count` tasks, run as a query: one row, `count`
/// (the number clients read as the rows affected) and `regions`, where the tasks were
/// created (a row that names no region is created in the server's default region, and
/// this says which that was): `us-east-1`, or each region with its count in the order of
/// the rows, `us-east-1 (2), eu-west-1 (1)`; when the rows are in more than one account,
/// each account with its regions, `account 100000000001: us-east-1 (2); account
/// 100000000002: us-east-1 (1)`; null when nothing was created. `rows` are the INSERT's
/// rows as it left them ([`DryRunRows`]). An INSERT that awaited its tasks (`awaited`) adds
/// how they ended: `completed`, `failed` and `failures` (see `awaiting::result_columns`).
pub fn insert_result(
    count: u64,
    rows: Option<&RecordBatch>,
    awaited: Option<&AwaitOutcome>,
) -> Result<RecordBatch> {
    let text_column = |name: &str| {
        rows.and_then(|batch| batch.column_by_name(name))
            .and_then(|column| column.as_any().downcast_ref::<StringArray>())
    };
    let (accounts, regions) = (text_column("account"), text_column("region"));
    // (account, [(region, count)]) in the order of the rows.
    let mut places: Vec<(&str, Vec<(&str, usize)>)> = Vec::new();
    for (i, region) in regions.into_iter().flatten().enumerate() {
        let Some(region) = region else { continue };
        let account = accounts
            .filter(|a| a.is_valid(i))
            .map(|a| a.value(i))
            .unwrap_or_default();
        let index = match places.iter().position(|(a, _)| *a == account) {
            Some(index) => index,
            None => {
                places.push((account, Vec::new()));
                places.len() - 1
            }
        };
        let regions = &mut places[index].1;
        match regions.iter_mut().find(|(r, _)| *r == region) {
            Some((_, n)) => *n += 1,
            None => regions.push((region, 1)),
        }
    }
    let counted = |regions: &[(&str, usize)]| match regions {
        [(region, _)] => region.to_string(),
        several => several
            .iter()
            .map(|(region, n)| format!("{region} ({n})"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let text = match places.as_slice() {
        [] => None,
        [(_, regions)] => Some(counted(regions)),
        several => Some(
            several
                .iter()
                .map(|(account, regions)| {
                    let total: usize = regions.iter().map(|(_, n)| n).sum();
                    // One region of an account still shows its count among the others.
                    let regions = match regions.as_slice() {
                        [(region, _)] => format!("{region} ({total})"),
                        _ => counted(regions),
                    };
                    format!("account {account}: {regions}")
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    let mut fields = vec![
        Field::new("count", DataType::UInt64, false),
        Field::new("regions", DataType::Utf8, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(vec![count])),
        Arc::new(StringArray::from(vec![text])),
    ];
    for (field, column) in awaited.map(result_columns).unwrap_or_default() {
        fields.push(field);
        columns.push(column);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
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

/// Every row of a statement by outcome.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Created (a dry run: would be created).
    pub created: Vec<CreatedRow>,
    /// Refused by AWS.
    pub refused: Vec<RefusedRow>,
    /// Created by this or a concurrent statement.
    pub unconfirmed: Vec<CreatedRow>,
    /// Not sent: the server was shutting down.
    pub not_sent: Vec<NotSentRow>,
}

impl Tally {
    /// Every outcome sorted, each logged (a refusal of a dry run as what AWS would do).
    pub(crate) fn of(outcomes: Vec<Outcome>, dry_run: bool) -> Tally {
        let mut tally = Tally::default();
        for (request, outcome) in outcomes {
            let created = |object_key| CreatedRow {
                account: request.account.clone(),
                region: request.region.clone(),
                ami_id: request.ami_id.clone(),
                bucket: request.bucket.clone(),
                object_key,
            };
            match outcome {
                Ok(CreateOutcome::Created {
                    object_key,
                    attempts,
                }) => {
                    tracing::info!(account = %request.account, region = %request.region,
                        ami = %request.ami_id, bucket = %request.bucket, %object_key, attempts,
                        "store image task created");
                    tally.created.push(created(object_key));
                }
                Ok(CreateOutcome::WouldCreate) => tally
                    .created
                    .push(created(format!("{}.bin", request.ami_id))),
                Ok(CreateOutcome::NotSent) => tally.not_sent.push(NotSentRow {
                    account: request.account.clone(),
                    region: request.region.clone(),
                    ami_id: request.ami_id.clone(),
                    bucket: request.bucket.clone(),
                }),
                Ok(CreateOutcome::Unconfirmed { object_key }) => {
                    tracing::warn!(account = %request.account, region = %request.region,
                        ami = %request.ami_id, bucket = %request.bucket, %object_key,
                        "store image task in progress after an ambiguous failure, claimed by \
                         another statement: created by this or a concurrent statement");
                    tally.unconfirmed.push(created(object_key));
                }
                Err(error) => {
                    if dry_run {
                        tracing::info!(account = %request.account, region = %request.region,
                            ami = %request.ami_id, %error,
                            "dry run: AWS would refuse this store image task");
                    } else {
                        tracing::warn!(account = %request.account, region = %request.region,
                            ami = %request.ami_id, %error, "store image task refused");
                    }
                    tally.refused.push(RefusedRow {
                        account: request.account.clone(),
                        region: request.region.clone(),
                        ami_id: request.ami_id.clone(),
                        bucket: request.bucket.clone(),
                        error,
                    });
                }
            }
        }
        tally
    }

    /// How many rows the statement had.
    fn rows(&self) -> usize {
        self.created.len() + self.refused.len() + self.unconfirmed.len() + self.not_sent.len()
    }
}

/// The statement's answer from its `tally`: the count created (0 for a dry run), or the
/// failure with the whole report, kept in `reports` and logged. A dry run is logged, and
/// when every row would be created its `would_create` rows are left in `dry_run_rows`.
pub(crate) fn answer(
    tally: Tally,
    dry_run: bool,
    reports: &InsertReports,
    dry_run_rows: Option<&DryRunRows>,
) -> Result<u64> {
    if dry_run {
        dry_run_checked(&tally.created, &tally.refused, tally.rows(), dry_run_rows)?;
    }
    let Tally {
        created,
        refused,
        unconfirmed,
        not_sent,
    } = tally;
    if refused.is_empty() && unconfirmed.is_empty() && not_sent.is_empty() {
        if dry_run {
            // A dry run created nothing: 0 rows affected, whatever the client reads.
            return Ok(0);
        }
        if let Some(slot) = dry_run_rows {
            let report: Vec<ReportRow<'_>> =
                created.iter().map(|c| c.report_row("created")).collect();
            slot.put(report_batch(&report)?);
        }
        return Ok(created.len() as u64);
    }
    let mut report = TableError::InsertFailed {
        created,
        refused,
        unconfirmed,
        not_sent,
        dry_run,
        report_id: None,
    };
    // The whole report stays on the server, and in the log, whatever reaches the client.
    let id = reports.keep(&report)?;
    if dry_run {
        tracing::info!(report_id = %id, report = %report.detailed(),
            "dry run of INSERT: AWS would refuse some rows, nothing was created");
    } else {
        tracing::warn!(report_id = %id, report = %report.detailed(),
            "INSERT did not create every row");
    }
    if let TableError::InsertFailed { report_id, .. } = &mut report {
        *report_id = Some(id);
    }
    Err(DataFusionError::External(Box::new(report)))
}

/// What a dry run found, out of `rows` rows: logged, and, when every row would be
/// created, left in `slot` as one `would_create` row per row (otherwise the statement
/// fails with the whole report, as a real INSERT does).
fn dry_run_checked(
    would_create: &[CreatedRow],
    refused: &[RefusedRow],
    rows: usize,
    slot: Option<&DryRunRows>,
) -> Result<()> {
    let reasons: Vec<String> = refused
        .iter()
        .map(|r| {
            format!(
                "{} in {}: {}: {}",
                r.ami_id,
                r.region,
                r.error.code.as_deref().unwrap_or("error"),
                r.error.message
            )
        })
        .collect();
    tracing::info!(
        would_create = would_create.len(),
        rows,
        refused = %reasons.join("; "),
        "dry run: {} of {rows} rows would be created, nothing was created",
        would_create.len()
    );
    if let (Some(slot), true) = (slot, would_create.len() == rows) {
        let report: Vec<ReportRow<'_>> = would_create
            .iter()
            .map(|c| c.report_row("would_create"))
            .collect();
        slot.put(report_batch(&report)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;

    use super::*;
    use crate::ec2::{AwsError, AwsErrorKind, CreateRequest};

    fn request(ami: &str) -> CreateRequest {
        CreateRequest {
            account: "111111111111".into(),
            region: "us-east-1".into(),
            ami_id: ami.into(),
            bucket: "b-bucket".into(),
            dry_run: false,
            statement: 1,
        }
    }

    fn refusal() -> AwsError {
        AwsError {
            account: None,
            role_arn: None,
            region: "us-east-1".into(),
            operation: "CreateStoreImageTask",
            code: Some("InvalidAMIID.NotFound".into()),
            message: "no such AMI".into(),
            request_id: Some("req-1".into()),
            kind: AwsErrorKind::InvalidRequest,
        }
    }

    fn created(ami: &str) -> Outcome {
        let object_key = format!("{ami}.bin");
        (
            request(ami),
            Ok(CreateOutcome::Created {
                object_key,
                attempts: 1,
            }),
        )
    }

    #[test]
    fn every_outcome_is_sorted() {
        let tally = Tally::of(
            vec![
                created("ami-1"),
                (request("ami-2"), Err(refusal())),
                (
                    request("ami-3"),
                    Ok(CreateOutcome::Unconfirmed {
                        object_key: "ami-3.bin".into(),
                    }),
                ),
                (request("ami-4"), Ok(CreateOutcome::NotSent)),
                (request("ami-5"), Ok(CreateOutcome::WouldCreate)),
            ],
            false,
        );
        let amis = |rows: &[CreatedRow]| rows.iter().map(|r| r.ami_id.clone()).collect::<Vec<_>>();
        assert_eq!(amis(&tally.created), ["ami-1", "ami-5"]);
        assert_eq!(tally.created[1].object_key, "ami-5.bin");
        assert_eq!(tally.refused[0].ami_id, "ami-2");
        assert_eq!(amis(&tally.unconfirmed), ["ami-3"]);
        assert_eq!(tally.not_sent[0].ami_id, "ami-4");
        assert_eq!(tally.rows(), 5);
    }

    #[test]
    fn every_row_created_is_the_count() {
        let reports = InsertReports::default();
        let tally = Tally::of(vec![created("ami-1"), created("ami-2")], false);
        assert_eq!(answer(tally, false, &reports, None).unwrap(), 2);
        assert_eq!(answer(Tally::default(), false, &reports, None).unwrap(), 0);
    }

    #[test]
    fn an_insert_says_where_its_tasks_were_created() {
        let reports = InsertReports::default();
        let slot = DryRunRows::default();
        let mut elsewhere = created("ami-3");
        elsewhere.0.region = "eu-west-1".into();
        let tally = Tally::of(vec![created("ami-1"), elsewhere, created("ami-2")], false);
        assert_eq!(answer(tally, false, &reports, Some(&slot)).unwrap(), 3);
        let rows = slot.take().expect("the INSERT's rows");
        let result = insert_result(3, Some(&rows), None).unwrap();
        let regions = result.column_by_name("regions").unwrap().as_string::<i32>();
        assert_eq!(regions.value(0), "us-east-1 (2), eu-west-1 (1)");

        let tally = Tally::of(vec![created("ami-1")], false);
        assert_eq!(answer(tally, false, &reports, Some(&slot)).unwrap(), 1);
        let result = insert_result(1, slot.take().as_ref(), None).unwrap();
        let regions = result.column_by_name("regions").unwrap().as_string::<i32>();
        assert_eq!(regions.value(0), "us-east-1");
        assert!(insert_result(0, None, None).unwrap().column(1).is_null(0));
    }

    #[test]
    fn an_insert_in_several_accounts_names_them() {
        let reports = InsertReports::default();
        let slot = DryRunRows::default();
        let in_account = |ami: &str, account: &str, region: &str| {
            let mut outcome = created(ami);
            outcome.0.account = account.into();
            outcome.0.region = region.into();
            outcome
        };
        let tally = Tally::of(
            vec![
                in_account("ami-1", "100000000001", "us-east-1"),
                in_account("ami-2", "111111111111", "us-east-1"),
                in_account("ami-3", "100000000001", "eu-west-1"),
                in_account("ami-4", "100000000001", "us-east-1"),
            ],
            false,
        );
        assert_eq!(answer(tally, false, &reports, Some(&slot)).unwrap(), 4);
        let rows = slot.take().expect("the INSERT's rows");
        let accounts = rows.column_by_name("account").unwrap().as_string::<i32>();
        assert_eq!(accounts.value(1), "111111111111");
        let result = insert_result(4, Some(&rows), None).unwrap();
        let regions = result.column_by_name("regions").unwrap().as_string::<i32>();
        assert_eq!(
            regions.value(0),
            "account 100000000001: us-east-1 (2), eu-west-1 (1); account 111111111111: \
             us-east-1 (1)"
        );
    }

    #[test]
    fn a_failed_insert_in_several_accounts_names_the_account_of_each_group() {
        let reports = InsertReports::default();
        let mut elsewhere = (request("ami-2"), Err(refusal()));
        elsewhere.0.account = "100000000001".into();
        let tally = Tally::of(vec![created("ami-1"), elsewhere], false);
        let err = answer(tally, false, &reports, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("created in account 111111111111 us-east-1: ami-1"),
            "{err}"
        );
        assert!(
            err.contains("refused in account 100000000001 us-east-1, InvalidAMIID.NotFound"),
            "{err}"
        );
        // One account: the regions alone, as before.
        let tally = Tally::of(
            vec![created("ami-1"), (request("ami-2"), Err(refusal()))],
            false,
        );
        let err = answer(tally, false, &reports, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("created in us-east-1: ami-1"), "{err}");
    }

    #[test]
    fn a_dry_run_affects_no_row_and_leaves_its_rows() {
        let reports = InsertReports::default();
        let slot = DryRunRows::default();
        let tally = Tally::of(
            vec![(request("ami-1"), Ok(CreateOutcome::WouldCreate))],
            true,
        );
        assert_eq!(answer(tally, true, &reports, Some(&slot)).unwrap(), 0);
        let batch = slot.take().expect("the dry run's rows");
        assert_eq!(batch.num_rows(), 1);
        let outcome = batch.column_by_name("outcome").unwrap().as_string::<i32>();
        assert_eq!(outcome.value(0), "would_create");
    }

    #[test]
    fn a_refusal_fails_with_the_report_kept() {
        let reports = InsertReports::default();
        let slot = DryRunRows::default();
        let tally = Tally::of(
            vec![created("ami-1"), (request("ami-2"), Err(refusal()))],
            true,
        );
        let err = answer(tally, true, &reports, Some(&slot)).unwrap_err();
        assert!(
            slot.take().is_none(),
            "no rows are left when a row would be refused"
        );
        let DataFusionError::External(err) = err else {
            panic!("{err}")
        };
        let err = err.downcast_ref::<TableError>().expect("a table error");
        let TableError::InsertFailed {
            report_id: Some(id),
            dry_run: true,
            ..
        } = err
        else {
            panic!("{err}")
        };
        assert_eq!(reports.reports.get(id).unwrap().num_rows(), 2);
        assert!(err.to_string().starts_with(
            "dry run of INSERT failed, nothing was created: AWS would refuse 1 of 2 rows"
        ));
    }
}
