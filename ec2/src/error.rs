//! The error type of the AWS layer: which account, region and operation failed (and the
//! role, when assuming it failed), AWS's error code, message and request id, and a coarse
//! kind that the Flight layer maps to a status code.

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
    /// The account the call was made in, when the server reaches more than its own or the
    /// call was made through a role.
    pub account: Option<String>,
    /// The role assumed to reach `account`, when assuming it is what failed.
    pub role_arn: Option<String>,
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
        let mut text = match (&self.account, &self.role_arn) {
            (Some(account), Some(role)) => format!(
                "{} of role {role} for account {account} failed: ",
                self.operation
            ),
            (Some(account), None) => format!(
                "{} in account {account}, region {} failed: ",
                self.operation, self.region
            ),
            _ => format!("{} in region {} failed: ", self.operation, self.region),
        };
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
        Self::from_sdk_ref(region, operation, &err)
    }

    /// [`Self::from_sdk`] of an error the caller keeps.
    pub fn from_sdk_ref<E, R>(region: &str, operation: &'static str, err: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
        SdkError<E, R>: RequestId,
    {
        // A call that failed because its account's role could not be assumed (see
        // `accounts`): that failure, naming the account and the role, is the error.
        let mut source = std::error::Error::source(err);
        while let Some(e) = source {
            if let Some(assume) = e.downcast_ref::<AwsError>() {
                return assume.clone();
            }
            source = e.source();
        }
        let request_id = err.request_id().map(str::to_owned);
        let (code, message, kind) = match err {
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
            account: None,
            role_arn: None,
            region: region.to_owned(),
            operation,
            code,
            message,
            request_id,
            kind,
        }
    }

    /// The same error, saying it happened in `account`.
    pub fn in_account(mut self, account: &str) -> Self {
        self.account = Some(account.to_owned());
        self
    }

    /// An error the server itself found about a call (none of AWS's code, message or
    /// request id).
    pub fn local(
        region: &str,
        operation: &'static str,
        kind: AwsErrorKind,
        message: String,
    ) -> Self {
        AwsError {
            account: None,
            role_arn: None,
            region: region.to_owned(),
            operation,
            code: None,
            message,
            request_id: None,
            kind,
        }
    }

    /// A call not sent because the statement used up its budget of `max` calls.
    pub(crate) fn over_budget(region: &str, operation: &'static str, max: usize) -> Self {
        Self::local(
            region,
            operation,
            AwsErrorKind::OverBudget,
            format!(
                "not sent: this statement reached its budget of {max} AWS calls \
                 (--max-aws-calls-per-query) and was stopped; narrow it (WHERE region = ..., \
                 amiId IN (...) with fewer ids, storeTaskState = ..., LIMIT) or ask the \
                 server's operator to raise the budget"
            ),
        )
    }

    /// A call whose answer the server cannot use (a field missing or malformed).
    pub(crate) fn unexpected(region: &str, operation: &'static str, message: String) -> Self {
        Self::local(region, operation, AwsErrorKind::Unavailable, message)
    }

    /// A call abandoned because the server is shutting down.
    pub(crate) fn cancelled(region: &str, operation: &'static str) -> Self {
        Self::local(
            region,
            operation,
            AwsErrorKind::Unavailable,
            "the call was cancelled: the server is shutting down; run the query again".to_owned(),
        )
    }
}

/// Error codes of a request whose temporary credentials expired between signing and
/// arriving (EC2 says `RequestExpired`, STS `ExpiredToken`, the JSON services such as
/// Organizations `ExpiredTokenException`). Nothing was
/// done, and the next attempt is signed with renewed credentials (the credentials
/// provider hands out new ones once the old ones near expiry), so the SDK retries it.
const EXPIRED_CREDENTIALS: &[&str] = &["RequestExpired", "ExpiredToken", "ExpiredTokenException"];

/// The retry classifier of the server's EC2 clients: a request refused because its
/// credentials expired in flight is retried, like a transient error. Without it a scan
/// that outlives a set of assumed-role credentials fails whenever a page is signed just
/// before they expire and arrives just after.
#[derive(Debug, Default)]
pub(crate) struct RetryExpiredCredentials;

impl aws_smithy_runtime_api::client::retries::classifiers::ClassifyRetry
    for RetryExpiredCredentials
{
    fn classify_retry(
        &self,
        ctx: &aws_smithy_runtime_api::client::interceptors::context::InterceptorContext,
    ) -> aws_smithy_runtime_api::client::retries::classifiers::RetryAction {
        use aws_sdk_ec2::operation::create_store_image_task::CreateStoreImageTaskError;
        use aws_sdk_ec2::operation::describe_store_image_tasks::DescribeStoreImageTasksError;
        use aws_smithy_runtime_api::client::retries::classifiers::RetryAction;
        let Some(Err(error)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        let Some(error) = error.as_operation_error() else {
            return RetryAction::NoActionIndicated;
        };
        let code = error
            .downcast_ref::<DescribeStoreImageTasksError>()
            .and_then(|e| e.code())
            .or_else(|| {
                error
                    .downcast_ref::<CreateStoreImageTaskError>()
                    .and_then(|e| e.code())
            });
        match code {
            Some(code) if EXPIRED_CREDENTIALS.contains(&code) => RetryAction::transient_error(),
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "RetryExpiredCredentials"
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
        | "ExpiredTokenException"
        | "RequestExpired"
        | "SignatureDoesNotMatch"
        | "OptInRequired" => AwsErrorKind::Credentials,
        "UnauthorizedOperation" | "AccessDenied" => AwsErrorKind::PermissionDenied,
        c if c.ends_with(".NotFound") => AwsErrorKind::NotFound,
        _ => AwsErrorKind::InvalidRequest,
    }
}

/// The messages of an error and all its sources, joined: the SDK's top-level messages
/// ("dispatch failure") say little on their own.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
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
        let mut err = AwsError {
            account: None,
            role_arn: None,
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
        err = err.in_account("100000000001");
        assert_eq!(
            err.to_string(),
            "DescribeStoreImageTasks in account 100000000001, region eu-west-1 failed: \
             RequestLimitExceeded: Request limit exceeded. (request id req-1)"
        );
        err.operation = "AssumeRole";
        err.role_arn = Some("arn:aws:iam::100000000001:role/reader".into());
        err.code = Some("AccessDenied".into());
        err.message = "User: u is not authorized to perform: sts:AssumeRole".into();
        assert_eq!(
            err.to_string(),
            "AssumeRole of role arn:aws:iam::100000000001:role/reader for account \
             100000000001 failed: AccessDenied: User: u is not authorized to perform: \
             sts:AssumeRole (request id req-1)"
        );
    }
}
