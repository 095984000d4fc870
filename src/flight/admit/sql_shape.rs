//! Limits on the text of a SQL statement, checked before it is parsed or planned: its
//! length, how deep its expressions nest, how many query blocks (SELECT and VALUES: union
//! arms, CTEs, subqueries) and joins it has. DataFusion parses, plans, optimizes, prints and
//! drops plans and expressions recursively, and some of its work grows faster than the
//! statement: 6,000 `SELECT 1` joined by UNION ALL overflowed the stack and aborted the
//! process, and a chain of 5,000 CTEs took over 8 GB while planning. Everything here is
//! measured on the tokens (the tokenizer is iterative, so it is safe on any input), so an
//! oversized statement is refused in milliseconds with a message that says which limit.

use datafusion::sql::sqlparser::dialect::Dialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

pub use crate::limits::{DEFAULT_MAX_JOINS, DEFAULT_MAX_QUERY_BLOCKS};
/// Most columns of one CUBE: DataFusion builds all 2^n grouping sets while planning.
pub const MAX_CUBE_COLUMNS: usize = 12;

/// The limits on a statement's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlLimits {
    /// Longest statement, in bytes (`--max-sql-bytes`).
    pub max_bytes: usize,
    /// Deepest expression, as [`SqlShape::depth`] measures it (`--max-expression-depth`).
    pub max_depth: usize,
    /// Most query blocks (`--max-query-blocks`).
    pub max_blocks: usize,
    /// Most joins (`--max-joins`).
    pub max_joins: usize,
}

impl SqlLimits {
    /// The limits on a statement's text among the server's `limits`.
    pub fn of(limits: &crate::limits::ServerLimits) -> SqlLimits {
        SqlLimits {
            max_bytes: limits.max_sql_bytes,
            max_depth: limits.max_expression_depth,
            max_blocks: limits.max_query_blocks,
            max_joins: limits.max_joins,
        }
    }

    /// Checks `sql` against the limits; the error says which limit, by how much, and what
    /// to do instead.
    pub fn check(&self, sql: &str, dialect: &dyn Dialect) -> Result<(), String> {
        if sql.len() > self.max_bytes {
            return Err(format!(
                "the SQL statement is {} bytes long; this server accepts at most {} \
                 (--max-sql-bytes)",
                sql.len(),
                self.max_bytes
            ));
        }
        // SQL that does not tokenize is left to the parser, which says why without
        // building anything deep.
        let Some(shape) = SqlShape::measure(sql, dialect) else {
            return Ok(());
        };
        if shape.depth > self.max_depth {
            return Err(format!(
                "the statement's expressions nest or chain about {} operators deep; this server \
                 accepts at most {} (--max-expression-depth): use IN lists instead of long OR \
                 chains, or split the statement",
                shape.depth, self.max_depth
            ));
        }
        if shape.blocks > self.max_blocks {
            return Err(format!(
                "the statement has {} query blocks (SELECT or VALUES: union arms, CTEs, \
                 subqueries); this server accepts at most {} (--max-query-blocks): split it \
                 into several statements, or use IN lists or one VALUES list instead of long \
                 UNION chains",
                shape.blocks, self.max_blocks
            ));
        }
        if shape.cube_columns > MAX_CUBE_COLUMNS {
            return Err(format!(
                "the statement has a CUBE of {} columns, which makes 2^{} grouping sets; this \
                 server accepts CUBE of at most {MAX_CUBE_COLUMNS} columns: use ROLLUP or \
                 GROUPING SETS with the sets you need",
                shape.cube_columns, shape.cube_columns
            ));
        }
        if shape.joins > self.max_joins {
            return Err(format!(
                "the statement joins {} times; this server accepts at most {} joins \
                 (--max-joins): split it into several statements",
                shape.joins, self.max_joins
            ));
        }
        Ok(())
    }
}

/// How big a statement is, measured on its tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqlShape {
    /// An upper bound on how deep its expressions nest: in each group of parentheses,
    /// brackets or braces, the operators of one comma-separated item (symbols, and AND, OR,
    /// NOT, IS, LIKE, BETWEEN, IN, CASE, ...) each add at most one level, and a group adds
    /// one to the item it sits in.
    pub depth: usize,
    /// Query blocks: SELECT and VALUES keywords, and pipe operators (`|>`).
    pub blocks: usize,
    /// Joins: JOIN keywords, and commas between the tables of a FROM clause.
    pub joins: usize,
    /// Columns of the largest CUBE.
    pub cube_columns: usize,
}

