//! Health checks (`vrrp_script`) as pure state: when to run, when to kill, and what a result
//! means, with keepalived 2.2.7's counting rules (docs/vrrp.md, Health checks).
//!
//! The daemon owns the child processes; this module only answers "what now?" for a given
//! `now`, so the rise/fall arithmetic and the timeout escalation are unit-tested without
//! spawning or sleeping, and the protocol loop never waits for a script.

use std::time::Duration;

use crate::config::ScriptConfig;
use crate::fsm::Time;

/// After SIGTERM on timeout, how long before SIGKILL (keepalived: 2 s).
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// keepalived's script result counter: `0..=rise+fall-1`, good from `rise` up. A success
/// climbs one step (to the top once good), a failure drops one step (to 0 once bad), so
/// `fall` failures in a row make a good script bad and `rise` successes a bad one good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    rise: u32,
    fall: u32,
    result: u32,
    /// No result yet (keepalived's SCRIPT_INIT_STATE_INIT): the first one decides at once.
    init: bool,
}

impl Check {
    /// Unknown until the first result, or bad from the start with `init_fail`.
    pub fn new(c: &ScriptConfig) -> Check {
        Check {
            rise: c.rise,
            fall: c.fall,
            result: if c.init_fail { 0 } else { c.rise - 1 },
            init: !c.init_fail,
        }
    }

    /// `None` while unknown, else whether the check is good.
    pub fn ok(&self) -> Option<bool> {
        (!self.init).then_some(self.result >= self.rise)
    }

    /// Count one run; `Some(good)` when the tracked state changes (or becomes known).
    pub fn record(&mut self, success: bool) -> Option<bool> {
        let top = self.rise + self.fall - 1;
        let changed = if success {
            if self.result + 1 < self.rise {
                self.result += 1;
                None
            } else {
                let flip = self.result < self.rise;
                self.result = top;
                flip.then_some(true)
            }
        } else if self.result > self.rise {
            self.result -= 1;
            None
        } else {
            let flip = self.result == self.rise || self.init;
            self.result = 0;
            flip.then_some(false)
        };
        self.init = false;
        changed
    }
}

/// What the daemon must do for a script now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Start,
    /// The previous run is still going at its next interval: skipped (one at a time).
    Skip,
    /// Timed out: SIGTERM to its process group.
    Term,
    /// Still alive `KILL_GRACE` after SIGTERM: SIGKILL.
    Kill,
}

/// How one finished run counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Exit status, or a signal we did not send.
    Failed(String),
    TimedOut,
}

