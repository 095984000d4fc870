//! The catalog's SQL entry: the statement's text becomes one parsed statement. It is
//! tokenized in the session's dialect, its names resolved (see `names`), and parsed from the
//! tokens, so every position an error gives is one in the text the user sent. A syntax error
//! reads as a sentence ("SQL syntax error: expected ..., found ... at line 1, column 8"),
//! and a request with several statements is refused naming the rule: one statement per
//! request.

use datafusion::common::plan_datafusion_err;
use datafusion::error::{DataFusionError, Result};
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::dialect::dialect_from_str;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::Tokenizer;

use super::error::SqlError;
use super::names::{self, KnownNames};

/// Parses `sql`, the one statement of a request, in the dialect named `dialect` (the
/// session's `datafusion.sql_parser.dialect`), with unquoted names resolved to `names`.
pub fn statement(
    sql: &str,
    dialect: &str,
    recursion_limit: usize,
    names: &KnownNames,
) -> Result<Statement> {
    let dialect = dialect_from_str(dialect).ok_or_else(|| {
        plan_datafusion_err!(
            "unknown SQL dialect {dialect} (datafusion.sql_parser.dialect): use generic, \
             postgresql, mysql, ..."
        )
    })?;
    let mut tokens = Tokenizer::new(dialect.as_ref(), sql)
        .tokenize_with_location()
        .map_err(|e| syntax(ParserError::from(e), recursion_limit))?;
    names::resolve(&mut tokens, names);
    let mut statements = DFParserBuilder::new(tokens)
        .with_dialect(dialect.as_ref())
        .with_recursion_limit(recursion_limit)
        .build()
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|e| match e {
            DataFusionError::SQL(e, _) => syntax(*e, recursion_limit),
            other => other,
        })?;
    match statements.len() {
        0 => Err(external(SqlError::Empty)),
        1 => Ok(statements.pop_front().expect("one statement")),
        _ => Err(external(SqlError::SeveralStatements(
            statements.iter().map(first_keyword).collect(),
        ))),
    }
}

fn syntax(e: ParserError, recursion_limit: usize) -> DataFusionError {
    external(SqlError::syntax(&e, Some(recursion_limit)))
}

fn external(e: SqlError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The statement's first keyword (`SELECT`, `SET`, `INSERT`), for messages.
fn first_keyword(statement: &Statement) -> String {
    let text = statement.to_string();
    let word = text.split_whitespace().next().unwrap_or_default();
    word.trim_start_matches('(').to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> std::result::Result<Statement, String> {
        statement(sql, "generic", 50, &KnownNames::default()).map_err(|e| match e {
            DataFusionError::External(inner) => inner.to_string(),
            other => format!("not ours: {other}"),
        })
    }

    #[test]
    fn syntax_errors_are_sentences_with_the_users_positions() {
        let e = parse("SELECT (1\n FROM t").unwrap_err();
        assert!(e.starts_with("SQL syntax error: expected "), "{e}");
        assert!(e.contains("found FROM at line 2, column 2"), "{e}");
        assert!(!e.contains("ParserError"), "{e}");
        let e = parse("SELEC 1").unwrap_err();
        assert_eq!(
            e,
            "SQL syntax error: expected an SQL statement, found SELEC at line 1, column 1"
        );
        let e = parse("SELECT 'open").unwrap_err();
        assert!(e.starts_with("SQL syntax error: "), "{e}");
        assert!(e.contains("line 1, column 8"), "{e}");
    }

    #[test]
    fn one_statement_per_request() {
        let e = parse("SET aws.dry_run = true; INSERT INTO t (a) VALUES (1)").unwrap_err();
        assert!(
            e.starts_with(
                "one statement per request: this request holds 2 statements (SET, INSERT)"
            ),
            "{e}"
        );
        assert!(parse("SELECT 1;").is_ok());
        let e = parse("-- nothing").unwrap_err();
        assert!(e.contains("no SQL statement"), "{e}");
    }

    #[test]
    fn the_recursion_limit_reads_as_a_sentence() {
        let sql = format!("SELECT {}1{}", "(".repeat(60), ")".repeat(60));
        let e = parse(&sql).unwrap_err();
        assert!(
            e.contains("nests deeper than the parser allows (50 levels"),
            "{e}"
        );
    }
}
