//! Admit: whether a request may go on, decided before anything runs. Every refusal of the
//! Flight layer that is not about a request's bytes (see `command`) is here:
//!
//! - the size of a statement's text, how deep its expressions nest, how many query blocks
//!   and joins it has ([`check_sql`], measured on the tokens by [`sql_shape`], before the
//!   SQL is parsed); the size of a gRPC message is the service's (`into_server`,
//!   `--max-message-bytes`);
//! - what this server does not do at all: DDL, COPY, UPDATE, DELETE, transactions, SQL
//!   PREPARE ([`refuse_unsupported`]: the one place in the Flight layer, whose message the
//!   client gets; the catalog's own plan checks stay as the guard for such a plan hidden
//!   inside another statement);
//! - write permission: a write by a caller who may not write ([`check_write`],
//!   [`check_ingest`]).

use datafusion::logical_expr::{DmlStatement, LogicalPlan, Statement, WriteOp};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::dialect::{dialect_from_str, GenericDialect};

use super::statement::Planned;
use crate::auth::Caller;
use crate::error::Error;

pub mod sql_shape;

use sql_shape::SqlLimits;

/// What the server does, for error messages.
pub const SUPPORTED: &str = "this server's tables support SELECT and INSERT (into \
                             aws.ec2.store_image_tasks), and SET/RESET change session settings";

/// Refuses SQL longer, deeper or bigger than `limits` allow, in the dialect of `ctx`.
pub fn check_sql(limits: &SqlLimits, sql: &str, ctx: &SessionContext) -> Result<(), Error> {
    let dialect = ctx.state().config().options().sql_parser.dialect;
    let dialect = dialect_from_str(dialect).unwrap_or_else(|| Box::new(GenericDialect {}));
    limits
        .check(sql, dialect.as_ref())
        .map_err(Error::BadRequest)
}

/// Refuses a write by a caller who may not write, once the statement is known and before
/// anything runs; the session's settings have no say in it.
pub fn check_write(caller: &Caller, planned: &Planned) -> Result<(), Error> {
    if planned.is_write() && !caller.may_write() {
        return Err(Error::PermissionDenied(caller.write_refusal()));
    }
    Ok(())
}

/// Refuses a bulk ingest by a caller who may not write (before its rows are read).
pub fn check_ingest(caller: &Caller) -> Result<(), Error> {
    if !caller.may_write() {
        return Err(Error::PermissionDenied(caller.write_refusal()));
    }
    Ok(())
}

/// Refuses what this server does not do, naming what it does.
pub fn refuse_unsupported(plan: &LogicalPlan) -> Result<(), Error> {
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
    Err(unsupported(&what))
}

/// The refusal of `what`. INVALID_ARGUMENT rather than UNIMPLEMENTED: the statement is the
/// problem, and ADBC answers UNIMPLEMENTED on prepare by retrying the same statement
/// unprepared.
pub fn unsupported(what: &str) -> Error {
    Error::bad_request(format!("{what} is not supported: {SUPPORTED}"))
}

/// The refusal of a statement DataFusion cannot plan at all (BEGIN, an INSERT inside a
/// CTE, ...): its `detail` is a sentence of its own, so it is quoted, not made the subject.
pub fn cannot_plan(detail: &str) -> Error {
    Error::bad_request(format!(
        "this form of statement is not supported (DataFusion: {detail}): {SUPPORTED}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[tokio::test]
    async fn ddl_and_copy_are_refused_naming_what_the_server_does() {
        let ctx = SessionContext::new();
        for sql in ["CREATE TABLE t (a INT)", "COPY (SELECT 1) TO '/tmp/x.csv'"] {
            let plan = ctx.state().create_logical_plan(sql).await.unwrap();
            let err = refuse_unsupported(&plan).unwrap_err().to_string();
            assert!(err.contains("SELECT and INSERT"), "{sql}: {err}");
        }
        let plan = ctx.state().create_logical_plan("SELECT 1").await.unwrap();
        assert!(refuse_unsupported(&plan).is_ok());
    }

    #[test]
    fn readers_may_not_ingest() {
        let reader = Caller {
            user: Some("r".into()),
            role: Role::Read,
        };
        assert!(matches!(
            check_ingest(&reader),
            Err(Error::PermissionDenied(_))
        ));
    }

    #[test]
    fn sql_past_the_limits_is_a_bad_request() {
        let limits = SqlLimits::of(&crate::limits::ServerLimits {
            max_sql_bytes: 10,
            ..Default::default()
        });
        let err = check_sql(&limits, "SELECT 1 + 1 + 1", &SessionContext::new()).unwrap_err();
        assert!(err.to_string().contains("--max-sql-bytes"), "{err}");
    }
}
