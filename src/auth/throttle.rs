//! Login throttling: how fast passwords may be guessed. This module owns the failed-login
//! records of each (user name, client address) pair (a growing delay before each failure is
//! answered, then a lockout) and the failed-login budget of each client address across all
//! user names (a governor rate limiter). Both live in bounded, expiring moka caches, so a
//! flood of distinct names or addresses cannot grow memory. Bearer tokens never come here:
//! only password checks (Basic credentials, in a handshake or on any call) are throttled.
//!
//! A password check runs as an [`Attempt`]: [`Throttle::admit`] refuses it unchecked when
//! the pair is locked out or the address has spent its budget (so a refused flood costs no
//! argon2 work), and otherwise holds the pair's turn, so the checks of one pair run one at a
//! time and concurrency cannot outrun the delays or the lockout. The caller verifies the
//! password, then reports [`Attempt::succeeded`] or [`Attempt::failed`] (which sleeps the
//! delay, still holding the turn).

use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use moka::future::Cache;
use tokio::sync::OwnedMutexGuard;

/// How failed logins are slowed down and locked out (see the README's Security section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failed logins of one user name from one client address that lock the pair out
    /// (`--login-max-failures`). At least 1.
    pub max_failures: u32,
    /// How long a locked-out pair is refused, counted from its last failure; also how long a
    /// pair's failures are remembered without a new one (`--login-lockout`). More than 0.
    pub lockout: Duration,
    /// Delay before the first failure of a pair is answered; each further failure doubles it.
    pub first_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Failed logins one client address may make, all user names together, before its
    /// password checks are refused unchecked; 0 = no limit (`--login-address-failures-per-minute`).
    pub address_failures: u32,
    /// The time in which an address's whole budget comes back (one failure every
    /// `address_period / address_failures`).
    pub address_period: Duration,
}

/// Default failures of one user name from one address before a lockout.
pub const DEFAULT_MAX_FAILURES: u32 = 5;
/// Default lockout.
pub const DEFAULT_LOCKOUT: Duration = Duration::from_secs(5 * 60);
/// Default failed logins per minute from one address, all names together.
pub const DEFAULT_ADDRESS_FAILURES_PER_MINUTE: u32 = 30;

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            max_failures: DEFAULT_MAX_FAILURES,
            lockout: DEFAULT_LOCKOUT,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            address_failures: DEFAULT_ADDRESS_FAILURES_PER_MINUTE,
            address_period: Duration::from_secs(60),
        }
    }
}

impl LoginLimits {
    /// Checks the values.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.max_failures == 0 {
            anyhow::bail!("login_max_failures must be at least 1");
        }
        if self.lockout.is_zero() {
            anyhow::bail!("login_lockout must be more than 0s");
        }
        if self.address_failures > 0 && self.address_period.is_zero() {
            anyhow::bail!("the address failure period must be more than 0s");
        }
        Ok(())
    }

    /// The delay before answering a pair's `count`th failure in a row (1-based): the first
    /// delay, doubled for each failure before it, at most the longest delay.
    pub fn delay_after(&self, count: u32) -> Duration {
        let doublings = count.saturating_sub(1).min(30);
        self.first_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }

    /// The address rate limit, if any.
    fn address_quota(&self) -> Option<Quota> {
        let burst = std::num::NonZeroU32::new(self.address_failures)?;
        Quota::with_period(self.address_period / burst.get()).map(|q| q.allow_burst(burst))
    }
}

/// Why a password check was refused without being made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// This user name failed too often from this address.
    LockedOut {
        /// Until the lockout ends.
        retry_after: Duration,
    },
    /// This address failed too often, all user names together.
    Address {
        /// Until the address may try again.
        retry_after: Duration,
    },
}

impl Refusal {
    /// The metric label and log field.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Refusal::LockedOut { .. } => "locked_out",
            Refusal::Address { .. } => "address",
        }
    }

    /// About how long until an attempt may be checked again, in whole seconds (rounded up).
    pub(crate) fn retry_after(&self) -> humantime::FormattedDuration {
        let (Refusal::LockedOut { retry_after } | Refusal::Address { retry_after }) = self;
        let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
        humantime::format_duration(Duration::from_secs(secs))
    }

    /// The UNAUTHENTICATED message: the same whether or not the password was right (it was
    /// not checked).
    pub(crate) fn message(&self) -> String {
        let about = self.retry_after();
        match self {
            Refusal::LockedOut { .. } => format!(
                "too many failed logins for this user name from your address: try again in \
                 about {about}"
            ),
            Refusal::Address { .. } => {
                format!("too many failed logins from your address: try again in about {about}")
            }
        }
    }
}

