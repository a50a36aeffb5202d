//! How long a failover should take, from the site's VRRP settings, and the verdict on a
//! measured one. The theory is the RFC's: the BACKUP declares the MASTER dead after
//! Master_Down_Interval = 3 × Advertisement_Interval + Skew_Time without an advert, then
//! sends gratuitous ARPs so the clients move to its MAC (labwall sets no virtual MAC).
//!
//! Skew_Time is (256 − Priority) / 256 s in VRRPv2 (RFC 3768 §6.1, independent of the
//! interval) and (256 − Priority) × Advertisement_Interval / 256 in VRRPv3 (RFC 5798 §6.1).
//! labwall's keepalived.conf sets no `vrrp_version`, so keepalived runs VRRPv2 (its default,
//! and the only version that allows the PASS/AH authentication the seed site uses).

use std::net::Ipv4Addr;
use std::time::Duration;

use ramux_contract::Role;
use serde::Serialize;

use crate::site::VrrpInstance;

/// What the gratuitous ARPs take to land on a local virtual switch: a frame's trip, well under
/// this. If one is lost, the client re-resolves after its neighbour entry goes stale (seconds):
/// an outage far above the theory points there.
pub const GARP_MS: u32 = 10;

/// The theory of one MASTER death, each term kept so the report can show the sum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailoverTheory {
    pub instance: String,
    pub version: u8,
    pub advert_ms: u32,
    pub backup_priority: u8,
    pub skew_ms: u32,
    /// 3 × advert + skew.
    pub master_down_ms: u32,
    pub garp_ms: u32,
    /// The probe's sending interval: the measured outage is up to one interval coarse.
    pub probe_interval_ms: u32,
    /// The MASTER died just before an advert was due: the BACKUP had waited one interval.
    pub min_ms: u32,
    /// The MASTER died just after an advert: master_down + garp + one probe interval.
    pub max_ms: u32,
}

/// Skew_Time in ms for `version` (see the module text).
pub fn skew_ms(version: u8, priority: u8, advert_ms: u32) -> u32 {
    let p = 256 - u32::from(priority);
    if version >= 3 {
        p * advert_ms / 256
    } else {
        p * 1000 / 256
    }
}

/// The theory for one instance. Err: the site gives the BACKUP no priority (no instance).
pub fn theory(
    inst: &VrrpInstance,
    probe_interval_ms: u32,
    garp_ms: u32,
) -> Result<FailoverTheory, String> {
    let backup_priority = *inst
        .priority
        .get(&Role::Backup)
        .ok_or_else(|| format!("VRRP instance {} has no BACKUP priority", inst.name))?;
    let skew = skew_ms(inst.version, backup_priority, inst.advert_ms);
    let master_down = 3 * inst.advert_ms + skew;
    Ok(FailoverTheory {
        instance: inst.name.clone(),
        version: inst.version,
        advert_ms: inst.advert_ms,
        backup_priority,
        skew_ms: skew,
        master_down_ms: master_down,
        garp_ms,
        probe_interval_ms,
        min_ms: master_down - inst.advert_ms + garp_ms,
        max_ms: master_down + garp_ms + probe_interval_ms,
    })
}

/// The theory for a probe to `vip`: the instance carrying it, else the slowest (a sync group
/// moves every instance together, but only once the first one's timer expires).
pub fn theory_for(
    vrrp: &[VrrpInstance],
    vip: Option<Ipv4Addr>,
    probe_interval_ms: u32,
) -> Result<FailoverTheory, String> {
    let carrying = vip.and_then(|a| vrrp.iter().find(|i| i.vips.contains(&a)));
    let inst = carrying
        .or_else(|| vrrp.iter().max_by_key(|i| i.advert_ms))
        .ok_or("the site runs no VRRP instance: nothing fails over")?;
    theory(inst, probe_interval_ms, GARP_MS)
}

