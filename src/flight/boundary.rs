//! The Arrow types clients see. DataFusion may produce `Utf8View`/`BinaryView` and
//! schemas whose nullability differs between planning and execution; Flight SQL clients
//! (the JDBC driver in particular) need plain `Utf8`/`Binary` and the same schema in
//! FlightInfo and DoGet. Every result goes through here.
//!
//! Timestamps with a time zone are sent as such (`Timestamp(ms, "UTC")`), except to Java
//! clients: the Arrow Flight SQL JDBC driver 18.3 throws on `getObject(int)` of a TIMESTAMP
//! WITH TIME ZONE column (arrow-java#787), which is how DBeaver and most BI tools read every
//! cell, so a client whose `user-agent` is grpc-java gets them without a zone, as the UTC
//! wall-clock time (JDBC TIMESTAMP). The JDBC driver cannot be told apart from other Java
//! Flight clients (ADBC Java, arrow-java's FlightSqlClient), so they get the same. A client chooses either way with the `timestamps`
//! request header (a JDBC URL property travels as one): `with_time_zone` or
//! `without_time_zone`. See [`TimestampStyle`].

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow::error::ArrowError;
use tonic::metadata::MetadataMap;

/// The request header (and JDBC URL property) choosing how timestamps are sent.
pub const TIMESTAMPS_HEADER: &str = "timestamps";

/// How a client receives timestamps that carry a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampStyle {
    /// As they are: `Timestamp(unit, zone)`, JDBC TIMESTAMP WITH TIME ZONE. ADBC, pandas,
    /// polars and DataFusion read them as timezone-aware values.
    #[default]
    WithTimeZone,
    /// Without the zone, as the UTC wall-clock time (`Timestamp(unit)`, JDBC TIMESTAMP): the
    /// value stays the same instant, read as UTC.
    WithoutTimeZone,
}

impl TimestampStyle {
    /// The style of a call: the `timestamps` header when the client sends one, else
    /// [`TimestampStyle::WithoutTimeZone`] for Java clients (the JDBC driver) and
    /// [`TimestampStyle::WithTimeZone`] for every other.
    pub fn of(metadata: &MetadataMap) -> Result<TimestampStyle, String> {
        if let Some(value) = metadata.get(TIMESTAMPS_HEADER) {
            let value = value.to_str().unwrap_or_default().trim();
            return match value.to_ascii_lowercase().as_str() {
                "with_time_zone" => Ok(TimestampStyle::WithTimeZone),
                "without_time_zone" => Ok(TimestampStyle::WithoutTimeZone),
                _ => Err(format!(
                    "the `timestamps` property (request header) must be `with_time_zone` or \
                     `without_time_zone`, not `{value}`"
                )),
            };
        }
        let java = metadata
            .get("user-agent")
            .and_then(|agent| agent.to_str().ok())
            .is_some_and(|agent| agent.contains("grpc-java"));
        Ok(if java {
            TimestampStyle::WithoutTimeZone
        } else {
            TimestampStyle::WithTimeZone
        })
    }
}

/// The type a client receives for `data_type`.
fn boundary_type(data_type: &DataType, style: TimestampStyle) -> DataType {
    let field = |f: &FieldRef| boundary_field(f, style);
    match data_type {
        DataType::Timestamp(unit, Some(_)) if style == TimestampStyle::WithoutTimeZone => {
            DataType::Timestamp(*unit, None)
        }
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        // Flight SQL clients read decimals as Decimal128/256 only.
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => DataType::Decimal128(*p, *s),
        DataType::ListView(f) => DataType::List(field(f)),
        DataType::LargeListView(f) => DataType::LargeList(field(f)),
        DataType::List(f) => DataType::List(field(f)),
        DataType::LargeList(f) => DataType::LargeList(field(f)),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        other => other.clone(),
    }
}

fn boundary_field(field: &FieldRef, style: TimestampStyle) -> FieldRef {
    Arc::new(
        Field::new(
            field.name(),
            boundary_type(field.data_type(), style),
            field.is_nullable(),
        )
        .with_metadata(field.metadata().clone()),
    )
}

