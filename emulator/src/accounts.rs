//! The organization: account ids and names, the rules that decide who may assume which role
//! (unassumable roles, required external ids, credential lifetimes, suspended accounts,
//! regions not enabled per account), and the temporary credentials AssumeRole issued, by
//! access key. Who calls is read from the access key of a request's credential scope: an
//! issued key is its role's account, any other key the home (management) account.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use rand::distr::{Alphanumeric, SampleString};
use rand::Rng;

use crate::config::{AccountUpdate, ConfigError, MAX_CREDENTIAL_SECONDS};
use crate::sample::fnv1a;

/// The home (management) account: the account of every access key the emulator did not issue.
pub const HOME_ACCOUNT: &str = "111111111111";
/// The most accounts an emulator serves.
pub const MAX_ACCOUNTS: usize = 100_000;
/// Member account ids are this plus their index (1, 2, ...).
const MEMBER_BASE: u64 = 100_000_000_000;

/// The id of account number `index`: 0 is [`HOME_ACCOUNT`], members are `100000000001`,
/// `100000000002`, ...
pub fn account_id(index: usize) -> String {
    if index == 0 {
        HOME_ACCOUNT.to_owned()
    } else {
        (MEMBER_BASE + index as u64).to_string()
    }
}

/// The index of an account id among `count` accounts.
pub(crate) fn account_index(id: &str, count: usize) -> Option<usize> {
    if id == HOME_ACCOUNT {
        return Some(0);
    }
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let index = id.parse::<u64>().ok()?.checked_sub(MEMBER_BASE)?;
    let index = usize::try_from(index).ok()?;
    (1..count).contains(&index).then_some(index)
}

/// The name ListAccounts shows: `management`, then `member-01`, `member-02`, ... zero-padded
/// to the width of the number of accounts (at least two digits).
pub(crate) fn account_name(index: usize, count: usize) -> String {
    if index == 0 {
        "management".to_owned()
    } else {
        let width = count.to_string().len().max(2);
        format!("member-{index:0width$}")
    }
}

/// A role ARN's account and name (`arn:aws:iam::<12 digits>:role/<path/>name`).
pub(crate) fn parse_role_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path = resource.strip_prefix("role/")?;
    let name = path.rsplit('/').next()?;
    let valid_account = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b));
    (valid_account && valid_name).then_some((account, name))
}

/// Who may assume what, and for how long; changed at run time through the config hook.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AccountRules {
    pub unassumable_roles: BTreeSet<String>,
    pub role_external_ids: BTreeMap<String, String>,
    pub credential_seconds: u64,
    pub account_credential_seconds: BTreeMap<String, u64>,
    pub suspended_accounts: BTreeSet<String>,
    pub disabled_regions: BTreeMap<String, BTreeSet<String>>,
}

