//! The accounts the server reaches besides its own: each through a role it assumes
//! (`AccountSpec`: id, role ARN, optional external id and regions), with credentials from
//! aws-config's `AssumeRoleProvider` kept until shortly before they expire
//! (`RoleCredentials`), so that a query's plan can assume every role it needs once, fail
//! loudly naming the account and the role, and the SDK clients then reuse the same
//! credentials (the SDK's identity cache asks this provider again when they near expiry).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_credential_types::Credentials;
use aws_sdk_sts::error::SdkError;
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::client::is_account_id;
use super::error::{error_chain, AwsError, AwsErrorKind};

/// The role session name the server's AssumeRole calls use (it shows in CloudTrail).
pub const SESSION_NAME: &str = "aws-flightsql";

/// The longest credentials are kept before they expire: they are renewed within this
/// long (or within a quarter of their lifetime, if that is shorter) of their expiry.
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// One account reached through a role.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountSpec {
    /// The 12-digit account id.
    pub id: String,
    /// The role to assume in it (`arn:aws:iam::<id>:role/<name>`).
    pub role_arn: String,
    /// The external id the role's trust policy requires, if any (never printed).
    pub external_id: Option<String>,
    /// The regions asked in it when a query names none; `None` = the server's.
    pub regions: Option<Vec<String>>,
}

impl fmt::Debug for AccountSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountSpec")
            .field("id", &self.id)
            .field("role_arn", &self.role_arn)
            // Never print the external id.
            .field("external_id", &self.external_id.as_ref().map(|_| ".."))
            .field("regions", &self.regions)
            .finish()
    }
}

impl AccountSpec {
    /// Why this account cannot be used as given, in words naming it.
    pub fn check(&self) -> Result<(), String> {
        if !is_account_id(&self.id) {
            return Err(format!(
                "account id `{}` is not an AWS account id (12 digits)",
                self.id
            ));
        }
        check_role_arn(&self.role_arn).map_err(|e| format!("account {}: role_arn {e}", self.id))?;
        if let Some(external_id) = &self.external_id {
            // AWS's limits for ExternalId: 2 to 1224 characters of [\w+=,.@:/-].
            let ok = (2..=1224).contains(&external_id.len())
                && external_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
            if !ok {
                return Err(format!(
                    "account {}: external_id must be 2 to 1224 characters of letters, digits \
                     and _+=,.@:/- (AWS's rule)",
                    self.id
                ));
            }
        }
        Ok(())
    }
}

/// Checks the shape of an IAM role ARN: `arn:<partition>:iam::<12 digits>:role/<path/name>`.
pub fn check_role_arn(arn: &str) -> Result<(), String> {
    let shape = "must look like arn:aws:iam::123456789012:role/NAME";
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(format!("`{arn}` {shape}"));
    };
    let name = resource.strip_prefix("role/").unwrap_or_default();
    let name_ok = !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
        && !name.ends_with('/');
    if !partition.starts_with("aws") || !is_account_id(account) || !name_ok {
        return Err(format!("`{arn}` {shape}"));
    }
    Ok(())
}

/// The credentials of one assumed role, asked from STS when there are none or they are
/// about to expire, shared by every client of the account.
pub(crate) struct RoleCredentials {
    account: String,
    role_arn: String,
    provider: AssumeRoleProvider,
    /// The last credentials and when they were obtained.
    cached: tokio::sync::Mutex<Option<(Credentials, SystemTime)>>,
    /// Where the AssumeRole calls are counted.
    metrics: Arc<crate::metrics::AwsMetrics>,
    /// The region STS is asked in (for the metrics and errors).
    region: String,
}

impl fmt::Debug for RoleCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The credentials are never printed.
        f.debug_struct("RoleCredentials")
            .field("account", &self.account)
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}

impl RoleCredentials {
    /// Credentials for `spec`'s role, assumed with the credentials of `home` (the server's
    /// own), sent to STS in `home`'s region.
    pub(crate) async fn new(
        spec: &AccountSpec,
        home: &SdkConfig,
        metrics: Arc<crate::metrics::AwsMetrics>,
    ) -> Self {
        let mut builder = AssumeRoleProvider::builder(spec.role_arn.clone())
            .session_name(SESSION_NAME)
            .configure(home);
        if let Some(external_id) = &spec.external_id {
            builder = builder.external_id(external_id.clone());
        }
        RoleCredentials {
            account: spec.id.clone(),
            role_arn: spec.role_arn.clone(),
            provider: builder.build().await,
            cached: tokio::sync::Mutex::default(),
            metrics,
            region: home
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".to_owned()),
        }
    }