impl SqlShape {
    /// Measures `sql`; `None` when it does not tokenize.
    pub fn measure(sql: &str, dialect: &dyn Dialect) -> Option<SqlShape> {
        let tokens = Tokenizer::new(dialect, sql).tokenize().ok()?;
        #[derive(Default)]
        struct Group {
            /// The deepest item of the group so far.
            deepest: usize,
            /// Operators of the current item.
            ops: usize,
            /// The deepest group inside the current item.
            inner: usize,
            /// Between FROM and the end of its table list, at this level.
            in_from: bool,
            /// The argument list of a CUBE.
            cube: bool,
            /// Top-level commas in the group.
            commas: usize,
        }
        impl Group {
            fn end_item(&mut self) {
                self.deepest = self.deepest.max(self.ops + self.inner);
                self.ops = 0;
                self.inner = 0;
            }
            fn depth(mut self) -> usize {
                self.end_item();
                self.deepest
            }
        }
        let mut shape = SqlShape::default();
        let mut groups = vec![Group::default()];
        let mut cube_next = false;
        let close = |groups: &mut Vec<Group>, shape: &mut SqlShape| {
            if groups.len() > 1 {
                let group = groups.pop().expect("an open group");
                if group.cube {
                    shape.cube_columns = shape.cube_columns.max(group.commas + 1);
                }
                let depth = group.depth() + 1;
                let parent = groups.last_mut().expect("the root group");
                parent.inner = parent.inner.max(depth);
            }
        };
        for token in tokens {
            let group = groups.last_mut().expect("a group");
            match token {
                Token::LParen | Token::LBracket | Token::LBrace => groups.push(Group {
                    cube: std::mem::take(&mut cube_next),
                    ..Group::default()
                }),
                Token::RParen | Token::RBracket | Token::RBrace => close(&mut groups, &mut shape),
                Token::Comma | Token::SemiColon => {
                    if token == Token::Comma {
                        group.commas += 1;
                        if group.in_from {
                            shape.joins += 1;
                        }
                    }
                    group.end_item();
                }
                // A pipe operator (`|> WHERE ...`, `|> EXTEND ...`) adds a query block.
                Token::VerticalBarRightAngleBracket => {
                    shape.blocks += 1;
                    group.end_item();
                }
                Token::Word(word) => match word.keyword {
                    Keyword::SELECT | Keyword::VALUES => {
                        shape.blocks += 1;
                        group.in_from = false;
                    }
                    Keyword::JOIN => shape.joins += 1,
                    Keyword::CUBE => cube_next = true,
                    Keyword::FROM => group.in_from = true,
                    k if FROM_ENDS.contains(&k) => group.in_from = false,
                    k if OPERATOR_KEYWORDS.contains(&k) => group.ops += 1,
                    _ => {}
                },
                Token::EOF
                | Token::Whitespace(_)
                | Token::Number(..)
                | Token::Char(_)
                | Token::SingleQuotedString(_)
                | Token::DoubleQuotedString(_)
                | Token::TripleSingleQuotedString(_)
                | Token::TripleDoubleQuotedString(_)
                | Token::DollarQuotedString(_)
                | Token::SingleQuotedByteStringLiteral(_)
                | Token::DoubleQuotedByteStringLiteral(_)
                | Token::TripleSingleQuotedByteStringLiteral(_)
                | Token::TripleDoubleQuotedByteStringLiteral(_)
                | Token::SingleQuotedRawStringLiteral(_)
                | Token::DoubleQuotedRawStringLiteral(_)
                | Token::TripleSingleQuotedRawStringLiteral(_)
                | Token::TripleDoubleQuotedRawStringLiteral(_)
                | Token::NationalStringLiteral(_)
                | Token::QuoteDelimitedStringLiteral(_)
                | Token::NationalQuoteDelimitedStringLiteral(_)
                | Token::EscapedStringLiteral(_)
                | Token::UnicodeStringLiteral(_)
                | Token::HexStringLiteral(_)
                | Token::Placeholder(_)
                | Token::Period => {}
                // Every other token is an operator of some kind.
                _ => group.ops += 1,
            }
        }
        while groups.len() > 1 {
            close(&mut groups, &mut shape);
        }
        shape.depth = groups.pop().expect("the root group").depth();
        Some(shape)
    }
}

/// Keywords that end a FROM clause's table list.
const FROM_ENDS: [Keyword; 14] = [
    Keyword::WHERE,
    Keyword::GROUP,
    Keyword::HAVING,
    Keyword::ORDER,
    Keyword::LIMIT,
    Keyword::OFFSET,
    Keyword::FETCH,
    Keyword::UNION,
    Keyword::INTERSECT,
    Keyword::EXCEPT,
    Keyword::WINDOW,
    Keyword::QUALIFY,
    Keyword::RETURNING,
    Keyword::SET,
];