impl Outcome {
    pub fn success(&self) -> bool {
        *self == Outcome::Success
    }
    pub fn describe(&self) -> String {
        match self {
            Outcome::Success => "exit 0".into(),
            Outcome::Failed(d) => d.clone(),
            Outcome::TimedOut => "timed out".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running { since: Time },
    Terminating { since: Time, at: Time },
    Killing { since: Time },
}

/// The schedule of one script: first run at start, then every interval from the previous
/// start (keepalived's timer), never two at once, killed after its timeout.
#[derive(Debug, Clone)]
pub struct Runner {
    interval: Duration,
    timeout: Duration,
    next: Time,
    phase: Option<Phase>,
}

impl Runner {
    pub fn new(c: &ScriptConfig, now: Time) -> Runner {
        Runner {
            interval: c.interval,
            timeout: c.effective_timeout(),
            next: now,
            phase: None,
        }
    }

    pub fn running(&self) -> bool {
        self.phase.is_some()
    }

    /// Everything due at `now`, in order.
    pub fn poll(&mut self, now: Time) -> Vec<Step> {
        let mut out = Vec::new();
        match self.phase {
            Some(Phase::Running { since }) if now >= since + self.timeout => {
                self.phase = Some(Phase::Terminating { since, at: now });
                out.push(Step::Term);
            }
            Some(Phase::Terminating { since, at }) if now >= at + KILL_GRACE => {
                self.phase = Some(Phase::Killing { since });
                out.push(Step::Kill);
            }
            _ => {}
        }
        if now >= self.next {
            // Keep the cadence, but never queue up missed runs after a stall.
            self.next = (self.next + self.interval).max(now);
            if self.next == now {
                self.next = now + self.interval;
            }
            if self.phase.is_some() {
                out.push(Step::Skip);
            } else {
                self.phase = Some(Phase::Running { since: now });
                out.push(Step::Start);
            }
        }
        out
    }

    /// The run could not be started (exec failed): a failure, the schedule goes on.
    pub fn start_failed(&mut self) {
        self.phase = None;
    }

    /// The child exited: with `signal` if it was killed by one. Returns how it counts and
    /// how long it ran.
    pub fn exited(
        &mut self,
        now: Time,
        code: Option<i32>,
        signal: Option<i32>,
    ) -> (Outcome, Duration) {
        let phase = self.phase.take();
        let since = match phase {
            Some(Phase::Running { since })
            | Some(Phase::Terminating { since, .. })
            | Some(Phase::Killing { since }) => since,
            None => now,
        };
        let ours = matches!(
            (phase, signal),
            (Some(Phase::Terminating { .. }), Some(libc::SIGTERM))
                | (
                    Some(Phase::Killing { .. }),
                    Some(libc::SIGKILL | libc::SIGTERM)
                )
        );
        let outcome = match (code, signal) {
            _ if ours => Outcome::TimedOut,
            (Some(0), _) => Outcome::Success,
            (Some(c), _) => Outcome::Failed(format!("exit {c}")),
            (None, Some(s)) => Outcome::Failed(format!("signal {s}")),
            (None, None) => Outcome::Failed("unknown exit".into()),
        };
        (outcome, now.saturating_sub(since))
    }

    /// When `poll` must be called next.
    pub fn deadline(&self) -> Time {
        let kill = match self.phase {
            Some(Phase::Running { since }) => Some(since + self.timeout),
            Some(Phase::Terminating { at, .. }) => Some(at + KILL_GRACE),
            _ => None,
        };
        kill.map_or(self.next, |k| k.min(self.next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(rise: u32, fall: u32, init_fail: bool) -> ScriptConfig {
        ScriptConfig {
            name: "c".into(),
            line: 1,
            argv: vec!["/bin/true".into()],
            interval: Duration::from_secs(2),
            timeout: Some(Duration::from_secs(1)),
            rise,
            fall,
            weight: 0,
            reverse: false,
            init_fail,
            user: None,
        }
    }
    fn s(n: u64) -> Time {
        Duration::from_secs(n)
    }

    #[test]
    fn first_result_decides_then_rise_and_fall_count() {
        let mut c = Check::new(&cfg(2, 3, false));
        assert_eq!(c.ok(), None);
        assert_eq!(c.record(true), Some(true), "one success is enough at start");
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(true), None, "a success resets the fall count");
        assert_eq!(c.ok(), Some(true));
        let fails: Vec<_> = (0..3).map(|_| c.record(false)).collect();
        assert_eq!(fails, vec![None, None, Some(false)], "fall 3 from the top");
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(true), Some(true), "rise 2");
    }

    #[test]
    fn unknown_first_failure_is_bad_at_once_and_init_fail_starts_bad() {
        let mut c = Check::new(&cfg(3, 3, false));
        assert_eq!(c.record(false), Some(false));
        let mut c = Check::new(&cfg(1, 1, true));
        assert_eq!(c.ok(), Some(false));
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(true), Some(true));
    }

    #[test]
    fn one_run_at_a_time_and_timeouts_escalate() {
        let mut r = Runner::new(&cfg(1, 1, false), s(0));
        assert_eq!(r.poll(s(0)), vec![Step::Start]);
        assert_eq!(r.deadline(), s(1));
        assert_eq!(r.poll(s(1)), vec![Step::Term]);
        assert_eq!(r.deadline(), s(2));
        assert_eq!(
            r.poll(s(2)),
            vec![Step::Skip],
            "next interval while terminating"
        );
        assert_eq!(r.poll(s(3)), vec![Step::Kill]);
        let (o, ran) = r.exited(s(3), None, Some(libc::SIGKILL));
        assert_eq!((o, ran), (Outcome::TimedOut, s(3)));
        assert_eq!(r.poll(s(4)), vec![Step::Start]);
        let (o, _) = r.exited(s(4), Some(1), None);
        assert_eq!(o, Outcome::Failed("exit 1".into()));
        assert_eq!(r.poll(s(5)), vec![]);
        assert_eq!(r.poll(s(6)), vec![Step::Start]);
        assert_eq!(
            r.exited(s(6), None, Some(libc::SIGSEGV)).0,
            Outcome::Failed("signal 11".into())
        );
    }

    #[test]
    fn a_stall_does_not_queue_runs() {
        let mut r = Runner::new(&cfg(1, 1, false), s(0));
        r.poll(s(0));
        r.exited(s(0), Some(0), None);
        assert_eq!(r.poll(s(100)), vec![Step::Start]);
        assert_eq!(
            r.deadline(),
            s(101),
            "its timeout, then the next run at 102"
        );
        r.exited(s(100), Some(0), None);
        assert_eq!(r.poll(s(101)), vec![]);
        assert_eq!(r.poll(s(102)), vec![Step::Start]);
    }
}
