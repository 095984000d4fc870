//! Names as BI tools send them. The server's names are camelCase (`amiId`,
//! `storeTaskState`) and its tables lowercase, but JDBC tools upper-case unquoted names
//! (the Arrow Flight SQL JDBC driver reports `storesUpperCaseIdentifiers`) and users type
//! whatever case they like. So an unquoted identifier resolves case-insensitively to the
//! one real name it matches: `amiid`, `AMIID` and `amiId` all mean `amiId`;
//! `STORE_IMAGE_TASKS` and `Aws.Ec2.Store_Image_Tasks` mean `aws.ec2.store_image_tasks`.
//! A quoted identifier (`"AMIID"`) stays exact, and results keep the real names.
//!
//! It works on the statement's tokens, before parsing, whatever the session's dialect and
//! `enable_ident_normalization`: each unquoted word that matches exactly one known name
//! (the catalog's catalogs, schemas, tables and their columns, `information_schema`
//! included, the `insert_report` function and its columns, and the aliases the statement
//! itself defines with `AS`) becomes that name: the lowercase word, still unquoted (so a
//! keyword such as `TABLES` keeps its meaning), or the quoted real name when it has capitals.
//! Names that match several real names in different cases are left alone. The tokens keep
//! their positions, so parser errors point into the text the user sent.
//!
//! The metadata commands (GetDbSchemas, GetTables) match their catalog and LIKE patterns
//! the same way ([`MetadataFilter`]), and names that are not found get an error that says
//! which, suggests the closest real one and lists what there is ([`explain_unknown`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Scalar, StringArray};
use arrow::compute::kernels::comparison::ilike;
use datafusion::common::{Column, SchemaError};
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::keywords::{Keyword, ALL_KEYWORDS};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::error::SqlError;
use super::TableInfo;

/// How close (Jaro-Winkler, on lowercase) a real name must be to be suggested.
const SUGGEST_SIMILARITY: f64 = 0.85;

/// The names a statement may use, by their lowercase form.
#[derive(Debug, Clone, Default)]
pub struct KnownNames {
    /// Lowercase form → the real name, or `None` when several real names share it.
    by_folded: HashMap<String, Option<String>>,
    /// Every table, as `catalog.schema.table`, with whether it is a base table.
    tables: Vec<(String, bool)>,
}

