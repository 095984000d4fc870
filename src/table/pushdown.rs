//! Which `WHERE` predicates the scan answers by choosing what to ask AWS, under the API's
//! rules:
//!
//! - `account = / IN` picks the accounts to ask, and `region = / IN` the regions. Exact:
//!   every row of an account's region's listing carries that account and region.
//! - `amiId = / IN` becomes `ImageIds` (deduplicated, in chunks of 20). Kept for DataFusion
//!   to re-check (Inexact). With ImageIds the API ignores filters and MaxResults, so the
//!   predicates below are then not sent and stay for DataFusion too.
//! - `storeTaskState = / IN` becomes the `task-state` filter and `bucket = / IN` the
//!   `bucket` filter; Exact when no ImageIds are sent (the API guarantees them).
//! - `LIMIT n` becomes `MaxResults = min(n, 200)` (not with ImageIds), and paging stops
//!   once n rows came.
//!
//! Everything else (`taskStartTime > ...`, `progressPercentage < 50`, ORs across columns)
//! is left to DataFusion, so results are always correct.

use std::collections::BTreeSet;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};

use super::naming::check_ami_id;
use crate::ec2::{DescribeRequest, MAX_IMAGE_IDS};

const ACCOUNT: &str = "account";
const REGION: &str = "region";
pub(crate) const AMI_ID: &str = "amiId";
pub(crate) const STATE: &str = "storeTaskState";
pub(crate) const BUCKET: &str = "bucket";
/// The API's largest page.
pub(crate) const MAX_PAGE_SIZE: usize = 200;

/// How the table supports each of `filters` (all the filters of one scan).
pub(crate) fn support(filters: &[&Expr]) -> Vec<TableProviderFilterPushDown> {
    let image_ids = filters.iter().any(|f| values_of(f, AMI_ID).is_some());
    filters
        .iter()
        .map(|f| {
            if values_of(f, REGION).is_some() || values_of(f, ACCOUNT).is_some() {
                TableProviderFilterPushDown::Exact
            } else if values_of(f, AMI_ID).is_some() {
                TableProviderFilterPushDown::Inexact
            } else if values_of(f, STATE).is_some() || values_of(f, BUCKET).is_some() {
                if image_ids {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Exact
                }
            } else {
                TableProviderFilterPushDown::Unsupported
            }
        })
        .collect()
}

/// What the scan asks AWS, derived from the pushed filters and limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiPlan {
    /// The accounts named by the filters, or `None` for every account the server reaches.
    pub accounts: Option<BTreeSet<String>>,
    /// Every value an account filter names, for the check that the server reaches them.
    pub named_accounts: BTreeSet<String>,
    /// The regions named by the filters, or `None` for the default regions.
    pub regions: Option<BTreeSet<String>>,
    /// Every value a region filter names (all of them, not only those every filter
    /// allows), for the check that they are region names.
    pub named_regions: BTreeSet<String>,
    /// One request per partition within a region (several when ImageIds need chunks).
    /// Empty when the filters cannot match anything: no call at all.
    pub requests: Vec<DescribeRequest>,
}

