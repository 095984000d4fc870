//! Which `WHERE` predicates the scan can answer by choosing what to ask AWS. Today that is
//! the region: `region = 'x'`, `region IN (...)` and ORs of those pick the regions to ask,
//! and are exact because every row of a region's listing carries that region.

use std::collections::BTreeSet;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};

/// The column that names the region a row came from.
pub(crate) const REGION_COLUMN: &str = "region";

/// How the table supports one predicate.
pub(crate) fn support(expr: &Expr) -> TableProviderFilterPushDown {
    if region_values(expr).is_some() {
        TableProviderFilterPushDown::Exact
    } else {
        TableProviderFilterPushDown::Unsupported
    }
}

/// The regions the filters allow (their intersection), or `None` when no filter names one.
pub(crate) fn regions(filters: &[Expr]) -> Option<BTreeSet<String>> {
    filters
        .iter()
        .filter_map(region_values)
        .reduce(|a, b| a.intersection(&b).cloned().collect())
}

/// The set of regions a predicate allows, when it is a predicate on `region` alone.
fn region_values(expr: &Expr) -> Option<BTreeSet<String>> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::Eq => {
                let value = match (is_region(left), is_region(right)) {
                    (true, false) => string_literal(right)?,
                    (false, true) => string_literal(left)?,
                    _ => return None,
                };
                Some(BTreeSet::from([value]))
            }
            Operator::Or => {
                let mut l = region_values(left)?;
                l.extend(region_values(right)?);
                Some(l)
            }
            _ => None,
        },
        Expr::InList(list) if !list.negated && is_region(&list.expr) => {
            list.list.iter().map(string_literal).collect()
        }
        _ => None,
    }
}

fn is_region(expr: &Expr) -> bool {
    matches!(expr, Expr::Column(c) if c.name == REGION_COLUMN)
}

fn string_literal(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn set(items: &[&str]) -> Option<BTreeSet<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn equality_in_list_and_or_pick_regions() {
        assert_eq!(
            regions(&[col("region").eq(lit("us-east-1"))]),
            set(&["us-east-1"])
        );
        assert_eq!(
            regions(&[lit("eu-west-1").eq(col("region"))]),
            set(&["eu-west-1"])
        );
        assert_eq!(
            regions(&[col("region").in_list(vec![lit("a"), lit("b")], false)]),
            set(&["a", "b"])
        );
        assert_eq!(
            regions(&[col("region").eq(lit("a")).or(col("region").eq(lit("c")))]),
            set(&["a", "c"])
        );
    }

    #[test]
    fn several_filters_intersect() {
        let filters = [
            col("region").in_list(vec![lit("a"), lit("b")], false),
            col("region").eq(lit("b")),
        ];
        assert_eq!(regions(&filters), set(&["b"]));
    }

    #[test]
    fn other_predicates_are_not_region_predicates() {
        let not_in = col("region").in_list(vec![lit("a")], true);
        let mixed_or = col("region").eq(lit("a")).or(col("bucket").eq(lit("x")));
        let other = col("amiId").eq(lit("ami-1"));
        assert_eq!(
            regions(&[not_in.clone(), mixed_or.clone(), other.clone()]),
            None
        );
        for e in [not_in, mixed_or, other] {
            assert!(matches!(
                support(&e),
                TableProviderFilterPushDown::Unsupported
            ));
        }
    }
}