impl KnownNames {
    /// The names of `tables` (catalogs, schemas, tables, columns) and of the table
    /// functions `functions` (name and result columns).
    pub fn new<'a>(
        tables: &[TableInfo],
        functions: impl IntoIterator<Item = (&'a str, &'a arrow::datatypes::Schema)>,
    ) -> Self {
        let mut names = KnownNames::default();
        for table in tables {
            names.add(&table.catalog);
            names.add(&table.schema);
            names.add(&table.name);
            for field in table.arrow_schema.fields() {
                names.add(field.name());
            }
            names.tables.push((
                format!("{}.{}.{}", table.catalog, table.schema, table.name),
                table.table_type == "TABLE",
            ));
        }
        for (function, schema) in functions {
            names.add(function);
            for field in schema.fields() {
                names.add(field.name());
            }
        }
        names
    }

    fn add(&mut self, name: &str) {
        let slot = self
            .by_folded
            .entry(name.to_lowercase())
            .or_insert_with(|| Some(name.to_owned()));
        if slot.as_deref().is_some_and(|known| known != name) {
            *slot = None;
        }
    }

    /// The one real name `word` matches regardless of case, if there is exactly one.
    pub fn canonical(&self, word: &str) -> Option<&str> {
        self.by_folded
            .get(&word.to_lowercase())
            .and_then(|name| name.as_deref())
    }

    /// The base tables, as `catalog.schema.table`.
    fn base_tables(&self) -> Vec<String> {
        self.tables
            .iter()
            .filter(|(_, base)| *base)
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Rewrites the unquoted identifiers of `tokens` to the real names they match (see the
/// module doc). Aliases the statement defines (`AS name`) count as known names, unless
/// they match a name of the catalog.
pub fn resolve(tokens: &mut [TokenWithSpan], names: &KnownNames) {
    let mut previous: Option<&Token> = None;
    let mut aliases = Vec::new();
    // The words right after AS: where the statement names something (or a type, in CAST).
    let mut defined = HashSet::new();
    for (at, token) in tokens.iter().enumerate() {
        if matches!(token.token, Token::Whitespace(_)) {
            continue;
        }
        if let (Some(Token::Word(after)), Token::Word(word)) = (previous, &token.token) {
            if after.keyword == Keyword::AS && after.quote_style.is_none() {
                defined.insert(at);
                if word.quote_style.is_some() || word.keyword == Keyword::NoKeyword {
                    aliases.push(word.value.clone());
                }
            }
        }
        previous = Some(&token.token);
    }
    // An alias that is a keyword (`AS "Select"`) is left out: unquoted, the word is the
    // keyword, and it must stay one.
    aliases.retain(|alias| {
        !names.by_folded.contains_key(&alias.to_lowercase())
            && ALL_KEYWORDS
                .binary_search(&alias.to_uppercase().as_str())
                .is_err()
    });
    // The catalog's names, plus the statement's own aliases when it has new ones.
    let with_aliases;
    let local = if aliases.is_empty() {
        names
    } else {
        let mut all = names.clone();
        for alias in &aliases {
            all.add(alias);
        }
        with_aliases = all;
        &with_aliases
    };
    for at in 0..tokens.len() {
        let Token::Word(word) = &tokens[at].token else {
            continue;
        };
        if word.quote_style.is_some() {
            continue;
        }
        let Some(real) = local.canonical(&word.value) else {
            continue;
        };
        // A word before `(` names a function: `approx_median(x) AS Approx_Median` must not
        // make the function the quoted name "Approx_Median" (functions match lowercase).
        let calls = || {
            tokens[at + 1..]
                .iter()
                .find(|t| !matches!(t.token, Token::Whitespace(_)))
                .is_some_and(|t| t.token == Token::LParen)
        };
        if real != real.to_lowercase() && calls() {
            continue;
        }
        let real = real.to_owned();
        let Token::Word(word) = &mut tokens[at].token else {
            continue;
        };
        // A name the statement defines (`1 AS Value`) keeps the user's spelling when it
        // matches a catalog name: it names a new thing, and the result shows it.
        if defined.contains(&at) && names.by_folded.contains_key(&word.value.to_lowercase()) {
            continue;
        }
        if real == real.to_lowercase() {
            // Unquoted and lowercase: the same identifier under any ident normalization,
            // and a keyword stays a keyword.
            if word.value != real {
                word.value = real;
            }
        } else {
            // A name with capitals: quoted, so that no normalization folds it.
            word.value = real;
            word.quote_style = Some('"');
            word.keyword = Keyword::NoKeyword;
        }
    }
}

/// The filters of a metadata command (GetDbSchemas, GetTables), matched the way unquoted
/// names are: the catalog by name in any case, schema and table by SQL LIKE patterns
/// (`%`, `_`, `\` escapes) in any case.
#[derive(Debug, Clone, Default)]
pub struct MetadataFilter {
    /// The catalog, matched whole.
    pub catalog: Option<String>,
    /// The LIKE pattern of the schema.
    pub schema_pattern: Option<String>,
    /// The LIKE pattern of the table.
    pub table_pattern: Option<String>,
}

impl MetadataFilter {
    /// Whether a table (or, with `table` `None`, a schema) passes the filter.
    pub fn matches(&self, catalog: &str, schema: &str, table: Option<&str>) -> bool {
        if let Some(wanted) = &self.catalog {
            if wanted.to_lowercase() != catalog.to_lowercase() {
                return false;
            }
        }
        if let Some(pattern) = &self.schema_pattern {
            if !like_any_case(pattern, schema) {
                return false;
            }
        }
        match (table, &self.table_pattern) {
            (Some(table), Some(pattern)) => like_any_case(pattern, table),
            _ => true,
        }
    }
}

/// SQL `value ILIKE pattern`, with arrow's kernel.
fn like_any_case(pattern: &str, value: &str) -> bool {
    let values = StringArray::from(vec![value]);
    let pattern = Scalar::new(StringArray::from(vec![pattern]));
    ilike(&values, &pattern)
        .map(|matched| matched.value(0))
        .unwrap_or(false)
}

/// Replaces DataFusion's error for a name that is not found (a column, a table) by ours,
/// which says which name, suggests the closest real one and lists what there is; other
/// errors pass unchanged.
pub fn explain_unknown(err: DataFusionError, names: &KnownNames) -> DataFusionError {
    let explained = match err.find_root() {
        DataFusionError::SchemaError(schema_error, _) => match schema_error.as_ref() {
            SchemaError::FieldNotFound {
                field,
                valid_fields,
            } => Some(unknown_column(field, valid_fields)),
            _ => None,
        },
        DataFusionError::Plan(message) => unknown_table(message, names),
        _ => None,
    };
    match explained {
        Some(e) => DataFusionError::External(Box::new(e)),
        None => err,
    }
}

fn unknown_column(field: &Column, valid_fields: &[Column]) -> SqlError {
    let mut in_scope: Vec<(String, Vec<String>)> = Vec::new();
    for column in valid_fields {
        let table = column
            .relation
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default();
        let at = match in_scope.iter().position(|(t, _)| *t == table) {
            Some(at) => at,
            None => {
                in_scope.push((table, Vec::new()));
                in_scope.len() - 1
            }
        };
        if !in_scope[at].1.contains(&column.name) {
            in_scope[at].1.push(column.name.clone());
        }
    }
    // The name exists, under another qualifier: suggest the qualified real one.
    let elsewhere = in_scope
        .iter()
        .find(|(table, columns)| !table.is_empty() && columns.contains(&field.name))
        .map(|(table, _)| format!("{table}.{}", field.name));
    let candidates = in_scope.iter().flat_map(|(_, columns)| columns.iter());
    let close = closest(&field.name, candidates).map(str::to_owned);
    // Only a quoted name can differ from a real one in case alone.
    let quoted = elsewhere.is_none()
        && close
            .as_deref()
            .is_some_and(|real| real != field.name && real.eq_ignore_ascii_case(&field.name));
    let suggestion = elsewhere.or(close);
    let column = if quoted {
        format!("\"{}\"", field.name)
    } else {
        field.name.clone()
    };
    let name = match &field.relation {
        Some(relation) => format!("{relation}.{column}"),
        None => column,
    };
    SqlError::UnknownColumn {
        name,
        quoted,
        suggestion,
        in_scope,
    }
}

/// DataFusion says `table 'aws.ec2.x' not found`.
fn unknown_table(message: &str, names: &KnownNames) -> Option<SqlError> {
    let name = message
        .strip_prefix("table '")?
        .strip_suffix("' not found")?
        .to_owned();
    let last = |full: &str| full.rsplit('.').next().unwrap_or(full).to_owned();
    let wanted = last(&name);
    let by_last: Vec<(String, &String)> = names
        .tables
        .iter()
        .map(|(full, _)| (last(full), full))
        .collect();
    let suggestion = closest(&wanted, by_last.iter().map(|(short, _)| short))
        .and_then(|short| by_last.iter().find(|(s, _)| s == short))
        .map(|(_, full)| (*full).clone());
    Some(SqlError::UnknownTable {
        name,
        suggestion,
        tables: names.base_tables(),
    })
}

/// The candidate closest to `wanted` (in any case), when it is close enough.
fn closest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    let wanted = wanted.to_lowercase();
    candidates
        .map(|c| (strsim::jaro_winkler(&wanted, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= SUGGEST_SIMILARITY)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_str())
}

/// The known names of the tables registered in `ctx` (every catalog and schema it lists)
/// and of its table functions, for a DataFusion application's own session.
pub async fn of_session(
    ctx: &datafusion::prelude::SessionContext,
) -> datafusion::error::Result<KnownNames> {
    let mut tables = Vec::new();
    for catalog_name in ctx.catalog_names() {
        let Some(catalog) = ctx.catalog(&catalog_name) else {
            continue;
        };
        for schema_name in catalog.schema_names() {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            for name in schema.table_names() {
                if let Some(table) = schema.table(&name).await? {
                    tables.push(TableInfo {
                        catalog: catalog_name.clone(),
                        schema: schema_name.clone(),
                        table_type: match table.table_type() {
                            datafusion::datasource::TableType::Base => "TABLE".to_owned(),
                            other => other.to_string(),
                        },
                        name,
                        arrow_schema: table.schema(),
                    });
                }
            }
        }
    }
    let no_columns = arrow::datatypes::Schema::empty();
    let state = ctx.state();
    let functions: Vec<&str> = state.table_functions().keys().map(String::as_str).collect();
    Ok(KnownNames::new(
        &tables,
        functions.into_iter().map(|f| (f, &no_columns)),
    ))
}

/// The known names of a catalog's tables plus `insert_report` and
/// `watch_store_image_tasks`.
pub fn of_catalog(tables: &[TableInfo]) -> Arc<KnownNames> {
    let report = crate::table::report_schema();
    let watch = crate::table::watch_schema();
    Arc::new(KnownNames::new(
        tables,
        [
            (crate::table::INSERT_REPORT, report.as_ref()),
            (crate::table::WATCH_FUNCTION, watch.as_ref()),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::sql::sqlparser::dialect::{GenericDialect, MySqlDialect};
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn names() -> KnownNames {
        let schema = Arc::new(Schema::new(vec![
            Field::new("region", DataType::Utf8, false),
            Field::new("amiId", DataType::Utf8, true),
            Field::new("storeTaskState", DataType::Utf8, true),
        ]));
        let views = Arc::new(Schema::new(vec![
            Field::new("table_name", DataType::Utf8, false),
            Field::new("Region", DataType::Utf8, false),
        ]));
        let info = |schema_name: &str, name: &str, kind: &str, s: &Arc<Schema>| TableInfo {
            catalog: "aws".into(),
            schema: schema_name.into(),
            name: name.into(),
            table_type: kind.into(),
            arrow_schema: Arc::clone(s),
        };
        KnownNames::new(
            &[
                info("ec2", "store_image_tasks", "TABLE", &schema),
                info("information_schema", "tables", "VIEW", &views),
            ],
            [],
        )
    }

    /// `sql` with its tokens resolved, printed back.
    fn resolved(sql: &str) -> String {
        let dialect = GenericDialect {};
        let mut tokens = Tokenizer::new(&dialect, sql)
            .tokenize_with_location()
            .unwrap();
        resolve(&mut tokens, &names());
        tokens.iter().map(|t| t.token.to_string()).collect()
    }

    #[test]
    fn unquoted_names_resolve_in_any_case() {
        assert_eq!(
            resolved("SELECT AMIID, amiid, amiId FROM STORE_IMAGE_TASKS"),
            "SELECT \"amiId\", \"amiId\", \"amiId\" FROM store_image_tasks"
        );
        assert_eq!(
            resolved("select x from Aws.Ec2.Store_Image_Tasks where StoreTaskState = 'a'"),
            "select x from aws.ec2.store_image_tasks where \"storeTaskState\" = 'a'"
        );
    }

    #[test]
    fn quoted_names_strings_and_unknown_words_stay() {
        assert_eq!(
            resolved("SELECT \"AMIID\", 'AMIID', nope FROM t -- AMIID"),
            "SELECT \"AMIID\", 'AMIID', nope FROM t -- AMIID"
        );
    }

    #[test]
    fn keywords_keep_their_meaning_and_ambiguous_names_stay() {
        // `tables` is a keyword and a view: lowercased, still unquoted.
        assert_eq!(
            resolved("SHOW TABLES; SELECT * FROM INFORMATION_SCHEMA.TABLES"),
            "SHOW tables; SELECT * FROM information_schema.tables"
        );
        // `region` and `Region` both exist: REGION is left as written.
        assert_eq!(resolved("SELECT REGION"), "SELECT REGION");
    }

    #[test]
    fn aliases_of_the_statement_count_as_names() {
        assert_eq!(
            resolved("SELECT count(*) AS Tasks FROM t ORDER BY TASKS"),
            "SELECT count(*) AS \"Tasks\" FROM t ORDER BY \"Tasks\""
        );
        // Function names stay functions.
        assert_eq!(
            resolved("SELECT approx_median(x) AS Approx_Median FROM t ORDER BY APPROX_MEDIAN"),
            "SELECT approx_median(x) AS \"Approx_Median\" FROM t ORDER BY \"Approx_Median\""
        );
        // A quoted alias that is a keyword does not turn the keyword into a name.
        assert_eq!(
            resolved("SELECT 1 AS \"Select\" FROM t WHERE x IN (SELECT 2)"),
            "SELECT 1 AS \"Select\" FROM t WHERE x IN (SELECT 2)"
        );
        // A name defined with AS keeps its spelling even where it matches a catalog name;
        // references to it resolve to the catalog's name.
        assert_eq!(
            resolved("SELECT amiid AS AMIID, 1 AS Table_Name FROM t ORDER BY AMIID"),
            "SELECT \"amiId\" AS AMIID, 1 AS Table_Name FROM t ORDER BY \"amiId\""
        );
        // A type after AS (a keyword) is no alias.
        assert_eq!(
            resolved("SELECT CAST(x AS VARCHAR), varchar"),
            "SELECT CAST(x AS VARCHAR), varchar"
        );
    }

    #[test]
    fn positions_are_kept() {
        let dialect = MySqlDialect {};
        let sql = "SELECT\n  AMIID";
        let mut tokens = Tokenizer::new(&dialect, sql)
            .tokenize_with_location()
            .unwrap();
        let before: Vec<_> = tokens.iter().map(|t| t.span).collect();
        resolve(&mut tokens, &names());
        let after: Vec<_> = tokens.iter().map(|t| t.span).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn metadata_filters_match_in_any_case() {
        let filter = MetadataFilter {
            catalog: Some("AWS".into()),
            schema_pattern: Some("EC_".into()),
            table_pattern: Some("STORE%".into()),
        };
        assert!(filter.matches("aws", "ec2", Some("store_image_tasks")));
        assert!(!filter.matches("aws", "ec2", Some("tables")));
        assert!(!filter.matches("other", "ec2", Some("store_image_tasks")));
        let exact = MetadataFilter {
            table_pattern: Some("STORE\\_IMAGE\\_TASKS".into()),
            ..Default::default()
        };
        assert!(exact.matches("aws", "ec2", Some("store_image_tasks")));
        assert!(!exact.matches("aws", "ec2", Some("storeximagextasks")));
        assert!(MetadataFilter::default().matches("a", "b", None));
    }

    #[test]
    fn unknown_names_get_our_words_and_a_suggestion() {
        let field = Column::new(Some("store_image_tasks"), "AMIID");
        let valid = vec![
            Column::new(Some("store_image_tasks"), "region"),
            Column::new(Some("store_image_tasks"), "amiId"),
        ];
        let e = unknown_column(&field, &valid);
        let text = e.to_string();
        assert!(text.contains("did you mean amiId?"), "{text}");
        assert!(text.contains("double quotes"), "{text}");
        assert!(text.contains("store_image_tasks: region, amiId"), "{text}");
        let e = unknown_column(&Column::new_unqualified("password"), &valid);
        assert!(!e.to_string().contains("did you mean"), "{e}");
        let e = unknown_column(&Column::new(Some("x"), "region"), &valid);
        assert!(
            e.to_string()
                .starts_with("column x.region not found; did you mean store_image_tasks.region?"),
            "{e}"
        );
        let e = unknown_column(
            &Column::new_unqualified("AMIID"),
            &[Column::new_unqualified("amiId")],
        );
        assert!(
            e.to_string()
                .starts_with("column \"AMIID\" not found; did you mean amiId?"),
            "{e}"
        );
        assert!(e.to_string().ends_with("Columns in scope: amiId."), "{e}");

        let e = unknown_table("table 'aws.ec2.store_image_taskz' not found", &names()).unwrap();
        let text = e.to_string();
        assert!(
            text.starts_with("table aws.ec2.store_image_taskz not found; did you mean aws.ec2.store_image_tasks?"),
            "{text}"
        );
        assert!(e.is_not_found());
        assert!(unknown_table("something else", &names()).is_none());
    }
}
