//! Accounts a query leaves out under `SET aws.on_account_error = 'skip'`: an account whose
//! role cannot be assumed (AccessDenied, a suspended account), or a region not enabled in
//! it. A skip is never silent: each one is logged at WARN, counted in the metric
//! `aws_flightsql_accounts_skipped_total{reason}`, and kept in the statement's
//! [`SkippedAccounts`] (a session config extension the Flight layer registers), from which
//! the client is told (schema metadata under [`SKIPPED_ACCOUNTS_KEY`], FlightInfo's
//! `app_metadata`, a response header and trailer).

use std::sync::Mutex;

use serde::Serialize;

use crate::ec2::metrics::AwsMetrics;
use crate::ec2::AwsError;

/// The schema metadata key (and, lowercased with dashes, the gRPC header and trailer name)
/// whose value lists the skipped accounts as JSON.
pub const SKIPPED_ACCOUNTS_KEY: &str = "aws_flightsql.skipped_accounts";

/// Why an account (or a region of it) was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Its role could not be assumed.
    AssumeRole,
    /// The region is not enabled in it.
    RegionNotEnabled,
}

impl SkipReason {
    /// The reason's name, as the metric's label and the JSON give it.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::AssumeRole => "assume_role",
            SkipReason::RegionNotEnabled => "region_not_enabled",
        }
    }
}

/// One account (or one region of it) a query left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedAccount {
    /// The 12-digit account id.
    pub account: String,
    /// Why.
    pub reason: SkipReason,
    /// The role that could not be assumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The region left out (every region of the account when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// AWS's error code, when AWS answered one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// AWS's request id, when AWS answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What happened, in words.
    pub message: String,
}

impl SkippedAccount {
    /// The skip of `error`'s account for `reason`.
    pub fn of(account: &str, reason: SkipReason, error: &AwsError) -> Self {
        SkippedAccount {
            account: account.to_owned(),
            reason,
            role_arn: error.role_arn.clone(),
            region: (reason == SkipReason::RegionNotEnabled).then(|| error.region.clone()),
            code: error.code.clone(),
            request_id: error.request_id.clone(),
            message: error.summary(),
        }
    }

    /// One line for a person: `account 100000000002 skipped: ...`.
    pub fn line(&self) -> String {
        let what = match &self.region {
            Some(region) => format!("account {} region {region}", self.account),
            None => format!("account {}", self.account),
        };
        format!(
            "{what} skipped ({}): {}",
            self.reason.as_str(),
            self.message
        )
    }
}

/// The accounts one statement skipped, in the order met.
#[derive(Debug, Default)]
pub struct SkippedAccounts {
    list: Mutex<Vec<SkippedAccount>>,
    /// Only collect: the statement is planned to describe its result (a FlightInfo), not
    /// run; the run that follows logs and counts its skips.
    quiet: bool,
}

impl SkippedAccounts {
    /// A list whose skips are not logged or counted: for a statement planned only to
    /// describe its result.
    pub fn quiet() -> Self {
        SkippedAccounts {
            list: Mutex::default(),
            quiet: true,
        }
    }

    /// Every skip so far.
    pub fn list(&self) -> Vec<SkippedAccount> {
        self.list.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether nothing was skipped.
    pub fn is_empty(&self) -> bool {
        self.list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Keeps `skip` unless the same account (and region) was already skipped for the same
    /// reason (several partitions of one region); whether it was new.
    fn push(&self, skip: SkippedAccount) -> bool {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        let known = list.iter().any(|s| {
            s.account == skip.account && s.reason == skip.reason && s.region == skip.region
        });
        if !known {
            list.push(skip);
        }
        !known
    }
}

/// Records a skip in `skips` (the statement's list, when the caller registered one) and,
/// the first time the statement skips that account (and region), a WARN log line and the
/// metric; a [quiet](SkippedAccounts::quiet) list only keeps it.
pub(crate) fn record(metrics: &AwsMetrics, skips: Option<&SkippedAccounts>, skip: SkippedAccount) {
    if let Some(skips) = skips {
        // Reported once per statement; a quiet list only collects.
        if !skips.push(skip.clone()) || skips.quiet {
            return;
        }
    }
    tracing::warn!(
        account = %skip.account,
        reason = skip.reason.as_str(),
        role_arn = skip.role_arn.as_deref().unwrap_or(""),
        region = skip.region.as_deref().unwrap_or(""),
        code = skip.code.as_deref().unwrap_or(""),
        request_id = skip.request_id.as_deref().unwrap_or(""),
        "account skipped (aws.on_account_error = skip): {}",
        skip.message
    );
    metrics.account_skipped(skip.reason.as_str());
}

/// `skips` as JSON: an array of objects (`account`, `reason`, `role_arn`, `region`,
/// `code`, `request_id`, `message`), ASCII only so that it also fits a gRPC header.
pub fn to_json(skips: &[SkippedAccount]) -> String {
    let text = serde_json::to_string(skips).unwrap_or_else(|_| "[]".to_owned());
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    ascii
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_logged_counted_kept_once_and_serialized_as_ascii() {
        let metrics = crate::metrics::Metrics::default();
        let skips = SkippedAccounts::default();
        let skip = SkippedAccount {
            account: "100000000002".into(),
            reason: SkipReason::AssumeRole,
            role_arn: Some("arn:aws:iam::100000000002:role/r".into()),
            region: None,
            code: Some("AccessDenied".into()),
            request_id: Some("req-1".into()),
            message: "refusé".into(),
        };
        record(metrics.aws(), Some(&skips), skip.clone());
        // The same account again (another partition, another request id): reported once.
        let again = SkippedAccount {
            request_id: Some("req-2".into()),
            ..skip.clone()
        };
        record(metrics.aws(), Some(&skips), again);
        assert_eq!(skips.list(), vec![skip.clone()]);
        assert!(metrics
            .encode()
            .contains("aws_flightsql_accounts_skipped_total{reason=\"assume_role\"} 1"));
        // Without a statement's list (an embedding application): logged and counted.
        record(metrics.aws(), None, skip.clone());
        assert!(metrics
            .encode()
            .contains("aws_flightsql_accounts_skipped_total{reason=\"assume_role\"} 2"));
        let json = to_json(&skips.list());
        assert!(json.is_ascii(), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back[0]["account"], "100000000002");
        assert_eq!(back[0]["reason"], "assume_role");
        assert_eq!(back[0]["code"], "AccessDenied");
        assert_eq!(back[0]["message"], "refusé");
        assert!(back[0].get("region").is_none());
        assert!(skip
            .line()
            .starts_with("account 100000000002 skipped (assume_role): "));
    }
}
