//! Which statement made which store task, on this server. `CreateStoreImageTask` returns
//! nothing that identifies a task but the AMI, and after an ambiguous failure (5xx, timeout,
//! lost connection) the only way to learn whether a create took effect is to look for an
//! in-progress task of that AMI. Two statements storing the same AMI must not both take
//! that task for their own, so:
//!
//! Everything is keyed on the account as well as the region and the AMI: one `Claims` is
//! shared by every account's clients, and the same AMI id in two accounts is two AMIs.
//!
//! - creates are serialized per account, region and AMI ([`Claims::lock`]): while a statement sends
//!   and confirms its create, no other statement of this server sends one for that AMI;
//! - the AMI's in-progress task is recorded as the claim of the statement that created it
//!   ([`Claims::record`]) or confirmed it ([`Claims::claim`]); another statement that finds
//!   an in-progress task of that AMI after an ambiguous failure while the claim lasts cannot
//!   tell it from its own (AWS stores an AMI once at a time), and reports it as created by
//!   this or a concurrent statement instead of counting it.
//!
//! Other replicas or tools can still store the same AMI unseen by this server: a statement
//! that confirms a task after an ambiguous failure assumes no other creator outside it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::sync::Cache;

/// How long a claim is remembered: far longer than any task stays in progress unseen.
const CLAIM_TTL: Duration = Duration::from_secs(6 * 3600);
/// The most claims remembered (an INSERT creates at most 1,000 tasks).
const MAX_CLAIMS: u64 = 200_000;

/// One statement's identity, for claims.
pub type StatementId = u64;

/// An account, a region and an AMI.
type AmiKey = (String, String, String);

/// The turn of one AMI's creates.
type AmiLock = tokio::sync::Mutex<()>;

/// The per-AMI locks and the claims of this server's statements.
#[derive(Debug, Clone)]
pub struct Claims {
    /// One lock per (account, region, AMI) while someone holds or waits for it: a lock lives as long
    /// as a guard or a waiter refers to it, never evicted under them.
    locks: Arc<Mutex<HashMap<AmiKey, Weak<AmiLock>>>>,
    /// The statement whose task of (account, region, AMI) was last created or confirmed, and when.
    claimed: Cache<AmiKey, (StatementId, DateTime<Utc>)>,
}

impl Default for Claims {
    fn default() -> Self {
        Claims {
            locks: Arc::default(),
            claimed: Cache::builder()
                .max_capacity(MAX_CLAIMS)
                .time_to_live(CLAIM_TTL)
                .build(),
        }
    }
}

/// Whose a found task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Claimed now by the asking statement (or claimed by it before).
    This,
    /// Another statement of this server claimed it.
    Other,
}

impl Claims {
    /// Waits until no other statement of this server is creating a store task of `ami` in
    /// `account`'s `region`; the create runs while the guard lives.
    pub async fn lock(
        &self,
        account: &str,
        region: &str,
        ami: &str,
    ) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().expect("claims lock");
            let key = key(account, region, ami);
            match locks.get(&key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    // Forget the locks nobody holds any more before adding one.
                    locks.retain(|_, lock| lock.strong_count() > 0);
                    let lock = Arc::new(AmiLock::new(()));
                    locks.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// Records that `statement` created the in-progress task of `ami` in `account`'s
    /// `region`.
    pub fn record(&self, statement: StatementId, account: &str, region: &str, ami: &str) {
        self.claimed
            .insert(key(account, region, ami), (statement, Utc::now()));
    }

    /// Claims the in-progress task of `ami` in `account`'s `region` that started at `started`, found
    /// after an ambiguous failure, for `statement`, unless another statement claimed it: a
    /// task that started after the other statement's claim was recorded is a later store
    /// (creates take turns), so it is this statement's.
    pub fn claim(
        &self,
        statement: StatementId,
        account: &str,
        region: &str,
        ami: &str,
        started: Option<DateTime<Utc>>,
    ) -> Owner {
        let key = key(account, region, ami);
        let mut owner = Owner::This;
        self.claimed.entry(key).and_compute_with(|entry| {
            use moka::ops::compute::Op;
            match entry.map(|e| e.into_value()) {
                Some((other, at)) if other != statement && started.is_none_or(|s| s <= at) => {
                    owner = Owner::Other;
                    Op::Nop
                }
                _ => Op::Put((statement, Utc::now())),
            }
        });
        owner
    }
}

fn key(account: &str, region: &str, ami: &str) -> AmiKey {
    (account.to_owned(), region.to_owned(), ami.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "111111111111";
    const B: &str = "100000000001";

    #[test]
    fn a_task_another_statement_claimed_is_never_claimed_again() {
        let claims = Claims::default();
        let early = Some(Utc::now() - chrono::TimeDelta::minutes(1));
        assert_eq!(claims.claim(1, A, "us-east-1", "ami-1", early), Owner::This);
        assert_eq!(
            claims.claim(2, A, "us-east-1", "ami-1", early),
            Owner::Other
        );
        assert_eq!(claims.claim(1, A, "us-east-1", "ami-1", early), Owner::This);
        // Another region's task of the AMI is another claim, and so is another account's.
        assert_eq!(claims.claim(2, A, "eu-west-1", "ami-1", early), Owner::This);
        assert_eq!(claims.claim(2, B, "us-east-1", "ami-1", early), Owner::This);
        // A create that succeeded outright is the statement's for sure.
        claims.record(3, A, "us-east-1", "ami-1");
        assert_eq!(
            claims.claim(1, A, "us-east-1", "ami-1", early),
            Owner::Other
        );
        assert_eq!(claims.claim(3, A, "us-east-1", "ami-1", early), Owner::This);
        // A task that started after the claim is a later store: not the old claimant's.
        let later = Some(Utc::now() + chrono::TimeDelta::minutes(1));
        assert_eq!(claims.claim(4, A, "us-east-1", "ami-1", later), Owner::This);
        assert_eq!(
            claims.claim(3, A, "us-east-1", "ami-1", early),
            Owner::Other
        );
    }

    #[tokio::test]
    async fn creates_of_one_ami_take_turns() {
        let claims = Claims::default();
        let first = claims.lock(A, "us-east-1", "ami-1").await;
        // Another AMI is not held up, nor the same AMI id in another account.
        let _other = claims.lock(A, "us-east-1", "ami-2").await;
        let _elsewhere = claims.lock(B, "us-east-1", "ami-1").await;
        let waiting = tokio::time::timeout(
            Duration::from_millis(50),
            claims.lock(A, "us-east-1", "ami-1"),
        )
        .await;
        assert!(waiting.is_err(), "a second create of ami-1 did not wait");
        drop(first);
        let _second = claims.lock(A, "us-east-1", "ami-1").await;
    }
}
