//! Binding parameter rows (`?`, `$1`) to a planned statement. A query takes one row. An
//! `INSERT ... VALUES ($1, $2, ...)` takes many: each row is bound with DataFusion's own
//! substitution (so types are coerced as for literals) and the rows become one `VALUES`
//! list, so the whole batch is one statement that is validated and written as a unit.

use arrow::array::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::{LogicalPlan, Values};

/// The rows of `parameters`, each as the list of its values.
fn rows(parameters: &[RecordBatch]) -> Result<Vec<Vec<ScalarValue>>> {
    let mut rows = Vec::new();
    for batch in parameters {
        for i in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| ScalarValue::try_from_array(c, i))
                    .collect::<Result<Vec<_>>>()?,
            );
        }
    }
    Ok(rows)
}

/// `plan` with `parameters` bound; unchanged when there are none.
pub(crate) fn bind(plan: LogicalPlan, parameters: &[RecordBatch]) -> Result<LogicalPlan> {
    let rows = rows(parameters)?;
    if let Some(first) = rows.first() {
        // DataFusion ignores values beyond the placeholders: a client that binds more than
        // the statement has is mistaken about the statement.
        let placeholders = plan.get_parameter_types()?.len();
        if first.len() != placeholders {
            return plan_err!(
                "the statement has {placeholders} parameter(s) but {} value(s) were bound",
                first.len()
            );
        }
    }
    match rows.len() {
        0 => Ok(plan),
        1 => plan.with_param_values(rows.into_iter().next().expect("one row")),
        n => {
            if !matches!(plan, LogicalPlan::Dml(_)) {
                return plan_err!(
                    "a query takes one row of parameters, but {n} rows were bound; run it once \
                     per row, or use INSERT ... VALUES (?, ...) to write many rows at once"
                );
            }
            let template = plan.clone().with_param_values(rows[0].clone())?;
            let mut values = Vec::with_capacity(n);
            for row in rows {
                let bound = plan.clone().with_param_values(row)?;
                values.extend(single_values_row(&bound)?);
            }
            replace_values(template, values)
        }
    }
}

/// The rows of the one `VALUES` node of a bound `INSERT ... VALUES (...)` plan.
fn single_values_row(plan: &LogicalPlan) -> Result<Vec<Vec<datafusion::prelude::Expr>>> {
    let mut found: Option<Vec<Vec<datafusion::prelude::Expr>>> = None;
    plan.apply(|node| {
        if let LogicalPlan::Values(Values { values, .. }) = node {
            found = Some(values.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    match found {
        Some(values) => Ok(values),
        None => plan_err!(
            "several parameter rows can only be bound to INSERT ... VALUES (?, ...); this \
             statement has no VALUES list"
        ),
    }
}

fn replace_values(
    plan: LogicalPlan,
    rows: Vec<Vec<datafusion::prelude::Expr>>,
) -> Result<LogicalPlan> {
    let mut rows = Some(rows);
    plan.transform_up(|node| match node {
        LogicalPlan::Values(Values { schema, .. }) if rows.is_some() => {
            let values = rows.take().expect("checked");
            Ok(Transformed::yes(LogicalPlan::Values(Values {
                schema,
                values,
            })))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}
