//! The crate's error type, [`Error`], and its one mapping to `tonic::Status`: the one place
//! where errors of every layer get a gRPC code. The Flight layer and the per-RPC layers
//! (`auth`, `limits`) all answer with it. AWS errors keep their region, code, message and
//! request id in the status message.

use arrow::error::ArrowError;
use arrow_flight::error::FlightError;
use datafusion::error::DataFusionError;
use tonic::{Code, Status};

use crate::catalog::SqlError;
use crate::ec2::{AwsError, AwsErrorKind};
use crate::table::TableError;

/// gRPC trailers must stay small (clients cap headers around 8 KB).
const MAX_MESSAGE_BYTES: usize = 4096;

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Planning or executing the statement failed (SQL errors, AWS errors, ...).
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// Encoding or decoding Arrow data failed.
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// Building a Flight SQL metadata answer failed.
    #[error(transparent)]
    Flight(#[from] FlightError),
    /// The client sent a ticket, handle or message that does not decode, or a value the
    /// server cannot accept.
    #[error("{0}")]
    BadRequest(String),
    /// The client asked for a Flight SQL feature this server does not have (an ingest
    /// mode other than append, an unknown action); the message says what it does.
    #[error("{0}")]
    Unsupported(String),
    /// The query was cancelled (CancelFlightInfo).
    #[error("{0}")]
    Cancelled(String),
    /// No credentials, wrong ones, or an expired token.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not do this (a `read` user's INSERT).
    #[error("{0}")]
    PermissionDenied(String),
    /// A server limit is reached for now (concurrent queries).
    #[error("{0}")]
    Busy(String),
    /// The statement ran past the query timeout, or its client took no data for the stall
    /// timeout, and was stopped.
    #[error("{0}")]
    TimedOut(String),
    /// The server is shutting down and takes no new query.
    #[error("{0}")]
    ShuttingDown(String),
}

impl Error {
    /// A bad-request error with this message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::BadRequest(message.into())
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        let (code, message) = match err {
            Error::DataFusion(e) => datafusion_code(e),
            Error::Arrow(e) => arrow_code(e),
            Error::Flight(FlightError::Tonic(status)) => {
                (status.code(), status.message().to_owned())
            }
            Error::Flight(FlightError::Arrow(e)) => arrow_code(e),
            Error::Flight(e @ FlightError::DecodeError(_))
            | Error::Flight(e @ FlightError::ProtocolError(_)) => {
                (Code::InvalidArgument, e.to_string())
            }
            Error::Flight(e @ FlightError::NotYetImplemented(_)) => {
                (Code::Unimplemented, e.to_string())
            }
            Error::Flight(e @ FlightError::ExternalError(_)) => (Code::Internal, e.to_string()),
            Error::BadRequest(m) => (Code::InvalidArgument, m),
            Error::Unsupported(m) => (Code::Unimplemented, m),
            Error::Cancelled(m) => (Code::Cancelled, m),
            Error::Unauthenticated(m) => (Code::Unauthenticated, m),
            Error::PermissionDenied(m) => (Code::PermissionDenied, m),
            Error::Busy(m) => (Code::ResourceExhausted, m),
            Error::TimedOut(m) => (Code::DeadlineExceeded, m),
            Error::ShuttingDown(m) => (Code::Unavailable, m),
        };
        Status::new(code, truncate(message))
    }
}

fn aws_code(e: &AwsError) -> Code {
    kind_code(e.kind)
}

fn table_code(e: &TableError) -> Code {
    match e {
        TableError::ReadOnly => Code::PermissionDenied,
        TableError::Invalid(_) => Code::InvalidArgument,
        // Nothing the client can fix by retrying: the account must enable the region.
        TableError::RegionNotEnabled { .. } => Code::FailedPrecondition,
        // The tasks were created; the wait ended first: at its timeout DEADLINE_EXCEEDED,
        // at the end of the shutdown grace UNAVAILABLE, after failed polls AWS's code.
        TableError::Await(error) => match (&error.reason, error.aws_error()) {
            (_, Some(aws)) => aws_code(aws),
            (crate::table::AwaitEnd::ShuttingDown, _) => Code::Unavailable,
            _ => Code::DeadlineExceeded,
        },
        // AWS refused rows: the first refusal's code. Rows not sent: the server is going
        // away (retry on another replica). Only unconfirmed rows: a conflict with a
        // concurrent statement.
        TableError::InsertFailed { not_sent, .. } => match e.aws_kind() {
            Some(kind) => kind_code(kind),
            None if !not_sent.is_empty() => Code::Unavailable,
            None => Code::Aborted,
        },
    }
}

