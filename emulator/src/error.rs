//! The API's errors: each EC2 error code the emulator answers, with its HTTP status and the
//! message AWS gives (or, where AWS's wording is unknown, the one `docs/EC2-CONTRACT.md` settles on).

use axum::http::StatusCode;

/// An error answered in EC2's `<Response><Errors>` form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The EC2 error code (`InvalidParameterValue`, ...).
    pub code: &'static str,
    /// The human-readable message.
    pub message: String,
    /// The HTTP status.
    pub status: StatusCode,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            status,
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
}
