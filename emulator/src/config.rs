//! Start-time options and run-time configuration: what the emulator serves
//! ([`EmulatorOptions`]), which faults it injects ([`Faults`]), how a test changes both while it
//! runs ([`ConfigUpdate`]) and what is in force afterwards ([`EffectiveConfig`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::accounts::{AccountRules, MAX_ACCOUNTS};

/// The regions served when none are given.
pub const DEFAULT_REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-west-1"];

/// How the emulator is started.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorOptions {
    /// The regions served (opt-in-not-required in DescribeRegions); any other region in a
    /// request's credential scope is answered `AuthFailure`.
    pub regions: Vec<String>,
    /// Sample tasks listed per region (besides a few older than 31 days that never are).
    pub tasks_per_region: usize,
    /// Seed of the sample data: the same seed gives the same data relative to the start instant.
    pub seed: u64,
    /// Faults injected from the start.
    pub faults: Faults,
    /// Start with the emulator clock frozen (step it with `advance_seconds`).
    pub freeze_time: bool,
    /// How long a task created through CreateStoreImageTask takes to complete.
    pub task_duration: Duration,
    /// Buckets whose store tasks fail: a task created to one of them runs InProgress up to
    /// the bucket's [`BucketFailure::at_percent`] and then ends `Failed` with its reason.
    pub failing_buckets: BTreeMap<String, BucketFailure>,
    /// Accounts of the organization: the home (management) account [`crate::HOME_ACCOUNT`]
    /// and `accounts - 1` members ([`crate::account_id`]). At least 1.
    pub accounts: usize,
    /// Role ARNs AssumeRole refuses (AccessDenied), as if their trust policy did not name the
    /// caller.
    pub unassumable_roles: BTreeSet<String>,
    /// Role ARN -> the external id its trust policy requires; AssumeRole without it (or with
    /// another) is refused.
    pub role_external_ids: BTreeMap<String, String>,
    /// Upper bound of the lifetime of credentials AssumeRole issues, in seconds (the lifetime
    /// is `min(DurationSeconds or 3600, credential_seconds)`). Counted in real time.
    pub credential_seconds: u64,
    /// Accounts ListAccounts shows SUSPENDED (their roles cannot be assumed).
    pub suspended_accounts: BTreeSet<String>,
    /// Account id -> served regions not enabled in that account.
    pub disabled_regions: BTreeMap<String, BTreeSet<String>>,
}

impl EmulatorOptions {
    /// `tasks` tasks in `us-east-1` alone, with the clock frozen so that progress and the
    /// listing stay put: what paging tests and benchmarks use.
    pub fn one_frozen_region(tasks: usize) -> Self {
        EmulatorOptions {
            regions: vec!["us-east-1".to_owned()],
            tasks_per_region: tasks,
            freeze_time: true,
            ..EmulatorOptions::default()
        }
    }
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            regions: DEFAULT_REGIONS.iter().map(|r| (*r).to_owned()).collect(),
            tasks_per_region: 250,
            seed: 42,
            faults: Faults::default(),
            freeze_time: false,
            task_duration: Duration::from_secs(60),
            failing_buckets: BTreeMap::new(),
            accounts: 1,
            unassumable_roles: BTreeSet::new(),
            role_external_ids: BTreeMap::new(),
            credential_seconds: MAX_CREDENTIAL_SECONDS,
            suspended_accounts: BTreeSet::new(),
            disabled_regions: BTreeMap::new(),
        }
    }
}

/// How the store tasks to one bucket fail (`--failing-bucket BUCKET[=AT_PERCENT[:REASON]]`,
/// [`EmulatorOptions::failing_buckets`], `failing_buckets` of `POST /_emulator/config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketFailure {
    /// The progress at which the task fails, 0..=99 (the task is `InProgress` below it).
    #[serde(default = "default_fail_percent")]
    pub at_percent: u8,
    /// The task's `storeTaskFailureReason`.
    #[serde(default = "default_fail_reason")]
    pub reason: String,
}

/// Where a failing bucket's tasks fail when no percentage is given.
pub const DEFAULT_FAIL_PERCENT: u8 = 50;

/// The `storeTaskFailureReason` of a failing bucket's tasks when none is given: S3's
/// refusal of the object write, as AWS services quote it.
pub const DEFAULT_FAIL_REASON: &str =
    "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied)";

