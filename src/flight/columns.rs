//! The `ARROW:FLIGHT:SQL:*` field metadata of result columns: where a column comes from
//! (catalog, schema, table) and how a SQL client should describe it (type name, precision,
//! scale, flags). JDBC's `ResultSetMetaData` and `DatabaseMetaData.getColumns` read these.
//! They are part of the schema, so FlightInfo, GetSchema and DoGet carry the same ones.
//!
//! GetTables' table schemas also carry what catalog browsers show: each column's remark
//! and nullability under the keys the JDBC and ADBC drivers read, and the table's remark.
//! Those stay out of result schemas (see [`describe_result`]).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::TableReference;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{LogicalPlan, SubqueryAlias, TableScan};

use crate::table::{COMMENT, INSERTABLE};

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
/// A column's remark (FlightSql.proto since Arrow 20; JDBC driver 18.3's getColumns reads
/// it). Of a schema: the table's remark.
const REMARKS: &str = "ARROW:FLIGHT:SQL:REMARKS";
/// The keys the ADBC Flight SQL driver (Go) fills GetObjects' `remarks`, `xdbc_nullable`
/// and `xdbc_is_nullable` from (`go/adbc/driver/internal/shared_utils.go`); it reads no
/// `ARROW:FLIGHT:SQL:*` key for these.
const XDBC_REMARKS: &str = "REMARKS";
const XDBC_NULLABLE: &str = "XDBC_NULLABLE";
const XDBC_IS_NULLABLE: &str = "XDBC_IS_NULLABLE";

/// Where a column comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The table's catalog.
    pub catalog: String,
    /// The table's schema.
    pub schema: String,
    /// The table.
    pub table: String,
    /// The table's columns, with their descriptions and whether INSERT takes a value for
    /// them (field metadata `comment` and `insertable`).
    pub columns: SchemaRef,
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

/// `field` with the Flight SQL column metadata, coming from `origin` when known. It is
/// writable (not `IS_READ_ONLY`) when it is a column of `origin` that INSERT takes a value
/// for and the caller `may_write` on this server; every column is read-only to the others,
/// as GetSqlInfo tells them the server is.
pub fn describe(field: &Field, origin: Option<&Origin>, may_write: bool) -> Field {
    let mut metadata = field.metadata().clone();
    // The table layer's own keys: what clients read of them is added under the keys they
    // read, where they read it.
    metadata.remove(COMMENT);
    metadata.remove(INSERTABLE);
    let data_type = field.data_type();
    let insertable = origin
        .and_then(|o| o.columns.field_with_name(field.name()).ok())
        .is_some_and(|column| column.metadata().contains_key(INSERTABLE));
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
    metadata.insert(IS_READ_ONLY.into(), flag(!(may_write && insertable)));
    metadata.insert(IS_SEARCHABLE.into(), flag(true));
    field.clone().with_metadata(metadata)
}

/// Every column of a table's schema (GetTables' `table_schema`), described as coming from
/// that table, with its remark and nullability under the keys the JDBC driver's
/// `getColumns` (`ARROW:FLIGHT:SQL:REMARKS`; NULLABLE comes from the field itself) and the
/// ADBC driver's GetObjects read; the table's remark is the schema's `REMARKS`.
pub fn describe_table(schema: &Schema, origin: &Origin, may_write: bool) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let described = describe(f, Some(origin), may_write);
            let mut metadata = described.metadata().clone();
            let nullable = f.is_nullable();
            metadata.insert(
                XDBC_NULLABLE.into(),
                if nullable { "1" } else { "0" }.into(),
            );
            metadata.insert(
                XDBC_IS_NULLABLE.into(),
                if nullable { "YES" } else { "NO" }.into(),
            );
            if let Some(comment) = f.metadata().get(COMMENT) {
                metadata.insert(REMARKS.into(), comment.clone());
                metadata.insert(XDBC_REMARKS.into(), comment.clone());
            }
            described.with_metadata(metadata)
        })
        .collect();
    let mut metadata = schema.metadata().clone();
    if let Some(comment) = metadata.remove(COMMENT) {
        metadata.insert(REMARKS.into(), comment);
    }
    Schema::new_with_metadata(fields, metadata)
}

