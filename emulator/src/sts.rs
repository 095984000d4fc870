//! STS (Query protocol, version 2011-06-15): `GetCallerIdentity` and `AssumeRole`, answered
//! in STS's XML (namespace [`NAMESPACE`], `<ErrorResponse>` errors). AssumeRole checks the
//! role against the account rules (account of the emulator's, not suspended, role not
//! unassumable, external id matching) and issues temporary credentials whose access key acts
//! in the role's account.

use chrono::{DateTime, TimeDelta, Timelike, Utc};

use crate::accounts::{parse_role_arn, Caller};
use crate::auth::Scope;
use crate::clock::format_timestamp;
use crate::emulator::Shared;
use crate::error::ApiError;
use crate::http::{self, Request, Seen, Service};
use crate::params::Params;
use crate::xml::{document, text};

/// The STS API namespace.
pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// Lifetime of AssumeRole's credentials when DurationSeconds is absent.
const DEFAULT_DURATION_SECONDS: u64 = 3600;

/// STS's pipeline: form fields, credentials, action, throttling, random faults, denied
/// actions, then the action.
pub(crate) fn handle(
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
    seen.region = Some(scope.region.clone());
    let caller = http::caller(shared, &scope, request.security_token, Service::Sts)?;
    seen.account = Some(caller.account().to_owned());
    let action = params
        .action()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::invalid_action(None))?;
    if action != "GetCallerIdentity" && action != "AssumeRole" {
        return Err(ApiError::sts_invalid_action(action));
    }
    let runtime = shared.runtime();
    http::inject_faults(
        shared,
        &runtime.faults,
        caller.account(),
        &scope.region,
        Service::Sts,
    )?;
    let denied = runtime.faults.deny_actions.iter().any(|a| a == action);
    if action == "GetCallerIdentity" {
        // GetCallerIdentity needs no permission in AWS: a denied action still answers.
        return Ok(get_caller_identity(&caller, request_id));
    }
    let assume = AssumeRoleRequest::from_params(&params)?;
    if denied {
        return Err(ApiError::access_denied(
            &caller.arn(),
            "sts:AssumeRole",
            &assume.role_arn,
        ));
    }
    assume_role(shared, &caller, &assume, request_id)
}

/// STS's error document.
pub fn error(err: &ApiError, request_id: &str) -> Vec<u8> {
    let kind = if err.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    document(|w| {
        w.create_element("ErrorResponse")
            .with_attribute(("xmlns", NAMESPACE))
            .write_inner_content(|w| {
                w.create_element("Error").write_inner_content(|w| {
                    text(w, "Type", kind)?;
                    text(w, "Code", err.code)?;
                    text(w, "Message", &err.message)
                })?;
                text(w, "RequestId", request_id)
            })?;
        Ok(())
    })
}

fn success(
    action: &str,
    request_id: &str,
    result: impl FnOnce(&mut crate::xml::W) -> std::io::Result<()>,
) -> Vec<u8> {
    document(|w| {
        w.create_element(format!("{action}Response"))
            .with_attribute(("xmlns", NAMESPACE))
            .write_inner_content(|w| {
                w.create_element(format!("{action}Result"))
                    .write_inner_content(result)?;
                w.create_element("ResponseMetadata")
                    .write_inner_content(|w| text(w, "RequestId", request_id))?;
                Ok(())
            })?;
        Ok(())
    })
}

fn get_caller_identity(caller: &Caller, request_id: &str) -> Vec<u8> {
    success("GetCallerIdentity", request_id, |w| {
        text(w, "Arn", &caller.arn())?;
        text(w, "UserId", &caller.user_id())?;
        text(w, "Account", caller.account())
    })
}

/// AssumeRole's parameters, checked against STS's constraints.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AssumeRoleRequest {
    role_arn: String,
    session_name: String,
    external_id: Option<String>,
    duration_seconds: Option<u64>,
}

