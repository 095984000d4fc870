//! The request log: one record per API request (any service), so tests can assert what a
//! client actually sent (pages fetched, retries, DryRun flags, accounts asked) and how each
//! request was answered.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One API request and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The credential scope's region; `None` when the request had no usable scope.
    pub region: Option<String>,
    /// The `Action` field (empty when absent).
    pub action: String,
    /// Every form field as received (query string and body).
    pub params: BTreeMap<String, String>,
    /// The HTTP status answered.
    pub status: u16,
    /// When the request arrived, in real ms since the emulator started.
    pub started_ms: u64,
    /// When the answer was ready (after any injected latency), same scale.
    pub finished_ms: u64,
    /// The account the request acted in (the caller's, from its access key); `None` when the
    /// request had no usable credentials.
    #[serde(default)]
    pub account: Option<String>,
    /// The credential scope's service (`ec2`, `sts`, `organizations`); `None` when the request
    /// had no usable scope.
    #[serde(default)]
    pub service: Option<String>,
}

/// The records, in arrival order.
#[derive(Debug, Default)]
pub struct RequestLog {
    records: Mutex<Vec<(u64, RequestRecord)>>,
}

impl RequestLog {
    /// Adds the record of a request that arrived as number `seq` (requests finish out of
    /// order when they overlap; the log keeps arrival order).
    pub fn push(&self, seq: u64, record: RequestRecord) {
        let mut records = self.records.lock().expect("request log lock");
        let at = records.partition_point(|(s, _)| *s < seq);
        records.insert(at, (seq, record));
    }

    /// A copy of the records.
    pub fn snapshot(&self) -> Vec<RequestRecord> {
        let records = self.records.lock().expect("request log lock");
        records.iter().map(|(_, r)| r.clone()).collect()
    }

    /// Forgets every record.
    pub fn clear(&self) {
        self.records.lock().expect("request log lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: &str) -> RequestRecord {
        RequestRecord {
            region: None,
            action: action.into(),
            params: BTreeMap::new(),
            status: 200,
            started_ms: 0,
            finished_ms: 0,
            account: None,
            service: None,
        }
    }

    #[test]
    fn keeps_arrival_order() {
        let log = RequestLog::default();
        log.push(2, record("b"));
        log.push(1, record("a"));
        log.push(3, record("c"));
        let actions: Vec<_> = log.snapshot().into_iter().map(|r| r.action).collect();
        assert_eq!(actions, ["a", "b", "c"]);
        log.clear();
        assert!(log.snapshot().is_empty());
    }
}
