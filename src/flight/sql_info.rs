//! The GetSqlInfo answers: what this server is and which SQL it speaks. DBeaver, Tableau
//! and the ADBC drivers read these at connect time and fail on missing ones.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, MapArray, RecordBatch, StructArray, UnionArray};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::error::ArrowError;

use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{
    SqlInfo, SqlNullOrdering, SqlOuterJoinsSupportLevel, SqlSupportedCaseSensitivity,
    SqlSupportedTransaction, SqlSupportsConvert, SqlTransactionIsolationLevel, SupportedSqlGrammar,
};

/// `SupportedAnsi92SqlGrammarLevel::ANSI92_ENTRY_SQL` (the enum is not re-exported).
const ANSI92_ENTRY_SQL: i32 = 0;

/// Numeric functions DataFusion provides (checked against the registry in a test).
pub(crate) const NUMERIC_FUNCTIONS: &[&str] = &[
    "abs", "acos", "asin", "atan", "atan2", "ceil", "cos", "degrees", "exp", "floor", "ln", "log",
    "log10", "log2", "pi", "power", "radians", "round", "signum", "sin", "sqrt", "tan", "trunc",
];
/// String functions DataFusion provides.
pub(crate) const STRING_FUNCTIONS: &[&str] = &[
    "ascii",
    "btrim",
    "char_length",
    "concat",
    "concat_ws",
    "initcap",
    "left",
    "length",
    "lower",
    "lpad",
    "ltrim",
    "octet_length",
    "replace",
    "repeat",
    "reverse",
    "right",
    "rpad",
    "rtrim",
    "split_part",
    "starts_with",
    "strpos",
    "substr",
    "translate",
    "upper",
];
/// System functions DataFusion provides.
pub(crate) const SYSTEM_FUNCTIONS: &[&str] = &["arrow_typeof", "coalesce", "nullif", "version"];
/// Date and time functions DataFusion provides.
pub(crate) const DATETIME_FUNCTIONS: &[&str] = &[
    "current_date",
    "current_time",
    "date_bin",
    "date_part",
    "date_trunc",
    "from_unixtime",
    "make_date",
    "now",
    "to_char",
    "to_date",
    "to_timestamp",
    "to_unixtime",
];

const KEYWORDS: &[&str] = &[
    "ANALYZE", "EXPLAIN", "ILIKE", "LIMIT", "OFFSET", "QUALIFY", "SHOW", "UNNEST", "VERBOSE",
];