fn constraint(value: &str, field: &str, rule: &str) -> ApiError {
    ApiError::validation_error(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {rule}"
    ))
}

fn null(field: &str) -> ApiError {
    ApiError::validation_error(format!(
        "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
    ))
}

fn matches(value: &str, extra: &[u8]) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || extra.contains(&b))
}

impl AssumeRoleRequest {
    fn from_params(params: &Params) -> Result<Self, ApiError> {
        let role_arn = params.get("RoleArn").ok_or_else(|| null("roleArn"))?;
        if !(20..=2048).contains(&role_arn.len()) {
            return Err(constraint(
                role_arn,
                "roleArn",
                "Member must have length between 20 and 2048",
            ));
        }
        let session_name = params
            .get("RoleSessionName")
            .ok_or_else(|| null("roleSessionName"))?;
        if !(2..=64).contains(&session_name.len()) || !matches(session_name, b"+=,.@-") {
            return Err(constraint(
                session_name,
                "roleSessionName",
                "Member must have length between 2 and 64 and satisfy regular expression pattern: [\\w+=,.@-]*",
            ));
        }
        let external_id = params.get("ExternalId");
        if let Some(id) = external_id {
            // The value is a secret: never repeated in an answer.
            if !(2..=1224).contains(&id.len()) || !matches(id, b"+=,.@:/-") {
                return Err(ApiError::validation_error(
                    "1 validation error detected: Value at 'externalId' failed to satisfy constraint: Member must have length between 2 and 1224 and satisfy regular expression pattern: [\\w+=,.@:\\/-]*",
                ));
            }
        }
        let duration_seconds = params
            .get("DurationSeconds")
            .map(|raw| match raw.parse::<u64>() {
                Ok(secs) if (900..=43_200).contains(&secs) => Ok(secs),
                Ok(secs) if secs < 900 => Err(constraint(
                    raw,
                    "durationSeconds",
                    "Member must have value greater than or equal to 900",
                )),
                Ok(_) => Err(constraint(
                    raw,
                    "durationSeconds",
                    "Member must have value less than or equal to 43200",
                )),
                Err(_) => Err(ApiError::validation_error(format!(
                    "Value '{raw}' for parameter DurationSeconds is invalid: it must be a whole number of seconds"
                ))),
            })
            .transpose()?;
        Ok(AssumeRoleRequest {
            role_arn: role_arn.to_owned(),
            session_name: session_name.to_owned(),
            external_id: external_id.map(str::to_owned),
            duration_seconds,
        })
    }
}

/// Rounds up to the whole second, the precision of STS's Expiration.
fn ceil_to_second(time: DateTime<Utc>) -> DateTime<Utc> {
    let whole = time.with_nanosecond(0).expect("0 ns is valid");
    if whole == time {
        whole
    } else {
        whole + TimeDelta::seconds(1)
    }
}

