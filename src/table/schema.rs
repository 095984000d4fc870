//! The table's definition, declared once: each column's name, type, nullability, whether
//! INSERT takes a value for it and what it holds (from the resource's field descriptions),
//! the table's own description, and the conversion of one API page into one record batch.
//!
//! The descriptions and the INSERT flag travel as Arrow metadata of the schema (keys
//! [`COMMENT`] and [`INSERTABLE`]), so whoever reads the schema (the Flight SQL metadata
//! answers, a DataFusion application) finds them there.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, Int32Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

use crate::ec2::StoreImageTask;

/// The table's name in schema `ec2` of catalog `aws`.
pub const TABLE_NAME: &str = "store_image_tasks";

/// Metadata key (of a field, or of the schema) holding a one-sentence description, the
/// key Spark and Delta Lake use for column comments.
pub const COMMENT: &str = "comment";
/// Field metadata key, value `true`, of the columns an INSERT takes a value for.
pub const INSERTABLE: &str = "insertable";

/// What the table holds, in a sentence.
const TABLE_COMMENT: &str = "Tasks that store an AMI as a single object in an Amazon S3 \
    bucket: DescribeStoreImageTasks lists those of the last 31 days, and INSERT starts one \
    with CreateStoreImageTask.";

/// The Arrow types the columns use.
#[derive(Clone, Copy)]
enum Type {
    Utf8,
    Int32,
    /// Milliseconds, UTC.
    Timestamp,
}

/// One column of the table.
struct Column {
    name: &'static str,
    data_type: Type,
    /// Only `account` and `region` are never null: AWS's API marks every field of a task
    /// optional (`Required: No`; aws-sdk-ec2 models them as `Option`), and the server fills
    /// `account` and `region` itself.
    nullable: bool,
    /// INSERT takes a value for it; AWS fills in the others.
    insert: bool,
    comment: &'static str,
}

/// The columns, in order: `account`, `region` and the seed's camelCase fields.
const COLUMNS: [Column; 9] = [
    Column {
        name: "account",
        data_type: Type::Utf8,
        nullable: false,
        insert: true,
        comment: "The 12-digit id of the AWS account the task belongs to; INSERT creates the \
                  task there, in the server's own account when no account is given.",
    },
    Column {
        name: "region",
        data_type: Type::Utf8,
        nullable: false,
        insert: true,
        comment: "The AWS region the task runs in; INSERT creates the task there, in the \
                  server's default region when no region is given.",
    },
    Column {
        name: "amiId",
        data_type: Type::Utf8,
        nullable: true,
        insert: true,
        comment: "The ID of the AMI the task stores (required by INSERT).",
    },
    Column {
        name: "bucket",
        data_type: Type::Utf8,
        nullable: true,
        insert: true,
        comment: "The Amazon S3 bucket the AMI is stored in, which must be in the task's \
                  region (required by INSERT).",
    },
    Column {
        name: "progressPercentage",
        data_type: Type::Int32,
        nullable: true,
        insert: false,
        comment: "How far the task has got, in percent: an estimate while it is in progress, \
                  100 once it has completed.",
    },
    Column {
        name: "s3objectKey",
        data_type: Type::Utf8,
        nullable: true,
        insert: false,
        comment: "The name of the object in the bucket that holds the stored AMI \
                  (<amiId>.bin).",
    },
    Column {
        name: "storeTaskFailureReason",
        data_type: Type::Utf8,
        nullable: true,
        insert: false,
        comment: "Why the task failed; null unless its state is Failed.",
    },
    Column {
        name: "storeTaskState",
        data_type: Type::Utf8,
        nullable: true,
        insert: false,
        comment: "The state of the task: InProgress, Completed or Failed.",
    },
    Column {
        name: "taskStartTime",
        data_type: Type::Timestamp,
        nullable: true,
        insert: false,
        comment: "When the task started (UTC).",
    },
];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .map(|c| {
            let data_type = match c.data_type {
                Type::Utf8 => DataType::Utf8,
                Type::Int32 => DataType::Int32,
                Type::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            };
            let mut metadata = HashMap::from([(COMMENT.to_owned(), c.comment.to_owned())]);
            if c.insert {
                metadata.insert(INSERTABLE.to_owned(), "true".to_owned());
            }
            Field::new(c.name, data_type, c.nullable).with_metadata(metadata)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(
        fields,
        HashMap::from([(COMMENT.to_owned(), TABLE_COMMENT.to_owned())]),
    ))
});

/// The full schema of `aws.ec2.store_image_tasks`.
pub fn store_image_tasks_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// The columns AWS fills in: an INSERT may not give them a value.
pub(crate) fn read_only_columns() -> impl Iterator<Item = &'static str> {
    COLUMNS.iter().filter(|c| !c.insert).map(|c| c.name)
}

/// One record batch (full schema) from the tasks of one page of `region` in `account`.
pub fn tasks_to_batch(
    account: &str,
    region: &str,
    tasks: &[StoreImageTask],
) -> Result<RecordBatch, ArrowError> {
    tasks_to_projected_batch(account, region, tasks, None)
}

/// One record batch of the columns `projection` names (indices into the full schema; all of
/// them when `None`) from the tasks of one page: only those columns are built, so a query
/// reading three columns does not build the other six for every page.
pub fn tasks_to_projected_batch(
    account: &str,
    region: &str,
    tasks: &[StoreImageTask],
    projection: Option<&[usize]>,
) -> Result<RecordBatch, ArrowError> {
    let schema = store_image_tasks_schema();
    let columns: Vec<ArrayRef> = match projection {
        Some(indices) => indices
            .iter()
            .map(|&i| column(i, account, region, tasks))
            .collect::<Result<_, _>>()?,
        None => (0..schema.fields().len())
            .map(|i| column(i, account, region, tasks))
            .collect::<Result<_, _>>()?,
    };
    let schema = match projection {
        Some(indices) => Arc::new(schema.project(indices)?),
        None => schema,
    };
    // A projection of no column (count(*)) still carries the page's row count.
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(tasks.len()));
    RecordBatch::try_new_with_options(schema, columns, &options)
}