/// Builds the answers. `read_only` says whether INSERT is refused.
pub(crate) fn sql_info(read_only: bool) -> SqlInfoData {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, env!("CARGO_PKG_NAME"));
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, arrow::ARROW_VERSION);
    b.append(SqlInfo::FlightSqlServerReadOnly, read_only);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    // CancelFlightInfo stops the query's running streams.
    b.append(SqlInfo::FlightSqlServerCancel, true);
    // CommandStatementIngest appends through INSERT.
    b.append(SqlInfo::FlightSqlServerBulkIngestion, !read_only);
    b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, false);
    // Unquoted identifiers match the real names in any case and are stored as the real
    // (mixed-case) names: CASE_INSENSITIVE (1). Quoted ones match exactly; the spec's
    // SqlSupportedCaseSensitivity has no "case-sensitive" value, and Arrow's ODBC driver
    // reads UNKNOWN (0) as SQL_IC_SENSITIVE (and 1 as SQL_IC_MIXED). The JDBC driver
    // ignores both (Avatica's defaults: storesUpperCaseIdentifiers() is always true).
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32,
    );
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    b.append(SqlInfo::SqlKeywords, KEYWORDS);
    b.append(SqlInfo::SqlNumericFunctions, NUMERIC_FUNCTIONS);
    b.append(SqlInfo::SqlStringFunctions, STRING_FUNCTIONS);
    b.append(SqlInfo::SqlSystemFunctions, SYSTEM_FUNCTIONS);
    b.append(SqlInfo::SqlDatetimeFunctions, DATETIME_FUNCTIONS);
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlExtraNameCharacters, "");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(SqlInfo::SqlSupportsConvert, supports_convert());
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    // Bit mask of SqlSupportedGroupBy: GROUP BY unrelated (1) and beyond select (2).
    b.append(SqlInfo::SqlSupportedGroupBy, 3i32);
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    // Bit masks, one bit per enum value (how the JDBC driver reads them): minimum and core
    // grammar; ANSI-92 entry level.
    b.append(
        SqlInfo::SqlSupportedGrammar,
        bits(&[
            SupportedSqlGrammar::SqlMinimumGrammar as i32,
            SupportedSqlGrammar::SqlCoreGrammar as i32,
        ]),
    );
    b.append(SqlInfo::SqlAnsi92SupportedLevel, bits(&[ANSI92_ENTRY_SQL]));
    b.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    // Limited and full outer joins, as a bit mask: the JDBC driver tests bit 1 << value.
    b.append(
        SqlInfo::SqlOuterJoinsSupportLevel,
        bits(&[
            SqlOuterJoinsSupportLevel::SqlLimitedOuterJoins as i32,
            SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
        ]),
    );
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlProcedureTerm, "procedure");
    b.append(SqlInfo::SqlCatalogTerm, "catalog");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlSchemasSupportedActions, 0i32);
    b.append(SqlInfo::SqlCatalogsSupportedActions, 0i32);
    b.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    // Bit mask of SqlSupportedSubqueries: comparisons, EXISTS, IN, quantified.
    b.append(SqlInfo::SqlSupportedSubqueries, 15i32);
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    // Bit mask of SqlSupportedUnions: UNION and UNION ALL.
    b.append(SqlInfo::SqlSupportedUnions, 3i32);
    for limit in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlDbSchemaNameLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatementLength,
        SqlInfo::SqlMaxStatements,
        SqlInfo::SqlMaxTableNameLength,
        SqlInfo::SqlMaxTablesInSelect,
        SqlInfo::SqlMaxUsernameLength,
    ] {
        // 0 = no limit known.
        b.append(limit, 0i64);
    }
    b.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, true);
    b.append(SqlInfo::SqlDefaultTransactionIsolation, 0i64);
    b.append(SqlInfo::SqlTransactionsSupported, false);
    // Bit mask of SqlTransactionIsolationLevel: only TRANSACTION_NONE.
    b.append(
        SqlInfo::SqlSupportedTransactionsIsolationLevels,
        bits(&[SqlTransactionIsolationLevel::SqlTransactionNone as i32]),
    );
    b.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    b.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, true);
    // Bit mask of SqlSupportedResultSetType: forward only (bit 1).
    b.append(SqlInfo::SqlSupportedResultSetTypes, 2i32);
    for concurrency in [
        SqlInfo::SqlSupportedConcurrenciesForResultSetUnspecified,
        SqlInfo::SqlSupportedConcurrenciesForResultSetForwardOnly,
        SqlInfo::SqlSupportedConcurrenciesForResultSetScrollSensitive,
        SqlInfo::SqlSupportedConcurrenciesForResultSetScrollInsensitive,
    ] {
        // Bit mask of SqlSupportedResultSetConcurrency: read only (bit 1).
        b.append(concurrency, 2i32);
    }
    b.append(SqlInfo::SqlBatchUpdatesSupported, false);
    b.append(SqlInfo::SqlSavepointsSupported, false);
    b.append(SqlInfo::SqlNamedParametersSupported, false);
    b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    b.build().expect("static SqlInfo values are valid")
}

/// The GetSqlInfo schema with the map's entries named as Arrow's format names them
/// (`key`, `value`). arrow-rs names them `keys`/`values`; the JDBC driver reads map entries
/// by the canonical names and would see every `SQL_SUPPORTS_CONVERT` list as empty.
pub(crate) fn canonical_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| {
                f.as_ref()
                    .clone()
                    .with_data_type(canonical_type(f.data_type()))
            })
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

fn canonical_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Union(fields, mode) => DataType::Union(
            fields
                .iter()
                .map(|(id, f)| {
                    let field = f
                        .as_ref()
                        .clone()
                        .with_data_type(canonical_type(f.data_type()));
                    (id, Arc::new(field))
                })
                .collect(),
            *mode,
        ),
        DataType::Map(entries, sorted) => {
            DataType::Map(Arc::new(canonical_entries(entries)), *sorted)
        }
        other => other.clone(),
    }
}

fn canonical_entries(entries: &Field) -> Field {
    let DataType::Struct(kv) = entries.data_type() else {
        return entries.clone();
    };
    let names = ["key", "value"];
    let kv: Fields = kv
        .iter()
        .zip(names)
        .map(|(f, name)| Arc::new(f.as_ref().clone().with_name(name)))
        .collect();
    Field::new("entries", DataType::Struct(kv), entries.is_nullable())
}

/// A GetSqlInfo batch in [`canonical_schema`].
pub(crate) fn canonical_batch(batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = canonical_schema(batch.schema_ref());
    let columns = batch
        .columns()
        .iter()
        .map(canonical_array)
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema, columns)
}

fn canonical_array(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    match array.data_type() {
        DataType::Union(fields, _) => {
            let union = array.as_union();
            let children = fields
                .iter()
                .map(|(id, _)| canonical_array(union.child(id)))
                .collect::<Result<Vec<_>, _>>()?;
            let DataType::Union(new_fields, _) = canonical_type(array.data_type()) else {
                unreachable!("a union stays a union")
            };
            Ok(Arc::new(UnionArray::try_new(
                new_fields,
                union.type_ids().clone(),
                union.offsets().cloned(),
                children,
            )?))
        }
        DataType::Map(entries, sorted) => {
            let map = array.as_map();
            let field = canonical_entries(entries);
            let DataType::Struct(kv) = field.data_type() else {
                return Ok(Arc::clone(array));
            };
            let struct_array = StructArray::try_new(
                kv.clone(),
                map.entries().columns().to_vec(),
                map.entries().nulls().cloned(),
            )?;
            Ok(Arc::new(MapArray::try_new(
                Arc::new(field),
                map.offsets().clone(),
                struct_array,
                map.nulls().cloned(),
                *sorted,
            )?))
        }
        _ => Ok(Arc::clone(array)),
    }
}