fn assume_role(
    shared: &Shared,
    caller: &Caller,
    request: &AssumeRoleRequest,
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    let denied = || ApiError::access_denied(&caller.arn(), "sts:AssumeRole", &request.role_arn);
    let Some((account, role_name)) = parse_role_arn(&request.role_arn) else {
        return Err(ApiError::validation_error(format!(
            "{} is not a valid role ARN: expected arn:aws:iam::<12-digit account>:role/<name>",
            request.role_arn
        )));
    };
    let rules = shared.runtime().rules;
    let trusted = shared.has_account(account)
        && !rules.suspended_accounts.contains(account)
        && !rules.unassumable_roles.contains(&request.role_arn)
        && rules
            .role_external_ids
            .get(&request.role_arn)
            .is_none_or(|required| request.external_id.as_deref() == Some(required.as_str()));
    if !trusted {
        tracing::info!(caller = %caller.arn(), role = %request.role_arn, "AssumeRole refused");
        return Err(denied());
    }
    let lifetime = request
        .duration_seconds
        .unwrap_or(DEFAULT_DURATION_SECONDS)
        .min(rules.credential_seconds(account));
    let now = Utc::now();
    let expires = ceil_to_second(now + TimeDelta::seconds(lifetime as i64));
    let (access_key, issued) = shared.credentials.issue(
        &request.role_arn,
        role_name,
        account,
        &request.session_name,
        now,
        expires - now,
    );
    tracing::info!(
        account,
        role = role_name,
        session = %request.session_name,
        lifetime_secs = lifetime,
        "role assumed"
    );
    let expiration = format_timestamp(expires).replace(".000Z", "Z");
    Ok(success("AssumeRole", request_id, |w| {
        w.create_element("AssumedRoleUser")
            .write_inner_content(|w| {
                text(w, "AssumedRoleId", &issued.assumed_role_id)?;
                text(w, "Arn", &issued.arn())
            })?;
        w.create_element("Credentials").write_inner_content(|w| {
            text(w, "AccessKeyId", &access_key)?;
            text(w, "SecretAccessKey", &issued.secret_access_key)?;
            text(w, "SessionToken", &issued.session_token)?;
            text(w, "Expiration", &expiration)
        })?;
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(body: &str) -> Params {
        Params::parse(None, body.as_bytes()).unwrap()
    }

    #[test]
    fn assume_role_parameters_follow_sts_constraints() {
        let ok = AssumeRoleRequest::from_params(&params(
            "RoleArn=arn%3Aaws%3Aiam%3A%3A100000000001%3Arole%2FReader&RoleSessionName=s-1&DurationSeconds=900",
        ))
        .unwrap();
        assert_eq!(ok.role_arn, "arn:aws:iam::100000000001:role/Reader");
        assert_eq!(ok.duration_seconds, Some(900));
        for (body, needle) in [
            ("RoleSessionName=ab", "Value null at 'roleArn'"),
            ("RoleArn=arn%3Aaws%3Aiam%3A%3A100000000001%3Arole%2FReader", "roleSessionName"),
            ("RoleArn=short&RoleSessionName=ab", "length between 20 and 2048"),
            (
                "RoleArn=arn%3Aaws%3Aiam%3A%3A100000000001%3Arole%2FReader&RoleSessionName=a",
                "length between 2 and 64",
            ),
            (
                "RoleArn=arn%3Aaws%3Aiam%3A%3A100000000001%3Arole%2FReader&RoleSessionName=ab&DurationSeconds=899",
                "greater than or equal to 900",
            ),
            (
                "RoleArn=arn%3Aaws%3Aiam%3A%3A100000000001%3Arole%2FReader&RoleSessionName=ab&DurationSeconds=43201",
                "less than or equal to 43200",
            ),
            (
                "RoleArn=arn%3Aaws%3Aiam%3A%3A100000000001%3Arole%2FReader&RoleSessionName=ab&ExternalId=x",
                "externalId",
            ),
        ] {
            let err = AssumeRoleRequest::from_params(&params(body)).unwrap_err();
            assert_eq!(err.code, "ValidationError", "{body}");
            assert!(err.message.contains(needle), "{body}: {}", err.message);
        }
    }

    #[test]
    fn error_document_is_stss() {
        let xml = String::from_utf8(error(&ApiError::expired_token(), "rid")).unwrap();
        assert!(xml.contains(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
             <Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message>\
             </Error><RequestId>rid</RequestId></ErrorResponse>"
        ));
        let xml = String::from_utf8(error(&ApiError::internal_failure(), "rid")).unwrap();
        assert!(xml.contains("<Type>Receiver</Type>"));
    }

    #[test]
    fn expiration_is_rounded_up_to_the_second() {
        let t = DateTime::from_timestamp_millis(1_800_000_000_123).unwrap();
        assert_eq!(
            ceil_to_second(t),
            DateTime::from_timestamp(1_800_000_001, 0).unwrap()
        );
        let whole = DateTime::from_timestamp(1_800_000_001, 0).unwrap();
        assert_eq!(ceil_to_second(whole), whole);
    }
}
