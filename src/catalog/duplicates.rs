//! Select lists whose items would have the same name. DataFusion names `CAST(x AS T)`
//! (and `x::T`) after `x`, so `SELECT x, CAST(x AS VARCHAR)` fails with "Projections require
//! unique expression names", as does `SELECT x, x` or `SELECT *, x`. BI tools write such
//! lists, so when (and only when) planning fails that way, the catalog plans the statement
//! again with those items aliased: a cast by its SQL text (`CAST(x AS VARCHAR)`), a repeated
//! column as `x_2`, `x_3`, ...; a statement that plans today keeps its column names.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use datafusion::error::DataFusionError;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr};

use super::rewrite::{walk, Rewrite};

/// Whether `err` is DataFusion's refusal of a select list with two items of one name.
pub fn is_duplicate_names(err: &DataFusionError) -> bool {
    matches!(err.find_root(), DataFusionError::Plan(m)
        if m.starts_with("Projections require unique expression names"))
}

/// Aliases the items of each select list of `statement` that would share a name; whether
/// any was aliased.
pub fn alias_duplicates(statement: &mut Statement) -> bool {
    match statement {
        Statement::Statement(inner) => {
            let mut aliaser = Aliaser { changed: false };
            let _ = walk(inner, &mut aliaser);
            aliaser.changed
        }
        Statement::Explain(explain) => alias_duplicates(&mut explain.statement),
        _ => false,
    }
}

struct Aliaser {
    changed: bool,
}

impl Rewrite for Aliaser {
    fn query(&mut self, query: &mut Query) -> ControlFlow<String> {
        self.changed |= alias_in(&mut query.body);
        ControlFlow::Continue(())
    }
}

/// The select lists of a query body (through UNION and friends; nested queries are visited
/// on their own).
fn alias_in(body: &mut SetExpr) -> bool {
    match body {
        SetExpr::Select(select) => alias_projection(&mut select.projection),
        SetExpr::SetOperation { left, right, .. } => {
            let left = alias_in(left);
            alias_in(right) | left
        }
        _ => false,
    }
}

/// The column an item is named after, and whether it is the plain column (not a cast).
fn named_after(expr: &Expr) -> Option<(String, bool)> {
    match expr {
        Expr::Identifier(ident) => Some((ident.value.clone(), true)),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| (i.value.clone(), true)),
        Expr::Nested(inner) => named_after(inner),
        Expr::Cast { expr, .. } => named_after(expr).map(|(name, _)| (name, false)),
        _ => None,
    }
}

fn alias_projection(projection: &mut [SelectItem]) -> bool {
    let named: Vec<Option<(String, bool)>> = projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(expr) => named_after(expr),
            _ => None,
        })
        .collect();
    let wildcard = projection.iter().any(|item| {
        matches!(
            item,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    });
    let mut taken: HashSet<String> = HashSet::new();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (item, named) in projection.iter().zip(&named) {
        match (item, named) {
            (SelectItem::ExprWithAlias { alias, .. }, _) => {
                taken.insert(alias.value.clone());
                *uses.entry(alias.value.as_str()).or_default() += 1;
            }
            (_, Some((name, _))) => {
                taken.insert(name.clone());
                *uses.entry(name.as_str()).or_default() += 1;
            }
            _ => {}
        }
    }
    let clashes: Vec<bool> = named
        .iter()
        .map(|n| {
            n.as_ref()
                .is_some_and(|(name, _)| wildcard || uses[name.as_str()] > 1)
        })
        .collect();
    let mut changed = false;
    let mut plain_seen: HashSet<String> = HashSet::new();
    for ((item, named), clash) in projection.iter_mut().zip(named).zip(clashes) {
        let (Some((name, plain)), true) = (named, clash) else {
            continue;
        };
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        let alias = if !plain {
            unique(expr.to_string().replace('"', ""), &mut taken)
        } else if wildcard || plain_seen.contains(&name) {
            unique(format!("{name}_2"), &mut taken)
        } else {
            plain_seen.insert(name);
            continue;
        };
        *item = SelectItem::ExprWithAlias {
            expr: expr.clone(),
            alias: Ident::with_quote('"', alias),
        };
        changed = true;
    }
    changed
}

/// `wanted`, or `wanted` with the next free number (`x_2`, `x_3`, ...).
fn unique(wanted: String, taken: &mut HashSet<String>) -> String {
    let mut name = wanted.clone();
    if taken.contains(&name) {
        let stem = wanted.strip_suffix("_2").unwrap_or(&wanted).to_owned();
        let mut n = 2;
        while taken.contains(&name) {
            name = format!("{stem}_{n}");
            n += 1;
        }
    }
    taken.insert(name.clone());
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    fn aliased(sql: &str) -> (bool, String) {
        let state = SessionContext::new().state();
        let mut statement = state.sql_to_statement(sql, &Default::default()).unwrap();
        let changed = alias_duplicates(&mut statement);
        (changed, statement.to_string())
    }

    #[test]
    fn casts_get_their_text_and_repeats_a_number() {
        let (changed, sql) = aliased("SELECT x, CAST(x AS VARCHAR), x, y FROM t");
        assert!(changed);
        assert_eq!(
            sql,
            "SELECT x, CAST(x AS VARCHAR) AS \"CAST(x AS VARCHAR)\", x AS \"x_2\", y FROM t"
        );
        let (_, sql) = aliased("SELECT t.x, x, x FROM t");
        assert_eq!(sql, "SELECT t.x, x AS \"x_2\", x AS \"x_3\" FROM t");
    }

    #[test]
    fn wildcards_unions_subqueries_and_explain() {
        let (_, sql) = aliased("SELECT *, x FROM t");
        assert_eq!(sql, "SELECT *, x AS \"x_2\" FROM t");
        let (_, sql) =
            aliased("EXPLAIN SELECT a, a FROM (SELECT b, b::INT FROM t) UNION SELECT c, c FROM u");
        assert!(sql.contains("SELECT a, a AS \"a_2\""), "{sql}");
        assert!(sql.contains("b::INT AS \"b::INT\""), "{sql}");
        assert!(sql.contains("SELECT c, c AS \"c_2\""), "{sql}");
    }

    #[test]
    fn lists_without_repeats_stay() {
        let (changed, sql) = aliased("SELECT x, CAST(y AS INT), count(*) FROM t");
        assert!(!changed);
        assert_eq!(sql, "SELECT x, CAST(y AS INT), count(*) FROM t");
    }
}
