//! Joins that yield. DataFusion's executors run as tokio tasks, and a task can only be
//! stopped (a client gone, CancelFlightInfo, the query timeout) when it returns to the
//! runtime. DataFusion makes its scans and exchanges consume tokio's cooperative budget,
//! but a join multiplies rows without touching it: a sort or window over a cross join pulls
//! millions of batches out of one input batch in a single poll, and a dropped query kept a
//! core busy until it finished (seconds to minutes). Every join is therefore wrapped in a
//! `CooperativeExec`, so the task yields every few batches and a dropped query stops at once.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::SchedulingType;
use datafusion::physical_plan::ExecutionPlan;

/// The rule: runs after DataFusion's own rules.
#[derive(Debug, Default)]
pub struct YieldingJoins;

impl PhysicalOptimizerRule for YieldingJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let joins = node.children().len() >= 2;
            let cooperative = node.properties().scheduling_type == SchedulingType::Cooperative;
            if joins && !cooperative {
                Ok(Transformed::yes(
                    Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
                ))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "YieldingJoins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
