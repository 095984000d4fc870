//! What a SQL statement is, as the Flight layer must treat it: a query or INSERT to run (a
//! DataFusion plan), a `SET`/`RESET` that changes the session, or something this server does
//! not do, refused with a message that says what it does.

use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{DmlStatement, LogicalPlan, Statement, WriteOp};
use datafusion::prelude::SessionContext;

use super::status::ServiceError;
use crate::catalog::Catalog;

/// What the server does, for error messages.
const SUPPORTED: &str = "this server's tables support SELECT and INSERT (into \
                         aws.ec2.store_image_tasks), and SET/RESET change session settings";

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
) -> Result<Planned, ServiceError> {
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
                    DataFusionError::NotImplemented(what) => Err(ServiceError::bad_request(
                        format!("{what} is not supported: {SUPPORTED}"),
                    )),
                    _ => Err(err.into()),
                },
            }
        }
    }
}

/// Refuses what this server does not do, naming what it does.
fn refuse_unsupported(plan: &LogicalPlan) -> Result<(), ServiceError> {
    let what = match plan {
        LogicalPlan::Dml(DmlStatement { op, .. }) => match op {
            WriteOp::Insert(_) => return Ok(()),
            WriteOp::Delete => "DELETE".to_owned(),
            WriteOp::Update => "UPDATE".to_owned(),
            WriteOp::Truncate => "TRUNCATE".to_owned(),
            WriteOp::Ctas => "CREATE TABLE AS".to_owned(),
            WriteOp::MergeInto(_) => "MERGE".to_owned(),
            other => other.name().to_uppercase(),
        },
        // COPY ... TO would write files on the server's machine.
        LogicalPlan::Copy(_) => "COPY".to_owned(),
        LogicalPlan::Ddl(ddl) => format!("DDL ({})", ddl.name()),
        LogicalPlan::Statement(Statement::TransactionStart(_))
        | LogicalPlan::Statement(Statement::TransactionEnd(_)) => {
            "transactions (every statement commits on its own)".to_owned()
        }
        LogicalPlan::Statement(Statement::Prepare(_))
        | LogicalPlan::Statement(Statement::Execute(_))
        | LogicalPlan::Statement(Statement::Deallocate(_)) => {
            "SQL PREPARE/EXECUTE (use the client's prepared statements: JDBC \
             PreparedStatement, ADBC parameters)"
                .to_owned()
        }
        _ => return Ok(()),
    };
    // INVALID_ARGUMENT rather than UNIMPLEMENTED: the statement is the problem, and ADBC
    // answers UNIMPLEMENTED on prepare by retrying the same statement unprepared.
    Err(ServiceError::bad_request(format!(
        "{what} is not supported: {SUPPORTED}"
    )))
}
