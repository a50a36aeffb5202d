//! Interop with Debian's keepalived in network namespaces (issue 5, spec section 6).
//! Needs root; fails (never skips) when keepalived or iproute2 is missing.
mod lab;

use std::time::Duration;

use lab::{conf, Impl, Inst, Lab};

fn vrrpd() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_vrrpd"))
}

const S: fn(u64) -> Duration = Duration::from_secs;

/// Two-segment lab, instance `interne` with a VIP on each segment, r1 priority `p1`.
fn pair_conf(lab: &Lab, version: u8, pass: bool, adv: &str, prio: u8, extra: &str) -> String {
    conf(
        version,
        pass,
        &[Inst {
            name: "interne",
            iface: "vlan10",
            vrid: 100,
            priority: prio,
            advert_int: adv,
            vips: vec![
                format!("{}/24 brd {} dev vlan10", lab.vip(0), lab.addr(0, 255)),
                format!("{}/24 dev vlan20", lab.vip(1)),
            ],
            extra,
        }],
        &[],
    )
}

fn assert_clean_logs(lab: &Lab) {
    let logs = lab.all_logs();
    for bad in [
        "Invalid VRRPv",
        "mismatch",
        "invalid passwd",
        "unexpected ip number",
        "wrong version",
        "bad checksum",
        "CONFIGURATION MISMATCH",
        "dropped advert",
    ] {
        assert!(!logs.contains(bad), "log contains '{bad}':\n{logs}");
    }
}

/// Full failover cycle: convergence, crash, return with preemption, clean handover.
fn cycle(version: u8, pass: bool, adv: &str, imps: [Impl; 2]) {
    let mut lab = Lab::new(&["vlan10", "vlan20"], vrrpd());
    let vips = [lab.vip(0), lab.vip(1)];
    let c1 = pair_conf(&lab, version, pass, adv, 150, "");
    let c2 = pair_conf(&lab, version, pass, adv, 100, "");
    lab.start(1, imps[1], &c2);
    lab.start(0, imps[0], &c1);
    let adv_s: f64 = adv.parse().unwrap();
    let mdi = Duration::from_secs_f64(3.0 * adv_s + 1.0);
    // Convergence: exactly one holder (r1, the higher priority).
    lab.wait_holder(&vips, 0, mdi * 3 + S(2));
    std::thread::sleep(Duration::from_secs_f64(adv_s * 3.0));
    assert_eq!(lab.holders(vips[0]), vec![0]);
    assert!(lab.client_ping(vips[0]));
    assert_eq!(lab.client_neigh(vips[0]), Some(lab.mac(0, 0)));
    // Crash of the master: r2 takes the VIPs and the client's ARP entry moves.
    lab.crash(0);
    lab.wait(&format!("r2 holds {vips:?}"), mdi + S(2), |l| {
        vips.iter().all(|v| l.holders(*v).contains(&1))
    });
    let r2mac = lab.mac(1, 0);
    lab.wait("client ARP entry moves to r2", S(3), |l| {
        l.client_neigh(vips[0]) == Some(r2mac.clone())
    });
    // The old master returns: it flushes its stale VIPs and preempts.
    lab.start(0, imps[0], &c1);
    lab.wait_holder(&vips, 0, mdi * 2 + S(3));
    lab.wait("client ARP entry back to r1", S(3), |l| {
        l.client_neigh(vips[0]) == Some(l.mac(0, 0))
    });
    // Clean shutdown hands over through priority 0 within the skew time (+ slack).
    std::thread::sleep(Duration::from_secs_f64(adv_s * 2.0));
    lab.stop(0);
    let took = lab.wait_holder(&vips, 1, mdi);
    let skew = if version == 2 { 0.609 } else { adv_s * 0.609 };
    assert!(
        took.as_secs_f64() < skew + 0.5,
        "clean handover took {took:?}, skew {skew}s"
    );
    assert_clean_logs(&lab);
    for (ri, imp) in imps.iter().enumerate() {
        if *imp == Impl::Vrrpd && lab.procs[ri].is_some() {
            let st = lab.status(ri);
            let c = &st["instances"][0]["counters"];
            assert!(c["adverts_in"].as_u64().unwrap() > 0, "{st}");
            for k in [
                "bad_checksum",
                "bad_auth",
                "bad_auth_type",
                "bad_ttl",
                "interval_mismatch",
                "wrong_version",
                "vip_mismatch",
                "vip_count_mismatch",
                "bad_length",
            ] {
                assert_eq!(c[k], 0, "{k} in {st}");
            }
            assert!(c["priority_zero_in"].as_u64().unwrap() >= 1, "{st}");
        }
    }
}

#[test]
fn v2_pass_keepalived_master_vrrpd_backup() {
    cycle(2, true, "1", [Impl::Keepalived, Impl::Vrrpd]);
}

#[test]
fn v2_pass_vrrpd_master_keepalived_backup() {
    cycle(2, true, "1", [Impl::Vrrpd, Impl::Keepalived]);
}