fn kind_code(kind: AwsErrorKind) -> Code {
    match kind {
        AwsErrorKind::Throttled => Code::ResourceExhausted,
        AwsErrorKind::Unavailable => Code::Unavailable,
        // The server's own AWS credentials: not the client's fault, nor something the
        // client's credentials can fix.
        AwsErrorKind::Credentials => Code::FailedPrecondition,
        AwsErrorKind::PermissionDenied => Code::PermissionDenied,
        AwsErrorKind::NotFound => Code::NotFound,
        AwsErrorKind::InvalidRequest => Code::InvalidArgument,
        AwsErrorKind::OverBudget => Code::ResourceExhausted,
    }
}

fn arrow_code(e: ArrowError) -> (Code, String) {
    let code = match &e {
        ArrowError::ExternalError(inner) => {
            if let Some(aws) = inner.downcast_ref::<AwsError>() {
                return (aws_code(aws), aws.to_string());
            }
            if let Some(df) = inner.downcast_ref::<DataFusionError>() {
                return datafusion_code_ref(df);
            }
            Code::Internal
        }
        ArrowError::CastError(_)
        | ArrowError::ParseError(_)
        | ArrowError::InvalidArgumentError(_)
        | ArrowError::DivideByZero
        | ArrowError::ArithmeticOverflow(_)
        | ArrowError::ComputeError(_)
        | ArrowError::SchemaError(_)
        | ArrowError::JsonError(_)
        | ArrowError::CsvError(_)
        | ArrowError::NotYetImplemented(_) => Code::InvalidArgument,
        ArrowError::MemoryError(_) => Code::ResourceExhausted,
        ArrowError::IoError(_, _)
        | ArrowError::IpcError(_)
        | ArrowError::CDataInterface(_)
        | ArrowError::DictionaryKeyOverflowError
        | ArrowError::RunEndIndexOverflowError
        | ArrowError::OffsetOverflowError(_)
        | ArrowError::AvroError(_)
        | ArrowError::ParquetError(_) => Code::Internal,
    };
    (code, e.to_string())
}

fn datafusion_code(e: DataFusionError) -> (Code, String) {
    datafusion_code_ref(&e)
}

fn datafusion_code_ref(e: &DataFusionError) -> (Code, String) {
    let root = e.find_root();
    let code = match root {
        DataFusionError::External(inner) => {
            if let Some(aws) = inner.downcast_ref::<AwsError>() {
                return (aws_code(aws), aws.to_string());
            }
            if let Some(table) = inner.downcast_ref::<TableError>() {
                return (table_code(table), table.to_string());
            }
            if let Some(sql) = inner.downcast_ref::<SqlError>() {
                let code = if sql.is_not_found() {
                    Code::NotFound
                } else {
                    Code::InvalidArgument
                };
                return (code, sql.to_string());
            }
            Code::Internal
        }
        // sqlparser's error, raised while planning: its message, not its Debug form.
        DataFusionError::SQL(e, _) => {
            return (Code::InvalidArgument, SqlError::syntax(e, None).to_string());
        }
        // An INSERT whose rows give NULL for a column the table declares NOT NULL: Arrow
        // names the VALUES list's column (`column1`), not the table's.
        DataFusionError::ArrowError(inner, _)
            if matches!(inner.as_ref(), ArrowError::InvalidArgumentError(msg)
                if msg.contains("is declared as non-nullable but contains null values")) =>
        {
            return (Code::InvalidArgument, NULL_IN_NOT_NULL_COLUMN.to_owned());
        }
        DataFusionError::ArrowError(inner, _) => {
            let (code, _) = arrow_code(clone_arrow(inner));
            code
        }
        DataFusionError::Plan(msg) if is_table_not_found(msg) => Code::NotFound,
        DataFusionError::Plan(_)
        | DataFusionError::SchemaError(_, _)
        | DataFusionError::Configuration(_)
        | DataFusionError::Diagnostic(_, _)
        | DataFusionError::Collection(_) => Code::InvalidArgument,
        DataFusionError::NotImplemented(_) => Code::Unimplemented,
        DataFusionError::ResourcesExhausted(detail) => {
            return (
                Code::ResourceExhausted,
                format!(
                    "the statement needs more memory than this server lets all running \
                     statements share (--max-memory): narrow it (WHERE, fewer groups or \
                     columns, LIMIT) or retry when fewer statements run. {detail}"
                ),
            )
        }
        DataFusionError::Execution(_)
        | DataFusionError::ExecutionJoin(_)
        | DataFusionError::Internal(_)
        | DataFusionError::IoError(_)
        | DataFusionError::Substrait(_)
        | DataFusionError::Context(_, _)
        | DataFusionError::Shared(_)
        | DataFusionError::Ffi(_) => Code::Internal,
        #[allow(unreachable_patterns)]
        _ => Code::Internal,
    };
    (code, root.to_string())
}

