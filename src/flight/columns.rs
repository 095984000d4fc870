//! The `ARROW:FLIGHT:SQL:*` field metadata of result columns: where a column comes from
//! (catalog, schema, table) and how a SQL client should describe it (type name, precision,
//! scale, flags). JDBC's `ResultSetMetaData` and `DatabaseMetaData.getColumns` read these.
//! They are part of the schema, so FlightInfo, GetSchema and DoGet carry the same ones.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::TableReference;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{LogicalPlan, SubqueryAlias, TableScan};

const CATALOG_NAME: &str = "ARROW:FLIGHT:SQL:CATALOG_NAME";
/// The name FlightSql.proto documents.
const DB_SCHEMA_NAME: &str = "ARROW:FLIGHT:SQL:DB_SCHEMA_NAME";
/// The name the Java (JDBC), C++ and Go implementations read and write.
const SCHEMA_NAME: &str = "ARROW:FLIGHT:SQL:SCHEMA_NAME";
const TABLE_NAME: &str = "ARROW:FLIGHT:SQL:TABLE_NAME";
const TYPE_NAME: &str = "ARROW:FLIGHT:SQL:TYPE_NAME";
const PRECISION: &str = "ARROW:FLIGHT:SQL:PRECISION";
const SCALE: &str = "ARROW:FLIGHT:SQL:SCALE";
const IS_AUTO_INCREMENT: &str = "ARROW:FLIGHT:SQL:IS_AUTO_INCREMENT";
const IS_CASE_SENSITIVE: &str = "ARROW:FLIGHT:SQL:IS_CASE_SENSITIVE";
const IS_READ_ONLY: &str = "ARROW:FLIGHT:SQL:IS_READ_ONLY";
const IS_SEARCHABLE: &str = "ARROW:FLIGHT:SQL:IS_SEARCHABLE";

/// Where a column comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The table's catalog.
    pub catalog: String,
    /// The table's schema.
    pub schema: String,
    /// The table.
    pub table: String,
}

/// The SQL name of an Arrow type, as `TYPE_NAME` and GetXdbcTypeInfo give it.
pub fn sql_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "NULL".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::UInt8 => "TINYINT".into(),
        DataType::Int16 | DataType::UInt16 => "SMALLINT".into(),
        DataType::Int32 | DataType::UInt32 => "INTEGER".into(),
        DataType::Int64 | DataType::UInt64 => "BIGINT".into(),
        DataType::Float16 | DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => "DECIMAL".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "VARBINARY".into(),
        DataType::Date32 | DataType::Date64 => "DATE".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL".into(),
        other => other.to_string(),
    }
}

/// Digits of a fractional second.
fn fraction_digits(unit: &TimeUnit) -> i32 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

/// JDBC's precision and scale of a type, where it has them.
pub fn precision_and_scale(data_type: &DataType) -> Option<(i32, i32)> {
    Some(match data_type {
        DataType::Boolean => (1, 0),
        DataType::Int8 | DataType::UInt8 => (3, 0),
        DataType::Int16 | DataType::UInt16 => (5, 0),
        DataType::Int32 | DataType::UInt32 => (10, 0),
        DataType::Int64 => (19, 0),
        DataType::UInt64 => (20, 0),
        DataType::Float16 | DataType::Float32 => (7, 0),
        DataType::Float64 => (15, 0),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) => (*p as i32, *s as i32),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => (*p as i32, *s as i32),
        DataType::Date32 | DataType::Date64 => (10, 0),
        // "yyyy-mm-dd hh:mm:ss" and the fraction.
        DataType::Timestamp(unit, _) => {
            let digits = fraction_digits(unit);
            (19 + if digits > 0 { digits + 1 } else { 0 }, digits)
        }
        DataType::Time32(unit) | DataType::Time64(unit) => {
            let digits = fraction_digits(unit);
            (8 + if digits > 0 { digits + 1 } else { 0 }, digits)
        }
        _ => return None,
    })
}

