//! AWS Organizations (JSON 1.1 protocol, `X-Amz-Target: AWSOrganizationsV20161128.<op>`):
//! `ListAccounts`, paged in a stable order (the home account first, then the members by id),
//! for the home (management) account only. Errors are `{"__type", "Message"}` bodies.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::accounts::{account_id, account_name, HOME_ACCOUNT};
use crate::auth::Scope;
use crate::emulator::Shared;
use crate::error::ApiError;
use crate::http::{self, Request, Seen, Service};
use crate::sample::fnv1a;

/// The `X-Amz-Target` prefix of Organizations' operations.
pub const TARGET_PREFIX: &str = "AWSOrganizationsV20161128.";
/// ListAccounts' page size when MaxResults is absent, and its maximum.
pub const MAX_RESULTS: usize = 20;
/// The organization's id, in account ARNs.
const ORGANIZATION_ID: &str = "o-emulator";
/// When the organization was created (2020-01-01T00:00:00Z): accounts joined after it.
const ORGANIZATION_CREATED: i64 = 1_577_836_800;
const TOKEN_VERSION: &str = "accounts-v1";

/// Organizations' pipeline: body, credentials, operation, throttling, random faults, denied
/// actions, the management-account check, then the operation.
pub(crate) fn handle(
    shared: &Shared,
    request: Request<'_>,
    scope: Result<Scope, ApiError>,
    _request_id: &str,
    seen: &mut Seen,
) -> Result<Vec<u8>, ApiError> {
    let target = request.target.unwrap_or_default();
    let operation = target.strip_prefix(TARGET_PREFIX);
    seen.action = operation.unwrap_or(target).to_owned();
    let body = if request.body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(request.body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(ApiError::serialization(
                    "The request body must be a JSON object.",
                ))
            }
            Err(err) => {
                return Err(ApiError::serialization(format!(
                    "The request body is not valid JSON: {err}"
                )))
            }
        }
    };
    seen.params = body
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), value)
        })
        .collect();
    let scope = scope?;
    seen.region = Some(scope.region.clone());
    let caller = http::caller(
        shared,
        &scope,
        request.security_token,
        Service::Organizations,
    )?;
    seen.account = Some(caller.account().to_owned());
    if operation != Some("ListAccounts") {
        return Err(ApiError::unknown_operation(target));
    }
    let runtime = shared.runtime();
    http::inject_faults(
        shared,
        &runtime.faults,
        caller.account(),
        &scope.region,
        Service::Organizations,
    )?;
    if runtime
        .faults
        .deny_actions
        .iter()
        .any(|a| a == "ListAccounts")
        || caller.account() != HOME_ACCOUNT
    {
        return Err(ApiError::organizations_access_denied());
    }
    list_accounts(shared, &body)
}

/// The JSON error body.
pub fn error(err: &ApiError) -> Vec<u8> {
    let mut body = json!({ "__type": err.code, "Message": err.message });
    if let Some(reason) = err.reason {
        body["Reason"] = json!(reason);
    }
    serde_json::to_vec(&body).expect("a JSON value serialises")
}

fn bad_token() -> ApiError {
    ApiError::invalid_input(
        "INVALID_NEXT_TOKEN",
        "You specified an invalid value for nextToken. You must get the value from the response to a previous call to the API.",
    )
}

/// The token continuing the listing at `offset` among `count` accounts.
fn encode_token(offset: usize, count: usize) -> String {
    let plain = format!("{TOKEN_VERSION}:{offset}:{count}");
    let check = fnv1a(plain.as_bytes());
    URL_SAFE_NO_PAD.encode(format!("{plain}:{check:016x}"))
}

fn decode_token(token: &str, count: usize) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let plain = String::from_utf8(bytes).ok()?;
    let (body, check) = plain.rsplit_once(':')?;
    if format!("{:016x}", fnv1a(body.as_bytes())) != check {
        return None;
    }
    let mut parts = body.split(':');
    let (Some(TOKEN_VERSION), Some(offset), Some(total), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let offset: usize = offset.parse().ok()?;
    (total.parse::<usize>().ok()? == count && offset < count).then_some(offset)
}

fn list_accounts(shared: &Shared, body: &Map<String, Value>) -> Result<Vec<u8>, ApiError> {
    let page_size = match body.get("MaxResults") {
        None | Some(Value::Null) => MAX_RESULTS,
        Some(value) => match value.as_i64() {
            Some(n) if n < 1 => {
                return Err(ApiError::invalid_input(
                    "MIN_VALUE_EXCEEDED",
                    format!("1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"),
                ))
            }
            Some(n) if n > MAX_RESULTS as i64 => {
                return Err(ApiError::invalid_input(
                    "MAX_VALUE_EXCEEDED",
                    format!("1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {MAX_RESULTS}"),
                ))
            }
            Some(n) => n as usize,
            None => {
                return Err(ApiError::serialization(format!(
                    "MaxResults must be an integer, not {value}"
                )))
            }
        },
    };
    let count = shared.accounts;
    let offset = match body.get("NextToken") {
        None | Some(Value::Null) => 0,
        Some(Value::String(token)) => decode_token(token, count).ok_or_else(bad_token)?,
        Some(_) => return Err(bad_token()),
    };
    let rules = shared.runtime().rules;
    let end = (offset + page_size).min(count);
    let accounts: Vec<Value> = (offset..end)
        .map(|index| {
            let id = account_id(index);
            let status = if rules.suspended_accounts.contains(&id) {
                "SUSPENDED"
            } else {
                "ACTIVE"
            };
            let joined = ORGANIZATION_CREATED
                + index as i64 * 86_400
                + (fnv1a(format!("{}/{id}", shared.seed).as_bytes()) % 86_400) as i64;
            let joined_method = if index == 0 { "INVITED" } else { "CREATED" };
            json!({
                "Id": id,
                "Arn": format!("arn:aws:organizations::{HOME_ACCOUNT}:account/{ORGANIZATION_ID}/{id}"),
                "Email": format!("account-{id}@example.com"),
                "Name": account_name(index, count),
                "Status": status,
                "State": status,
                "JoinedMethod": joined_method,
                "JoinedTimestamp": joined,
            })
        })
        .collect();
    let mut answer = json!({ "Accounts": accounts });
    if end < count {
        answer["NextToken"] = json!(encode_token(end, count));
    }
    Ok(serde_json::to_vec(&answer).expect("a JSON value serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let token = encode_token(20, 45);
        assert_eq!(decode_token(&token, 45), Some(20));
        assert_eq!(decode_token(&token, 46), None);
        assert_eq!(decode_token("garbage", 45), None);
        let forged = URL_SAFE_NO_PAD.encode("accounts-v1:40:45:0000000000000000");
        assert_eq!(decode_token(&forged, 45), None);
        assert_eq!(decode_token(&encode_token(45, 45), 45), None);
    }

    #[test]
    fn error_body_has_type_message_and_reason() {
        let body: Value = serde_json::from_slice(&error(&bad_token())).unwrap();
        assert_eq!(body["__type"], "InvalidInputException");
        assert_eq!(body["Reason"], "INVALID_NEXT_TOKEN");
        let body: Value =
            serde_json::from_slice(&error(&ApiError::organizations_access_denied())).unwrap();
        assert_eq!(body["__type"], "AccessDeniedException");
        assert!(body.get("Reason").is_none());
    }
}