/// Plans the API requests for `filters` (as pushed by DataFusion) and `limit`.
pub(crate) fn plan(filters: &[Expr], limit: Option<usize>) -> ApiPlan {
    let accounts = intersect(filters, ACCOUNT);
    let named_accounts = filters
        .iter()
        .filter_map(|f| values_of(f, ACCOUNT))
        .flatten()
        .collect();
    let regions = intersect(filters, REGION);
    let named_regions = filters
        .iter()
        .filter_map(|f| values_of(f, REGION))
        .flatten()
        .collect();
    let image_ids = intersect(filters, AMI_ID);
    if let Some(ids) = image_ids {
        // An id that is not an AMI id matches no task; sending it would only earn
        // InvalidAMIID.Malformed.
        let ids: Vec<String> = ids
            .into_iter()
            .filter(|i| check_ami_id(i).is_ok())
            .collect();
        let requests = ids
            .chunks(MAX_IMAGE_IDS)
            .map(|chunk| DescribeRequest {
                image_ids: chunk.to_vec(),
                ..DescribeRequest::default()
            })
            .collect();
        return ApiPlan {
            accounts,
            named_accounts,
            regions,
            named_regions,
            requests,
        };
    }
    let task_states = intersect(filters, STATE);
    let buckets = intersect(filters, BUCKET);
    if task_states.as_ref().is_some_and(BTreeSet::is_empty)
        || buckets.as_ref().is_some_and(BTreeSet::is_empty)
    {
        return ApiPlan {
            accounts,
            named_accounts,
            regions,
            named_regions,
            requests: Vec::new(),
        };
    }
    let max_results = limit
        .filter(|n| *n > 0)
        .map(|n| n.min(MAX_PAGE_SIZE) as i32);
    ApiPlan {
        accounts,
        named_accounts,
        regions,
        named_regions,
        requests: vec![DescribeRequest {
            image_ids: Vec::new(),
            task_states: task_states.unwrap_or_default().into_iter().collect(),
            buckets: buckets.unwrap_or_default().into_iter().collect(),
            max_results,
        }],
    }
}

/// The values `filters` allow for `column` (one of the pushed columns), or `None` when no
/// filter names it: for a caller that checks rows itself (the watch).
pub(crate) fn allowed(filters: &[Expr], column: &str) -> Option<BTreeSet<String>> {
    intersect(filters, column)
}

/// The values the filters allow for `column` (their intersection), or `None` when no filter
/// names it.
fn intersect(filters: &[Expr], column: &str) -> Option<BTreeSet<String>> {
    filters
        .iter()
        .filter_map(|f| values_of(f, column))
        .reduce(|a, b| a.intersection(&b).cloned().collect())
}

/// The set of values a predicate allows for `column`, when it is an equality, an IN list or
/// an OR of those on `column` alone, against string literals.
fn values_of(expr: &Expr, column: &str) -> Option<BTreeSet<String>> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::Eq => {
                let value = match (is_column(left, column), is_column(right, column)) {
                    (true, false) => string_literal(right)?,
                    (false, true) => string_literal(left)?,
                    _ => return None,
                };
                Some(BTreeSet::from([value]))
            }
            Operator::Or => {
                let mut l = values_of(left, column)?;
                l.extend(values_of(right, column)?);
                Some(l)
            }
            _ => None,
        },
        Expr::InList(list) if !list.negated && is_column(&list.expr, column) => {
            list.list.iter().map(string_literal).collect()
        }
        _ => None,
    }
}