/// The client key of an address: IPv4 addresses as they are (IPv4-mapped IPv6 ones too),
/// IPv6 addresses by their /64 network, which one client usually holds whole.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The failed logins of one (user name, client address) pair.
#[derive(Debug, Default)]
struct Failures {
    /// Failures in a row, each within `lockout` of the one before.
    count: u32,
    /// When the last one happened.
    last: Option<Instant>,
}

impl Failures {
    /// How long the pair stays locked out, if it is.
    fn locked_for(&self, now: Instant, limits: &LoginLimits) -> Option<Duration> {
        let end = self.last? + limits.lockout;
        (self.count >= limits.max_failures && now < end).then(|| end - now)
    }

    /// Records a failure at `now`; returns the failures in a row, this one included.
    fn failed(&mut self, now: Instant, limits: &LoginLimits) -> u32 {
        if self.last.is_some_and(|last| now >= last + limits.lockout) {
            // Quiet for the lockout period: forgotten (a lockout has ended by then too).
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.last = Some(now);
        self.count
    }
}

/// The time source of a throttle (a test's is moved by hand).
pub(crate) trait LoginClock:
    Clock<Instant = Instant> + Clone + Send + Sync + 'static
{
}

impl<C: Clock<Instant = Instant> + Clone + Send + Sync + 'static> LoginClock for C {}

/// The governor limiter of one address, on the throttle's clock.
type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<Instant>>;

/// The failed-login budget of one client address.
struct AddressBudget<C: LoginClock> {
    limiter: Limiter<C>,
    state: Mutex<Spent>,
}

/// Whether an address has spent its budget. While it has not, only failures are charged
/// (so good logins never use it up). Once a failure finds it spent, every check from the
/// address is charged when admitted, until it has been quiet long enough for the whole
/// budget to come back: governor cannot tell whether a cell is left without taking it.
#[derive(Debug, Default)]
struct Spent {
    exhausted: bool,
    /// Checks are refused until then.
    until: Option<Instant>,
    /// When a cell was last taken.
    last_charge: Option<Instant>,
}

/// How an admitted attempt pays the address budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charge {
    /// A cell is taken if it fails.
    OnFailure,
    /// A cell was taken when it was admitted.
    Paid,
}

impl<C: LoginClock> AddressBudget<C> {
    /// Whether an attempt from this address may be checked now, and how it pays.
    fn admit(&self, now: Instant, period: Duration) -> Result<Charge, Duration> {
        let mut spent = self.state.lock().expect("address budget");
        if spent.exhausted && spent.last_charge.is_none_or(|at| now >= at + period) {
            *spent = Spent::default();
        }
        if !spent.exhausted {
            return Ok(Charge::OnFailure);
        }
        if let Some(until) = spent.until.filter(|until| now < *until) {
            return Err(until - now);
        }
        match self.limiter.check() {
            Ok(()) => {
                spent.last_charge = Some(now);
                Ok(Charge::Paid)
            }
            Err(not_until) => {
                let until = not_until.earliest_possible();
                spent.until = Some(until);
                Err(until.saturating_duration_since(now))
            }
        }
    }

    /// Charges a failure that was admitted [`Charge::OnFailure`]; returns whether that spent
    /// the budget.
    fn failed(&self, now: Instant) -> bool {
        let mut spent = self.state.lock().expect("address budget");
        match self.limiter.check() {
            Ok(()) => {
                spent.last_charge = Some(now);
                false
            }
            Err(not_until) => {
                let newly = !spent.exhausted;
                spent.exhausted = true;
                spent.until = Some(not_until.earliest_possible());
                newly
            }
        }
    }
}

/// The most bytes of (user name, address) records kept: a record weighs its name plus
/// [`RECORD_OVERHEAD`]; past this the least used are dropped.
const RECORD_BYTES: u64 = 16 * 1024 * 1024;
/// A record's weight besides its name.
const RECORD_OVERHEAD: u32 = 128;
/// The most client addresses whose budget is kept.
const ADDRESSES: u64 = 65_536;

/// A (user name, client key) pair's record, shared by the attempts that wait for its turn.
type Record = Arc<tokio::sync::Mutex<Failures>>;

/// The login throttle of one server.
pub(crate) struct Throttle<C: LoginClock = MonotonicClock> {
    limits: LoginLimits,
    clock: C,
    quota: Option<Quota>,
    records: Cache<(IpAddr, String), Record>,
    addresses: Cache<IpAddr, Arc<AddressBudget<C>>>,
}

