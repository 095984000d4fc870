//! The Arrow schema of `store_image_tasks` (the seed's camelCase column names plus `region`)
//! and the conversion of one API page into one record batch.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, Int32Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

use crate::ec2::StoreImageTask;

/// The table's name in schema `ec2` of catalog `aws`.
pub const TABLE_NAME: &str = "store_image_tasks";

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("region", DataType::Utf8, false),
        Field::new("amiId", DataType::Utf8, true),
        Field::new("bucket", DataType::Utf8, true),
        Field::new("progressPercentage", DataType::Int32, true),
        Field::new("s3objectKey", DataType::Utf8, true),
        Field::new("storeTaskFailureReason", DataType::Utf8, true),
        Field::new("storeTaskState", DataType::Utf8, true),
        Field::new(
            "taskStartTime",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
    ]))
});

/// The full schema of `aws.ec2.store_image_tasks`.
pub fn store_image_tasks_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// One record batch (full schema) from the tasks of one page of `region`.
pub fn tasks_to_batch(region: &str, tasks: &[StoreImageTask]) -> Result<RecordBatch, ArrowError> {
    let n = tasks.len();
    let mut region_col = StringBuilder::with_capacity(n, n * region.len());
    let mut ami = StringBuilder::with_capacity(n, n * 21);
    let mut bucket = StringBuilder::with_capacity(n, n * 24);
    let mut progress = Int32Builder::with_capacity(n);
    let mut key = StringBuilder::with_capacity(n, n * 25);
    let mut reason = StringBuilder::new();
    let mut state = StringBuilder::with_capacity(n, n * 10);
    let mut start = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    for t in tasks {
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
        let batch = tasks_to_batch("eu-west-1", &[t]).unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.column(0).as_string::<i32>().value(0), "eu-west-1");
        assert_eq!(batch.column(3).as_primitive::<Int32Type>().value(0), 17);
        assert!(batch.column(5).is_null(0));
        assert_eq!(
            batch
                .column(7)
                .as_primitive::<TimestampMillisecondType>()
                .value(0),
            1_700_000_000_123
        );
    }
}