/// The result schema of `df` (already in boundary types) with each column described; a
/// column that is a table's column as it is carries that table as its origin.
///
/// Remarks stay out: the JDBC driver 18.3 makes a column's `ARROW:FLIGHT:SQL:REMARKS` its
/// label (arrow-java's `ConvertUtils`), which BI tools show as the column's header and
/// `ResultSet.findColumn` matches names against, so `getObject("amiId")` would fail.
pub fn describe_result(df: &DataFrame, schema: &Schema, may_write: bool) -> SchemaRef {
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
            describe(field, origin, may_write)
        })
        .collect();
    let mut metadata = schema.metadata().clone();
    metadata.remove(COMMENT);
    Arc::new(Schema::new_with_metadata(fields, metadata))
}

/// The table behind each qualifier the plan uses: a scanned table's own name, and the alias
/// of an aliased scan (`FROM store_image_tasks t`).
fn origins(df: &DataFrame) -> HashMap<TableReference, Origin> {
    let config = df.task_ctx().session_config().options().catalog.clone();
    let resolve = |scan: &TableScan| {
        let full = scan
            .table_name
            .clone()
            .resolve(&config.default_catalog, &config.default_schema);
        Origin {
            catalog: full.catalog.to_string(),
            schema: full.schema.to_string(),
            table: full.table.to_string(),
            columns: scan.source.schema(),
        }
    };
    let mut out = HashMap::new();
    let _ = df.logical_plan().apply(|node| {
        match node {
            LogicalPlan::TableScan(scan) => {
                out.insert(scan.table_name.clone(), resolve(scan));
            }
            LogicalPlan::SubqueryAlias(SubqueryAlias { alias, input, .. }) => {
                if let LogicalPlan::TableScan(scan) = input.as_ref() {
                    out.insert(alias.clone(), resolve(scan));
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

    fn tasks() -> Origin {
        Origin {
            catalog: "aws".into(),
            schema: "ec2".into(),
            table: "store_image_tasks".into(),
            columns: crate::table::store_image_tasks_schema(),
        }
    }

    #[test]
    fn table_columns_name_their_table() {
        let f = describe(
            &Field::new("amiId", DataType::Utf8, true),
            Some(&tasks()),
            true,
        );
        assert_eq!(f.metadata()[TABLE_NAME], "store_image_tasks");
        assert_eq!(f.metadata()[TYPE_NAME], "VARCHAR");
        assert_eq!(f.metadata()[IS_CASE_SENSITIVE], "1");
        assert!(!f.metadata().contains_key(PRECISION));
    }

    #[test]
    fn only_insertable_columns_are_writable_and_only_for_writers() {
        let schema = crate::table::store_image_tasks_schema();
        let read_only = |may_write: bool, origin: Option<&Origin>| -> Vec<String> {
            schema
                .fields()
                .iter()
                .map(|f| describe(f, origin, may_write).metadata()[IS_READ_ONLY].clone())
                .collect()
        };
        assert_eq!(
            read_only(true, Some(&tasks())),
            ["0", "0", "0", "0", "1", "1", "1", "1", "1"]
        );
        assert!(read_only(false, Some(&tasks())).iter().all(|f| f == "1"));
        assert!(read_only(true, None).iter().all(|f| f == "1"));
    }

    #[test]
    fn table_schemas_carry_remarks_and_nullability_result_schemas_no_remarks() {
        let origin = tasks();
        let table = describe_table(&origin.columns, &origin, true);
        assert!(table.metadata()[REMARKS].starts_with("Tasks that store an AMI"));
        assert!(!table.metadata().contains_key(COMMENT));
        let region = table.field_with_name("region").unwrap().metadata();
        assert_eq!(region[XDBC_NULLABLE], "0");
        assert_eq!(region[XDBC_IS_NULLABLE], "NO");
        let ami = table.field_with_name("amiId").unwrap().metadata();
        assert_eq!(ami[XDBC_NULLABLE], "1");
        assert_eq!(ami[XDBC_IS_NULLABLE], "YES");
        assert_eq!(ami[REMARKS], ami[XDBC_REMARKS]);
        assert!(ami[REMARKS].starts_with("The ID of the AMI"));
        assert!(!ami.contains_key(COMMENT) && !ami.contains_key(INSERTABLE));

        let result = describe(origin.columns.field(1), Some(&origin), true);
        for key in [REMARKS, XDBC_REMARKS, COMMENT, INSERTABLE, XDBC_NULLABLE] {
            assert!(!result.metadata().contains_key(key), "{key}");
        }
    }
}
