//! GetXdbcTypeInfo: the SQL types this server's tables and common query results use, with
//! the names that [`super::columns`] gives result columns. DBeaver's and Tableau's
//! `DatabaseMetaData.getTypeInfo` read it.

use arrow::datatypes::{DataType, TimeUnit};
use arrow_flight::sql::metadata::{XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::{Nullable, Searchable, XdbcDataType, XdbcDatetimeSubcode};

use super::columns::{precision_and_scale, sql_type_name};

/// The type infos, built once.
pub fn xdbc_type_info() -> XdbcTypeInfoData {
    let mut builder = XdbcTypeInfoDataBuilder::new();
    let utc_ms = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let types: [(DataType, XdbcDataType, Option<XdbcDatetimeSubcode>); 7] = [
        (DataType::Utf8, XdbcDataType::XdbcVarchar, None),
        (DataType::Int32, XdbcDataType::XdbcInteger, None),
        (DataType::Int64, XdbcDataType::XdbcBigint, None),
        (DataType::Float64, XdbcDataType::XdbcDouble, None),
        (DataType::Boolean, XdbcDataType::XdbcBit, None),
        (
            utc_ms,
            XdbcDataType::XdbcTimestamp,
            Some(XdbcDatetimeSubcode::XdbcSubcodeTimestampWithTimezone),
        ),
        (
            DataType::Date32,
            XdbcDataType::XdbcDate,
            // 1: XDBC_SUBCODE_DATE, which the spec also names XDBC_SUBCODE_YEAR.
            Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
        ),
    ];
    for (arrow_type, xdbc, subcode) in types {
        let textual = arrow_type == DataType::Utf8;
        let numeric = arrow_type.is_numeric();
        let scale = precision_and_scale(&arrow_type);
        let (prefix, suffix) = match xdbc {
            XdbcDataType::XdbcVarchar => (Some("'".to_owned()), Some("'".to_owned())),
            XdbcDataType::XdbcTimestamp => (Some("TIMESTAMP '".to_owned()), Some("'".to_owned())),
            XdbcDataType::XdbcDate => (Some("DATE '".to_owned()), Some("'".to_owned())),
            _ => (None, None),
        };
        builder.append(XdbcTypeInfo {
            type_name: sql_type_name(&arrow_type),
            data_type: xdbc,
            column_size: if textual {
                Some(i32::MAX)
            } else {
                scale.map(|(p, _)| p)
            },
            literal_prefix: prefix,
            literal_suffix: suffix,
            create_params: None,
            nullable: Nullable::NullabilityNullable,
            case_sensitive: textual,
            searchable: if textual {
                Searchable::Full
            } else {
                Searchable::Basic
            },
            unsigned_attribute: numeric.then_some(false),
            fixed_prec_scale: false,
            auto_increment: numeric.then_some(false),
            local_type_name: Some(sql_type_name(&arrow_type)),
            minimum_scale: scale.map(|(_, s)| s),
            maximum_scale: scale.map(|(_, s)| s),
            // ODBC's verbose type: date and time types are all SQL_DATETIME plus a subcode.
            sql_data_type: if subcode.is_some() {
                XdbcDataType::XdbcDatetime
            } else {
                xdbc
            },
            datetime_subcode: subcode,
            num_prec_radix: numeric.then_some(10),
            interval_precision: None,
        });
    }
    builder.build().expect("static type infos are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_types_are_listed_and_filterable() {
        let data = xdbc_type_info();
        let all = data.record_batch(None).unwrap();
        assert_eq!(all.num_rows(), 7);
        let varchar = data.record_batch(XdbcDataType::XdbcVarchar as i32).unwrap();
        assert_eq!(varchar.num_rows(), 1);
    }
}