fn default_fail_percent() -> u8 {
    DEFAULT_FAIL_PERCENT
}

fn default_fail_reason() -> String {
    DEFAULT_FAIL_REASON.to_owned()
}

impl Default for BucketFailure {
    fn default() -> Self {
        BucketFailure {
            at_percent: DEFAULT_FAIL_PERCENT,
            reason: default_fail_reason(),
        }
    }
}

impl BucketFailure {
    /// Checks the percentage (0..=99: a task that reached 100 has completed) and that the
    /// reason is not empty.
    pub fn validate(&self, bucket: &str) -> Result<(), ConfigError> {
        if bucket.trim().is_empty() {
            return Err(ConfigError("a failing bucket needs a name".into()));
        }
        if self.at_percent > 99 {
            return Err(ConfigError(format!(
                "the tasks of failing bucket '{bucket}' must fail at 0 to 99 percent, not {}",
                self.at_percent
            )));
        }
        if self.reason.trim().is_empty() {
            return Err(ConfigError(format!(
                "the failure reason of failing bucket '{bucket}' must not be empty"
            )));
        }
        Ok(())
    }

    /// Reads `BUCKET[=AT_PERCENT[:REASON]]` (the flag's form): the bucket and how its tasks
    /// fail.
    pub fn parse_flag(text: &str) -> Result<(String, BucketFailure), ConfigError> {
        let (bucket, rest) = match text.split_once('=') {
            Some((bucket, rest)) => (bucket.trim(), Some(rest)),
            None => (text.trim(), None),
        };
        let mut failure = BucketFailure::default();
        if let Some(rest) = rest {
            let (percent, reason) = match rest.split_once(':') {
                Some((percent, reason)) => (percent, Some(reason)),
                None => (rest, None),
            };
            failure.at_percent = percent.trim().parse().map_err(|_| {
                ConfigError(format!(
                    "`{text}`: expected BUCKET[=AT_PERCENT[:REASON]], and `{percent}` is not                      a percentage (0 to 99)"
                ))
            })?;
            if let Some(reason) = reason {
                failure.reason = reason.trim().to_owned();
            }
        }
        failure.validate(bucket)?;
        Ok((bucket.to_owned(), failure))
    }
}

/// The longest lifetime AssumeRole gives (12 hours, AWS's maximum DurationSeconds).
pub const MAX_CREDENTIAL_SECONDS: u64 = 43_200;

impl EmulatorOptions {
    /// The account rules these options start with.
    pub(crate) fn account_rules(&self) -> AccountRules {
        AccountRules {
            unassumable_roles: self.unassumable_roles.clone(),
            role_external_ids: self.role_external_ids.clone(),
            credential_seconds: self.credential_seconds,
            account_credential_seconds: BTreeMap::new(),
            suspended_accounts: self.suspended_accounts.clone(),
            disabled_regions: self.disabled_regions.clone(),
        }
    }
}

/// Faults injected into API requests (never into the `/_emulator` hooks).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Faults {
    /// Every API request waits this long before it is handled.
    pub latency_ms: u64,
    /// Requests per second allowed per region (token bucket, burst of `max(1, rps)`); over it a
    /// request is answered 503 `RequestLimitExceeded`. `None`: no throttling.
    pub throttle_rps: Option<f64>,
    /// Probability (0..=1) that a request is answered 500 `InternalError` without effect.
    pub fail_rate: f64,
    /// Probability (0..=1) that a CreateStoreImageTask that succeeded is answered 500
    /// `InternalError` anyway: the task exists, the client does not know it.
    pub fail_after_commit_rate: f64,
    /// Actions answered 403 `UnauthorizedOperation` (DryRun included).
    pub deny_actions: Vec<String>,
}

