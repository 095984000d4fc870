//! Stage 1 of INSERT: the statement's Arrow record batches, read whole and capped at
//! [`MAX_ROWS_PER_INSERT`] rows, become typed rows ([`InsertRow`]): the three insertable
//! columns as trimmed text (a bound parameter keeps its own type, an integer AMI id say,
//! and is read as text so that `validate` can say what is wrong with it), and the
//! read-only columns given a value. Nothing here judges a value.

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::execution::SendableRecordBatchStream;
use futures::TryStreamExt;

use super::invalid;
use crate::table::schema::read_only_columns;

/// The most rows one INSERT may create: a store task costs money, and every row must fit
/// in the statement's report.
pub const MAX_ROWS_PER_INSERT: usize = 1000;

/// One INSERTed row as given: trimmed text, `None` for NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InsertRow {
    /// `account` (empty means the server's own account).
    pub account: Option<String>,
    /// `region` (empty means the default region).
    pub region: Option<String>,
    /// `amiId`.
    pub ami_id: Option<String>,
    /// `bucket`.
    pub bucket: Option<String>,
}

/// Every row of a statement, in order (row `n` of the statement is `rows[n - 1]`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Rows {
    /// The rows.
    pub rows: Vec<InsertRow>,
    /// The read-only columns given a value in some row, in schema order.
    pub read_only_given: Vec<&'static str>,
}

/// Every batch of the statement, refused as soon as it has more than
/// [`MAX_ROWS_PER_INSERT`] rows (nothing was sent to AWS then).
pub(crate) async fn collect(mut data: SendableRecordBatchStream) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    let mut rows = 0usize;
    while let Some(batch) = data.try_next().await? {
        rows += batch.num_rows();
        if rows > MAX_ROWS_PER_INSERT {
            return Err(invalid(format!(
                "an INSERT creates at most {MAX_ROWS_PER_INSERT} store tasks; split the \
                 statement, nothing was created"
            )));
        }
        batches.push(batch);
    }
    Ok(batches)
}

/// The typed rows of `batches`, or why they cannot be read (a column missing, or not
/// readable as text).
pub(crate) fn read(batches: &[RecordBatch]) -> Result<Rows, String> {
    let mut read = Rows::default();
    for batch in batches {
        for name in read_only_columns() {
            if let Some(col) = batch.column_by_name(name) {
                if col.null_count() < col.len() && !read.read_only_given.contains(&name) {
                    read.read_only_given.push(name);
                }
            }
        }
        // `account` is optional in the input: an application's own plan may leave it out.
        let accounts = batch
            .column_by_name("account")
            .map(|_| text_column(batch, "account"))
            .transpose()?;
        let (regions, amis, buckets) = (
            text_column(batch, "region")?,
            text_column(batch, "amiId")?,
            text_column(batch, "bucket")?,
        );
        for i in 0..batch.num_rows() {
            let value = |a: &StringArray| (!a.is_null(i)).then(|| a.value(i).trim().to_owned());
            read.rows.push(InsertRow {
                account: accounts.as_ref().and_then(value),
                region: value(&regions),
                ami_id: value(&amis),
                bucket: value(&buckets),
            });
        }
    }
    Ok(read)
}

/// Column `name` of `batch`, read as text.
fn text_column(batch: &RecordBatch, name: &str) -> Result<StringArray, String> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| format!("INSERT input has no column {name}"))?;
    let text = cast(column, &DataType::Utf8).map_err(|e| format!("{name} must be text: {e}"))?;
    Ok(text.as_string::<i32>().clone())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Int64Array};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    fn text(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(values.iter().copied().collect::<StringArray>())
    }

    #[test]
    fn rows_are_trimmed_text_and_null_stays_none() {
        let b = batch(vec![
            ("region", text(&[Some(" us-east-1 "), None])),
            ("amiId", text(&[Some("ami-12345678"), Some("")])),
            ("bucket", text(&[None, Some("b\t")])),
        ]);
        let rows = read(&[b.clone(), b]).unwrap();
        assert_eq!(rows.rows.len(), 4);
        assert_eq!(
            rows.rows[0],
            InsertRow {
                account: None,
                region: Some("us-east-1".into()),
                ami_id: Some("ami-12345678".into()),
                bucket: None,
            }
        );
        assert_eq!(
            rows.rows[3],
            InsertRow {
                account: None,
                region: None,
                ami_id: Some(String::new()),
                bucket: Some("b".into()),
            }
        );
        assert!(rows.read_only_given.is_empty());
    }

    #[test]
    fn an_account_column_is_read_when_present() {
        let b = batch(vec![
            ("account", text(&[Some(" 100000000001 "), None])),
            ("region", text(&[None, None])),
            ("amiId", text(&[None, None])),
            ("bucket", text(&[None, None])),
        ]);
        let rows = read(&[b]).unwrap();
        assert_eq!(rows.rows[0].account.as_deref(), Some("100000000001"));
        assert_eq!(rows.rows[1].account, None);
    }

    #[test]
    fn a_bound_integer_is_read_as_text() {
        let b = batch(vec![
            ("region", text(&[None])),
            ("amiId", Arc::new(Int64Array::from(vec![42])) as ArrayRef),
            ("bucket", text(&[Some("b")])),
        ]);
        assert_eq!(read(&[b]).unwrap().rows[0].ami_id.as_deref(), Some("42"));
    }

    #[test]
    fn read_only_columns_given_a_value_are_named_once() {
        let b = batch(vec![
            ("region", text(&[None, None])),
            ("amiId", text(&[None, None])),
            ("bucket", text(&[None, None])),
            ("progressPercentage", text(&[None, Some("5")])),
            ("s3objectKey", text(&[None, None])),
        ]);
        let rows = read(&[b.clone(), b]).unwrap();
        assert_eq!(rows.read_only_given, ["progressPercentage"]);
    }

    #[test]
    fn a_missing_column_is_named() {
        let b = batch(vec![("region", text(&[None])), ("amiId", text(&[None]))]);
        assert_eq!(read(&[b]).unwrap_err(), "INSERT input has no column bucket");
    }
}