impl AccountRules {
    /// Checks every value (role ARNs well formed, lifetimes in range, external ids of AWS's
    /// length); accounts themselves may be any 12-digit id, as in a real trust policy.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let roles = self
            .unassumable_roles
            .iter()
            .chain(self.role_external_ids.keys());
        for role in roles {
            if parse_role_arn(role).is_none() {
                return Err(ConfigError(format!(
                    "'{role}' is not a role ARN (arn:aws:iam::<12-digit account>:role/<name>)"
                )));
            }
        }
        for (role, id) in &self.role_external_ids {
            if !(2..=1224).contains(&id.len()) {
                return Err(ConfigError(format!(
                    "the external id of {role} must be 2 to 1224 characters long"
                )));
            }
        }
        let lifetimes = std::iter::once(&self.credential_seconds)
            .chain(self.account_credential_seconds.values());
        for &secs in lifetimes {
            if !(1..=MAX_CREDENTIAL_SECONDS).contains(&secs) {
                return Err(ConfigError(format!(
                    "credential_seconds must be between 1 and {MAX_CREDENTIAL_SECONDS}, not {secs}"
                )));
            }
        }
        let accounts = self
            .suspended_accounts
            .iter()
            .chain(self.disabled_regions.keys())
            .chain(self.account_credential_seconds.keys());
        for account in accounts {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError(format!(
                    "'{account}' is not an account id (12 digits)"
                )));
            }
        }
        Ok(())
    }

    /// Applies one account's settings.
    pub fn apply(&mut self, account: &str, update: AccountUpdate) {
        if let Some(regions) = update.disabled_regions {
            if regions.is_empty() {
                self.disabled_regions.remove(account);
            } else {
                self.disabled_regions.insert(account.to_owned(), regions);
            }
        }
        match update.credential_seconds {
            None => {}
            Some(None) => {
                self.account_credential_seconds.remove(account);
            }
            Some(Some(secs)) => {
                self.account_credential_seconds
                    .insert(account.to_owned(), secs);
            }
        }
        match update.suspended {
            None => {}
            Some(true) => {
                self.suspended_accounts.insert(account.to_owned());
            }
            Some(false) => {
                self.suspended_accounts.remove(account);
            }
        }
        let of_account = |arn: &String| parse_role_arn(arn).map(|(a, _)| a) == Some(account);
        if let Some(roles) = update.unassumable_roles {
            self.unassumable_roles.retain(|arn| !of_account(arn));
            self.unassumable_roles.extend(roles);
        }
        if let Some(ids) = update.role_external_ids {
            self.role_external_ids.retain(|arn, _| !of_account(arn));
            self.role_external_ids.extend(ids);
        }
    }

    /// Whether `region` (served) is enabled in `account`.
    pub fn region_enabled(&self, account: &str, region: &str) -> bool {
        self.disabled_regions
            .get(account)
            .is_none_or(|disabled| !disabled.contains(region))
    }

    /// The upper bound of the lifetime of credentials for a role of `account`.
    pub fn credential_seconds(&self, account: &str) -> u64 {
        self.account_credential_seconds
            .get(account)
            .copied()
            .unwrap_or(self.credential_seconds)
    }
}

/// Temporary credentials AssumeRole issued.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Issued {
    /// The role's account: the account requests signed with this key act in.
    pub account: String,
    pub role_name: String,
    pub session_name: String,
    /// `AROA...:session`.
    pub assumed_role_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Real time (a frozen emulator clock does not stop credentials from expiring).
    pub expires: DateTime<Utc>,
}

impl std::fmt::Debug for Issued {
    // Never the secret key or the session token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("account", &self.account)
            .field("role_name", &self.role_name)
            .field("session_name", &self.session_name)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Issued {
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub fn arn(&self) -> String {
        assumed_role_arn(&self.account, &self.role_name, &self.session_name)
    }
}

/// The ARN of an assumed-role session.
pub(crate) fn assumed_role_arn(account: &str, role_name: &str, session: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session}")
}

/// The unique id IAM gives a role (`AROA` + 17 characters), stable for a role ARN.
pub(crate) fn role_unique_id(role_arn: &str) -> String {
    format!("AROA{}", unique_suffix(role_arn))
}

/// The unique id of the home account's user (`AIDA` + 17 characters).
pub(crate) fn home_user_id() -> String {
    format!("AIDA{}", unique_suffix(HOME_ACCOUNT))
}

fn unique_suffix(seed: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut hash = fnv1a(seed.as_bytes());
    (0..17)
        .map(|i| {
            if i == 12 {
                hash = fnv1a(&hash.to_le_bytes());
            }
            let c = ALPHABET[(hash % 32) as usize] as char;
            hash /= 32;
            c
        })
        .collect()
}

/// Why the credentials of a request cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredentialProblem {
    /// An issued key past its expiration.
    Expired,
    /// A temporary (`ASIA`) key the emulator never issued, or an issued key with a session
    /// token that is not its own.
    Invalid,
}

