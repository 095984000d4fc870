//! The catalog's own SQL errors: a statement that does not parse, several statements in one
//! request, and names that are not found, said as sentences a SQL user can act on (never
//! sqlparser's Debug form, never DataFusion's advice to change
//! `enable_ident_normalization`). They travel inside `DataFusionError::External`;
//! `crate::error` gives them their gRPC code.

use std::fmt;

use datafusion::sql::sqlparser::parser::ParserError;

/// What was wrong with a statement's text or names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlError {
    /// The text does not parse; the message says what the parser expected, found, and where.
    Syntax(String),
    /// The request holds several statements (their first keywords, in order).
    SeveralStatements(Vec<String>),
    /// The request holds no statement at all.
    Empty,
    /// A column name that resolves to no column.
    UnknownColumn {
        /// The name as written (with its qualifier, if any).
        name: String,
        /// Whether it was written in double quotes (so matched exactly).
        quoted: bool,
        /// The closest real name, when one is close.
        suggestion: Option<String>,
        /// The columns that were in scope, by table (`""` for names of the query itself,
        /// such as aliases), in order.
        in_scope: Vec<(String, Vec<String>)>,
    },
    /// A table name that resolves to no table.
    UnknownTable {
        /// The name, as resolved against the session's default catalog and schema.
        name: String,
        /// The closest real table, when one is close.
        suggestion: Option<String>,
        /// This server's tables (`catalog.schema.table`).
        tables: Vec<String>,
    },
}

impl SqlError {
    /// sqlparser's error as a sentence: no Debug form, positions as "line 1, column 8";
    /// `recursion_limit` is the session's parser limit, when known.
    pub fn syntax(e: &ParserError, recursion_limit: Option<usize>) -> SqlError {
        let message = match e {
            ParserError::TokenizerError(m) | ParserError::ParserError(m) => m
                .replace("Expected: ", "expected ")
                .replace(", found: ", ", found ")
                .replace(" at Line: ", " at line ")
                .replace(", Column: ", ", column "),
            ParserError::RecursionLimitExceeded => {
                let limit = recursion_limit
                    .map(|n| format!(" ({n} levels of parentheses, subqueries or operators)"))
                    .unwrap_or_default();
                format!(
                    "the statement nests deeper than the parser allows{limit}: write it \
                     flatter, e.g. with IN lists or CTEs"
                )
            }
        };
        SqlError::Syntax(message)
    }

    /// Whether the error means "no such table" (NOT_FOUND) rather than a bad statement.
    pub fn is_not_found(&self) -> bool {
        matches!(self, SqlError::UnknownTable { .. })
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlError::Syntax(message) => write!(f, "SQL syntax error: {message}"),
            SqlError::SeveralStatements(kinds) => {
                write!(
                    f,
                    "one statement per request: this request holds {} statements ({}); send \
                     each as a request of its own",
                    kinds.len(),
                    kinds.join(", ")
                )?;
                if kinds.iter().any(|k| k == "SET" || k == "RESET") {
                    write!(
                        f,
                        " (a SET sent on its own lasts for the rest of the session, for \
                         clients that keep the session cookie)"
                    )?;
                }
                Ok(())
            }
            SqlError::Empty => write!(
                f,
                "the request holds no SQL statement (only spaces or comments): send one \
                 statement, such as SELECT * FROM store_image_tasks"
            ),
            SqlError::UnknownColumn {
                name,
                quoted,
                suggestion,
                in_scope,
            } => {
                write!(f, "column {name} not found")?;
                if let Some(real) = suggestion {
                    write!(f, "; did you mean {real}?")?;
                    if *quoted {
                        write!(
                            f,
                            " (a name in double quotes must match exactly; unquoted names \
                             match in any case)"
                        )?;
                    }
                } else {
                    write!(f, ".")?;
                }
                let qualified = in_scope.iter().any(|(table, _)| !table.is_empty());
                for (table, columns) in in_scope {
                    if columns.is_empty() {
                        continue;
                    }
                    if table.is_empty() {
                        let which = if qualified { "Other names" } else { "Columns" };
                        write!(f, " {which} in scope: {}.", columns.join(", "))?;
                    } else {
                        write!(f, " The columns of {table}: {}.", columns.join(", "))?;
                    }
                }
                Ok(())
            }
            SqlError::UnknownTable {
                name,
                suggestion,
                tables,
            } => {
                write!(f, "table {name} not found")?;
                match suggestion {
                    Some(real) => write!(f, "; did you mean {real}?")?,
                    None => write!(f, ".")?,
                }
                write!(
                    f,
                    " This server's tables: {}, and the views of information_schema.",
                    tables.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for SqlError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_statements_name_the_rule_and_the_set_hint() {
        let e = SqlError::SeveralStatements(vec!["SET".into(), "INSERT".into()]);
        let text = e.to_string();
        assert!(text.starts_with("one statement per request"), "{text}");
        assert!(text.contains("(SET, INSERT)"), "{text}");
        assert!(text.contains("a SET sent on its own"), "{text}");
        let e = SqlError::SeveralStatements(vec!["SELECT".into(), "SELECT".into()]);
        assert!(!e.to_string().contains("SET sent"));
    }

    #[test]
    fn unknown_column_lists_the_table_and_suggests() {
        let e = SqlError::UnknownColumn {
            name: "\"AMIID\"".into(),
            quoted: true,
            suggestion: Some("amiId".into()),
            in_scope: vec![(
                "store_image_tasks".into(),
                vec!["region".into(), "amiId".into()],
            )],
        };
        assert_eq!(
            e.to_string(),
            "column \"AMIID\" not found; did you mean amiId? (a name in double quotes must \
             match exactly; unquoted names match in any case) The columns of \
             store_image_tasks: region, amiId."
        );
        assert!(!e.to_string().contains("normalization"));
    }
}