/// A bit mask with bit `1 << v` set for each enum value `v`.
fn bits(values: &[i32]) -> i32 {
    values.iter().fold(0, |mask, v| mask | (1 << v))
}

/// Which conversions CAST supports, as the spec's map from type to types.
fn supports_convert() -> BTreeMap<i32, Vec<i32>> {
    use SqlSupportsConvert::*;
    let numeric = [
        SqlConvertBigint,
        SqlConvertDecimal,
        SqlConvertFloat,
        SqlConvertInteger,
        SqlConvertNumeric,
        SqlConvertReal,
        SqlConvertSmallint,
        SqlConvertTinyint,
    ];
    let text = [SqlConvertChar, SqlConvertVarchar, SqlConvertLongvarchar];
    let mut map = BTreeMap::new();
    for from in numeric {
        let to: Vec<i32> = numeric
            .iter()
            .chain(text.iter())
            .chain([SqlConvertBit].iter())
            .map(|t| *t as i32)
            .collect();
        map.insert(from as i32, to);
    }
    for from in text {
        let to: Vec<i32> = numeric
            .iter()
            .chain(text.iter())
            .chain(
                [
                    SqlConvertDate,
                    SqlConvertTimestamp,
                    SqlConvertTime,
                    SqlConvertBit,
                ]
                .iter(),
            )
            .map(|t| *t as i32)
            .collect();
        map.insert(from as i32, to);
    }
    map.insert(
        SqlConvertTimestamp as i32,
        [
            SqlConvertTimestamp,
            SqlConvertDate,
            SqlConvertTime,
            SqlConvertVarchar,
            SqlConvertChar,
        ]
        .iter()
        .map(|t| *t as i32)
        .collect(),
    );
    map.insert(
        SqlConvertDate as i32,
        [
            SqlConvertDate,
            SqlConvertTimestamp,
            SqlConvertVarchar,
            SqlConvertChar,
        ]
        .iter()
        .map(|t| *t as i32)
        .collect(),
    );
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn the_convert_map_has_canonical_entry_names() {
        let data = sql_info(false);
        let batch = data
            .record_batch([SqlInfo::SqlSupportsConvert as u32])
            .unwrap();
        let batch = canonical_batch(batch).unwrap();
        let DataType::Union(fields, _) = batch.schema().field(1).data_type().clone() else {
            panic!("a union");
        };
        let (_, map) = fields
            .iter()
            .find(|(_, f)| f.name() == "int32_to_int32_list_map")
            .unwrap();
        let DataType::Map(entries, _) = map.data_type() else {
            panic!("a map");
        };
        let DataType::Struct(kv) = entries.data_type() else {
            panic!("a struct");
        };
        assert_eq!(kv[0].name(), "key");
        assert_eq!(kv[1].name(), "value");
        assert_eq!(
            batch.schema(),
            canonical_schema(&data.record_batch(None::<u32>).unwrap().schema())
        );
        let union = batch.column(1).as_union();
        let entries = union.child(5).as_map();
        assert_eq!(entries.value_length(0) as usize, supports_convert().len());
    }

    #[test]
    fn levels_are_bit_masks() {
        assert_eq!(bits(&[0, 1]), 3);
        assert_eq!(bits(&[0]), 1);
        assert_eq!(bits(&[1, 2]), 6);
    }

    #[test]
    fn transactions_entry_is_present() {
        let data = sql_info(true);
        let batch = data
            .record_batch([SqlInfo::FlightSqlServerTransaction as u32])
            .unwrap();
        assert_eq!(batch.num_rows(), 1);
    }

    #[tokio::test]
    async fn every_listed_function_exists() {
        let clients = crate::ec2::Ec2Clients::load(&Default::default()).await;
        let catalog = Catalog::new(
            clients,
            crate::table::RegionSet::List(vec!["us-east-1".into()]),
            false,
        )
        .unwrap();
        let state = catalog.session(None, None, []).unwrap().state();
        for f in NUMERIC_FUNCTIONS
            .iter()
            .chain(STRING_FUNCTIONS)
            .chain(SYSTEM_FUNCTIONS)
            .chain(DATETIME_FUNCTIONS)
        {
            let known = state.scalar_functions().contains_key(*f)
                || state.aggregate_functions().contains_key(*f)
                || ["coalesce", "nullif"].contains(f);
            assert!(known, "{f} is not a DataFusion function");
        }
    }
}