/// The schema sent to clients for a plan's `schema`, timestamps in `style`.
pub fn boundary_schema(schema: &Schema, style: TimestampStyle) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|field| boundary_field(field, style))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

/// `batch` in exactly `schema` (a `boundary_schema`), casting columns where types differ (a
/// timestamp with a zone cast to one without keeps its value: the UTC wall-clock time).
pub fn to_boundary(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema_ref() == schema {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, StringViewArray};

    #[test]
    fn small_decimals_become_decimal128() {
        use arrow::array::Decimal64Array;
        let schema = Schema::new(vec![Field::new("d", DataType::Decimal64(10, 2), true)]);
        let out = boundary_schema(&schema, TimestampStyle::WithTimeZone);
        assert_eq!(out.field(0).data_type(), &DataType::Decimal128(10, 2));
        let array = Decimal64Array::from(vec![Some(1234), None])
            .with_precision_and_scale(10, 2)
            .unwrap();
        let batch = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(array)]).unwrap();
        let batch = to_boundary(batch, &out).unwrap();
        assert_eq!(
            batch
                .column(0)
                .as_primitive::<arrow::datatypes::Decimal128Type>()
                .value(0),
            1234
        );
    }

    #[test]
    fn java_clients_get_utc_wall_clock_timestamps() {
        use arrow::array::TimestampMillisecondArray;
        use arrow::datatypes::TimeUnit;
        let zoned = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let schema = Schema::new(vec![Field::new("t", zoned.clone(), true)]);
        let mut metadata = MetadataMap::new();
        metadata.insert("user-agent", "grpc-java-netty/1.73.0".parse().unwrap());
        let java = TimestampStyle::of(&metadata).unwrap();
        assert_eq!(java, TimestampStyle::WithoutTimeZone);
        let out = boundary_schema(&schema, java);
        assert_eq!(
            out.field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, None)
        );
        // 2026-12-01T06:28:47Z stays 06:28:47: the UTC wall-clock time.
        let array = TimestampMillisecondArray::from(vec![Some(1_796_106_527_000), None])
            .with_timezone("UTC");
        let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(array)]).unwrap();
        let batch = to_boundary(batch, &out).unwrap();
        let values = batch
            .column(0)
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>();
        assert_eq!(values.value(0), 1_796_106_527_000);
        assert!(arrow::array::Array::is_null(values, 1));

        // The header wins over the user agent, both ways; a bad value is an error naming it.
        metadata.insert(TIMESTAMPS_HEADER, "with_time_zone".parse().unwrap());
        assert_eq!(
            TimestampStyle::of(&metadata).unwrap(),
            TimestampStyle::WithTimeZone
        );
        let mut other = MetadataMap::new();
        other.insert("user-agent", "grpc-go/1.75.0".parse().unwrap());
        assert_eq!(
            TimestampStyle::of(&other).unwrap(),
            TimestampStyle::WithTimeZone
        );
        other.insert(TIMESTAMPS_HEADER, "WITHOUT_TIME_ZONE".parse().unwrap());
        assert_eq!(
            TimestampStyle::of(&other).unwrap(),
            TimestampStyle::WithoutTimeZone
        );
        other.insert(TIMESTAMPS_HEADER, "local".parse().unwrap());
        let err = TimestampStyle::of(&other).unwrap_err();
        assert!(
            err.contains("without_time_zone") && err.contains("`local`"),
            "{err}"
        );
        assert_eq!(
            boundary_schema(&schema, TimestampStyle::WithTimeZone)
                .field(0)
                .data_type(),
            &zoned
        );
    }

    #[test]
    fn views_become_plain_types() {
        let schema = Schema::new(vec![Field::new("s", DataType::Utf8View, true)]);
        let out = boundary_schema(&schema, TimestampStyle::WithTimeZone);
        assert_eq!(out.field(0).data_type(), &DataType::Utf8);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(StringViewArray::from(vec!["a", "b"]))],
        )
        .unwrap();
        let batch = to_boundary(batch, &out).unwrap();
        assert_eq!(batch.column(0).as_string::<i32>().value(1), "b");
    }
}
