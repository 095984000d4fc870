//! The catalog's SQL entry: the statement's text becomes one parsed statement. It is
//! tokenized in the session's dialect, its names resolved (see `names`), and parsed from the
//! tokens, so every position an error gives is one in the text the user sent. A syntax error
//! reads as a sentence ("SQL syntax error: expected ..., found ... at line 1, column 8"),
//! and a request with several statements is refused naming the rule: one statement per
//! request. The optimizer-hint comment StackQL uses, `INSERT /*+ AWAIT */ INTO ...`, is read
//! from the tokens ([`Hints`]); other hints are ignored, as databases ignore hints they do
//! not know.

use datafusion::common::plan_datafusion_err;
use datafusion::error::{DataFusionError, Result};
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::dialect::dialect_from_str;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

use super::error::SqlError;
use super::names::{self, KnownNames};

/// The hints a statement carries in a `/*+ ... */` comment right after its first keyword.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints {
    /// `INSERT /*+ AWAIT */`: the INSERT returns when its tasks have ended (`aws.await`).
    pub await_tasks: bool,
}

impl Hints {
    /// The hints of a statement's tokens: a comment starting `/*+` between `INSERT` (the
    /// statement's first word, or the first `INSERT` after `EXPLAIN` and its options) and the
    /// next word, whose words (any case, separated by spaces or commas) include `AWAIT`.
    fn of(tokens: &[TokenWithSpan]) -> Hints {
        let is_word = |t: &Token, keyword| matches!(t, Token::Word(w) if w.keyword == keyword);
        let mut rest = tokens
            .iter()
            .map(|t| &t.token)
            .skip_while(|t| matches!(t, Token::Whitespace(_)))
            .peekable();
        if rest.peek().is_some_and(|t| is_word(t, Keyword::EXPLAIN)) {
            while rest.next_if(|t| !is_word(t, Keyword::INSERT)).is_some() {}
        }
        let insert = rest.next().is_some_and(|t| is_word(t, Keyword::INSERT));
        let await_tasks = insert
            && rest
                .map_while(|t| match t {
                    Token::Whitespace(w) => Some(w),
                    _ => None,
                })
                .any(|w| match w {
                    Whitespace::MultiLineComment(text) => text.strip_prefix('+').is_some_and(|h| {
                        h.split(|c: char| c.is_whitespace() || c == ',')
                            .any(|word| word.eq_ignore_ascii_case("AWAIT"))
                    }),
                    _ => false,
                });
        Hints { await_tasks }
    }
}

/// Whether `sql` carries the AWAIT hint (`INSERT /*+ AWAIT */`), read from its tokens in the
/// generic dialect by the same rule the server plans with: what a client (the bundled CLI)
/// uses to know that an INSERT will wait.
pub fn await_hint(sql: &str) -> bool {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .is_ok_and(|tokens| Hints::of(&tokens).await_tasks)
}

/// Parses `sql`, the one statement of a request, in the dialect named `dialect` (the
/// session's `datafusion.sql_parser.dialect`), with unquoted names resolved to `names`; with
/// the hints it carries.
pub fn statement(
    sql: &str,
    dialect: &str,
    recursion_limit: usize,
    names: &KnownNames,
) -> Result<(Statement, Hints)> {
    let dialect = dialect_from_str(dialect).ok_or_else(|| {
        plan_datafusion_err!(
            "unknown SQL dialect {dialect} (datafusion.sql_parser.dialect): use generic, \
             postgresql, mysql, ..."
        )
    })?;
    let mut tokens = Tokenizer::new(dialect.as_ref(), sql)
        .tokenize_with_location()
        .map_err(|e| syntax(ParserError::from(e), recursion_limit))?;
    let hints = Hints::of(&tokens);
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
        1 => {
            let mut statement = statements.pop_front().expect("one statement");
            strip_insert_hints(&mut statement);
            Ok((statement, hints))
        }
        _ => Err(external(SqlError::SeveralStatements(
            statements.iter().map(first_keyword).collect(),
        ))),
    }
}

/// Drops the optimizer hints the parser attached to an INSERT (dialects that read
/// `/*+ ... */` as hints do): AWAIT was read from the tokens, and DataFusion refuses to plan
/// an INSERT that carries any hint ("Optimizer hints not supported").
fn strip_insert_hints(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::Statement as Sql;
    match statement {
        Statement::Statement(sql) => match sql.as_mut() {
            Sql::Insert(insert) => insert.optimizer_hints.clear(),
            Sql::Explain { statement, .. } => {
                if let Sql::Insert(insert) = statement.as_mut() {
                    insert.optimizer_hints.clear();
                }
            }
            _ => {}
        },
        Statement::Explain(explain) => strip_insert_hints(&mut explain.statement),
        _ => {}
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
        parse_with_hints(sql).map(|(statement, _)| statement)
    }

    fn parse_with_hints(sql: &str) -> std::result::Result<(Statement, Hints), String> {
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
    fn the_await_hint_is_read_after_insert_in_any_case_and_spacing() {
        let hints = |sql: &str| parse_with_hints(sql).unwrap().1.await_tasks;
        assert!(hints("INSERT /*+ AWAIT */ INTO t (a) VALUES (1)"));
        assert!(hints("  insert/*+await*/into aws.ec2.t (a) VALUES (1)"));
        assert!(hints("Insert\n  /*+   Await  */\n INTO t (a) VALUES (1)"));
        assert!(hints(
            "INSERT /* a note */ /*+ PARALLEL, AWAIT */ INTO t (a) VALUES (1)"
        ));
        assert!(!hints("INSERT INTO t (a) VALUES (1)"));
        // Not a hint: a plain comment, another hint, the word elsewhere, another statement.
        assert!(!hints("INSERT /* AWAIT */ INTO t (a) VALUES (1)"));
        assert!(!hints("INSERT /*+ AWAITING */ INTO t (a) VALUES (1)"));
        assert!(!hints("INSERT INTO t (a) /*+ AWAIT */ VALUES (1)"));
        assert!(!hints("INSERT INTO t (a) VALUES ('/*+ AWAIT */')"));
        assert!(!hints("SELECT /*+ AWAIT */ 1"));
        assert!(!hints("-- INSERT /*+ AWAIT */\nSELECT 1"));
        assert!(hints("EXPLAIN INSERT /*+ AWAIT */ INTO t (a) VALUES (1)"));
        assert!(hints(
            "explain verbose insert/*+await*/ INTO t (a) VALUES (1)"
        ));
        assert!(!hints("EXPLAIN INSERT INTO t (a) VALUES (1)"));
        let (statement, _) =
            parse_with_hints("EXPLAIN INSERT /*+ AWAIT */ INTO t (a) VALUES (1)").unwrap();
        assert!(!statement.to_string().contains("AWAIT"), "{statement}");
        // The hint is not left for DataFusion, which refuses to plan any.
        let (statement, _) =
            parse_with_hints("INSERT /*+ AWAIT, PARALLEL(4) */ INTO t (a) VALUES (1)").unwrap();
        assert!(!statement.to_string().contains("AWAIT"), "{statement}");
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
