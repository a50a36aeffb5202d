//! Service supervision as a pure state machine: the caller reports spawns and exits with an
//! explicit `now` (milliseconds on a monotonic clock) and asks what to start and when to wake up.
//!
//! Restart policy: the first restart waits the service's `restart_delay_ms`; every further quick
//! failure doubles it (up to [`MAX_BACKOFF_MS`], or the configured delay if that is larger); a run
//! that lasted [`HEALTHY_MS`] resets the backoff. This keeps a crash-looping daemon from flooding
//! a 115200-baud console while a daemon that dies once a day restarts promptly.

/// A run at least this long counts as healthy and resets the backoff.
pub const HEALTHY_MS: u64 = 10_000;
/// Lower bound of every restart delay, whatever `restart_delay_ms` says (0 included): a service
/// that dies at once must not respawn in a tight loop that eats the CPU and floods the console.
pub const MIN_RESTART_MS: u64 = 100;
/// Upper bound of the exponential backoff.
pub const MAX_BACKOFF_MS: u64 = 30_000;

/// How a process ended, as reported by waitpid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// What the supervisor needs to know about one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub restart_delay_ms: u64,
    /// Console shells: an exit is the operator typing `exit`, not a failure worth reporting.
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Start at or after this time.
    Due {
        at: u64,
    },
    Running {
        pid: i32,
        since: u64,
    },
    /// Shutting down, or given up on.
    Stopped,
}

/// Why the caller should print a `ramux: failed` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    SpawnFailed(String),
    Exited(Exit),
}

/// Something the caller should report on the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub name: String,
    pub cause: Cause,
    /// `None` when no restart follows (shutdown in progress).
    pub retry_in_ms: Option<u64>,
    pub quiet: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    spec: Spec,
    state: State,
    /// Consecutive quick failures.
    failures: u32,
}

/// All supervised entries.
#[derive(Debug, Clone, Default)]
pub struct Supervisor {
    entries: Vec<Entry>,
    stopping: bool,
}

impl Supervisor {
    /// Every entry is due immediately.
    pub fn new(specs: Vec<Spec>, now: u64) -> Self {
        let entries = specs
            .into_iter()
            .map(|spec| Entry {
                spec,
                state: State::Due { at: now },
                failures: 0,
            })
            .collect();
        Supervisor {
            entries,
            stopping: false,
        }
    }

    pub fn spec(&self, idx: usize) -> &Spec {
        &self.entries[idx].spec
    }

    pub fn state(&self, idx: usize) -> State {
        self.entries[idx].state
    }

    /// Indices of entries to start now.
    pub fn due(&self, now: u64) -> Vec<usize> {
        if self.stopping {
            return Vec::new();
        }
        (0..self.entries.len())
            .filter(|&i| matches!(self.entries[i].state, State::Due { at } if at <= now))
            .collect()
    }

    /// Earliest time something becomes due, for the event loop's poll timeout.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.stopping {
            return None;
        }
        self.entries
            .iter()
            .filter_map(|e| {
                if let State::Due { at } = e.state {
                    Some(at)
                } else {
                    None
                }
            })
            .min()
    }

    pub fn started(&mut self, idx: usize, pid: i32, now: u64) {
        self.entries[idx].state = State::Running { pid, since: now };
    }

    pub fn spawn_failed(&mut self, idx: usize, reason: String, now: u64) -> Failure {
        self.fail(idx, Cause::SpawnFailed(reason), now, now)
    }

    /// A child was reaped; returns a report if it was one of ours.
    pub fn exited(&mut self, pid: i32, exit: Exit, now: u64) -> Option<Failure> {
        let idx = self
            .entries
            .iter()
            .position(|e| matches!(e.state, State::Running { pid: p, .. } if p == pid))?;
        let State::Running { since, .. } = self.entries[idx].state else {
            unreachable!()
        };
        Some(self.fail(idx, Cause::Exited(exit), since, now))
    }

    fn fail(&mut self, idx: usize, cause: Cause, since: u64, now: u64) -> Failure {
        let stopping = self.stopping;
        let e = &mut self.entries[idx];
        if now.saturating_sub(since) >= HEALTHY_MS {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        let retry_in_ms = if stopping {
            e.state = State::Stopped;
            None
        } else {
            let d = backoff(e.spec.restart_delay_ms, e.failures);
            e.state = State::Due { at: now + d };
            Some(d)
        };
        Failure {
            name: e.spec.name.clone(),
            cause,
            retry_in_ms,
            quiet: e.spec.quiet,
        }
    }

    /// Never starts this entry (a service whose secrets are missing: the overlay is read once,
    /// at boot, so retrying could not help).
    pub fn give_up(&mut self, idx: usize) {
        self.entries[idx].state = State::Stopped;
    }

    /// Stops restarting; returns the pids still running (to signal).
    pub fn stop(&mut self) -> Vec<i32> {
        self.stopping = true;
        for e in &mut self.entries {
            if let State::Due { .. } = e.state {
                e.state = State::Stopped;
            }
        }
        self.running()
    }

    pub fn running(&self) -> Vec<i32> {
        self.entries
            .iter()
            .filter_map(|e| {
                if let State::Running { pid, .. } = e.state {
                    Some(pid)
                } else {
                    None
                }
            })
            .collect()
    }
}

