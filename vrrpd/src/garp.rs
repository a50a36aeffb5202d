//! When to send gratuitous ARPs / unsolicited NAs after becoming master (keepalived semantics,
//! docs/vrrp.md, GARP timing): `garp_master_repeat` rounds at once, the same again after
//! `garp_master_delay` (0 = no second burst), then `garp_master_refresh_repeat` rounds every
//! `garp_master_refresh` (0 = off); rounds of one burst spaced by `vrrp_garp_interval`.
//! Pure: the daemon asks what is due at `now` and sends that many rounds.

use crate::config::Garp;
use crate::fsm::Time;

/// Pending rounds of one instance.
#[derive(Debug, Clone, Default)]
pub struct GarpSchedule {
    /// (when, re-arm the refresh after this round)
    pending: Vec<(Time, bool)>,
}

impl GarpSchedule {
    fn burst(&mut self, g: &Garp, at: Time, count: u32, refresh: bool) {
        for n in 0..count {
            self.pending
                .push((at + g.interval * n, refresh && n + 1 == count));
        }
    }

    /// Became master at `now`.
    pub fn start(&mut self, now: Time, g: &Garp) {
        self.pending.clear();
        self.burst(g, now, g.master_repeat, false);
        if !g.master_delay.is_zero() && g.master_repeat > 0 {
            self.burst(g, now + g.master_delay, g.master_repeat, false);
        }
        if !g.master_refresh.is_zero() {
            self.burst(g, now + g.master_refresh, g.master_refresh_repeat, true);
        }
    }

    /// No longer master.
    pub fn stop(&mut self) {
        self.pending.clear();
    }

    /// Rounds due at `now` (removed from the schedule; refreshes re-armed).
    pub fn due(&mut self, now: Time, g: &Garp) -> u32 {
        let mut n = 0;
        let mut rearm = false;
        self.pending.retain(|(t, r)| {
            if *t <= now {
                n += 1;
                rearm |= *r;
                false
            } else {
                true
            }
        });
        if rearm {
            self.burst(g, now + g.master_refresh, g.master_refresh_repeat, true);
        }
        n
    }

    /// Earliest pending round.
    pub fn next(&self) -> Option<Time> {
        self.pending.iter().map(|p| p.0).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn keepalived_defaults_two_bursts_of_five() {
        let g = Garp::default();
        let mut sc = GarpSchedule::default();
        sc.start(s(10), &g);
        assert_eq!(sc.due(s(10), &g), 5);
        assert_eq!(sc.next(), Some(s(15)));
        assert_eq!(sc.due(s(14), &g), 0);
        assert_eq!(sc.due(s(15), &g), 5);
        assert_eq!(sc.next(), None);
    }

    #[test]
    fn refresh_and_spacing() {
        let g = Garp {
            master_delay: Duration::ZERO,
            master_repeat: 3,
            master_refresh: s(60),
            master_refresh_repeat: 2,
            interval: Duration::from_millis(10),
        };
        let mut sc = GarpSchedule::default();
        sc.start(s(0), &g);
        assert_eq!(sc.due(s(0), &g), 1);
        assert_eq!(sc.due(Duration::from_millis(20), &g), 2);
        assert_eq!(sc.next(), Some(s(60)));
        assert_eq!(sc.due(Duration::from_millis(60_010), &g), 2);
        assert_eq!(sc.next(), Some(Duration::from_millis(120_010)));
        sc.stop();
        assert_eq!(sc.next(), None);
    }
}
