//! The API's errors: each error code the emulator answers (EC2, STS and Organizations), with
//! its HTTP status and the message AWS gives (or, where AWS's wording is unknown, the one
//! `docs/EC2-CONTRACT.md` or `docs/STS-ORGANIZATIONS-CONTRACT.md` settles on). Each service
//! renders them in its own protocol (`xml`, `sts`, `organizations`).

use axum::http::StatusCode;

/// An error of the API, rendered in the protocol of the service asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The EC2 error code (`InvalidParameterValue`, ...).
    pub code: &'static str,
    /// The human-readable message.
    pub message: String,
    /// The HTTP status.
    pub status: StatusCode,
    /// Organizations' `Reason` of an `InvalidInputException` (`INVALID_NEXT_TOKEN`, ...).
    pub reason: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            status,
            reason: None,
        }
    }

    /// 401: the request carries no `Authorization` header.
    pub fn missing_authentication_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
        )
    }

    /// 401: the credentials cannot be used.
    pub fn auth_failure(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "AuthFailure", message)
    }

    /// 400: the `Action` is missing or not one the emulator implements.
    pub fn invalid_action(action: Option<&str>) -> Self {
        let message = match action {
            Some(action) => format!("The action {action} is not valid for this web service."),
            None => "The request must contain the parameter Action".to_owned(),
        };
        Self::new(StatusCode::BAD_REQUEST, "InvalidAction", message)
    }

    /// 400: a parameter the action does not have.
    pub fn unknown_parameter(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "UnknownParameter",
            format!("The parameter {name} is not recognized"),
        )
    }

    /// 400: a parameter value out of its rules.
    pub fn invalid_parameter_value(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidParameterValue", message)
    }

    /// 400: parameters that may not be given together.
    pub fn invalid_parameter_combination(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterCombination",
            message,
        )
    }

    /// 400: a required parameter is absent.
    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        )
    }

    /// 400: not an AMI id.
    pub fn ami_malformed(id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidAMIID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
        )
    }

    /// 400: an AMI id the region does not know.
    pub fn ami_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidAMIID.NotFound",
            format!("The image id '[{id}]' does not exist"),
        )
    }

    /// 400: a NextToken this emulator did not give for this request.
    pub fn invalid_pagination_token(token: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidPaginationToken",
            format!("Invalid pagination token: '{token}'"),
        )
    }

    /// 412: the DryRun check passed.
    pub fn dry_run_operation() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        )
    }

    /// 403: the action is denied to the caller.
    pub fn unauthorized_operation() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        )
    }

    /// 503: over the region's request rate.
    pub fn request_limit_exceeded() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "RequestLimitExceeded",
            "Request limit exceeded.",
        )
    }

    /// 500: a (simulated) server fault.
    pub fn internal_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "An internal error has occurred",
        )
    }

    /// 400 (EC2): a request signed with temporary credentials that have expired.
    pub fn request_expired() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "RequestExpired",
            "Request has expired.",
        )
    }

    /// 403 (STS): a request signed with temporary credentials that have expired.
    pub fn expired_token() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "ExpiredToken",
            "The security token included in the request is expired",
        )
    }

    /// 403 (Organizations and the other JSON services): [`Self::expired_token`], spelt with
    /// the `Exception` suffix of their error types.
    pub fn expired_token_exception() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "ExpiredTokenException",
            "The security token included in the request is expired",
        )
    }

    /// 403 (STS): a temporary access key or session token the emulator never issued.
    pub fn invalid_client_token_id() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        )
    }

    /// 403 (Organizations): a temporary access key or session token the emulator never issued.
    pub fn unrecognized_client() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    }

    /// 403 (STS): the caller may not do this, in IAM's wording.
    pub fn access_denied(caller_arn: &str, action: &str, resource: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!(
                "User: {caller_arn} is not authorized to perform: {action} on resource: {resource}"
            ),
        )
    }

    /// 400 (STS): a parameter out of its constraints.
    pub fn validation_error(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    /// 400 (STS): an action STS does not have (or the emulator does not implement).
    pub fn sts_invalid_action(action: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("Could not find operation {action} for version 2011-06-15"),
        )
    }

    /// 400 (STS): over the request rate.
    pub fn throttling() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded")
    }

    /// 500 (STS): a (simulated) server fault.
    pub fn internal_failure() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "The request processing has failed because of an unknown error, exception or failure.",
        )
    }

    /// 400 (Organizations): the caller may not do this (not the management account, or a
    /// denied action).
    pub fn organizations_access_denied() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "AccessDeniedException",
            "You don't have permissions to access this resource.",
        )
    }

    /// 400 (Organizations): a parameter out of its constraints.
    pub fn invalid_input(reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            reason: Some(reason),
            ..Self::new(StatusCode::BAD_REQUEST, "InvalidInputException", message)
        }
    }

    /// 400 (Organizations): an `X-Amz-Target` naming no operation the emulator has.
    pub fn unknown_operation(target: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!(
                "The operation '{target}' is not supported by AWS Organizations in this emulator."
            ),
        )
    }

    /// 400 (Organizations): a body that is not a JSON object of the operation's fields.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "SerializationException", message)
    }

    /// 400 (Organizations): over the request rate.
    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "TooManyRequestsException",
            "You have sent too many requests in too short a period of time. The quota helps protect against denial-of-service attacks. Try again later.",
        )
    }

    /// 500 (Organizations): a (simulated) server fault.
    pub fn service_exception() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            "AWS Organizations can't complete your request because it encountered an internal error. Try again later.",
        )
    }
}
