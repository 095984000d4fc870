//! AWS Organizations: discovering the member accounts (`org_member_role`). `ListAccounts`
//! (paged) is called with the server's own (home) credentials; every ACTIVE account but the
//! home one and those in `org_skip_accounts` is reached by assuming
//! `arn:aws:iam::<id>:role/<org_member_role>`. The same pages feed the table
//! `aws.organizations.accounts` (one record batch per page).
//!
//! How the list is kept up to date (refreshed on `org_refresh` without blocking queries,
//! the first query waiting for the first listing) is `client::Ec2Clients::discover`'s.

use std::sync::Arc;
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use futures::Stream;

use super::error::AwsError;
use crate::metrics::AwsMetrics;

/// The operation discovery calls.
pub const LIST_ACCOUNTS: &str = "ListAccounts";

/// Default of `org_refresh`: how long one listing of the organization is used.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(15 * 60);

/// How the organization's accounts are discovered.
#[derive(Clone, PartialEq, Eq)]
pub struct OrgDiscovery {
    /// The NAME of the role assumed in every member account (`arn:aws:iam::<id>:role/<name>`;
    /// a path may come before the name: `path/name`).
    pub member_role: String,
    /// Accounts left out (12-digit ids).
    pub skip_accounts: Vec<String>,
    /// How long a listing is used before it is refreshed.
    pub refresh: Duration,
    /// The external id the member role's trust policy requires, if any (never printed).
    pub external_id: Option<String>,
}

impl std::fmt::Debug for OrgDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgDiscovery")
            .field("member_role", &self.member_role)
            .field("skip_accounts", &self.skip_accounts)
            .field("refresh", &self.refresh)
            // Never print the external id.
            .field("external_id", &self.external_id.as_ref().map(|_| ".."))
            .finish()
    }
}

impl OrgDiscovery {
    /// The role assumed in `account`.
    pub fn role_arn(&self, account: &str) -> String {
        format!("arn:aws:iam::{account}:role/{}", self.member_role)
    }

    /// Why these settings cannot be used, in words naming the setting.
    pub fn check(&self) -> Result<(), String> {
        super::accounts::check_role_arn(&self.role_arn("123456789012")).map_err(|_| {
            format!(
                "org_member_role `{}` must be the NAME of a role (letters, digits and \
                 +=,.@_-, optionally after a path/), not an ARN: the server assumes \
                 arn:aws:iam::<account>:role/<org_member_role> in each member account",
                self.member_role
            )
        })?;
        if let Some(bad) = self
            .skip_accounts
            .iter()
            .find(|a| !super::client::is_account_id(a))
        {
            return Err(format!(
                "org_skip_accounts: `{bad}` is not an AWS account id (12 digits)"
            ));
        }
        if self.refresh.is_zero() {
            return Err("org_refresh must be more than 0s".to_owned());
        }
        Ok(())
    }
}

/// One account of the organization, as `ListAccounts` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    /// The 12-digit id.
    pub id: String,
    /// Its name.
    pub name: Option<String>,
    /// The email address of its owner.
    pub email: Option<String>,
    /// `ACTIVE`, `SUSPENDED` or `PENDING_CLOSURE`.
    pub status: Option<String>,
    /// When it joined the organization, in milliseconds since the epoch (UTC).
    pub joined_ms: Option<i64>,
}

impl OrgAccount {
    /// Whether the account is ACTIVE (a role of any other cannot be assumed).
    pub fn is_active(&self) -> bool {
        self.status.as_deref() == Some("ACTIVE")
    }
}

