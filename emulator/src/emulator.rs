//! The emulator as a value: its shared state (accounts, regions, per account and region
//! state, issued credentials, clock, run-time configuration, fault machinery, request log)
//! and the [`Emulator`] handle that owns the HTTP server task, which
//! the binary, the Flight SQL server's `serve --demo` and tests start and stop.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::serve::ListenerExt;
use chrono::TimeDelta;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::accounts::{self, AccountRules, CredentialStore, HOME_ACCOUNT};
use crate::clock::{format_timestamp, Clock};
use crate::config::{
    task_duration_from_secs, BucketFailure, ConfigError, ConfigUpdate, EffectiveConfig,
    EmulatorOptions, Faults,
};
use crate::faults::{Dice, Throttle};
use crate::requests::{RequestLog, RequestRecord};
use crate::sample;
use crate::store::{RegionState, TaskView};

/// Everything the request handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Served regions, in the order given.
    pub regions: Vec<String>,
    /// Number of accounts (the home account is number 0).
    pub accounts: usize,
    /// State per account (index) and region (index in `regions`), built on first use from
    /// the seed and the start instant, so a large organization starts at once.
    states: Vec<Vec<OnceLock<Mutex<RegionState>>>>,
    pub seed: u64,
    tasks_per_region: usize,
    start: chrono::DateTime<chrono::Utc>,
    /// Credentials AssumeRole issued.
    pub credentials: CredentialStore,
    pub clock: Clock,
    runtime: Mutex<Runtime>,
    pub throttle: Throttle,
    pub dice: Dice,
    pub log: RequestLog,
    /// Real start instant, the origin of the request log's times.
    pub started: Instant,
    /// Arrival numbers of API requests.
    pub arrivals: AtomicU64,
}

/// The configuration that may change while the emulator runs.
#[derive(Debug, Clone)]
pub(crate) struct Runtime {
    pub faults: Faults,
    pub task_duration: Duration,
    pub failing_buckets: BTreeMap<String, BucketFailure>,
    pub rules: AccountRules,
}

impl Shared {
    pub fn new(options: &EmulatorOptions) -> Result<Shared, ConfigError> {
        options.validate()?;
        let mut regions: Vec<String> = Vec::with_capacity(options.regions.len());
        for region in &options.regions {
            if !regions.contains(region) {
                regions.push(region.clone());
            }
        }
        let clock = Clock::new(options.freeze_time);
        let start = clock.now();
        let states = (0..options.accounts)
            .map(|_| regions.iter().map(|_| OnceLock::new()).collect())
            .collect();
        Ok(Shared {
            regions,
            accounts: options.accounts,
            states,
            seed: options.seed,
            tasks_per_region: options.tasks_per_region,
            start,
            credentials: CredentialStore::default(),
            clock,
            runtime: Mutex::new(Runtime {
                faults: options.faults.clone(),
                task_duration: options.task_duration,
                failing_buckets: options.failing_buckets.clone(),
                rules: options.account_rules(),
            }),
            throttle: Throttle::default(),
            dice: Dice::new(options.seed),
            log: RequestLog::default(),
            started: Instant::now(),
            arrivals: AtomicU64::new(0),
        })
    }

