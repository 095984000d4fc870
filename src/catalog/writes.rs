//! Where a write may stand in a plan: at its top (an INSERT runs as an update, once, after
//! the role check), or right under a plain `EXPLAIN` (planned, never run). Anything else
//! that writes is refused wherever it hides, subqueries included: `EXPLAIN ANALYZE` runs its
//! statement as a query (so outside the role check, and again at every fetch of its
//! ticket), `COPY ... TO` writes files on the server's machine, and DDL would change the
//! catalog every statement shares.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::LogicalPlan;

/// What the server's tables do, for the messages.
const SELECT_AND_INSERT: &str = "this server's tables support SELECT and INSERT";

/// Refuses `plan` if it writes anywhere but where a write may stand.
pub fn refuse_hidden_writes(plan: &LogicalPlan) -> Result<()> {
    let allowed: Option<&LogicalPlan> = match plan {
        LogicalPlan::Dml(_) => Some(plan),
        LogicalPlan::Explain(explain) if matches!(explain.plan.as_ref(), LogicalPlan::Dml(_)) => {
            Some(explain.plan.as_ref())
        }
        _ => None,
    };
    let mut found = None;
    plan.apply_with_subqueries(|node| {
        found = match node {
            LogicalPlan::Copy(_) => Some("COPY"),
            LogicalPlan::Ddl(_) => Some("DDL"),
            LogicalPlan::Dml(_) if !allowed.is_some_and(|a| std::ptr::eq(a, node)) => {
                Some("INSERT")
            }
            _ => None,
        };
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    match (found, plan) {
        (None, _) => Ok(()),
        (Some("COPY"), _) => plan_err!(
            "{SELECT_AND_INSERT}; COPY is not available (it would write files on the server)"
        ),
        (Some("DDL"), _) => {
            plan_err!("{SELECT_AND_INSERT}; CREATE, DROP and ALTER are not available")
        }
        (Some(_), LogicalPlan::Analyze(_)) => plan_err!(
            "EXPLAIN ANALYZE of an INSERT is refused: it would create store tasks outside the \
             statement's exactly-once path. Use EXPLAIN INSERT ... to see the plan without \
             running it, or SET aws.dry_run = true and run the INSERT to have AWS check it \
             without creating anything"
        ),
        (Some(_), _) => plan_err!(
            "an INSERT is supported only as a statement of its own (or under a plain EXPLAIN), \
             not inside another statement"
        ),
    }
}
