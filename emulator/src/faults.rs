//! The machinery of fault injection: a token bucket per account and region for throttling and seeded dice
//! for random failures. Which faults are on is run-time configuration (`config`); the API
//! pipeline (`http`) decides where in a request each applies.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Token buckets by key (the pipeline's key is account and region, as AWS throttles), refilled in real time (a frozen emulator clock must not stop
/// the refill, or a throttled test could never recover).
#[derive(Debug, Default)]
pub struct Throttle {
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

#[derive(Debug)]
struct TokenBucket {
    rps: f64,
    tokens: f64,
    last: Instant,
}

impl Throttle {
    /// Takes a token from the bucket of `region` (any key); false when it is empty. A bucket holds
    /// `max(1, rps)` tokens and starts full; `rps == 0` admits nothing.
    pub fn admit(&self, region: &str, rps: f64, now: Instant) -> bool {
        let capacity = if rps > 0.0 { rps.max(1.0) } else { 0.0 };
        let mut buckets = self.buckets.lock().expect("throttle lock");
        let bucket = buckets
            .entry(region.to_owned())
            .or_insert_with(|| TokenBucket {
                rps,
                tokens: capacity,
                last: now,
            });
        if bucket.rps != rps {
            *bucket = TokenBucket {
                rps,
                tokens: capacity,
                last: now,
            };
        }
        let refill = now.saturating_duration_since(bucket.last).as_secs_f64() * rps;
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets every bucket (they restart full).
    pub fn reset(&self) {
        self.buckets.lock().expect("throttle lock").clear();
    }
}

/// Random decisions from a seeded generator.
#[derive(Debug)]
pub struct Dice(Mutex<StdRng>);

impl Dice {
    /// Dice seeded from the emulator's seed.
    pub fn new(seed: u64) -> Dice {
        Dice(Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed_fa17)))
    }

    /// True with probability `p` (never for 0, always for 1).
    pub fn roll(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        self.0.lock().expect("dice lock").random_bool(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_its_burst_then_refills() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        assert!(throttle.admit("r", 2.0, t0));
        assert!(throttle.admit("r", 2.0, t0));
        assert!(!throttle.admit("r", 2.0, t0));
        // Other regions have their own bucket.
        assert!(throttle.admit("other", 2.0, t0));
        assert!(throttle.admit("r", 2.0, t0 + Duration::from_millis(500)));
        assert!(!throttle.admit("r", 2.0, t0 + Duration::from_millis(500)));
        // A new rate starts a full bucket.
        assert!(throttle.admit("r", 1.0, t0 + Duration::from_millis(500)));
        assert!(!throttle.admit("r", 1.0, t0 + Duration::from_millis(600)));
        assert!(!throttle.admit("z", 0.0, t0));
        throttle.reset();
        assert!(throttle.admit("r", 1.0, t0 + Duration::from_millis(600)));
    }

    #[test]
    fn dice_extremes_are_certain() {
        let dice = Dice::new(1);
        assert!((0..100).all(|_| !dice.roll(0.0)));
        assert!((0..100).all(|_| dice.roll(1.0)));
        let hits = (0..1000).filter(|_| dice.roll(0.5)).count();
        assert!((350..650).contains(&hits), "{hits}");
    }
}
