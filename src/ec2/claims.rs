//! Which statement made which store task, on this server. `CreateStoreImageTask` returns
//! nothing that identifies a task but the AMI, and after an ambiguous failure (5xx, timeout,
//! lost connection) the only way to learn whether a create took effect is to look for an
//! in-progress task of that AMI. Two statements storing the same AMI must not both take
//! that task for their own, so:
//!
//! - creates are serialized per region and AMI ([`Claims::lock`]): while a statement sends
//!   and confirms its create, no other statement of this server sends one for that AMI;
//! - the AMI's in-progress task is recorded as the claim of the statement that created it
//!   ([`Claims::record`]) or confirmed it ([`Claims::claim`]); another statement that finds
//!   an in-progress task of that AMI after an ambiguous failure while the claim lasts cannot
//!   tell it from its own (AWS stores an AMI once at a time), and reports it as created by
//!   this or a concurrent statement instead of counting it.
//!
//! Other replicas or tools can still store the same AMI unseen by this server: a statement
//! that confirms a task after an ambiguous failure assumes no other creator outside it.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

/// How long a claim is remembered: far longer than any task stays in progress unseen.
const CLAIM_TTL: Duration = Duration::from_secs(6 * 3600);
/// The most claims remembered (an INSERT creates at most 1,000 tasks).
const MAX_CLAIMS: u64 = 200_000;

/// One statement's identity, for claims.
pub type StatementId = u64;

/// The per-AMI locks and the claims of this server's statements.
#[derive(Debug, Clone)]
pub struct Claims {
    locks: Cache<(String, String), Arc<tokio::sync::Mutex<()>>>,
    /// The statement whose task of (region, AMI) was last created or confirmed.
    claimed: Cache<(String, String), StatementId>,
}

impl Default for Claims {
    fn default() -> Self {
        Claims {
            // A lock idle for ten minutes is no longer held by anyone (a create and its
            // confirmation take a few attempts of at most the attempt timeout).
            locks: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
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
    /// `region`; the create runs while the guard lives.
    pub async fn lock(&self, region: &str, ami: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .locks
            .get_with((region.to_owned(), ami.to_owned()), Default::default);
        lock.lock_owned().await
    }

    /// Records that `statement` created the in-progress task of `ami` in `region`.
    pub fn record(&self, statement: StatementId, region: &str, ami: &str) {
        self.claimed
            .insert((region.to_owned(), ami.to_owned()), statement);
    }

    /// Claims the in-progress task of `ami` in `region`, found after an ambiguous failure,
    /// for `statement`, unless another statement's claim on it lasts.
    pub fn claim(&self, statement: StatementId, region: &str, ami: &str) -> Owner {
        let owner = self
            .claimed
            .entry((region.to_owned(), ami.to_owned()))
            .or_insert(statement)
            .into_value();
        if owner == statement {
            Owner::This
        } else {
            Owner::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_another_statement_claimed_is_never_claimed_again() {
        let claims = Claims::default();
        assert_eq!(claims.claim(1, "us-east-1", "ami-1"), Owner::This);
        assert_eq!(claims.claim(2, "us-east-1", "ami-1"), Owner::Other);
        assert_eq!(claims.claim(1, "us-east-1", "ami-1"), Owner::This);
        // Another region's task of the AMI is another claim.
        assert_eq!(claims.claim(2, "eu-west-1", "ami-1"), Owner::This);
        // A create that succeeded outright is the statement's for sure.
        claims.record(3, "us-east-1", "ami-1");
        assert_eq!(claims.claim(1, "us-east-1", "ami-1"), Owner::Other);
        assert_eq!(claims.claim(3, "us-east-1", "ami-1"), Owner::This);
    }

    #[tokio::test]
    async fn creates_of_one_ami_take_turns() {
        let claims = Claims::default();
        let first = claims.lock("us-east-1", "ami-1").await;
        // Another AMI is not held up.
        let _other = claims.lock("us-east-1", "ami-2").await;
        let waiting =
            tokio::time::timeout(Duration::from_millis(50), claims.lock("us-east-1", "ami-1"))
                .await;
        assert!(waiting.is_err(), "a second create of ami-1 did not wait");
        drop(first);
        let _second = claims.lock("us-east-1", "ami-1").await;
    }
}