/// The pages of `ListAccounts` asked with `base`'s credentials (the home account's) in
/// `region`, one item per page, the next page asked only when the consumer wants it. A
/// failed call is the stream's last item; its error says what permission discovery needs.
pub fn list_accounts(
    base: &SdkConfig,
    region: &str,
    metrics: Arc<AwsMetrics>,
) -> impl Stream<Item = Result<Vec<OrgAccount>, AwsError>> + Send + 'static {
    let conf = aws_sdk_organizations::config::Builder::from(base)
        .region(Region::new(region.to_owned()))
        .build();
    let client = aws_sdk_organizations::Client::from_conf(conf);
    let region = region.to_owned();
    // `Some(token)`: a page to ask (the first has no token); `None`: done.
    futures::stream::try_unfold(Some(None::<String>), move |next| {
        let client = client.clone();
        let region = region.clone();
        let metrics = Arc::clone(&metrics);
        async move {
            let Some(token) = next else {
                return Ok(None);
            };
            let result = client.list_accounts().set_next_token(token).send().await;
            metrics.aws_call(
                &region,
                LIST_ACCOUNTS,
                if result.is_ok() { "ok" } else { "error" },
            );
            let out =
                result.map_err(|e| with_advice(AwsError::from_sdk(&region, LIST_ACCOUNTS, e)))?;
            let page = out
                .accounts()
                .iter()
                .filter_map(|a| {
                    Some(OrgAccount {
                        id: a.id()?.to_owned(),
                        name: a.name().map(str::to_owned),
                        email: a.email().map(str::to_owned),
                        status: a.status().map(|s| s.as_str().to_owned()),
                        joined_ms: a.joined_timestamp().and_then(|t| t.to_millis().ok()),
                    })
                })
                .collect();
            let next = out.next_token().map(|t| Some(t.to_owned()));
            Ok(Some((page, next)))
        }
    })
}

/// `error` of a ListAccounts call, saying what discovery needs.
fn with_advice(mut error: AwsError) -> AwsError {
    error.message = format!(
        "{}. Discovering the organization's accounts (org_member_role) needs \
         organizations:ListAccounts for the server's own credentials, which AWS allows from \
         the organization's management account or a delegated administrator account; \
         otherwise list the accounts with [[accounts]] instead",
        error.message.trim_end_matches('.')
    );
    // A refusal is a permission problem of the server's set-up (PERMISSION_DENIED).
    if matches!(
        error.code.as_deref(),
        Some("AccessDeniedException" | "AWSOrganizationsNotInUseException")
    ) {
        error.kind = super::error::AwsErrorKind::PermissionDenied;
    }
    error
}

/// The members discovery gives from a listing: every ACTIVE account but `home` and the
/// skipped ones, in the listing's order.
pub fn members<'a>(
    listing: &'a [OrgAccount],
    home: &'a str,
    discovery: &'a OrgDiscovery,
) -> impl Iterator<Item = &'a OrgAccount> + 'a {
    listing
        .iter()
        .filter(move |a| a.is_active() && a.id != home && !discovery.skip_accounts.contains(&a.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovery(role: &str) -> OrgDiscovery {
        OrgDiscovery {
            member_role: role.into(),
            skip_accounts: vec!["100000000002".into()],
            refresh: DEFAULT_REFRESH,
            external_id: Some("s3cr3t-ext".into()),
        }
    }

    fn account(id: &str, status: &str) -> OrgAccount {
        OrgAccount {
            id: id.into(),
            name: None,
            email: None,
            status: Some(status.into()),
            joined_ms: None,
        }
    }

    #[test]
    fn the_member_role_is_a_name_and_the_external_id_is_never_printed() {
        let d = discovery("flightsql-reader");
        assert_eq!(d.check(), Ok(()));
        assert_eq!(
            d.role_arn("100000000001"),
            "arn:aws:iam::100000000001:role/flightsql-reader"
        );
        assert!(discovery("path/reader").check().is_ok());
        let err = discovery("arn:aws:iam::1:role/x").check().unwrap_err();
        assert!(
            err.starts_with("org_member_role `arn:aws:iam::1:role/x`"),
            "{err}"
        );
        let mut bad = discovery("r");
        bad.skip_accounts = vec!["12".into()];
        assert!(bad.check().unwrap_err().contains("`12`"));
        assert!(!format!("{d:?}").contains("s3cr3t"));
    }

    #[test]
    fn members_are_the_active_accounts_but_home_and_the_skipped() {
        let listing = vec![
            account("111111111111", "ACTIVE"),
            account("100000000001", "ACTIVE"),
            account("100000000002", "ACTIVE"),
            account("100000000003", "SUSPENDED"),
            account("100000000004", "ACTIVE"),
        ];
        let d = discovery("r");
        let ids: Vec<&str> = members(&listing, "111111111111", &d)
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(ids, ["100000000001", "100000000004"]);
    }
}
