//! Start-time options and run-time configuration: what the emulator serves
//! ([`EmulatorOptions`]), which faults it injects ([`Faults`]), how a test changes both while it
//! runs ([`ConfigUpdate`]) and what is in force afterwards ([`EffectiveConfig`]).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

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
    /// The emulator clock now (ISO-8601 UTC, milliseconds).
    pub now: String,
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
}