impl<C: LoginClock> std::fmt::Debug for Throttle<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The limits only: the records hold user names (or mistyped passwords).
        f.debug_struct("Throttle")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Throttle {
    /// A throttle with `limits` (already checked) on the system's monotonic clock.
    pub(crate) fn new(limits: LoginLimits) -> Throttle {
        Throttle::with_clock(limits, MonotonicClock, RECORD_BYTES, ADDRESSES)
    }
}

impl<C: LoginClock> Throttle<C> {
    /// A throttle on `clock`, keeping at most `record_bytes` of records and `addresses`
    /// budgets.
    fn with_clock(limits: LoginLimits, clock: C, record_bytes: u64, addresses: u64) -> Self {
        let records = Cache::builder()
            .max_capacity(record_bytes)
            .weigher(|(_, name): &(IpAddr, String), _: &Record| {
                RECORD_OVERHEAD.saturating_add(u32::try_from(name.len()).unwrap_or(u32::MAX))
            })
            // A record idle for the lockout period is forgotten by `Failures::failed` anyway.
            .time_to_idle(limits.lockout)
            .build();
        let addresses = Cache::builder()
            .max_capacity(addresses)
            // An address quiet for the period has its whole budget back anyway.
            .time_to_idle(limits.address_period.max(Duration::from_secs(1)))
            .build();
        Throttle {
            quota: limits.address_quota(),
            limits,
            clock,
            records,
            addresses,
        }
    }

    /// The limits in force.
    pub(crate) fn limits(&self) -> &LoginLimits {
        &self.limits
    }

    /// Admits a password check of `user` from `client`, waiting for the pair's turn, or
    /// says why it is refused unchecked.
    pub(crate) async fn admit(
        &self,
        user: &str,
        client: IpAddr,
    ) -> Result<Attempt<'_, C>, Refusal> {
        let client = client_key(client);
        let charge = self.admit_address(client).await?;
        let record = self
            .records
            .get_with((client, user.to_owned()), async { Record::default() })
            .await;
        let failures = record.lock_owned().await;
        if let Some(retry_after) = failures.locked_for(self.clock.now(), &self.limits) {
            return Err(Refusal::LockedOut { retry_after });
        }
        Ok(Attempt {
            throttle: self,
            client,
            charge,
            failures,
        })
    }

    async fn admit_address(&self, client: IpAddr) -> Result<Charge, Refusal> {
        if self.quota.is_none() {
            return Ok(Charge::OnFailure);
        }
        match self.addresses.get(&client).await {
            None => Ok(Charge::OnFailure),
            Some(budget) => budget
                .admit(self.clock.now(), self.limits.address_period)
                .map_err(|retry_after| Refusal::Address { retry_after }),
        }
    }

    #[cfg(test)]
    async fn sizes(&self) -> (u64, u64) {
        self.records.run_pending_tasks().await;
        self.addresses.run_pending_tasks().await;
        (self.records.entry_count(), self.addresses.entry_count())
    }
}

/// An admitted password check: it holds its (user name, address) pair's turn until it is
/// reported.
pub(crate) struct Attempt<'a, C: LoginClock> {
    throttle: &'a Throttle<C>,
    client: IpAddr,
    charge: Charge,
    failures: OwnedMutexGuard<Failures>,
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failed {
    /// Failures of the pair in a row, this one included.
    pub count: u32,
    /// The delay before the failure was answered.
    pub delay: Duration,
    /// This failure locked the pair out.
    pub locked_out: bool,
    /// This failure spent the address's budget.
    pub address_spent: bool,
}