    /// The role's credentials: the kept ones while they are fresh, else new ones from STS
    /// (one AssumeRole call, however many callers wait for it).
    pub(crate) async fn get(&self) -> Result<Credentials, AwsError> {
        let mut cached = self.cached.lock().await;
        let now = SystemTime::now();
        if let Some((credentials, obtained)) = cached.as_ref() {
            if fresh(credentials, *obtained, now) {
                return Ok(credentials.clone());
            }
        }
        let result = self.provider.provide_credentials().await;
        self.metrics.aws_call(
            &self.region,
            "AssumeRole",
            if result.is_ok() { "ok" } else { "error" },
        );
        let credentials = result.map_err(|e| self.failure(&e))?;
        *cached = Some((credentials.clone(), now));
        Ok(credentials)
    }

    /// The error of a failed AssumeRole, naming the account, the role, and AWS's code and
    /// request id when STS answered.
    fn failure(&self, err: &CredentialsError) -> AwsError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        let mut found = None;
        while let Some(e) = source {
            if let Some(sdk) = e.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>() {
                found = Some(AwsError::from_sdk_ref(&self.region, "AssumeRole", sdk));
                break;
            }
            source = e.source();
        }
        let mut error = found.unwrap_or_else(|| {
            AwsError::local(
                &self.region,
                "AssumeRole",
                AwsErrorKind::Credentials,
                error_chain(err),
            )
        });
        // A refusal to assume the role is a permission problem of that account's set-up,
        // not missing server credentials.
        if matches!(
            error.code.as_deref(),
            Some("AccessDenied" | "AccessDeniedException")
        ) {
            error.kind = AwsErrorKind::PermissionDenied;
        }
        error.account = Some(self.account.clone());
        error.role_arn = Some(self.role_arn.clone());
        error
    }
}

/// Whether credentials obtained at `obtained` may still be used at `now`.
fn fresh(credentials: &Credentials, obtained: SystemTime, now: SystemTime) -> bool {
    let Some(expiry) = credentials.expiry() else {
        return true;
    };
    let lifetime = expiry.duration_since(obtained).unwrap_or_default();
    let margin = RENEW_BEFORE.min(lifetime / 4);
    match expiry.checked_sub(margin) {
        Some(renew_at) => now < renew_at,
        None => false,
    }
}

/// [`RoleCredentials`] as the SDK's credentials provider of the account's clients.
#[derive(Debug, Clone)]
pub(crate) struct SharedRole(pub(crate) Arc<RoleCredentials>);

impl ProvideCredentials for SharedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0.get().await.map_err(CredentialsError::provider_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, role: &str) -> AccountSpec {
        AccountSpec {
            id: id.into(),
            role_arn: role.into(),
            external_id: None,
            regions: None,
        }
    }

    #[test]
    fn role_arns_are_checked_for_shape() {
        for good in [
            "arn:aws:iam::100000000001:role/reader",
            "arn:aws:iam::100000000001:role/path/to/reader",
            "arn:aws-cn:iam::100000000001:role/r+=,.@_-",
        ] {
            assert_eq!(check_role_arn(good), Ok(()), "{good}");
        }
        for bad in [
            "reader",
            "arn:aws:iam::1000000001:role/reader",
            "arn:aws:iam::100000000001:user/bob",
            "arn:aws:iam::100000000001:role/",
            "arn:aws:sts::100000000001:role/reader",
            "arn:aws:iam:us-east-1:100000000001:role/reader",
            "arn:aws:iam::100000000001:role/bad name",
        ] {
            assert!(check_role_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_spec_names_what_is_wrong_and_never_prints_the_external_id() {
        let mut s = spec("100000000001", "arn:aws:iam::100000000001:role/reader");
        assert_eq!(s.check(), Ok(()));
        s.external_id = Some("s3cr3t-external".into());
        assert_eq!(s.check(), Ok(()));
        assert!(!format!("{s:?}").contains("s3cr3t"), "{s:?}");
        s.external_id = Some("x".into());
        assert!(s.check().unwrap_err().contains("external_id"));
        let err = spec("12", "arn:aws:iam::100000000001:role/r")
            .check()
            .unwrap_err();
        assert!(err.contains("`12`"), "{err}");
        let err = spec("100000000001", "role/r").check().unwrap_err();
        assert!(
            err.starts_with("account 100000000001: role_arn `role/r`"),
            "{err}"
        );
    }

    #[test]
    fn credentials_are_renewed_before_they_expire() {
        let now = SystemTime::now();
        let expiring = |seconds: u64| {
            Credentials::new(
                "ASIA",
                "secret",
                Some("token".into()),
                Some(now + Duration::from_secs(seconds)),
                "test",
            )
        };
        // An hour: kept until 5 minutes before the end.
        let hour = expiring(3600);
        assert!(fresh(&hour, now, now + Duration::from_secs(3000)));
        assert!(!fresh(&hour, now, now + Duration::from_secs(3400)));
        // Two seconds: kept for the first three quarters.
        let short = expiring(2);
        assert!(fresh(&short, now, now + Duration::from_millis(1000)));
        assert!(!fresh(&short, now, now + Duration::from_millis(1600)));
        // No expiry: kept.
        let static_keys = Credentials::new("AKID", "secret", None, None, "test");
        assert!(fresh(&static_keys, now, now + Duration::from_secs(1 << 30)));
    }
}