fn is_column(expr: &Expr, name: &str) -> bool {
    matches!(expr, Expr::Column(c) if c.name == name)
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
    use datafusion::prelude::{ident as col, lit};
    use TableProviderFilterPushDown::{Exact, Inexact, Unsupported};

    fn set(items: &[&str]) -> Option<BTreeSet<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    fn ami(n: usize) -> String {
        format!("ami-{n:017x}")
    }

    #[test]
    fn accounts_are_chosen_like_regions_and_pushed_exactly() {
        let a = "100000000001";
        let b = "100000000002";
        let p = plan(&[col("account").eq(lit(a))], None);
        assert_eq!(p.accounts, set(&[a]));
        assert_eq!(p.regions, None);
        let p = plan(
            &[
                col("account").in_list(vec![lit(a), lit(b)], false),
                col("account").eq(lit(b)).or(col("account").eq(lit("nope"))),
            ],
            None,
        );
        assert_eq!(p.accounts, set(&[b]));
        assert_eq!(p.named_accounts, set(&[a, b, "nope"]).unwrap());
        // No account filter: every account.
        assert_eq!(plan(&[col("region").eq(lit("x"))], None).accounts, None);
        let in_list = col("account").in_list(vec![lit(a)], false);
        let mixed = col("account").eq(lit(a)).or(col("region").eq(lit("x")));
        let not_in = col("account").in_list(vec![lit(a)], true);
        let refs = [&in_list, &mixed, &not_in];
        assert_eq!(support(&refs), [Exact, Unsupported, Unsupported]);
    }

    #[test]
    fn regions_from_equality_in_list_or_and_intersection() {
        assert_eq!(
            plan(&[col("region").eq(lit("a"))], None).regions,
            set(&["a"])
        );
        assert_eq!(
            plan(&[lit("b").eq(col("region"))], None).regions,
            set(&["b"])
        );
        let or = col("region").eq(lit("a")).or(col("region").eq(lit("c")));
        assert_eq!(plan(&[or], None).regions, set(&["a", "c"]));
        let filters = [
            col("region").in_list(vec![lit("a"), lit("b")], false),
            col("region").eq(lit("b")),
        ];
        assert_eq!(plan(&filters, None).regions, set(&["b"]));
        // Every value named, for the region name check: `a` too.
        assert_eq!(Some(plan(&filters, None).named_regions), set(&["a", "b"]));
        assert_eq!(plan(&[], None).regions, None);
        assert!(plan(&[], None).named_regions.is_empty());
    }

    #[test]
    fn ami_ids_become_deduplicated_chunks_of_twenty_and_drop_filters() {
        let ids: Vec<_> = (0..45).map(|i| lit(ami(i))).chain([lit(ami(3))]).collect();
        let filters = [
            col("amiId").in_list(ids, false),
            col("storeTaskState").eq(lit("Failed")),
        ];
        let p = plan(&filters, Some(5));
        let sizes: Vec<usize> = p.requests.iter().map(|r| r.image_ids.len()).collect();
        assert_eq!(sizes, [20, 20, 5]);
        assert!(p
            .requests
            .iter()
            .all(|r| r.task_states.is_empty() && r.max_results.is_none()));
        let refs: Vec<&Expr> = filters.iter().collect();
        assert_eq!(support(&refs), [Inexact, Inexact]);
    }

    #[test]
    fn malformed_ami_ids_ask_nothing() {
        let p = plan(&[col("amiId").eq(lit("not-an-ami"))], None);
        assert!(p.requests.is_empty());
    }

    #[test]
    fn state_and_bucket_become_filters_and_limit_max_results() {
        let filters = [
            col("storeTaskState").in_list(vec![lit("Failed"), lit("InProgress")], false),
            col("bucket").eq(lit("b1")),
        ];
        let p = plan(&filters, Some(5));
        assert_eq!(
            p.requests,
            [DescribeRequest {
                image_ids: vec![],
                task_states: vec!["Failed".into(), "InProgress".into()],
                buckets: vec!["b1".into()],
                max_results: Some(5),
            }]
        );
        let refs: Vec<&Expr> = filters.iter().collect();
        assert_eq!(support(&refs), [Exact, Exact]);
        assert_eq!(plan(&[], Some(1000)).requests[0].max_results, Some(200));
    }

    #[test]
    fn contradictions_ask_nothing() {
        let filters = [
            col("storeTaskState").eq(lit("Failed")),
            col("storeTaskState").eq(lit("Completed")),
        ];
        assert!(plan(&filters, None).requests.is_empty());
    }

    #[test]
    fn other_predicates_stay_with_datafusion() {
        let not_in = col("region").in_list(vec![lit("a")], true);
        let mixed_or = col("region").eq(lit("a")).or(col("bucket").eq(lit("x")));
        let range = col("progressPercentage").lt(lit(50));
        let filters = [not_in, mixed_or, range];
        let refs: Vec<&Expr> = filters.iter().collect();
        assert_eq!(support(&refs), [Unsupported, Unsupported, Unsupported]);
        assert_eq!(plan(&filters, None).regions, None);
    }
}
