//! A sync group member that hears no master while another member of its group does has a
//! broken path to the peer (one VLAN cut, a trunk missing a VLAN): the group cannot go MASTER
//! together, so the failure stays silent in the states. Pure: the daemon passes when each
//! instance last accepted an advert, its Master_Down_Interval and `now`.

use crate::fsm::Time;

/// Did instance `i` hear a master within its Master_Down_Interval?
fn hears(now: Time, last_heard: Option<Time>, mdi: Time) -> bool {
    last_heard.is_some_and(|t| now.saturating_sub(t) <= mdi)
}

/// For each member of `members` (instance indexes), whether its path is broken: it hears no
/// master while at least one other member does.
pub fn broken(
    now: Time,
    members: &[usize],
    last_heard: &[Option<Time>],
    mdi: &[Time],
) -> Vec<bool> {
    let h: Vec<bool> = members
        .iter()
        .map(|&m| hears(now, last_heard[m], mdi[m]))
        .collect();
    let any = h.iter().any(|&x| x);
    h.iter().map(|&x| any && !x).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn s(n: u64) -> Time {
        Duration::from_secs(n)
    }

    #[test]
    fn one_member_deaf_while_the_other_hears() {
        let mdi = [s(3), s(3), s(3)];
        let now = s(100);
        // Both hear: fine. Neither hears (the peer is gone): not a path problem either.
        assert_eq!(
            broken(now, &[0, 1], &[Some(s(99)), Some(s(98))], &mdi),
            [false, false]
        );
        assert_eq!(
            broken(now, &[0, 1], &[Some(s(10)), None], &mdi),
            [false, false]
        );
        // Member 1 last heard 4 s ago (> its 3 s MDI), member 0 hears.
        assert_eq!(
            broken(now, &[0, 1], &[Some(s(99)), Some(s(96))], &mdi),
            [false, true]
        );
        assert_eq!(
            broken(now, &[0, 2], &[None, None, Some(s(97))], &mdi),
            [true, false]
        );
        // Exactly at the MDI still counts as heard.
        assert_eq!(
            broken(now, &[0, 1], &[Some(s(99)), Some(s(97))], &mdi),
            [false, false]
        );
    }
}
