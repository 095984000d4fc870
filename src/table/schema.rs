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
    let n = tasks.len();
    let mut account_col = StringBuilder::with_capacity(n, n * account.len());
    let mut region_col = StringBuilder::with_capacity(n, n * region.len());
    let mut ami = StringBuilder::with_capacity(n, n * 21);
    let mut bucket = StringBuilder::with_capacity(n, n * 24);
    let mut progress = Int32Builder::with_capacity(n);
    let mut key = StringBuilder::with_capacity(n, n * 25);
    let mut reason = StringBuilder::new();
    let mut state = StringBuilder::with_capacity(n, n * 10);
    let mut start = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    for t in tasks {
        account_col.append_value(account);
        region_col.append_value(region);
        ami.append_option(t.ami_id.as_deref());
        bucket.append_option(t.bucket.as_deref());
        progress.append_option(t.progress_percentage);
        key.append_option(t.s3_object_key.as_deref());
        reason.append_option(t.store_task_failure_reason.as_deref());
        state.append_option(t.store_task_state.as_deref());
        start.append_option(t.task_start_time.map(|d| d.timestamp_millis()));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(account_col.finish()),
        Arc::new(region_col.finish()),
        Arc::new(ami.finish()),
        Arc::new(bucket.finish()),
        Arc::new(progress.finish()),
        Arc::new(key.finish()),
        Arc::new(reason.finish()),
        Arc::new(state.finish()),
        Arc::new(start.finish()),
    ];
    RecordBatch::try_new(store_image_tasks_schema(), columns)
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