    /// The state of `account` in a served region, locked. Never hold it across an `.await`.
    pub fn region(&self, account: &str, name: &str) -> Option<MutexGuard<'_, RegionState>> {
        let account_index = accounts::account_index(account, self.accounts)?;
        let region_index = self.regions.iter().position(|r| r == name)?;
        let cell = &self.states[account_index][region_index];
        let state = cell.get_or_init(|| {
            Mutex::new(sample::account_region(
                account,
                name,
                self.seed,
                self.tasks_per_region,
                self.start,
            ))
        });
        Some(state.lock().expect("region lock"))
    }

    /// The ids of the accounts, home first.
    pub fn account_ids(&self) -> Vec<String> {
        (0..self.accounts).map(accounts::account_id).collect()
    }

    /// Whether `account` is one of the emulator's.
    pub fn has_account(&self, account: &str) -> bool {
        accounts::account_index(account, self.accounts).is_some()
    }

    /// The served regions enabled in `account`.
    pub fn enabled_regions(&self, account: &str) -> Vec<String> {
        let rules = self.runtime().rules;
        self.regions
            .iter()
            .filter(|r| rules.region_enabled(account, r))
            .cloned()
            .collect()
    }

    /// A copy of the run-time configuration.
    pub fn runtime(&self) -> Runtime {
        self.runtime.lock().expect("runtime lock").clone()
    }

    /// Real milliseconds since the emulator started.
    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn next_arrival(&self) -> u64 {
        self.arrivals.fetch_add(1, Ordering::Relaxed)
    }

    pub fn tasks(&self, account: &str, region: &str) -> Vec<TaskView> {
        let now = self.clock.now();
        self.region(account, region)
            .map(|state| state.list_all(now))
            .unwrap_or_default()
    }

    pub fn storable_amis(&self, account: &str, region: &str) -> Vec<String> {
        let now = self.clock.now();
        self.region(account, region)
            .map(|state| state.storable_amis(now))
            .unwrap_or_default()
    }

    pub fn buckets(&self, account: &str, region: &str) -> Vec<String> {
        self.region(account, region)
            .map(|state| state.buckets().to_vec())
            .unwrap_or_default()
    }

    /// Applies a configuration change whole, or nothing of it when a value is out of range.
    pub fn update_config(&self, update: ConfigUpdate) -> Result<EffectiveConfig, ConfigError> {
        let advance = match update.advance_seconds {
            None => None,
            Some(secs) if secs.is_finite() && (0.0..1e10).contains(&secs) => {
                Some(TimeDelta::milliseconds((secs * 1000.0).round() as i64))
            }
            Some(secs) => {
                return Err(ConfigError(format!(
                    "advance_seconds must be a number of seconds >= 0, not {secs}"
                )))
            }
        };
        let task_duration = update
            .task_duration_secs
            .map(task_duration_from_secs)
            .transpose()?;
        if let Some(buckets) = &update.failing_buckets {
            for (bucket, failure) in buckets {
                failure.validate(bucket)?;
            }
        }
        if let Some(accounts) = &update.accounts {
            if let Some(unknown) = accounts.keys().find(|a| !self.has_account(a)) {
                return Err(ConfigError(format!(
                    "'{unknown}' is not one of the emulator's {} accounts",
                    self.accounts
                )));
            }
        }
        {
            let mut runtime = self.runtime.lock().expect("runtime lock");
            let mut faults = runtime.faults.clone();
            if let Some(latency) = update.latency_ms {
                faults.latency_ms = latency;
            }
            if let Some(rps) = update.throttle_rps {
                faults.throttle_rps = rps;
            }
            if let Some(rate) = update.fail_rate {
                faults.fail_rate = rate;
            }
            if let Some(rate) = update.fail_after_commit_rate {
                faults.fail_after_commit_rate = rate;
            }
            if let Some(actions) = update.deny_actions {
                faults.deny_actions = actions;
            }
            faults.validate()?;
            let mut rules = runtime.rules.clone();
            if let Some(roles) = update.unassumable_roles {
                rules.unassumable_roles = roles;
            }
            if let Some(ids) = update.role_external_ids {
                rules.role_external_ids = ids;
            }
            if let Some(secs) = update.credential_seconds {
                rules.credential_seconds = secs;
            }
            if let Some(suspended) = update.suspended_accounts {
                rules.suspended_accounts = suspended;
            }
            for (account, settings) in update.accounts.unwrap_or_default() {
                rules.apply(&account, settings);
            }
            rules.validate()?;
            runtime.rules = rules;
            if faults.throttle_rps != runtime.faults.throttle_rps {
                self.throttle.reset();
            }
            runtime.faults = faults;
            if let Some(duration) = task_duration {
                runtime.task_duration = duration;
            }
            if let Some(buckets) = update.failing_buckets {
                runtime.failing_buckets = buckets;
            }
        }
        if let Some(frozen) = update.freeze_time {
            self.clock.set_frozen(frozen);
        }
        if let Some(by) = advance {
            self.clock.advance(by);
        }
        Ok(self.effective_config())
    }

    pub fn effective_config(&self) -> EffectiveConfig {
        let runtime = self.runtime();
        EffectiveConfig {
            latency_ms: runtime.faults.latency_ms,
            throttle_rps: runtime.faults.throttle_rps,
            fail_rate: runtime.faults.fail_rate,
            fail_after_commit_rate: runtime.faults.fail_after_commit_rate,
            deny_actions: runtime.faults.deny_actions,
            freeze_time: self.clock.is_frozen(),
            task_duration_secs: runtime.task_duration.as_secs_f64(),
            failing_buckets: runtime.failing_buckets,
            now: format_timestamp(self.clock.now()),
            unassumable_roles: runtime.rules.unassumable_roles,
            roles_with_external_id: runtime.rules.role_external_ids.into_keys().collect(),
            credential_seconds: runtime.rules.credential_seconds,
            account_credential_seconds: runtime.rules.account_credential_seconds,
            suspended_accounts: runtime.rules.suspended_accounts,
            disabled_regions: runtime.rules.disabled_regions,
        }
    }
}

