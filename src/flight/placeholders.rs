//! JDBC-style `?` placeholders. The JDBC driver (and ODBC tools) write parameters as `?`;
//! DataFusion numbers only `$1`, `$2`, ... and treats every `?` as one and the same named
//! parameter. Each `?` becomes `$n` in the order it appears, found with the SQL tokenizer so
//! that a `?` inside a string literal or a comment stays as it is.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// `sql` with each `?` placeholder numbered `$1`, `$2`, ...; unchanged when it has none (or
/// does not tokenize, in which case planning reports the error).
pub fn number_question_marks(sql: &str) -> String {
    if !sql.contains('?') {
        return sql.to_owned();
    }
    let dialect = GenericDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        return sql.to_owned();
    };
    // Byte offset of the start of each line (locations are 1-based lines and characters).
    let mut line_starts = vec![0usize];
    line_starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
    let offset = |line: u64, column: u64| -> Option<usize> {
        let start = *line_starts.get(usize::try_from(line).ok()?.checked_sub(1)?)?;
        let column = usize::try_from(column).ok()?.checked_sub(1)?;
        sql[start..]
            .char_indices()
            .nth(column)
            .map(|(i, _)| start + i)
    };
    let mut out = String::with_capacity(sql.len() + 8);
    let mut copied = 0;
    let mut n = 0;
    for token in tokens {
        if !matches!(&token.token, Token::Placeholder(p) if p == "?") {
            continue;
        }
        let Some(at) = offset(token.span.start.line, token.span.start.column) else {
            return sql.to_owned();
        };
        if sql.as_bytes().get(at) != Some(&b'?') {
            return sql.to_owned();
        }
        n += 1;
        out.push_str(&sql[copied..at]);
        out.push_str(&format!("${n}"));
        copied = at + 1;
    }
    out.push_str(&sql[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_marks_are_numbered_in_order() {
        assert_eq!(
            number_question_marks("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
        assert_eq!(
            number_question_marks("INSERT INTO t (a, b)\nVALUES (?,\n ?)"),
            "INSERT INTO t (a, b)\nVALUES ($1,\n $2)"
        );
    }

    #[test]
    fn question_marks_in_strings_and_comments_stay() {
        assert_eq!(
            number_question_marks("SELECT 'é?', \"a?\" -- what?\nFROM t WHERE x = ?"),
            "SELECT 'é?', \"a?\" -- what?\nFROM t WHERE x = $1"
        );
        assert_eq!(number_question_marks("SELECT $1"), "SELECT $1");
    }
}