/// `12.3 s`, `5 s`, `0.8 s`: one decimal, none when whole.
pub fn secs(ms: u32) -> String {
    let tenths = (ms + 50) / 100;
    if tenths % 10 == 0 {
        format!("{} s", tenths / 10)
    } else {
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}

impl FailoverTheory {
    /// `theory 15.8 s = 3 × 5 s + skew 0.8 s (VRRPv2, BACKUP priority 50)`.
    pub fn summary(&self) -> String {
        format!(
            "theory {} = 3 × {} + skew {} (VRRPv{}, BACKUP priority {})",
            secs(self.master_down_ms),
            secs(self.advert_ms),
            secs(self.skew_ms),
            self.version,
            self.backup_priority
        )
    }
}

/// A `max_outage` the theory says cannot hold: worth a warning before the lab runs.
pub fn max_outage_warning(t: &FailoverTheory, max_outage: Duration) -> Option<String> {
    let max = max_outage.as_millis();
    (max < u128::from(t.max_ms)).then(|| {
        format!(
            "max_outage {} is under the worst case {} ({}, + garp {} + probe {}): \
             the test passes only when the MASTER dies early in an advert interval",
            secs(max.min(u128::from(u32::MAX)) as u32),
            secs(t.max_ms),
            t.summary(),
            secs(t.garp_ms),
            secs(t.probe_interval_ms)
        )
    })
}

/// What the runner measured during a failover test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailoverMeasured {
    /// The longest run of unanswered probes; None: the probe never answered again.
    pub longest_outage_ms: Option<u64>,
    /// The router holding the VIPs after (None: none does).
    pub vip_holder_after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailoverVerdict {
    pub pass: bool,
    /// One line: what was measured against what.
    pub reason: String,
}

/// Pass when the probe came back within `max_outage` and a router other than the faulted
/// one holds the VIPs.
pub fn check_failover(
    m: &FailoverMeasured,
    max_outage: Duration,
    faulted: &str,
    theory: Option<&FailoverTheory>,
) -> FailoverVerdict {
    let fail = |reason: String| FailoverVerdict {
        pass: false,
        reason,
    };
    let th = theory.map_or_else(String::new, |t| format!(" ({})", t.summary()));
    let Some(out) = m.longest_outage_ms else {
        return fail(format!(
            "the probe never answered again after the fault{th}"
        ));
    };
    let out_s = secs(out.min(u64::from(u32::MAX)) as u32);
    let max_s = secs(max_outage.as_millis().min(u128::from(u32::MAX)) as u32);
    match m.vip_holder_after.as_deref() {
        None => {
            return fail(format!(
                "no router holds the VIPs after the fault (outage {out_s})"
            ))
        }
        Some(h) if h == faulted => {
            return fail(format!(
                "{faulted} still holds the VIPs: the fault did not take it down (outage {out_s})"
            ))
        }
        Some(_) => {}
    }
    let holder = m.vip_holder_after.as_deref().unwrap_or_default();
    if u128::from(out) > max_outage.as_millis() {
        return fail(format!(
            "outage {out_s} > max_outage {max_s}{th}; VIPs on {holder}"
        ));
    }
    FailoverVerdict {
        pass: true,
        reason: format!("outage {out_s} <= max_outage {max_s}{th}; VIPs on {holder}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn seed() -> VrrpInstance {
        VrrpInstance {
            name: "interne".into(),
            vrid: 100,
            ifname: "vlan10".into(),
            version: 2,
            advert_ms: 5000,
            priority: BTreeMap::from([(Role::Master, 100), (Role::Backup, 50)]),
            preempt: true,
            vips: vec!["172.16.10.1".parse().unwrap()],
        }
    }

    #[test]
    fn the_seed_sites_theory() {
        let t = theory(&seed(), 200, GARP_MS).unwrap();
        // (256 - 50) / 256 s = 804 ms, whatever the interval (v2)
        assert_eq!((t.skew_ms, t.master_down_ms), (804, 15_804));
        assert_eq!((t.min_ms, t.max_ms), (10_814, 16_014));
        assert_eq!(
            t.summary(),
            "theory 15.8 s = 3 × 5 s + skew 0.8 s (VRRPv2, BACKUP priority 50)"
        );
    }

    #[test]
    fn v3_skew_scales_with_the_interval() {
        assert_eq!(skew_ms(3, 50, 1000), 804);
        assert_eq!(skew_ms(3, 50, 5000), 4023);
        assert_eq!(skew_ms(2, 255, 5000), 3);
    }

    #[test]
    fn the_instance_is_the_one_carrying_the_vip() {
        let mut ext = seed();
        ext.name = "externe".into();
        ext.advert_ms = 1000;
        ext.vips = vec!["10.1.1.4".parse().unwrap()];
        let v = [seed(), ext];
        let t = theory_for(&v, Some("10.1.1.4".parse().unwrap()), 0).unwrap();
        assert_eq!(t.instance, "externe");
        assert_eq!(theory_for(&v, None, 0).unwrap().instance, "interne");
        assert!(theory_for(&[], None, 0).is_err());
    }

    #[test]
    fn verdicts() {
        let t = theory(&seed(), 200, GARP_MS).unwrap();
        let max = Duration::from_secs(17);
        let m = |o: Option<u64>, h: Option<&str>| FailoverMeasured {
            longest_outage_ms: o,
            vip_holder_after: h.map(str::to_string),
        };
        let v = check_failover(&m(Some(14_000), Some("r2")), max, "r1", Some(&t));
        assert!(v.pass, "{}", v.reason);
        assert_eq!(
            v.reason,
            "outage 14 s <= max_outage 17 s (theory 15.8 s = 3 × 5 s + skew 0.8 s \
             (VRRPv2, BACKUP priority 50)); VIPs on r2"
        );
        assert!(!check_failover(&m(Some(18_000), Some("r2")), max, "r1", None).pass);
        let v = check_failover(&m(Some(1_000), Some("r1")), max, "r1", None);
        assert!(
            v.reason.starts_with("r1 still holds the VIPs"),
            "{}",
            v.reason
        );
        assert!(!check_failover(&m(None, Some("r2")), max, "r1", None).pass);
        assert!(!check_failover(&m(Some(1), None), max, "r1", None).pass);
    }

    #[test]
    fn a_max_outage_under_the_theory_is_flagged() {
        let t = theory(&seed(), 200, GARP_MS).unwrap();
        assert!(max_outage_warning(&t, Duration::from_secs(17)).is_none());
        let w = max_outage_warning(&t, Duration::from_secs(12)).unwrap();
        assert!(
            w.starts_with("max_outage 12 s is under the worst case 16 s"),
            "{w}"
        );
    }
}