/// Column `index` of the full schema, built from the tasks of one page.
fn column<'a>(
    index: usize,
    account: &'a str,
    region: &'a str,
    tasks: &'a [StoreImageTask],
) -> Result<ArrayRef, ArrowError> {
    let n = tasks.len();
    fn strings<'a>(
        tasks: &'a [StoreImageTask],
        bytes_each: usize,
        value: impl Fn(&'a StoreImageTask) -> Option<&'a str>,
    ) -> ArrayRef {
        let mut builder = StringBuilder::with_capacity(tasks.len(), tasks.len() * bytes_each);
        for t in tasks {
            builder.append_option(value(t));
        }
        Arc::new(builder.finish())
    }
    Ok(match index {
        0 => strings(tasks, account.len(), |_| Some(account)),
        1 => strings(tasks, region.len(), |_| Some(region)),
        2 => strings(tasks, 21, |t| t.ami_id.as_deref()),
        3 => strings(tasks, 24, |t| t.bucket.as_deref()),
        4 => {
            let mut builder = Int32Builder::with_capacity(n);
            for t in tasks {
                builder.append_option(t.progress_percentage);
            }
            Arc::new(builder.finish())
        }
        5 => strings(tasks, 25, |t| t.s3_object_key.as_deref()),
        6 => strings(tasks, 0, |t| t.store_task_failure_reason.as_deref()),
        7 => strings(tasks, 10, |t| t.store_task_state.as_deref()),
        8 => {
            let mut builder = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
            for t in tasks {
                builder.append_option(t.task_start_time.map(|d| d.timestamp_millis()));
            }
            Arc::new(builder.finish())
        }
        _ => {
            return Err(ArrowError::SchemaError(format!(
                "store_image_tasks has no column {index}"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int32Type, TimestampMillisecondType};
    use chrono::{TimeZone, Utc};

    #[test]
    fn page_becomes_batch_with_every_column() {
        let t = StoreImageTask {
            ami_id: Some("ami-0123456789abcdef0".into()),
            bucket: Some("b".into()),
            progress_percentage: Some(17),
            s3_object_key: Some("ami-0123456789abcdef0.bin".into()),
            store_task_failure_reason: None,
            store_task_state: Some("InProgress".into()),
            task_start_time: Some(Utc.timestamp_millis_opt(1_700_000_000_123).unwrap()),
        };
        let batch = tasks_to_batch("111111111111", "eu-west-1", &[t]).unwrap();
        assert_eq!(batch.schema(), store_image_tasks_schema());
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.column(0).as_string::<i32>().value(0), "111111111111");
        assert_eq!(batch.column(1).as_string::<i32>().value(0), "eu-west-1");
        assert_eq!(batch.column(4).as_primitive::<Int32Type>().value(0), 17);
        assert!(batch.column(6).is_null(0));
        assert_eq!(
            batch
                .column(8)
                .as_primitive::<TimestampMillisecondType>()
                .value(0),
            1_700_000_000_123
        );
    }

    #[test]
    fn a_projected_batch_equals_the_full_batch_projected() {
        let tasks: Vec<StoreImageTask> = (0..3)
            .map(|i| StoreImageTask {
                ami_id: Some(format!("ami-{i:017}")),
                bucket: Some("b".into()),
                progress_percentage: (i != 1).then_some(i * 10),
                s3_object_key: Some(format!("ami-{i:017}.bin")),
                store_task_failure_reason: (i == 2).then(|| "Access denied".into()),
                store_task_state: Some(["InProgress", "Completed", "Failed"][i as usize].into()),
                task_start_time: Some(
                    Utc.timestamp_millis_opt(1_700_000_000_000 + i as i64)
                        .unwrap(),
                ),
            })
            .collect();
        let full = tasks_to_batch("111111111111", "eu-west-1", &tasks).unwrap();
        for indices in [
            vec![0, 1, 7],
            vec![8, 2],
            vec![6, 4, 5, 3],
            (0..9).collect(),
        ] {
            let projected =
                tasks_to_projected_batch("111111111111", "eu-west-1", &tasks, Some(&indices))
                    .unwrap();
            assert_eq!(projected, full.project(&indices).unwrap(), "{indices:?}");
        }
        // No column (count(*)): the rows are still counted.
        let none =
            tasks_to_projected_batch("111111111111", "eu-west-1", &tasks, Some(&[])).unwrap();
        assert_eq!((none.num_columns(), none.num_rows()), (0, 3));
        assert!(tasks_to_projected_batch("1", "r", &tasks, Some(&[9])).is_err());
    }

    #[test]
    fn every_column_is_described_and_insert_takes_account_region_ami_and_bucket() {
        let schema = store_image_tasks_schema();
        assert!(schema.metadata()[COMMENT].ends_with('.'));
        for field in schema.fields() {
            let comment = &field.metadata()[COMMENT];
            assert!(
                comment.ends_with('.') && !comment.contains("  "),
                "{comment}"
            );
        }
        let insertable: Vec<&str> = schema
            .fields()
            .iter()
            .filter(|f| f.metadata().contains_key(INSERTABLE))
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(insertable, ["account", "region", "amiId", "bucket"]);
        assert_eq!(read_only_columns().count(), 5);
        let not_null: Vec<&str> = schema
            .fields()
            .iter()
            .filter(|f| !f.is_nullable())
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(not_null, ["account", "region"]);
    }
}
