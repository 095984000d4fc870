//! The three EC2 actions: each reads its typed request, checks it against the state of the
//! caller's account in the region,
//! answers DryRun, acts, and renders its XML. Everything before (latency, credentials,
//! throttling, denied actions) is the pipeline's (`http`).

use crate::accounts::HOME_ACCOUNT;
use crate::emulator::Shared;
use crate::error::ApiError;
use crate::params::{CreateRequest, DescribeRequest, Params, RegionsRequest, MAX_RESULTS};
use crate::store::CreateRefusal;
use crate::token;
use crate::xml::{self, RegionInfo};

/// Regions DescribeRegions shows as `not-opted-in` (the first two that are not served), so a
/// client asking for "every region" has to filter on the opt-in status.
const UNSERVED_REGION_CANDIDATES: [&str; 4] =
    ["af-south-1", "me-south-1", "ap-east-1", "eu-south-1"];

/// The actions the emulator implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// SELECT.
    DescribeStoreImageTasks,
    /// INSERT.
    CreateStoreImageTask,
    /// Region discovery.
    DescribeRegions,
}

impl Action {
    /// The action named by an `Action` field.
    pub fn from_name(name: &str) -> Option<Action> {
        match name {
            "DescribeStoreImageTasks" => Some(Action::DescribeStoreImageTasks),
            "CreateStoreImageTask" => Some(Action::CreateStoreImageTask),
            "DescribeRegions" => Some(Action::DescribeRegions),
            _ => None,
        }
    }

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Action::DescribeStoreImageTasks => "DescribeStoreImageTasks",
            Action::CreateStoreImageTask => "CreateStoreImageTask",
            Action::DescribeRegions => "DescribeRegions",
        }
    }
}

/// Runs `action` for `account` (one of the emulator's) in a region enabled there; the
/// answer's XML body or its error.
pub(crate) fn run(
    shared: &Shared,
    action: Action,
    account: &str,
    region: &str,
    params: &Params,
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    match action {
        Action::DescribeStoreImageTasks => {
            describe_store_image_tasks(shared, account, region, params, request_id)
        }
        Action::CreateStoreImageTask => {
            create_store_image_task(shared, account, region, params, request_id)
        }
        Action::DescribeRegions => describe_regions(shared, account, params, request_id),
    }
}

/// What a pagination token is bound to besides the filters: the region, and the account
/// when it is not the home account's.
fn token_scope(account: &str, region: &str) -> String {
    if account == HOME_ACCOUNT {
        region.to_owned()
    } else {
        format!("{account}/{region}")
    }
}

fn describe_store_image_tasks(
    shared: &Shared,
    account: &str,
    region: &str,
    params: &Params,
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    let request = DescribeRequest::from_params(params)?;
    let scope = token_scope(account, region);
    let cursor = request
        .next_token
        .as_deref()
        .map(|t| {
            token::decode(t, &scope, &request.filters_fingerprint)
                .ok_or_else(|| ApiError::invalid_pagination_token(t))
        })
        .transpose()?;
    if request.dry_run {
        return Err(ApiError::dry_run_operation());
    }
    let now = shared.clock.now();
    let state = shared
        .region(account, region)
        .expect("the pipeline checked the account and region");
    let (items, next) = if request.image_ids.is_empty() {
        let page_size = request.max_results.unwrap_or(MAX_RESULTS);
        let page = state.list_page(now, &request.filters, cursor, page_size);
        let next = page
            .next
            .map(|c| token::encode(c, &scope, &request.filters_fingerprint));
        (page.items, next)
    } else {
        (state.list_amis(now, &request.image_ids), None)
    };
    drop(state);
    Ok(xml::describe_store_image_tasks(
        request_id,
        &items,
        next.as_deref(),
    ))
}

fn create_store_image_task(
    shared: &Shared,
    account: &str,
    region: &str,
    params: &Params,
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    let request = CreateRequest::from_params(params)?;
    let refusal = |refusal| match refusal {
        CreateRefusal::NotFound => ApiError::ami_not_found(&request.image_id),
        CreateRefusal::AlreadyInProgress => ApiError::invalid_parameter_value(format!(
            "A store task is already in progress for the image '{}'",
            request.image_id
        )),
    };
    let runtime = shared.runtime();
    let now = shared.clock.now();
    let object_key = {
        let mut state = shared
            .region(account, region)
            .expect("the pipeline checked the account and region");
        if request.dry_run {
            state
                .check_create(now, &request.image_id)
                .map_err(refusal)?;
            return Err(ApiError::dry_run_operation());
        }
        let duration = chrono::TimeDelta::from_std(runtime.task_duration)
            .expect("task duration is validated to be in range");
        state
            .create(
                now,
                &request.image_id,
                &request.bucket,
                request.tags.clone(),
                duration,
                runtime.failing_buckets.get(&request.bucket),
            )
            .map_err(refusal)?
    };
    tracing::info!(account, region, ami = %request.image_id, bucket = %request.bucket, "store task created");
    if shared.dice.roll(runtime.faults.fail_after_commit_rate) {
        return Err(ApiError::internal_error());
    }
    Ok(xml::create_store_image_task(request_id, &object_key))
}

fn describe_regions(
    shared: &Shared,
    account: &str,
    params: &Params,
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    let request = RegionsRequest::from_params(params)?;
    if request.dry_run {
        return Err(ApiError::dry_run_operation());
    }
    let rules = shared.runtime().rules;
    // A served region disabled in the account is shown as an opt-in region not opted in.
    let served = shared.regions.iter().map(|name| {
        let status = if rules.region_enabled(account, name) {
            "opt-in-not-required"
        } else {
            "not-opted-in"
        };
        (name.as_str(), status)
    });
    let unserved = UNSERVED_REGION_CANDIDATES
        .iter()
        .copied()
        .filter(|name| !shared.regions.iter().any(|r| r == name))
        .take(2)
        .map(|name| (name, "not-opted-in"));
    let mut regions: Vec<RegionInfo> = served
        .chain(unserved)
        .map(|(name, opt_in_status)| RegionInfo {
            name: name.to_owned(),
            endpoint: format!("ec2.{name}.amazonaws.com"),
            opt_in_status,
        })
        .collect();
    regions.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(xml::describe_regions(request_id, &regions))
}
