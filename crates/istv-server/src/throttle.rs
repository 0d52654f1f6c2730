//! In-memory limits: sign-in failures per key (user name, client address)
//! and queries per user and per organisation (token buckets). They live in the process: a
//! restart forgets them, and instances behind a load balancer count apart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before expired ones are swept, so a flood of names cannot
/// grow the maps without bound.
const SWEEP_AT: usize = 10_000;

/// Failed sign-ins per key: after `max_failures` within `window` of the
/// first, the key is refused until the window ends.
#[derive(Debug)]
pub(crate) struct Throttle {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    pub(crate) fn new(max_failures: u32, window: Duration) -> Throttle {
        Throttle {
            max_failures: max_failures.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while the key is locked out.
    pub(crate) fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let map = self.failures.lock().expect("throttle lock");
        match map.get(key) {
            Some(&(n, first)) if n >= self.max_failures && now < first + self.window => {
                Err(first + self.window - now)
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure of the key.
    pub(crate) fn fail(&self, key: &str, now: Instant) {
        let mut map = self.failures.lock().expect("throttle lock");
        if map.len() >= SWEEP_AT {
            let window = self.window;
            map.retain(|_, (_, first)| now < *first + window);
        }
        let entry = map.entry(key.to_owned()).or_insert((0, now));
        if now >= entry.1 + self.window {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    /// Forgets the key's failures (after a success).
    pub(crate) fn clear(&self, key: &str) {
        self.failures.lock().expect("throttle lock").remove(key);
    }
}

/// Queries per key: a bucket of `per_minute` turns, refilled evenly.
#[derive(Debug)]
pub(crate) struct RateLimit {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimit {
    pub(crate) fn new(per_minute: u32) -> RateLimit {
        RateLimit {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a turn, or `Err(wait)` until the next one.
    pub(crate) fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut map = self.buckets.lock().expect("rate lock");
        if map.len() >= SWEEP_AT {
            // A bucket full again is the same as none.
            map.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_second < capacity
            });
        }
        let (tokens, at) = map.entry(key.to_owned()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_second).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / per_second))
        }
    }

    /// Gives back a turn taken from the key (one that a later limit
    /// refused), up to a full bucket.
    pub(crate) fn give_back(&self, key: &str) {
        let capacity = f64::from(self.per_minute);
        let mut map = self.buckets.lock().expect("rate lock");
        if let Some((tokens, _)) = map.get_mut(key) {
            *tokens = (*tokens + 1.0).min(capacity);
        }
    }
}

/// Whole seconds to tell a client to wait (at least 1).
pub(crate) fn retry_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.as_secs() == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_a_key_for_the_window() {
        let t = Throttle::new(5, Duration::from_secs(900));
        let start = Instant::now();
        for i in 0..4 {
            t.fail("ana", start + Duration::from_secs(i));
        }
        assert_eq!(t.check("ana", start + Duration::from_secs(4)), Ok(()));
        t.fail("ana", start + Duration::from_secs(4));
        // Locked until 900 s after the first failure.
        assert_eq!(
            t.check("ana", start + Duration::from_secs(100)),
            Err(Duration::from_secs(800))
        );
        assert_eq!(t.check("bob", start + Duration::from_secs(100)), Ok(()));
        assert_eq!(t.check("ana", start + Duration::from_secs(900)), Ok(()));
        // A failure after the window starts a new count.
        t.fail("ana", start + Duration::from_secs(901));
        assert_eq!(t.check("ana", start + Duration::from_secs(902)), Ok(()));
        for _ in 0..4 {
            t.fail("ana", start + Duration::from_secs(902));
        }
        assert!(t.check("ana", start + Duration::from_secs(903)).is_err());
        t.clear("ana");
        assert_eq!(t.check("ana", start + Duration::from_secs(903)), Ok(()));
    }

    #[test]
    fn a_bucket_refills_evenly() {
        let r = RateLimit::new(60);
        let start = Instant::now();
        for _ in 0..60 {
            assert_eq!(r.take("ana", start), Ok(()));
        }
        assert_eq!(r.take("ana", start), Err(Duration::from_secs(1)));
        assert_eq!(r.take("bob", start), Ok(()));
        // One turn a second comes back.
        assert_eq!(r.take("ana", start + Duration::from_millis(1500)), Ok(()));
        let wait = r
            .take("ana", start + Duration::from_millis(1500))
            .unwrap_err();
        assert_eq!(wait.as_millis(), 500);
        assert_eq!(retry_seconds(wait), 1);
        assert_eq!(retry_seconds(Duration::from_secs(800)), 800);
        assert_eq!(retry_seconds(Duration::from_millis(800_001)), 801);
        // A turn given back can be taken again at once, once.
        r.give_back("ana");
        assert_eq!(r.take("ana", start + Duration::from_millis(1500)), Ok(()));
        assert!(r.take("ana", start + Duration::from_millis(1500)).is_err());
        // Never past a full bucket.
        for _ in 0..3 {
            r.give_back("bob");
        }
        // Bob took 1 of 60 above: back to 60, not 62.
        for _ in 0..60 {
            assert_eq!(r.take("bob", start), Ok(()));
        }
        assert!(r.take("bob", start).is_err());
    }
}