/// Keywords that make an expression node with operands.
const OPERATOR_KEYWORDS: [Keyword; 16] = [
    Keyword::AND,
    Keyword::OR,
    Keyword::NOT,
    Keyword::XOR,
    Keyword::IS,
    Keyword::LIKE,
    Keyword::ILIKE,
    Keyword::SIMILAR,
    Keyword::BETWEEN,
    Keyword::IN,
    Keyword::CASE,
    Keyword::COLLATE,
    Keyword::AT,
    Keyword::DIV,
    Keyword::REGEXP,
    Keyword::RLIKE,
];

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;

    fn shape(sql: &str) -> SqlShape {
        SqlShape::measure(sql, &GenericDialect {}).unwrap()
    }

    fn depth(sql: &str) -> usize {
        shape(sql).depth
    }

    #[test]
    fn chains_and_nesting_count_and_lists_do_not() {
        assert!(depth("SELECT 1") <= 1);
        let sum = format!("SELECT {}", vec!["1"; 500].join(" + "));
        assert!(depth(&sum) >= 499);
        let parens = format!("SELECT {}1{}", "(".repeat(300), ")".repeat(300));
        assert!(depth(&parens) >= 300);
        let calls = format!("SELECT {}1{}", "abs(".repeat(300), ")".repeat(300));
        assert!(depth(&calls) >= 300);
        let ors = (0..300)
            .map(|i| format!("amiId = 'ami-{i}'"))
            .collect::<Vec<_>>()
            .join(" OR ");
        assert!(depth(&format!("SELECT * FROM t WHERE {ors}")) >= 599);
        let cases = format!(
            "SELECT {} 1 {}",
            "CASE WHEN true THEN ".repeat(300),
            " END".repeat(300)
        );
        assert!(depth(&cases) >= 300, "{}", depth(&cases));
        // Long lists are wide, not deep.
        let list = (0..5000)
            .map(|i| format!("'ami-{i}'"))
            .collect::<Vec<_>>()
            .join(", ");
        assert!(depth(&format!("SELECT * FROM t WHERE amiId IN ({list})")) < 10);
        let columns = (0..2000)
            .map(|i| format!("c{i} + 1 AS x{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        assert!(depth(&format!("SELECT {columns} FROM t")) < 10);
        // Unbalanced or untokenizable SQL does not trip it up.
        assert!(depth("SELECT ((((1") >= 4);
        assert!(depth("SELECT 1))))") <= 2);
        assert_eq!(
            SqlShape::measure("SELECT 'unterminated", &GenericDialect {}),
            None
        );
    }

    #[test]
    fn blocks_and_joins_count_unions_ctes_subqueries_and_tables() {
        let union = vec!["SELECT 1"; 6000].join(" UNION ALL ");
        assert_eq!(shape(&union).blocks, 6000);
        let values = vec!["VALUES (1)"; 50].join(" UNION ALL ");
        assert_eq!(shape(&values).blocks, 50);
        let ctes = (1..1000)
            .map(|i| format!("c{i} AS (SELECT * FROM c{})", i - 1))
            .collect::<Vec<_>>()
            .join(", ");
        let chain = format!("WITH c0 AS (SELECT 1 AS x), {ctes} SELECT * FROM c999");
        assert_eq!(shape(&chain).blocks, 1001);
        assert_eq!(shape(&chain).joins, 0);
        let nested = format!("{}SELECT 1{}", "SELECT * FROM (".repeat(40), ")".repeat(40));
        assert_eq!(shape(&nested).blocks, 41);
        let joins = format!(
            "SELECT * FROM t0 {}",
            (1..40)
                .map(|i| format!("JOIN t{i} ON t{i}.a = t0.a"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert_eq!(shape(&joins).joins, 39);
        let commas =
            "SELECT a, b, c FROM t1, t2, (SELECT x, y FROM t3, t4) s, t5 WHERE a IN (1, 2) \
                      GROUP BY a, b ORDER BY a, b";
        assert_eq!(shape(commas).joins, 4);
        assert_eq!(shape(commas).blocks, 2);
        // Each pipe operator is a block.
        let pipes = format!("SELECT 1 AS a{}", " |> EXTEND 1 AS b".repeat(300));
        assert_eq!(shape(&pipes).blocks, 301);
        // One VALUES list of many rows and an IN list are one block, no join.
        let rows = vec!["('us-east-1', 'ami-1', 'b')"; 500].join(", ");
        let insert = format!("INSERT INTO t (region, amiId, bucket) VALUES {rows}");
        assert_eq!(shape(&insert).blocks, 1);
        assert_eq!(shape(&insert).joins, 0);
    }

    #[test]
    fn limits_name_the_setting() {
        let limits = SqlLimits {
            max_bytes: 1 << 20,
            max_depth: 256,
            max_blocks: 128,
            max_joins: 32,
        };
        let check = |sql: &str| limits.check(sql, &GenericDialect {});
        check("SELECT 1").unwrap();
        let union = vec!["SELECT 1"; 6000].join(" UNION ALL ");
        assert!(check(&union).unwrap_err().contains("--max-query-blocks"));
        let joins = format!("SELECT * FROM t0{}", ", t".repeat(40));
        assert!(check(&joins).unwrap_err().contains("--max-joins"));
        let sum = format!("SELECT {}", vec!["1"; 300].join(" + "));
        assert!(check(&sum).unwrap_err().contains("--max-expression-depth"));
        let columns = (0..30)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let cube = format!("SELECT count(*) FROM t GROUP BY CUBE({columns})");
        assert!(check(&cube).unwrap_err().contains("CUBE of 30 columns"));
        check("SELECT count(*) FROM t GROUP BY CUBE(a, b, c)").unwrap();
        let long = format!("SELECT '{}'", "x".repeat(1 << 20));
        assert!(check(&long).unwrap_err().contains("--max-sql-bytes"));
    }
}