/// Delay before the `failures`-th consecutive restart (1-based).
pub fn backoff(base_ms: u64, failures: u32) -> u64 {
    let base_ms = base_ms.max(MIN_RESTART_MS);
    let shift = failures.saturating_sub(1).min(16);
    let cap = MAX_BACKOFF_MS.max(base_ms);
    base_ms.saturating_mul(1u64 << shift).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sup(now: u64) -> Supervisor {
        Supervisor::new(
            vec![
                Spec {
                    name: "a".into(),
                    restart_delay_ms: 1000,
                    quiet: false,
                },
                Spec {
                    name: "b".into(),
                    restart_delay_ms: 200,
                    quiet: false,
                },
            ],
            now,
        )
    }

    #[test]
    fn all_due_at_start_then_running() {
        let mut s = sup(5);
        assert_eq!(s.due(5), vec![0, 1]);
        s.started(0, 100, 5);
        s.started(1, 101, 5);
        assert!(s.due(1_000_000).is_empty());
        assert_eq!(s.next_deadline(), None);
        assert_eq!(s.running(), vec![100, 101]);
    }

    #[test]
    fn quick_failures_back_off_exponentially_and_cap() {
        let mut s = sup(0);
        s.started(0, 1, 0);
        s.started(1, 7, 0);
        let mut now = 0;
        let mut delays = Vec::new();
        for i in 0..12 {
            let f = s.exited(7 + i, Exit::Code(1), now).unwrap();
            assert_eq!(f.name, "b");
            let d = f.retry_in_ms.unwrap();
            delays.push(d);
            assert_eq!(s.next_deadline(), Some(now + d));
            assert!(s.due(now + d - 1).is_empty());
            now += d;
            assert_eq!(s.due(now), vec![1]);
            s.started(1, 8 + i, now);
        }
        assert_eq!(&delays[..6], &[200, 400, 800, 1600, 3200, 6400]);
        assert_eq!(*delays.last().unwrap(), MAX_BACKOFF_MS);
    }

    #[test]
    fn healthy_run_resets_backoff() {
        let mut s = sup(0);
        s.started(0, 1, 0);
        assert_eq!(
            s.exited(1, Exit::Signal(9), 10).unwrap().retry_in_ms,
            Some(1000)
        );
        s.started(0, 2, 1010);
        assert_eq!(
            s.exited(2, Exit::Code(0), 1020).unwrap().retry_in_ms,
            Some(2000)
        );
        s.started(0, 3, 3020);
        assert_eq!(
            s.exited(3, Exit::Code(0), 3020 + HEALTHY_MS)
                .unwrap()
                .retry_in_ms,
            Some(1000)
        );
    }

    #[test]
    fn spawn_failure_is_retried() {
        let mut s = sup(0);
        let f = s.spawn_failed(0, "No such file".into(), 0);
        assert_eq!(f.cause, Cause::SpawnFailed("No such file".into()));
        assert_eq!(s.state(0), State::Due { at: 1000 });
    }

    #[test]
    fn given_up_entries_are_never_due() {
        let mut s = sup(0);
        s.give_up(1);
        assert_eq!(s.due(u64::MAX), vec![0]);
        assert_eq!(s.state(1), State::Stopped);
    }

    #[test]
    fn unknown_pid_is_ignored() {
        let mut s = sup(0);
        s.started(0, 1, 0);
        assert_eq!(s.exited(999, Exit::Code(0), 5), None);
    }

    #[test]
    fn stop_prevents_restarts() {
        let mut s = sup(0);
        s.started(0, 1, 0);
        assert_eq!(s.stop(), vec![1]);
        assert!(s.due(u64::MAX).is_empty());
        let f = s.exited(1, Exit::Signal(15), 50).unwrap();
        assert_eq!(f.retry_in_ms, None);
        assert_eq!(s.state(0), State::Stopped);
        assert!(s.running().is_empty());
    }

    #[test]
    fn large_base_delay_is_not_capped_below_itself() {
        assert_eq!(backoff(60_000, 1), 60_000);
        assert_eq!(backoff(60_000, 5), 60_000);
        // restart_delay_ms = 0 is no tight loop: at least 100 ms, still doubling
        assert_eq!(backoff(0, 1), MIN_RESTART_MS);
        assert_eq!(backoff(0, 3), 4 * MIN_RESTART_MS);
        assert_eq!(backoff(u64::MAX, 40), u64::MAX);
    }
}