/// A change of the run-time configuration: every field is optional, absent fields keep their
/// value. The JSON body of `POST /_emulator/config` has the same (snake_case) fields.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigUpdate {
    /// See [`Faults::latency_ms`].
    pub latency_ms: Option<u64>,
    /// `Some(None)` (JSON `null`) turns throttling off; `Some(Some(rps))` sets it.
    #[serde(default, deserialize_with = "present")]
    pub throttle_rps: Option<Option<f64>>,
    /// See [`Faults::fail_rate`].
    pub fail_rate: Option<f64>,
    /// See [`Faults::fail_after_commit_rate`].
    pub fail_after_commit_rate: Option<f64>,
    /// See [`Faults::deny_actions`]; replaces the whole list.
    pub deny_actions: Option<Vec<String>>,
    /// Freeze (`true`) or release (`false`) the emulator clock. Releasing it lets time run on
    /// from the frozen instant, so the clock never jumps.
    pub freeze_time: Option<bool>,
    /// Move the emulator clock forward by this many seconds (frozen or not), after
    /// `freeze_time` is applied.
    pub advance_seconds: Option<f64>,
    /// Duration of tasks created from now on (tasks already created keep theirs).
    pub task_duration_secs: Option<f64>,
    /// Replaces the whole map bucket -> how the tasks created to it from now on fail
    /// (`{"b": {"at_percent": 30, "reason": "..."}}`, both fields optional; `{}` = none).
    pub failing_buckets: Option<BTreeMap<String, BucketFailure>>,
    /// Replaces the whole list of role ARNs AssumeRole refuses.
    pub unassumable_roles: Option<BTreeSet<String>>,
    /// Replaces the whole map role ARN -> required external id.
    pub role_external_ids: Option<BTreeMap<String, String>>,
    /// Upper bound of the lifetime of credentials issued from now on, in seconds (>= 1).
    pub credential_seconds: Option<u64>,
    /// Replaces the whole list of SUSPENDED accounts.
    pub suspended_accounts: Option<BTreeSet<String>>,
    /// Per-account settings; each account named replaces its own settings given here.
    pub accounts: Option<BTreeMap<String, AccountUpdate>>,
}

/// Settings of one account in a [`ConfigUpdate`]; absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdate {
    /// Served regions not enabled in this account (replaces the account's list).
    pub disabled_regions: Option<BTreeSet<String>>,
    /// Upper bound of the lifetime of credentials for this account's roles issued from now
    /// on; `null` falls back to the global `credential_seconds`.
    #[serde(default, deserialize_with = "present")]
    pub credential_seconds: Option<Option<u64>>,
    /// Whether the account is SUSPENDED.
    pub suspended: Option<bool>,
    /// Replaces the list of this account's roles AssumeRole refuses.
    pub unassumable_roles: Option<BTreeSet<String>>,
    /// Replaces the external ids required by this account's roles (role ARN -> id).
    pub role_external_ids: Option<BTreeMap<String, String>>,
}

/// Distinguishes a JSON `null` (`Some(None)`) from an absent field (`None`, via `default`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The configuration in force, as answered by `POST /_emulator/config`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveConfig {
    /// See [`Faults::latency_ms`].
    pub latency_ms: u64,
    /// See [`Faults::throttle_rps`].
    pub throttle_rps: Option<f64>,
    /// See [`Faults::fail_rate`].
    pub fail_rate: f64,
    /// See [`Faults::fail_after_commit_rate`].
    pub fail_after_commit_rate: f64,
    /// See [`Faults::deny_actions`].
    pub deny_actions: Vec<String>,
    /// Whether the emulator clock is frozen.
    pub freeze_time: bool,
    /// Duration of newly created tasks, in seconds.
    pub task_duration_secs: f64,
    /// Buckets whose new tasks fail, and how.
    pub failing_buckets: BTreeMap<String, BucketFailure>,
    /// The emulator clock now (ISO-8601 UTC, milliseconds).
    pub now: String,
    /// Role ARNs AssumeRole refuses.
    pub unassumable_roles: BTreeSet<String>,
    /// Role ARNs that require an external id (the ids themselves are never shown).
    pub roles_with_external_id: BTreeSet<String>,
    /// Upper bound of issued credentials' lifetime, in seconds.
    pub credential_seconds: u64,
    /// Accounts whose credentials have their own upper bound (account -> seconds).
    pub account_credential_seconds: BTreeMap<String, u64>,
    /// SUSPENDED accounts.
    pub suspended_accounts: BTreeSet<String>,
    /// Account -> served regions not enabled there (accounts with none are left out).
    pub disabled_regions: BTreeMap<String, BTreeSet<String>>,
}

/// A configuration value out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid emulator configuration: {0}")]
pub struct ConfigError(pub String);

impl Faults {
    /// Checks that every value is in range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_probability("fail_rate", self.fail_rate)?;
        check_probability("fail_after_commit_rate", self.fail_after_commit_rate)?;
        if let Some(rps) = self.throttle_rps {
            if !rps.is_finite() || rps < 0.0 {
                return Err(ConfigError(format!(
                    "throttle_rps must be a number >= 0 or null, not {rps}"
                )));
            }
        }
        Ok(())
    }
}

