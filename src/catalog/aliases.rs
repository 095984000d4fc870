//! StackQL names the insert columns of `aws.ec2.store_image_tasks` after the API's
//! parameters (`ImageId`, `Bucket`); those names are accepted in INSERT as aliases of
//! `amiId` and `bucket`, so a StackQL INSERT runs unchanged. Unquoted, they match in any
//! case (`IMAGEID`), as every unquoted name does (see `names`).

use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, Statement as SqlStatement,
};

use crate::table::TABLE_NAME;

/// (alias, column) pairs for INSERT into `store_image_tasks`.
const INSERT_ALIASES: [(&str, &str); 2] = [("ImageId", "amiId"), ("Bucket", "bucket")];

/// Renames aliased insert columns of an `INSERT INTO store_image_tasks`, in place.
pub(super) fn rename_insert_columns(statement: &mut Statement) {
    let Statement::Statement(boxed) = statement else {
        return;
    };
    let SqlStatement::Insert(insert) = boxed.as_mut() else {
        return;
    };
    let target = insert.table.to_string();
    let table = target
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .trim_matches('"');
    if table != TABLE_NAME {
        return;
    }
    for column in &mut insert.columns {
        let [ObjectNamePart::Identifier(ident)] = column.0.as_slice() else {
            continue;
        };
        let matches = |alias: &str| match ident.quote_style {
            None => alias.eq_ignore_ascii_case(&ident.value),
            Some(_) => alias == ident.value,
        };
        if let Some((_, real)) = INSERT_ALIASES.iter().find(|(alias, _)| matches(alias)) {
            *column = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(*real))]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    fn renamed(sql: &str) -> String {
        let state = SessionContext::new().state();
        let mut statement = state.sql_to_statement(sql, &Default::default()).unwrap();
        rename_insert_columns(&mut statement);
        statement.to_string()
    }

    #[test]
    fn stackql_columns_become_table_columns() {
        let out = renamed(
            "INSERT INTO aws.ec2.store_image_tasks (ImageId, Bucket, region) SELECT 'a', 'b', 'c'",
        );
        assert!(out.contains("(amiId, bucket, region)"), "{out}");
        let upper = renamed("INSERT INTO store_image_tasks (IMAGEID, region) SELECT 'a', 'c'");
        assert!(upper.contains("(amiId, region)"), "{upper}");
        let quoted = renamed("INSERT INTO store_image_tasks (\"IMAGEID\") SELECT 'a'");
        assert!(quoted.contains("(\"IMAGEID\")"), "{quoted}");
        let other = renamed("INSERT INTO other (ImageId) VALUES ('a')");
        assert!(other.contains("(ImageId)"), "{other}");
    }
}
