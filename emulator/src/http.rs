//! The HTTP surface: the router (the APIs on `/`, the test hooks under `/_emulator`) and the
//! pipeline every API request goes through, in AWS's order: injected latency, the service
//! from the credential scope, then that service's pipeline (credentials and the caller's
//! account, region, action, throttling per account and region, random faults, denied actions,
//! then the action itself). EC2 and STS live here and in `actions` / `sts`, Organizations in
//! `organizations`. Each API request is answered with a request id (header and body) and
//! logged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::accounts::{Caller, CredentialProblem};
use crate::actions::{self, Action};
use crate::auth::{self, Scope};
use crate::config::Faults;
use crate::emulator::Shared;
use crate::error::ApiError;
use crate::params::Params;
use crate::requests::RequestRecord;
use crate::xml;

/// The request id header AWS SDKs read.
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// The emulator's routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(api).post(api))
        .nest("/_emulator", crate::hooks::router())
        .with_state(shared)
}

/// The parts of an API request the pipeline reads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Request<'a> {
    /// The query string.
    pub query: Option<&'a str>,
    /// The body: a form (EC2, STS) or JSON (Organizations).
    pub body: &'a [u8],
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The `X-Amz-Security-Token` header (temporary credentials).
    pub security_token: Option<&'a str>,
    /// The `X-Amz-Target` header (JSON protocols).
    pub target: Option<&'a str>,
}

/// The services the endpoint serves, told apart by the credential scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// EC2 (Query protocol, EC2 XML); also answers scopes naming a service not served.
    Ec2,
    /// STS (Query protocol, STS XML).
    Sts,
    /// Organizations (JSON 1.1).
    Organizations,
}

/// What the pipeline learned of a request, for its record in the log; set as soon as each
/// part is known, so refused requests show as much as was read.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub region: Option<String>,
    pub account: Option<String>,
    pub service: Option<String>,
    pub action: String,
    pub params: BTreeMap<String, String>,
}

/// An answer: status, content type and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub service: Service,
    pub body: Vec<u8>,
}

async fn api(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrival = shared.next_arrival();
    let started_ms = shared.elapsed_ms();
    let request_id = uuid::Uuid::new_v4().to_string();
    let header = |name: &str| {
        headers
            .get(name)
            .map(|value| value.to_str().unwrap_or_default())
    };
    let request = Request {
        query: uri.query(),
        body: &body,
        authorization: header(header::AUTHORIZATION.as_str()),
        security_token: header("x-amz-security-token"),
        target: header("x-amz-target"),
    };

    let latency = shared.runtime().faults.latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let mut seen = Seen::default();
    let answer = handle(&shared, request, &request_id, &mut seen);
    shared.log.push(
        arrival,
        RequestRecord {
            region: seen.region,
            action: seen.action,
            params: seen.params,
            status: answer.status.as_u16(),
            started_ms,
            finished_ms: shared.elapsed_ms(),
            account: seen.account,
            service: seen.service,
        },
    );
    response(answer, &request_id)
}

/// Everything after the latency: reads the service from the credential scope and hands the
/// request to that service's pipeline; renders its error in the service's protocol.
pub(crate) fn handle(
    shared: &Shared,
    request: Request<'_>,
    request_id: &str,
    seen: &mut Seen,
) -> Answer {
    let scope = auth::scope_from_authorization(request.authorization);
    let service = match &scope {
        Ok(scope) => match scope.service.as_str() {
            "sts" => Service::Sts,
            "organizations" => Service::Organizations,
            _ => Service::Ec2,
        },
        Err(_)
            if request
                .target
                .is_some_and(|t| t.starts_with(crate::organizations::TARGET_PREFIX)) =>
        {
            Service::Organizations
        }
        Err(_) => Service::Ec2,
    };
    if let Ok(scope) = &scope {
        seen.service = Some(scope.service.clone());
    }
    let result = match service {
        Service::Ec2 => ec2(shared, request, scope, request_id, seen),
        Service::Sts => crate::sts::handle(shared, request, scope, request_id, seen),
        Service::Organizations => {
            crate::organizations::handle(shared, request, scope, request_id, seen)
        }
    };
    match result {
        Ok(body) => Answer {
            status: StatusCode::OK,
            service,
            body,
        },
        Err(err) => {
            tracing::debug!(code = err.code, message = %err.message, "API error");
            let body = match service {
                Service::Ec2 => xml::error(&err, request_id),
                Service::Sts => crate::sts::error(&err, request_id),
                Service::Organizations => crate::organizations::error(&err),
            };
            Answer {
                status: err.status,
                service,
                body,
            }
        }
    }
}