/// `field` with the Flight SQL column metadata, coming from `origin` when known.
pub fn describe(field: &Field, origin: Option<&Origin>) -> Field {
    let mut metadata = field.metadata().clone();
    let data_type = field.data_type();
    if let Some(origin) = origin {
        metadata.insert(CATALOG_NAME.into(), origin.catalog.clone());
        metadata.insert(DB_SCHEMA_NAME.into(), origin.schema.clone());
        metadata.insert(SCHEMA_NAME.into(), origin.schema.clone());
        metadata.insert(TABLE_NAME.into(), origin.table.clone());
    }
    metadata.insert(TYPE_NAME.into(), sql_type_name(data_type));
    if let Some((precision, scale)) = precision_and_scale(data_type) {
        metadata.insert(PRECISION.into(), precision.to_string());
        metadata.insert(SCALE.into(), scale.to_string());
    }
    let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
    let textual = matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    metadata.insert(IS_AUTO_INCREMENT.into(), flag(false));
    metadata.insert(IS_CASE_SENSITIVE.into(), flag(textual));
    // Result sets are not updatable.
    metadata.insert(IS_READ_ONLY.into(), flag(true));
    metadata.insert(IS_SEARCHABLE.into(), flag(true));
    field.clone().with_metadata(metadata)
}

/// Every column of a table's schema, described as coming from that table.
pub fn describe_table(schema: &Schema, origin: &Origin) -> Schema {
    Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| describe(f, Some(origin)))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    )
}

/// The result schema of `df` (already in boundary types) with each column described; a
/// column that is a table's column as it is carries that table as its origin.
pub fn describe_result(df: &DataFrame, schema: &Schema) -> SchemaRef {
    let origins = origins(df);
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let origin = df
                .schema()
                .qualified_field(i)
                .0
                .and_then(|q| origins.get(q));
            describe(field, origin)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The table behind each qualifier the plan uses: a scanned table's own name, and the alias
/// of an aliased scan (`FROM store_image_tasks t`).
fn origins(df: &DataFrame) -> HashMap<TableReference, Origin> {
    let config = df.task_ctx().session_config().options().catalog.clone();
    let resolve = |name: &TableReference| {
        let full = name
            .clone()
            .resolve(&config.default_catalog, &config.default_schema);
        Origin {
            catalog: full.catalog.to_string(),
            schema: full.schema.to_string(),
            table: full.table.to_string(),
        }
    };
    let mut out = HashMap::new();
    let _ = df.logical_plan().apply(|node| {
        match node {
            LogicalPlan::TableScan(TableScan { table_name, .. }) => {
                out.insert(table_name.clone(), resolve(table_name));
            }
            LogicalPlan::SubqueryAlias(SubqueryAlias { alias, input, .. }) => {
                if let LogicalPlan::TableScan(TableScan { table_name, .. }) = input.as_ref() {
                    out.insert(alias.clone(), resolve(table_name));
                }
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_integers_have_precision() {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        assert_eq!(precision_and_scale(&ts), Some((23, 3)));
        assert_eq!(precision_and_scale(&DataType::Int32), Some((10, 0)));
        assert_eq!(precision_and_scale(&DataType::Utf8), None);
        assert_eq!(sql_type_name(&ts), "TIMESTAMP WITH TIME ZONE");
    }

    #[test]
    fn table_columns_name_their_table() {
        let origin = Origin {
            catalog: "aws".into(),
            schema: "ec2".into(),
            table: "t".into(),
        };
        let f = describe(&Field::new("amiId", DataType::Utf8, true), Some(&origin));
        assert_eq!(f.metadata()[TABLE_NAME], "t");
        assert_eq!(f.metadata()[TYPE_NAME], "VARCHAR");
        assert_eq!(f.metadata()[IS_CASE_SENSITIVE], "1");
        assert!(!f.metadata().contains_key(PRECISION));
    }
}