/// Who signed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// A key the emulator did not issue: the home account's user.
    Home,
    /// Credentials from AssumeRole.
    Assumed(Issued),
}

impl Caller {
    /// The account the request acts in.
    pub fn account(&self) -> &str {
        match self {
            Caller::Home => HOME_ACCOUNT,
            Caller::Assumed(issued) => &issued.account,
        }
    }

    /// The caller's ARN, as GetCallerIdentity and AccessDenied messages show it.
    pub fn arn(&self) -> String {
        match self {
            Caller::Home => format!("arn:aws:iam::{HOME_ACCOUNT}:user/emulator"),
            Caller::Assumed(issued) => issued.arn(),
        }
    }

    /// GetCallerIdentity's UserId.
    pub fn user_id(&self) -> String {
        match self {
            Caller::Home => home_user_id(),
            Caller::Assumed(issued) => issued.assumed_role_id.clone(),
        }
    }
}

/// The credentials AssumeRole issued, by access key id.
#[derive(Debug, Default)]
pub(crate) struct CredentialStore {
    issued: Mutex<HashMap<String, Issued>>,
}

impl CredentialStore {
    /// Issues new credentials for `role_arn` (already checked) valid for `lifetime` from `now`
    /// (real time); returns the access key id and the credentials.
    pub fn issue(
        &self,
        role_arn: &str,
        role_name: &str,
        account: &str,
        session_name: &str,
        now: DateTime<Utc>,
        lifetime: TimeDelta,
    ) -> (String, Issued) {
        let mut rng = rand::rng();
        let issued = Issued {
            account: account.to_owned(),
            role_name: role_name.to_owned(),
            session_name: session_name.to_owned(),
            assumed_role_id: format!("{}:{session_name}", role_unique_id(role_arn)),
            secret_access_key: Alphanumeric.sample_string(&mut rng, 40),
            session_token: format!("FwoGZXIvYXdzE{}", Alphanumeric.sample_string(&mut rng, 300)),
            expires: now + lifetime,
        };
        let mut map = self.issued.lock().expect("credential store lock");
        loop {
            let key: String = (0..16)
                .map(|_| {
                    const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                    ALPHABET[rng.random_range(0..ALPHABET.len())] as char
                })
                .collect();
            let key = format!("ASIA{key}");
            if !map.contains_key(&key) {
                map.insert(key.clone(), issued.clone());
                return (key, issued);
            }
        }
    }

