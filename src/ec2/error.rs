//! The error type of the AWS layer: which region and operation failed, AWS's error code,
//! message and request id, and a coarse kind that the Flight layer maps to a status code.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::RequestId;

/// What kind of failure an AWS call ended in; decides the gRPC status the client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// AWS throttled the request (`RequestLimitExceeded`, `Throttling`) even after retries.
    Throttled,
    /// AWS or the network failed (5xx, timeouts, connection errors) even after retries.
    Unavailable,
    /// The server's AWS credentials are missing, invalid or expired.
    Credentials,
    /// The credentials are valid but lack permission (`UnauthorizedOperation`).
    PermissionDenied,
    /// A resource named in the request does not exist (`*.NotFound`).
    NotFound,
    /// AWS refused the request's parameters (4xx other than the above).
    InvalidRequest,
    /// Not sent: the statement used up its budget of AWS calls (`--max-aws-calls-per-query`).
    OverBudget,
}

/// A failed AWS call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub struct AwsError {
    /// The region the call was sent to.
    pub region: String,
    /// The API operation, e.g. `DescribeStoreImageTasks`.
    pub operation: &'static str,
    /// AWS's error code, e.g. `RequestLimitExceeded`; `None` for transport failures.
    pub code: Option<String>,
    /// AWS's message, or the transport error.
    pub message: String,
    /// AWS's request id, when a response arrived.
    pub request_id: Option<String>,
    /// The coarse kind of failure.
    pub kind: AwsErrorKind,
}

impl AwsError {
    fn describe(&self) -> String {
        let mut text = self.summary();
        if self.kind == AwsErrorKind::Credentials {
            text.push_str(
                ". Provide AWS credentials the standard way: AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, AWS_PROFILE with ~/.aws/credentials or SSO, or an \
                 instance/task role",
            );
        }
        text
    }

    /// What failed, where, and AWS's code, message and request id, without advice: for
    /// errors that know better what went wrong (a region not enabled for the account).
    pub fn summary(&self) -> String {
        let mut text = format!("{} in region {} failed: ", self.operation, self.region);
        if let Some(code) = &self.code {
            text.push_str(code);
            text.push_str(": ");
        }
        text.push_str(&self.message);
        if let Some(id) = &self.request_id {
            text.push_str(&format!(" (request id {id})"));
        }
        text
    }

    /// Builds the error from an SDK error of one operation in one region.
    pub fn from_sdk<E, R>(region: &str, operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
        SdkError<E, R>: RequestId,
    {
        let request_id = err.request_id().map(str::to_owned);
        let (code, message, kind) = match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().map(str::to_owned);
                let message = e.message().unwrap_or("no message").to_owned();
                let kind = kind_for_code(code.as_deref().unwrap_or(""));
                (code, message, kind)
            }
            SdkError::TimeoutError(_) => (
                None,
                "the request timed out".to_owned(),
                AwsErrorKind::Unavailable,
            ),
            other => {
                let chain = error_chain(other);
                let kind = if chain.contains("credentials") || chain.contains("identity") {
                    AwsErrorKind::Credentials
                } else {
                    AwsErrorKind::Unavailable
                };
                (None, chain, kind)
            }
        };
        AwsError {
            region: region.to_owned(),
            operation,
            code,
            message,
            request_id,
            kind,
        }
    }

    /// A call not sent because the statement used up its budget of `max` calls.
    pub(crate) fn over_budget(region: &str, operation: &'static str, max: usize) -> Self {
        AwsError {
            region: region.to_owned(),
            operation,
            code: None,
            message: format!(
                "not sent: this statement reached its budget of {max} AWS calls \
                 (--max-aws-calls-per-query) and was stopped; narrow it (WHERE region = ..., \
                 amiId IN (...) with fewer ids, storeTaskState = ..., LIMIT) or ask the \
                 server's operator to raise the budget"
            ),
            request_id: None,
            kind: AwsErrorKind::OverBudget,
        }
    }

    /// A call abandoned because the server is shutting down.
    pub(crate) fn cancelled(region: &str, operation: &'static str) -> Self {
        AwsError {
            region: region.to_owned(),
            operation,
            code: None,
            message: "the call was cancelled: the server is shutting down; run the query \
                      again"
                .to_owned(),
            request_id: None,
            kind: AwsErrorKind::Unavailable,
        }
    }
}

fn kind_for_code(code: &str) -> AwsErrorKind {
    match code {
        "RequestLimitExceeded" | "Throttling" | "ThrottlingException" => AwsErrorKind::Throttled,
        "InternalError" | "InternalFailure" | "Unavailable" | "ServiceUnavailable" => {
            AwsErrorKind::Unavailable
        }
        "AuthFailure"
        | "MissingAuthenticationToken"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "SignatureDoesNotMatch"
        | "OptInRequired" => AwsErrorKind::Credentials,
        "UnauthorizedOperation" | "AccessDenied" => AwsErrorKind::PermissionDenied,
        c if c.ends_with(".NotFound") => AwsErrorKind::NotFound,
        _ => AwsErrorKind::InvalidRequest,
    }
}

/// The messages of an error and all its sources, joined: the SDK's top-level messages
/// ("dispatch failure") say little on their own.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(
            kind_for_code("RequestLimitExceeded"),
            AwsErrorKind::Throttled
        );
        assert_eq!(kind_for_code("InternalError"), AwsErrorKind::Unavailable);
        assert_eq!(kind_for_code("AuthFailure"), AwsErrorKind::Credentials);
        assert_eq!(
            kind_for_code("UnauthorizedOperation"),
            AwsErrorKind::PermissionDenied
        );
        assert_eq!(
            kind_for_code("InvalidAMIID.NotFound"),
            AwsErrorKind::NotFound
        );
        assert_eq!(
            kind_for_code("InvalidPaginationToken"),
            AwsErrorKind::InvalidRequest
        );
    }

    #[test]
    fn message_names_region_code_and_request_id() {
        let err = AwsError {
            region: "eu-west-1".into(),
            operation: "DescribeStoreImageTasks",
            code: Some("RequestLimitExceeded".into()),
            message: "Request limit exceeded.".into(),
            request_id: Some("req-1".into()),
            kind: AwsErrorKind::Throttled,
        };
        assert_eq!(
            err.to_string(),
            "DescribeStoreImageTasks in region eu-west-1 failed: RequestLimitExceeded: \
             Request limit exceeded. (request id req-1)"
        );
    }
}