fn check_probability(name: &str, value: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "{name} must be between 0 and 1, not {value}"
        )))
    }
}

/// Converts seconds given by a user into a task duration (strictly positive, finite).
pub(crate) fn task_duration_from_secs(secs: f64) -> Result<Duration, ConfigError> {
    if secs.is_finite() && secs > 0.0 && secs < 1e9 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(ConfigError(format!(
            "task_duration_secs must be a positive number of seconds, not {secs}"
        )))
    }
}

impl EmulatorOptions {
    /// Checks the options before the emulator starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.regions.is_empty() {
            return Err(ConfigError("at least one region must be served".into()));
        }
        for region in &self.regions {
            let valid = !region.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                return Err(ConfigError(format!("invalid region name '{region}'")));
            }
        }
        if self.task_duration.is_zero() {
            return Err(ConfigError("task_duration must be positive".into()));
        }
        for (bucket, failure) in &self.failing_buckets {
            failure.validate(bucket)?;
        }
        if !(1..=MAX_ACCOUNTS).contains(&self.accounts) {
            return Err(ConfigError(format!(
                "accounts must be between 1 and {MAX_ACCOUNTS}, not {}",
                self.accounts
            )));
        }
        self.account_rules().validate()?;
        self.faults.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_throttle_is_distinguished_from_absent() {
        let absent: ConfigUpdate = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.throttle_rps, None);
        let null: ConfigUpdate = serde_json::from_str(r#"{"throttle_rps": null}"#).unwrap();
        assert_eq!(null.throttle_rps, Some(None));
        let set: ConfigUpdate = serde_json::from_str(r#"{"throttle_rps": 2.5}"#).unwrap();
        assert_eq!(set.throttle_rps, Some(Some(2.5)));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<ConfigUpdate>(r#"{"latency": 5}"#).is_err());
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let faults = Faults {
            fail_rate: 1.5,
            ..Faults::default()
        };
        assert!(faults.validate().is_err());
        let faults = Faults {
            throttle_rps: Some(-1.0),
            ..Faults::default()
        };
        assert!(faults.validate().is_err());
        assert!(task_duration_from_secs(0.0).is_err());
        assert!(task_duration_from_secs(f64::NAN).is_err());
        assert_eq!(
            task_duration_from_secs(1.5).unwrap(),
            Duration::from_millis(1500)
        );
        let options = EmulatorOptions {
            regions: vec![],
            ..EmulatorOptions::default()
        };
        assert!(options.validate().is_err());
        assert!(EmulatorOptions::default().validate().is_ok());
    }

    #[test]
    fn failing_buckets_are_read_from_the_flag_and_json() {
        let (bucket, failure) = BucketFailure::parse_flag("b1").unwrap();
        assert_eq!(
            (bucket.as_str(), failure.clone()),
            ("b1", BucketFailure::default())
        );
        assert_eq!(failure.reason, DEFAULT_FAIL_REASON);
        let (_, failure) = BucketFailure::parse_flag("b1=30").unwrap();
        assert_eq!(failure.at_percent, 30);
        let (bucket, failure) = BucketFailure::parse_flag(" b2 =0:Oops: no").unwrap();
        assert_eq!(bucket, "b2");
        assert_eq!(
            (failure.at_percent, failure.reason.as_str()),
            (0, "Oops: no")
        );
        for bad in ["b1=100", "b1=x", "=5", "b1=5:", "b1=-1"] {
            assert!(BucketFailure::parse_flag(bad).is_err(), "{bad}");
        }
        let update: ConfigUpdate =
            serde_json::from_str(r#"{"failing_buckets": {"b": {"at_percent": 10}, "c": {}}}"#)
                .unwrap();
        let buckets = update.failing_buckets.unwrap();
        assert_eq!(buckets["b"].at_percent, 10);
        assert_eq!(buckets["b"].reason, DEFAULT_FAIL_REASON);
        assert_eq!(buckets["c"], BucketFailure::default());
        assert!(serde_json::from_str::<ConfigUpdate>(
            r#"{"failing_buckets": {"b": {"percent": 10}}}"#
        )
        .is_err());
    }
}