    /// Who a request signed with `access_key` (and `session_token`, the
    /// `X-Amz-Security-Token` header) comes from, at real time `now`.
    pub fn caller(
        &self,
        access_key: &str,
        session_token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Caller, CredentialProblem> {
        let map = self.issued.lock().expect("credential store lock");
        match map.get(access_key) {
            Some(issued) => {
                if session_token != Some(issued.session_token.as_str()) {
                    Err(CredentialProblem::Invalid)
                } else if now >= issued.expires {
                    Err(CredentialProblem::Expired)
                } else {
                    Ok(Caller::Assumed(issued.clone()))
                }
            }
            None if access_key.starts_with("ASIA") => Err(CredentialProblem::Invalid),
            None => Ok(Caller::Home),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_names_and_indexes_agree() {
        assert_eq!(account_id(0), HOME_ACCOUNT);
        assert_eq!(account_id(1), "100000000001");
        assert_eq!(account_id(42), "100000000042");
        for i in 0..5 {
            assert_eq!(account_index(&account_id(i), 5), Some(i));
        }
        assert_eq!(account_index(&account_id(5), 5), None);
        assert_eq!(account_index("100000000000", 5), None);
        assert_eq!(account_index("222222222222", 5), None);
        assert_eq!(account_index("1234", 5), None);
        assert_eq!(account_name(0, 3), "management");
        assert_eq!(account_name(2, 3), "member-02");
        assert_eq!(account_name(7, 100), "member-007");
        assert_eq!(account_name(12, 1000), "member-0012");
    }

    #[test]
    fn role_arns_are_parsed() {
        assert_eq!(
            parse_role_arn("arn:aws:iam::100000000001:role/OrgReader"),
            Some(("100000000001", "OrgReader"))
        );
        assert_eq!(
            parse_role_arn("arn:aws:iam::100000000001:role/path/to/Reader"),
            Some(("100000000001", "Reader"))
        );
        for bad in [
            "arn:aws:iam::1000:role/x",
            "arn:aws:iam::100000000001:user/x",
            "arn:aws:iam::100000000001:role/",
            "arn:aws:s3:::bucket",
            "role/x",
        ] {
            assert_eq!(parse_role_arn(bad), None, "{bad}");
        }
    }

    #[test]
    fn issued_keys_map_to_their_account_until_they_expire() {
        let store = CredentialStore::default();
        let now = Utc::now();
        let arn = "arn:aws:iam::100000000002:role/Reader";
        let (key, issued) = store.issue(
            arn,
            "Reader",
            "100000000002",
            "s1",
            now,
            TimeDelta::seconds(2),
        );
        assert!(key.starts_with("ASIA") && key.len() == 20, "{key}");
        assert_eq!(issued.secret_access_key.len(), 40);
        assert_eq!(
            issued.arn(),
            "arn:aws:sts::100000000002:assumed-role/Reader/s1"
        );
        assert!(issued.assumed_role_id.starts_with("AROA"));
        assert!(issued.assumed_role_id.ends_with(":s1"));
        let token = issued.session_token.clone();
        let caller = store.caller(&key, Some(&token), now).unwrap();
        assert_eq!(caller.account(), "100000000002");
        assert_eq!(
            store.caller(&key, Some(&token), now + TimeDelta::seconds(2)),
            Err(CredentialProblem::Expired)
        );
        assert_eq!(
            store.caller(&key, Some("other"), now),
            Err(CredentialProblem::Invalid)
        );
        assert_eq!(
            store.caller(&key, None, now),
            Err(CredentialProblem::Invalid)
        );
        assert_eq!(
            store.caller("ASIANEVERISSUED0000", Some("t"), now),
            Err(CredentialProblem::Invalid)
        );
        assert_eq!(store.caller("AKIDEXAMPLE", None, now), Ok(Caller::Home));
        let (other, _) = store.issue(
            arn,
            "Reader",
            "100000000002",
            "s1",
            now,
            TimeDelta::seconds(2),
        );
        assert_ne!(key, other);
        // Debug never shows the secrets.
        let debug = format!("{issued:?}");
        assert!(!debug.contains(&issued.secret_access_key) && !debug.contains(&token));
    }

    #[test]
    fn account_settings_replace_only_their_own() {
        let mut rules = AccountRules {
            credential_seconds: 3600,
            unassumable_roles: [
                "arn:aws:iam::100000000001:role/A",
                "arn:aws:iam::100000000002:role/B",
            ]
            .map(String::from)
            .into(),
            ..AccountRules::default()
        };
        rules.apply(
            "100000000001",
            AccountUpdate {
                disabled_regions: Some(["eu-west-1".to_owned()].into()),
                credential_seconds: Some(Some(2)),
                suspended: Some(true),
                unassumable_roles: Some(BTreeSet::new()),
                role_external_ids: None,
            },
        );
        assert_eq!(
            rules.unassumable_roles,
            ["arn:aws:iam::100000000002:role/B".to_owned()].into()
        );
        assert!(!rules.region_enabled("100000000001", "eu-west-1"));
        assert!(rules.region_enabled("100000000002", "eu-west-1"));
        assert_eq!(rules.credential_seconds("100000000001"), 2);
        assert_eq!(rules.credential_seconds("100000000002"), 3600);
        assert!(rules.suspended_accounts.contains("100000000001"));
        assert!(rules.validate().is_ok());
        rules.credential_seconds = 0;
        assert!(rules.validate().is_err());
    }
}