/// A running emulator: an HTTP server on its own tokio task. Dropping it stops the server;
/// [`Emulator::shutdown`] stops it gracefully and waits.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Binds `listen` (port 0 picks a free port), builds the sample data and serves in a
    /// background task. Must be called inside a tokio runtime.
    pub async fn start(listen: SocketAddr, options: EmulatorOptions) -> anyhow::Result<Emulator> {
        let shared = Arc::new(Shared::new(&options)?);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the EC2 emulator to {listen}"))?;
        let local_addr = listener.local_addr()?;
        let app = crate::http::router(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            // Like AWS's endpoints, answer without Nagle's delay on the last segment.
            let listener = listener.tap_io(|tcp| {
                if let Err(err) = tcp.set_nodelay(true) {
                    tracing::warn!(%err, "cannot set TCP_NODELAY");
                }
            });
            let serving = axum::serve(listener, app).with_graceful_shutdown(async {
                // A dropped sender stops the server as well.
                let _ = stopped.await;
            });
            if let Err(err) = serving.await {
                tracing::error!(%err, "EC2 emulator server failed");
            }
        });
        tracing::info!(
            %local_addr,
            regions = ?shared.regions,
            accounts = shared.accounts,
            tasks_per_region = options.tasks_per_region,
            seed = options.seed,
            "EC2 emulator started"
        );
        Ok(Emulator {
            shared,
            local_addr,
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL to give an SDK as its endpoint, e.g. `http://127.0.0.1:40123` (a wildcard bind
    /// address is replaced by loopback).
    pub fn endpoint_url(&self) -> String {
        let mut addr = self.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        format!("http://{addr}")
    }

    /// The served regions.
    pub fn regions(&self) -> Vec<String> {
        self.shared.regions.clone()
    }

    /// The ids of the accounts, the home (management) account first.
    pub fn accounts(&self) -> Vec<String> {
        self.shared.account_ids()
    }

    /// The served regions enabled in `account` now.
    pub fn enabled_regions(&self, account: &str) -> Vec<String> {
        self.shared.enabled_regions(account)
    }

    /// What DescribeStoreImageTasks lists for the home account in `region` now (every page),
    /// newest first; empty for a region not served.
    pub fn tasks(&self, region: &str) -> Vec<TaskView> {
        self.shared.tasks(HOME_ACCOUNT, region)
    }

    /// What DescribeStoreImageTasks lists for `account` in `region` now; empty for an account
    /// or region not served.
    pub fn tasks_in(&self, account: &str, region: &str) -> Vec<TaskView> {
        self.shared.tasks(account, region)
    }

    /// AMIs CreateStoreImageTask accepts in the home account's `region` now (registered, no
    /// task InProgress); those that never had a task come first.
    pub fn storable_amis(&self, region: &str) -> Vec<String> {
        self.shared.storable_amis(HOME_ACCOUNT, region)
    }

    /// AMIs CreateStoreImageTask accepts in `account`'s `region` now.
    pub fn storable_amis_in(&self, account: &str, region: &str) -> Vec<String> {
        self.shared.storable_amis(account, region)
    }

    /// The buckets the home account owns in `region`; a task to any other bucket fails.
    pub fn buckets(&self, region: &str) -> Vec<String> {
        self.shared.buckets(HOME_ACCOUNT, region)
    }

    /// The buckets `account` owns in `region`.
    pub fn buckets_in(&self, account: &str, region: &str) -> Vec<String> {
        self.shared.buckets(account, region)
    }

    /// The API requests received so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log.snapshot()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }

    /// Changes faults, clock or task duration; see [`ConfigUpdate`].
    pub fn update_config(&self, update: ConfigUpdate) -> Result<EffectiveConfig, ConfigError> {
        self.shared.update_config(update)
    }

    /// The configuration in force.
    pub fn config(&self) -> EffectiveConfig {
        self.shared.effective_config()
    }

    /// Stops accepting connections, lets requests in flight finish (for at most 5 s) and waits
    /// for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
