//! The Arrow types clients see. DataFusion may produce `Utf8View`/`BinaryView` and
//! schemas whose nullability differs between planning and execution; Flight SQL clients
//! (the JDBC driver in particular) need plain `Utf8`/`Binary` and the same schema in
//! FlightInfo and DoGet. Every result goes through here.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow::error::ArrowError;

/// The type a client receives for `data_type`.
fn boundary_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        // Flight SQL clients read decimals as Decimal128/256 only.
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => DataType::Decimal128(*p, *s),
        DataType::ListView(f) => DataType::List(boundary_field(f)),
        DataType::LargeListView(f) => DataType::LargeList(boundary_field(f)),
        DataType::List(f) => DataType::List(boundary_field(f)),
        DataType::LargeList(f) => DataType::LargeList(boundary_field(f)),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(boundary_field).collect()),
        other => other.clone(),
    }
}

fn boundary_field(field: &FieldRef) -> FieldRef {
    Arc::new(
        Field::new(
            field.name(),
            boundary_type(field.data_type()),
            field.is_nullable(),
        )
        .with_metadata(field.metadata().clone()),
    )
}

/// The schema sent to clients for a plan's `schema`.
pub fn boundary_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(boundary_field)
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

/// `batch` in exactly `schema` (a `boundary_schema`), casting columns where types differ.
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
        let out = boundary_schema(&schema);
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
    fn views_become_plain_types() {
        let schema = Schema::new(vec![Field::new("s", DataType::Utf8View, true)]);
        let out = boundary_schema(&schema);
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
