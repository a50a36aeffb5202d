//! Rate limit of the per-packet drop log lines (docs/security-vrrpd.md, Log bounds). A key
//! (instance, source, reason) logs at most once per [`PER_KEY`], and all keys together at most
//! [`BURST`] lines at once and [`PER_SECOND`] a second after that (a token bucket), because a
//! spoofed source is a new key for every packet. Lines not written are counted, and the next
//! line written says how many. Pure: time is passed in.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use crate::fsm::Time;

/// One key logs at most once per this.
pub const PER_KEY: Duration = Duration::from_secs(10);
/// Lines the bucket holds (a burst after a quiet time).
pub const BURST: u32 = 20;
/// Lines a second over all keys once the burst is spent.
pub const PER_SECOND: u32 = 1;
/// Keys remembered; when full, expired keys are forgotten, then new keys are not remembered
/// (the global bucket still bounds them).
pub const MAX_KEYS: usize = 4096;

/// The decision for one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Write it; `suppressed` lines were dropped since the last line written.
    Log {
        suppressed: u64,
    },
    Suppress,
}

#[derive(Debug)]
pub struct LogLimiter<K> {
    keys: HashMap<K, Time>,
    /// Tokens in thousandths, so the refill is exact at any call rate.
    milli_tokens: u64,
    refilled: Time,
    pending: u64,
    /// Lines suppressed since start (status `log_suppressed`).
    pub suppressed: u64,
}

impl<K: Hash + Eq> Default for LogLimiter<K> {
    fn default() -> Self {
        LogLimiter {
            keys: HashMap::new(),
            milli_tokens: u64::from(BURST) * 1000,
            refilled: Duration::ZERO,
            pending: 0,
            suppressed: 0,
        }
    }
}

impl<K: Hash + Eq> LogLimiter<K> {
    /// May a line for `key` be written at `now`?
    pub fn check(&mut self, now: Time, key: K) -> Verdict {
        self.refill(now);
        let key_due = self.keys.get(&key).is_none_or(|t| now >= *t + PER_KEY);
        if !key_due || self.milli_tokens < 1000 {
            self.suppressed += 1;
            self.pending += 1;
            return Verdict::Suppress;
        }
        self.milli_tokens -= 1000;
        self.remember(now, key);
        Verdict::Log {
            suppressed: std::mem::take(&mut self.pending),
        }
    }

    fn refill(&mut self, now: Time) {
        let dt = now.saturating_sub(self.refilled).as_millis() as u64;
        self.refilled = now;
        let cap = u64::from(BURST) * 1000;
        self.milli_tokens = (self.milli_tokens + dt * u64::from(PER_SECOND)).min(cap);
    }

    /// Remember when `key` last logged, within [`MAX_KEYS`].
    fn remember(&mut self, now: Time, key: K) {
        if self.keys.len() >= MAX_KEYS && !self.keys.contains_key(&key) {
            self.keys.retain(|_, t| now < *t + PER_KEY);
            if self.keys.len() >= MAX_KEYS {
                return;
            }
        }
        self.keys.insert(key, now);
    }

    pub fn keys(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: f64) -> Time {
        Duration::from_secs_f64(n)
    }

    #[test]
    fn one_key_once_per_interval() {
        let mut l = LogLimiter::default();
        assert_eq!(l.check(s(0.0), 1), Verdict::Log { suppressed: 0 });
        assert_eq!(l.check(s(1.0), 1), Verdict::Suppress);
        assert_eq!(l.check(s(9.9), 1), Verdict::Suppress);
        assert_eq!(l.check(s(10.0), 1), Verdict::Log { suppressed: 2 });
        assert_eq!(l.suppressed, 2);
    }

    #[test]
    fn new_keys_share_one_bucket() {
        let mut l = LogLimiter::default();
        let mut logged = 0;
        // 100 000 spoofed sources in one second: the burst, then one a second.
        for k in 0..100_000u32 {
            if let Verdict::Log { .. } = l.check(s(f64::from(k) / 100_000.0), k) {
                logged += 1;
            }
        }
        assert_eq!(logged, BURST);
        assert_eq!(l.suppressed, 100_000 - u64::from(logged));
        assert!(l.keys() <= MAX_KEYS);
        // A minute later the bucket is full again, but no more than full.
        let mut later = 0;
        for k in 0..1000u32 {
            if let Verdict::Log { .. } = l.check(s(100.0), 200_000 + k) {
                later += 1;
            }
        }
        assert_eq!(later, BURST);
    }

    #[test]
    fn keys_stay_bounded_and_expire() {
        let mut l = LogLimiter::default();
        for k in 0..(2 * MAX_KEYS as u32) {
            // One line a second: every one logged, the table never over its bound.
            assert!(matches!(l.check(s(f64::from(k)), k), Verdict::Log { .. }));
            assert!(l.keys() <= MAX_KEYS);
        }
    }
}