impl<C: LoginClock> Attempt<'_, C> {
    /// Checks the address budget again, after waiting for a free password check: other
    /// attempts from the address may have spent it meanwhile.
    pub(crate) async fn recheck(&mut self) -> Result<(), Refusal> {
        if self.charge == Charge::OnFailure {
            self.charge = self.throttle.admit_address(self.client).await?;
        }
        Ok(())
    }

    /// The password was right: the pair's failures are forgotten.
    pub(crate) fn succeeded(mut self) {
        *self.failures = Failures::default();
    }

    /// The password was wrong: records the failure, then waits the delay before it may be
    /// answered, still holding the pair's turn.
    pub(crate) async fn failed(mut self) -> Failed {
        let throttle = self.throttle;
        let limits = &throttle.limits;
        let now = throttle.clock.now();
        let count = self.failures.failed(now, limits);
        let mut address_spent = false;
        if let (Some(quota), Charge::OnFailure) = (throttle.quota, self.charge) {
            let clock = throttle.clock.clone();
            let budget = throttle
                .addresses
                .get_with(self.client, async move {
                    Arc::new(AddressBudget {
                        limiter: RateLimiter::direct_with_clock(quota, clock),
                        state: Mutex::default(),
                    })
                })
                .await;
            address_spent = budget.failed(now);
        }
        let delay = limits.delay_after(count);
        tokio::time::sleep(delay).await;
        Failed {
            count,
            delay,
            locked_out: count == limits.max_failures,
            address_spent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// A clock the test moves.
    #[derive(Clone)]
    struct ManualClock(Arc<Mutex<Instant>>);

    impl ManualClock {
        fn new() -> Self {
            ManualClock(Arc::new(Mutex::new(Instant::now())))
        }

        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    impl Clock for ManualClock {
        type Instant = Instant;

        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    const ONE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const TWO: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    /// Limits without delays (they are tested on their own).
    fn limits(max_failures: u32, address_failures: u32) -> LoginLimits {
        LoginLimits {
            max_failures,
            lockout: Duration::from_secs(60),
            first_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            address_failures,
            address_period: Duration::from_secs(10),
        }
    }

    fn throttle(limits: LoginLimits) -> (Throttle<ManualClock>, ManualClock) {
        let clock = ManualClock::new();
        let throttle = Throttle::with_clock(limits, clock.clone(), RECORD_BYTES, ADDRESSES);
        (throttle, clock)
    }

    /// One wrong password for `user` from `ip`, or why it was refused unchecked.
    async fn fail(t: &Throttle<ManualClock>, user: &str, ip: IpAddr) -> Result<Failed, Refusal> {
        let mut attempt = t.admit(user, ip).await?;
        attempt.recheck().await?;
        Ok(attempt.failed().await)
    }

    async fn succeed(t: &Throttle<ManualClock>, user: &str, ip: IpAddr) -> Result<(), Refusal> {
        t.admit(user, ip).await?.succeeded();
        Ok(())
    }

    #[test]
    fn delays_double_from_the_first_up_to_the_longest() {
        let l = LoginLimits::default();
        let ms = |n| l.delay_after(n).as_millis();
        assert_eq!(
            (1..=8).map(ms).collect::<Vec<_>>(),
            [200, 400, 800, 1600, 3200, 5000, 5000, 5000]
        );
        assert_eq!(l.delay_after(u32::MAX), Duration::from_secs(5));
        assert!(l.check().is_ok());
        let bad = |change: fn(&mut LoginLimits)| {
            let mut l = LoginLimits::default();
            change(&mut l);
            l.check().unwrap_err().to_string()
        };
        assert!(bad(|l| l.max_failures = 0).contains("login_max_failures"));
        assert!(bad(|l| l.lockout = Duration::ZERO).contains("login_lockout"));
    }

    #[tokio::test]
    async fn a_pair_is_locked_out_after_max_failures_whatever_it_sends_then_let_in_again() {
        let (t, clock) = throttle(limits(3, 0));
        for n in 1..=3 {
            let failed = fail(&t, "alice", ONE).await.unwrap();
            assert_eq!(failed.count, n);
            assert_eq!(failed.locked_out, n == 3);
            clock.advance(Duration::from_secs(1));
        }
        // Locked: a wrong and a right password alike are refused unchecked, until 60 s after
        // the last failure.
        let refusal = fail(&t, "alice", ONE).await.unwrap_err();
        assert_eq!(
            refusal,
            Refusal::LockedOut {
                retry_after: Duration::from_secs(59)
            }
        );
        assert!(
            refusal.message().contains("too many failed logins")
                && refusal.message().contains("about 59s"),
            "{}",
            refusal.message()
        );
        assert_eq!(
            succeed(&t, "alice", ONE).await.unwrap_err().reason(),
            "locked_out"
        );
        // Other names from the address, and the name from another address, are not locked.
        succeed(&t, "bob", ONE).await.unwrap();
        succeed(&t, "alice", TWO).await.unwrap();
        clock.advance(Duration::from_secs(58));
        assert!(fail(&t, "alice", ONE).await.is_err());
        clock.advance(Duration::from_secs(1));
        // Over: the failures are forgotten with the lockout.
        assert_eq!(fail(&t, "alice", ONE).await.unwrap().count, 1);
    }

    #[tokio::test]
    async fn failures_are_forgotten_after_a_quiet_lockout_period_or_a_good_login() {
        let (t, clock) = throttle(limits(3, 0));
        fail(&t, "alice", ONE).await.unwrap();
        fail(&t, "alice", ONE).await.unwrap();
        clock.advance(Duration::from_secs(60));
        assert_eq!(fail(&t, "alice", ONE).await.unwrap().count, 1);
        assert_eq!(fail(&t, "alice", ONE).await.unwrap().count, 2);
        succeed(&t, "alice", ONE).await.unwrap();
        assert_eq!(fail(&t, "alice", ONE).await.unwrap().count, 1);
    }

    #[tokio::test]
    async fn an_address_has_a_failure_budget_across_names_and_good_logins_do_not_spend_it() {
        // 5 failures per 10 s: one comes back every 2 s.
        let (t, clock) = throttle(limits(100, 5));
        for i in 0..20 {
            succeed(&t, &format!("user{i}"), ONE).await.unwrap();
        }
        for i in 0..5 {
            let failed = fail(&t, &format!("name{i}"), ONE).await.unwrap();
            assert!(!failed.address_spent);
        }
        // The failure that finds the budget spent was checked (governor cannot tell before
        // taking a cell); from then on every check is refused unchecked...
        assert!(fail(&t, "name5", ONE).await.unwrap().address_spent);
        let refusal = fail(&t, "name6", ONE).await.unwrap_err();
        assert_eq!(refusal.reason(), "address");
        assert!(refusal.message().contains("from your address"));
        assert_eq!(
            succeed(&t, "user0", ONE).await.unwrap_err().reason(),
            "address"
        );
        // ...other addresses are not affected...
        fail(&t, "name0", TWO).await.unwrap();
        // ...and one check is let through each time a cell comes back, good or bad.
        clock.advance(Duration::from_secs(2));
        succeed(&t, "user0", ONE).await.unwrap();
        assert!(succeed(&t, "user1", ONE).await.is_err());
        clock.advance(Duration::from_secs(2));
        fail(&t, "name7", ONE).await.unwrap();
        assert!(fail(&t, "name8", ONE).await.is_err());
        // Quiet for the whole period: the budget is back, and good logins are free again.
        clock.advance(Duration::from_secs(10));
        for i in 0..20 {
            succeed(&t, &format!("user{i}"), ONE).await.unwrap();
        }
        for i in 0..5 {
            fail(&t, &format!("again{i}"), ONE).await.unwrap();
        }
    }

    #[tokio::test]
    async fn ipv6_clients_are_keyed_by_their_64_network_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::7".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(mapped), ONE);
        let (t, _clock) = throttle(limits(2, 0));
        fail(&t, "alice", a).await.unwrap();
        fail(&t, "alice", b).await.unwrap();
        assert!(succeed(&t, "alice", a).await.is_err());
        succeed(&t, "alice", other).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_attempts_of_one_pair_take_turns_so_the_lockout_holds() {
        let (t, _clock) = throttle(limits(5, 0));
        let t = Arc::new(t);
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let t = Arc::clone(&t);
                tokio::spawn(async move { fail(&t, "mallory", ONE).await.is_ok() })
            })
            .collect();
        let mut checked = 0;
        for task in tasks {
            checked += usize::from(task.await.unwrap());
        }
        assert_eq!(checked, 5, "checks made for a pair locked out after 5");
    }

    #[tokio::test]
    async fn delays_are_waited_before_a_failure_is_answered() {
        let (t, _clock) = throttle(LoginLimits {
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(40),
            ..limits(10, 0)
        });
        let started = Instant::now();
        let mut total = Duration::ZERO;
        for _ in 0..3 {
            total += fail(&t, "alice", ONE).await.unwrap().delay;
        }
        assert_eq!(total, Duration::from_millis(20 + 40 + 40));
        assert!(started.elapsed() >= total);
    }

    #[tokio::test]
    async fn memory_stays_bounded_under_a_flood_of_names_and_addresses() {
        let clock = ManualClock::new();
        let t = Throttle::with_clock(limits(3, 5), clock, 64 * 1024, 256);
        for i in 0..3000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            let _ = fail(&t, &format!("name-{i}-{}", "x".repeat(100)), ip).await;
        }
        let (records, addresses) = t.sizes().await;
        // Each record weighs 128 bytes plus its ~110-byte name.
        assert!(records <= 64 * 1024 / 230, "{records} records kept");
        assert!(addresses <= 256, "{addresses} addresses kept");
    }
}
