//! The HTTP surface: the router (the Query API on `/`, the test hooks under `/_emulator`) and
//! the pipeline every API request goes through, in AWS's order: injected latency, credentials
//! and region, action, throttling, random faults, denied actions, then the action itself.
//! Each API request is answered with a request id (header and body) and logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::actions::{self, Action};
use crate::auth;
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

async fn api(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrival = shared.next_arrival();
    let started_ms = shared.elapsed_ms();
    let request_id = uuid::Uuid::new_v4().to_string();
    let params = Params::parse(uri.query(), &body);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().unwrap_or_default());

    let latency = shared.runtime().faults.latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let mut region = None;
    let result = params
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|params| handle(&shared, params, authorization, &mut region, &request_id));

    let (status, body) = match result {
        Ok(body) => (StatusCode::OK, body),
        Err(err) => {
            tracing::debug!(code = err.code, message = %err.message, "API error");
            (err.status, xml::error(&err, &request_id))
        }
    };
    let fields = params.map(|p| p.fields().clone()).unwrap_or_default();
    shared.log.push(
        arrival,
        RequestRecord {
            region,
            action: fields.get("Action").cloned().unwrap_or_default(),
            params: fields,
            status: status.as_u16(),
            started_ms,
            finished_ms: shared.elapsed_ms(),
        },
    );
    xml_response(status, &request_id, body)
}

/// Everything after the latency: the answer's body or error. Sets `region` as soon as the
/// credential scope names one, so the log shows it even for refused requests.
pub(crate) fn handle(
    shared: &Shared,
    params: &Params,
    authorization: Option<&str>,
    region: &mut Option<String>,
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    let name = auth::region_from_authorization(authorization)?;
    *region = Some(name.clone());
    if !shared.regions.contains(&name) {
        return Err(auth::region_not_enabled(&name));
    }
    let action = params
        .action()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::invalid_action(None))?;
    let action = Action::from_name(action).ok_or_else(|| ApiError::invalid_action(Some(action)))?;

    let faults = shared.runtime().faults;
    if let Some(rps) = faults.throttle_rps {
        if !shared.throttle.admit(&name, rps, Instant::now()) {
            return Err(ApiError::request_limit_exceeded());
        }
    }
    if shared.dice.roll(faults.fail_rate) {
        return Err(ApiError::internal_error());
    }
    if faults.deny_actions.iter().any(|a| a == action.name()) {
        return Err(ApiError::unauthorized_operation());
    }
    actions::run(shared, action, &name, params, request_id)
}

fn xml_response(status: StatusCode, request_id: &str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    headers.insert(
        REQUEST_ID_HEADER,
        HeaderValue::from_str(request_id).expect("a uuid is a valid header value"),
    );
    headers.insert(header::SERVER, HeaderValue::from_static("AmazonEC2"));
    response
}
