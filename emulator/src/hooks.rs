//! The test hooks under `/_emulator`, on the API's port: read the state a client of an
//! account should see (`state`, `tasks`, `?account=`, default the home account), the accounts
//! (`accounts`), the request log (`requests`), and change faults, the clock and the account
//! rules (`config`). JSON in and out; never subject to injected faults and never logged.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::accounts::{account_name, HOME_ACCOUNT};
use crate::config::ConfigUpdate;
use crate::emulator::Shared;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/state", get(state))
        .route("/accounts", get(accounts))
        .route("/tasks", get(tasks))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/config", get(config).post(update_config))
}

/// `GET /_emulator/state?account=A`.
#[derive(Debug, Serialize)]
struct StateView {
    /// The account shown.
    account: String,
    /// Every account of the emulator, home first.
    accounts: Vec<String>,
    /// The regions enabled in the account.
    regions: BTreeMap<String, RegionView>,
    /// Served regions not enabled in the account.
    disabled_regions: Vec<String>,
}

/// One account of `GET /_emulator/accounts`.
#[derive(Debug, Serialize)]
struct AccountView {
    id: String,
    name: String,
    status: &'static str,
    enabled_regions: Vec<String>,
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

#[derive(Debug, Deserialize)]
struct AccountQuery {
    account: Option<String>,
}

/// The account a hook asks about (default the home account), or the 404 answer.
fn account_of(shared: &Shared, account: Option<String>) -> Result<String, Response> {
    let account = account.unwrap_or_else(|| HOME_ACCOUNT.to_owned());
    if shared.has_account(&account) {
        Ok(account)
    } else {
        Err(json_error(
            StatusCode::NOT_FOUND,
            format!(
                "'{account}' is not one of the emulator's {} accounts",
                shared.accounts
            ),
        ))
    }
}

async fn state(State(shared): State<Arc<Shared>>, Query(query): Query<AccountQuery>) -> Response {
    let account = match account_of(&shared, query.account) {
        Ok(account) => account,
        Err(response) => return response,
    };
    let enabled = shared.enabled_regions(&account);
    let regions = enabled
        .iter()
        .map(|region| {
            let view = RegionView {
                amis: shared.storable_amis(&account, region),
                buckets: shared.buckets(&account, region),
            };
            (region.clone(), view)
        })
        .collect();
    let disabled_regions = shared
        .regions
        .iter()
        .filter(|r| !enabled.contains(r))
        .cloned()
        .collect();
    Json(StateView {
        accounts: shared.account_ids(),
        account,
        regions,
        disabled_regions,
    })
    .into_response()
}

async fn accounts(State(shared): State<Arc<Shared>>) -> Response {
    let rules = shared.runtime().rules;
    let views: Vec<AccountView> = shared
        .account_ids()
        .into_iter()
        .enumerate()
        .map(|(index, id)| AccountView {
            name: account_name(index, shared.accounts),
            status: if rules.suspended_accounts.contains(&id) {
                "SUSPENDED"
            } else {
                "ACTIVE"
            },
            enabled_regions: shared
                .regions
                .iter()
                .filter(|r| rules.region_enabled(&id, r))
                .cloned()
                .collect(),
            id,
        })
        .collect();
    Json(views).into_response()
}

#[derive(Debug, Deserialize)]
struct TasksQuery {
    region: Option<String>,
    account: Option<String>,
}

async fn tasks(State(shared): State<Arc<Shared>>, Query(query): Query<TasksQuery>) -> Response {
    let account = match account_of(&shared, query.account) {
        Ok(account) => account,
        Err(response) => return response,
    };
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
    Json(shared.tasks(&account, &region)).into_response()
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
