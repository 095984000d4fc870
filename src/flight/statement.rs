//! Plan: what a SQL statement is, as the Flight layer must treat it: a query or INSERT to
//! run (a DataFusion plan), a `SET`/`RESET` that changes the session, or something this
//! server does not do, refused (by `admit`) with a message that says what it does.

use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{LogicalPlan, Statement};
use datafusion::prelude::SessionContext;

use super::admit::{cannot_plan, refuse_unsupported};
use crate::catalog::Catalog;
use crate::error::Error;

/// A planned statement.
#[derive(Debug)]
pub enum Planned {
    /// A query, or an INSERT: runs as a DataFusion plan.
    Plan(Box<DataFrame>),
    /// `SET name = value`: changes the session.
    Set {
        /// The setting.
        name: String,
        /// Its new value.
        value: String,
    },
    /// `RESET name`: the setting goes back to its default.
    Reset {
        /// The setting.
        name: String,
    },
}

impl Planned {
    /// Whether the statement writes (INSERT), so that it runs as an update, exactly once.
    /// The catalog refuses every other plan that holds a write, so a write is always at the
    /// top: the role check and the run-once rule both see it.
    pub fn is_write(&self) -> bool {
        matches!(self, Planned::Plan(df) if matches!(df.logical_plan(), LogicalPlan::Dml(_)))
    }
}

/// Plans `sql` in `ctx` through the catalog, binding `parameters`.
pub async fn plan(
    catalog: &Catalog,
    ctx: &SessionContext,
    sql: &str,
    parameters: &[arrow::array::RecordBatch],
) -> Result<Planned, Error> {
    match catalog.plan(ctx, sql, parameters).await {
        Ok(df) => {
            refuse_unsupported(df.logical_plan())?;
            Ok(Planned::Plan(Box::new(df)))
        }
        Err(err) => {
            // The catalog refuses session statements and DDL, which would be lost with the
            // request or change shared state. Plan without its checks to tell which it was:
            // SET and RESET are the session's business, the rest gets a clear refusal.
            match ctx.state().create_logical_plan(sql).await {
                Ok(LogicalPlan::Statement(Statement::SetVariable(set))) => Ok(Planned::Set {
                    name: set.variable,
                    value: set.value,
                }),
                Ok(LogicalPlan::Statement(Statement::ResetVariable(reset))) => Ok(Planned::Reset {
                    name: reset.variable,
                }),
                Ok(other) => Err(refuse_unsupported(&other).err().unwrap_or(err.into())),
                // Statements DataFusion cannot plan at all (BEGIN, COMMIT, ...).
                Err(_) => match err.find_root() {
                    DataFusionError::NotImplemented(what) => Err(cannot_plan(what)),
                    _ => Err(err.into()),
                },
            }
        }
    }
}