/// What an INSERT that gives NULL for `account` or `region` is told.
const NULL_IN_NOT_NULL_COLUMN: &str = "INSERT rejected, nothing was created: a row gives NULL \
     for `account` or `region`, which take no NULL. Leave `account` out of the column list \
     (or give '') to create the task in the server's own account, and leave `region` out to \
     use the server's default region; otherwise give their values.";

/// DataFusion reports an unknown table as a plan error "table '...' not found".
fn is_table_not_found(msg: &str) -> bool {
    msg.starts_with("table '") && msg.ends_with("not found")
}

/// `ArrowError` is not `Clone`; keep the variant, which is all the code depends on.
fn clone_arrow(e: &ArrowError) -> ArrowError {
    match e {
        ArrowError::CastError(m) => ArrowError::CastError(m.clone()),
        ArrowError::ParseError(m) => ArrowError::ParseError(m.clone()),
        ArrowError::InvalidArgumentError(m) => ArrowError::InvalidArgumentError(m.clone()),
        ArrowError::DivideByZero => ArrowError::DivideByZero,
        ArrowError::ArithmeticOverflow(m) => ArrowError::ArithmeticOverflow(m.clone()),
        ArrowError::ComputeError(m) => ArrowError::ComputeError(m.clone()),
        ArrowError::SchemaError(m) => ArrowError::SchemaError(m.clone()),
        ArrowError::MemoryError(m) => ArrowError::MemoryError(m.clone()),
        other => ArrowError::IpcError(other.to_string()),
    }
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(" … (truncated)");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(kind: AwsErrorKind) -> AwsError {
        AwsError {
            account: None,
            role_arn: None,
            region: "us-west-2".into(),
            operation: "DescribeStoreImageTasks",
            code: Some("X".into()),
            message: "m".into(),
            request_id: Some("r".into()),
            kind,
        }
    }

    #[test]
    fn aws_errors_inside_datafusion_keep_their_meaning() {
        let e = DataFusionError::External(Box::new(aws(AwsErrorKind::Throttled)));
        let e = DataFusionError::Context("scan".into(), Box::new(e));
        let s = Status::from(Error::from(e));
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(s.message().contains("us-west-2"), "{}", s.message());
        assert!(s.message().contains("request id r"), "{}", s.message());
    }

    #[test]
    fn sql_errors_are_invalid_argument_and_unknown_tables_not_found() {
        let s = Status::from(Error::from(DataFusionError::Plan("bad".into())));
        assert_eq!(s.code(), Code::InvalidArgument);
        let s = Status::from(Error::from(DataFusionError::Plan(
            "table 'aws.ec2.nope' not found".into(),
        )));
        assert_eq!(s.code(), Code::NotFound);
    }

    #[test]
    fn sql_errors_of_the_catalog_keep_their_words() {
        let e = DataFusionError::External(Box::new(SqlError::UnknownTable {
            name: "aws.ec2.x".into(),
            suggestion: None,
            tables: vec!["aws.ec2.store_image_tasks".into()],
        }));
        let s = Status::from(Error::from(e));
        assert_eq!(s.code(), Code::NotFound);
        assert!(
            s.message().starts_with("table aws.ec2.x not found"),
            "{}",
            s.message()
        );
        let e = DataFusionError::SQL(
            Box::new(
                datafusion::sql::sqlparser::parser::ParserError::ParserError(
                    "Expected: x, found: y at Line: 1, Column: 8".into(),
                ),
            ),
            None,
        );
        let s = Status::from(Error::from(e));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "SQL syntax error: expected x, found y at line 1, column 8"
        );
    }

    #[test]
    fn long_messages_are_truncated() {
        let s = Status::from(Error::bad_request("x".repeat(100_000)));
        assert!(s.message().len() < MAX_MESSAGE_BYTES + 32);
    }
}
