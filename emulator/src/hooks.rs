//! The test hooks under `/_emulator`, on the API's port: read the state a client should see
//! (`state`, `tasks`), the request log (`requests`), and change faults and the clock
//! (`config`). JSON in and out; never subject to injected faults and never logged.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::config::ConfigUpdate;
use crate::emulator::Shared;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/state", get(state))
        .route("/tasks", get(tasks))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/config", get(config).post(update_config))
}

/// `GET /_emulator/state`.
#[derive(Debug, Serialize)]
struct StateView {
    regions: BTreeMap<String, RegionView>,
}

#[derive(Debug, Serialize)]
struct RegionView {
    /// AMIs CreateStoreImageTask accepts now.
    amis: Vec<String>,
    buckets: Vec<String>,
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (status, Json(body)).into_response()
}

async fn state(State(shared): State<Arc<Shared>>) -> Json<StateView> {
    let regions = shared
        .regions
        .iter()
        .map(|region| {
            let view = RegionView {
                amis: shared.storable_amis(region),
                buckets: shared.buckets(region),
            };
            (region.clone(), view)
        })
        .collect();
    Json(StateView { regions })
}

#[derive(Debug, Deserialize)]
struct TasksQuery {
    region: Option<String>,
}

async fn tasks(State(shared): State<Arc<Shared>>, Query(query): Query<TasksQuery>) -> Response {
    let Some(region) = query.region else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "the query parameter 'region' is required",
        );
    };
    if !shared.regions.contains(&region) {
        return json_error(
            StatusCode::NOT_FOUND,
            format!("the region '{region}' is not served by this emulator"),
        );
    }
    Json(shared.tasks(&region)).into_response()
}

async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.log.snapshot()).into_response()
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.log.clear();
    StatusCode::NO_CONTENT
}

async fn config(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.effective_config()).into_response()
}

async fn update_config(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let update: ConfigUpdate = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(err) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("invalid configuration JSON: {err}"),
            )
        }
    };
    match shared.update_config(update) {
        Ok(effective) => {
            tracing::info!(?effective, "emulator configuration changed");
            Json(effective).into_response()
        }
        Err(err) => json_error(StatusCode::BAD_REQUEST, err.to_string()),
    }
}