/// Who signed the request, or the error `service` answers for credentials it cannot use.
pub(crate) fn caller(
    shared: &Shared,
    scope: &Scope,
    security_token: Option<&str>,
    service: Service,
) -> Result<Caller, ApiError> {
    shared
        .credentials
        .caller(&scope.access_key, security_token, Utc::now())
        .map_err(|problem| match (problem, service) {
            (CredentialProblem::Expired, Service::Ec2) => ApiError::request_expired(),
            (CredentialProblem::Expired, Service::Sts) => ApiError::expired_token(),
            (CredentialProblem::Expired, Service::Organizations) => {
                ApiError::expired_token_exception()
            }
            (CredentialProblem::Invalid, Service::Ec2) => ApiError::auth_failure(
                "AWS was not able to validate the provided access credentials",
            ),
            (CredentialProblem::Invalid, Service::Sts) => ApiError::invalid_client_token_id(),
            (CredentialProblem::Invalid, Service::Organizations) => ApiError::unrecognized_client(),
        })
}

/// Throttling (per account and region) and random failures, answered in `service`'s codes.
pub(crate) fn inject_faults(
    shared: &Shared,
    faults: &Faults,
    account: &str,
    region: &str,
    service: Service,
) -> Result<(), ApiError> {
    if let Some(rps) = faults.throttle_rps {
        let key = format!("{account}/{region}");
        if !shared.throttle.admit(&key, rps, Instant::now()) {
            return Err(match service {
                Service::Ec2 => ApiError::request_limit_exceeded(),
                Service::Sts => ApiError::throttling(),
                Service::Organizations => ApiError::too_many_requests(),
            });
        }
    }
    if shared.dice.roll(faults.fail_rate) {
        return Err(match service {
            Service::Ec2 => ApiError::internal_error(),
            Service::Sts => ApiError::internal_failure(),
            Service::Organizations => ApiError::service_exception(),
        });
    }
    Ok(())
}

/// EC2's pipeline: form fields, credentials and region, action, throttling, random faults,
/// denied actions, then the action in the caller's account.
fn ec2(
    shared: &Shared,
    request: Request<'_>,
    scope: Result<Scope, ApiError>,
    request_id: &str,
    seen: &mut Seen,
) -> Result<Vec<u8>, ApiError> {
    let params = Params::parse(request.query, request.body)?;
    seen.action = params.action().unwrap_or_default().to_owned();
    seen.params = params.fields().clone();
    let scope = scope?;
    if scope.service != "ec2" {
        return Err(auth::wrong_service());
    }
    seen.region = Some(scope.region.clone());
    let caller = caller(shared, &scope, request.security_token, Service::Ec2)?;
    let account = caller.account();
    seen.account = Some(account.to_owned());
    let runtime = shared.runtime();
    let region = scope.region.as_str();
    if !shared.regions.iter().any(|r| r == region) || !runtime.rules.region_enabled(account, region)
    {
        return Err(auth::region_not_enabled(region));
    }
    let action = params
        .action()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::invalid_action(None))?;
    let action = Action::from_name(action).ok_or_else(|| ApiError::invalid_action(Some(action)))?;
    inject_faults(shared, &runtime.faults, account, region, Service::Ec2)?;
    if runtime
        .faults
        .deny_actions
        .iter()
        .any(|a| a == action.name())
    {
        return Err(ApiError::unauthorized_operation());
    }
    actions::run(shared, action, account, region, &params, request_id)
}

fn response(answer: Answer, request_id: &str) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = answer.status;
    let headers = response.headers_mut();
    let content_type = match answer.service {
        Service::Ec2 => "text/xml;charset=UTF-8",
        Service::Sts => "text/xml",
        Service::Organizations => "application/x-amz-json-1.1",
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        REQUEST_ID_HEADER,
        HeaderValue::from_str(request_id).expect("a uuid is a valid header value"),
    );
    if answer.service == Service::Ec2 {
        headers.insert(header::SERVER, HeaderValue::from_static("AmazonEC2"));
    }
    response
}
