//! `vrrp_script` / `track_script` against keepalived in network namespaces (docs/vrrp.md,
//! Health checks): a failing check moves mastership to the peer within interval x fall plus
//! the VRRP timers, both ways round, and its recovery after `rise` moves it back.
//! Needs root; fails (never skips) when keepalived or iproute2 is missing.
mod lab;

use std::path::Path;
use std::time::{Duration, Instant};

use lab::{conf, Impl, Inst, Lab};

fn vrrpd() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vrrpd"))
}

const S: fn(u64) -> Duration = Duration::from_secs;
/// advert_int 1 s, v2: Master_Down_Interval of the lower router (priority 90-100) < 3.65 s.
const MDI: Duration = Duration::from_millis(3650);
const INTERVAL: Duration = Duration::from_secs(1);
const FALL: u32 = 2;
const RISE: u32 = 2;

/// One instance on vlan10 tracking `chk` (defined by `script`), priority `prio`.
fn script_conf(lab: &Lab, prio: u8, script: &str) -> String {
    let c = conf(
        2,
        true,
        &[Inst {
            name: "interne",
            iface: "vlan10",
            vrid: 100,
            priority: prio,
            advert_int: "1",
            vips: vec![format!("{}/24 dev vlan10", lab.vip(0))],
            extra: "    track_script {\n        chk\n    }\n",
        }],
        &[],
    );
    format!("{script}{c}")
}

/// A check that succeeds while `flag` exists (a plain exec: no shell involved).
fn test_script(flag: &Path, weight: &str) -> String {
    format!(
        "vrrp_script chk {{\n    script \"/usr/bin/test -e {}\"\n    interval 1\n    fall {FALL}\n    rise {RISE}\n{weight}}}\n",
        flag.display()
    )
}

/// The longest a change of the check may take to move the VIP: interval x fall (or rise)
/// to notice, one advert interval for the last advert accepted before, the
/// Master_Down_Interval, and 1 s of slack for a loaded machine.
fn bound(n: u32) -> Duration {
    INTERVAL * n + INTERVAL + MDI + S(1)
}

fn flag(lab: &Lab, name: &str, up: bool) -> std::path::PathBuf {
    let p = lab.dir.join(name);
    if up {
        std::fs::write(&p, "").unwrap();
    } else {
        let _ = std::fs::remove_file(&p);
    }
    p
}

/// r1 (150, weight -60 on failure: 90) and r2 (100) both track a check; r1's fails, so r2
/// (100 > 90) preempts; r1's recovers, so r1 (150) preempts back.
fn weighted(imps: [Impl; 2]) {
    let mut lab = Lab::new(&["vlan10"], vrrpd());
    let vip = [lab.vip(0)];
    let f1 = flag(&lab, "r1-ok", true);
    let f2 = flag(&lab, "r2-ok", true);
    lab.start(
        1,
        imps[1],
        &script_conf(&lab, 100, &test_script(&f2, "    weight -60\n")),
    );
    lab.start(
        0,
        imps[0],
        &script_conf(&lab, 150, &test_script(&f1, "    weight -60\n")),
    );
    lab.wait_holder(&vip, 0, MDI * 3 + S(2));
    std::thread::sleep(S(2));
    assert_eq!(lab.holders(vip[0]), vec![0], "{}", lab.all_logs());

    let t0 = Instant::now();
    flag(&lab, "r1-ok", false);
    lab.wait_holder(&vip, 1, bound(FALL));
    let down = t0.elapsed();
    eprintln!("{imps:?}: check failed -> peer holds the VIP in {down:?}");
    if imps[0] == Impl::Vrrpd {
        let st = lab.status(0);
        assert_eq!(st["instances"][0]["priority"], 90, "{st}");
        assert_eq!(st["instances"][0]["state"], "BACKUP", "{st}");
        let sc = &st["scripts"][0];
        assert_eq!(sc["state"], "BAD", "{st}");
        assert_eq!(sc["last_result"], "exit 1", "{st}");
    }
    if imps[1] == Impl::Vrrpd {
        let st = lab.status(1);
        assert_eq!(st["instances"][0]["state"], "MASTER", "{st}");
        assert_eq!(st["scripts"][0]["state"], "GOOD", "{st}");
    }

    let t1 = Instant::now();
    flag(&lab, "r1-ok", true);
    lab.wait_holder(&vip, 0, bound(RISE));
    let up = t1.elapsed();
    eprintln!("{imps:?}: check recovered -> VIP back in {up:?}");
    // rise 2: not before the second good run, about a second after the first.
    assert!(
        up > Duration::from_millis(900),
        "back after {up:?}: rise ignored?"
    );
    if imps[0] == Impl::Vrrpd {
        assert_eq!(lab.status(0)["instances"][0]["priority"], 150);
    }
}

#[test]
fn failing_check_moves_master_vrrpd_to_keepalived() {
    weighted([Impl::Vrrpd, Impl::Keepalived]);
}

#[test]
fn failing_check_moves_master_keepalived_to_vrrpd() {
    weighted([Impl::Keepalived, Impl::Vrrpd]);
}

/// A check without weight faults the instance: the master resigns (priority 0), so the peer
/// takes over after its Skew_Time. r1's check hangs while failing, so every failure is a
/// timeout: it must be killed (with what it started) and count as a failure, and it runs
/// as `user nobody`.
fn faulting(imps: [Impl; 2]) {
    let mut lab = Lab::new(&["vlan10"], vrrpd());
    let vip = [lab.vip(0)];
    let f1 = flag(&lab, "r1-ok", true);
    let f2 = flag(&lab, "r2-ok", true);
    // Unique per lab (tests run in parallel): "vr<pid>x<n>" -> 37.<pid><n> seconds.
    let hang = format!("37.{}", lab.id.trim_start_matches("vr").replace('x', ""));
    let check = lab.write(
        "check.sh",
        &format!("#!/bin/sh\n[ -e \"$1\" ] && exit 0\nexec sleep {hang}\n"),
    );
    std::fs::set_permissions(&check, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let s1 = format!(
        "vrrp_script chk {{\n    script \"{} {}\"\n    interval 2\n    timeout 1\n    fall {FALL}\n    rise {RISE}\n    user nobody\n}}\n",
        check.display(),
        f1.display()
    );
    lab.start(1, imps[1], &script_conf(&lab, 100, &test_script(&f2, "")));
    lab.start(0, imps[0], &script_conf(&lab, 150, &s1));
    lab.wait_holder(&vip, 0, MDI * 3 + S(2));
    std::thread::sleep(S(2));

    let t0 = Instant::now();
    flag(&lab, "r1-ok", false);
    // fall 2 runs 2 s apart, each killed at its 1 s timeout, then Skew_Time (0.6 s at 100).
    let every = S(2);
    lab.wait_holder(&vip, 1, every * (FALL + 1) + S(2));
    eprintln!(
        "{imps:?}: weight-0 check failed -> peer holds the VIP in {:?}",
        t0.elapsed()
    );
    if imps[0] == Impl::Vrrpd {
        let st = lab.status(0);
        let i = &st["instances"][0];
        assert_eq!(i["state"], "FAULT", "{st}");
        assert_eq!(i["last_transition"]["reason"], "script chk failed", "{st}");
        let sc = &st["scripts"][0];
        assert_eq!(sc["state"], "BAD", "{st}");
        assert!(sc["timeouts"].as_u64().unwrap() >= 2, "{st}");
        assert_eq!(sc["last_result"], "timed out", "{st}");
        // One run at a time: never more than one hanging child.
        let n = hanging(&hang);
        assert!(n <= 1, "{n} hanging checks");
    }

    let t1 = Instant::now();
    flag(&lab, "r1-ok", true);
    lab.wait_holder(&vip, 0, every * (RISE + 1) + MDI + S(1));
    eprintln!(
        "{imps:?}: weight-0 check recovered -> VIP back in {:?}",
        t1.elapsed()
    );
    if imps[0] == Impl::Vrrpd {
        let st = lab.status(0);
        assert_eq!(st["instances"][0]["state"], "MASTER", "{st}");
        assert_eq!(st["scripts"][0]["state"], "GOOD", "{st}");
    }
    if imps[0] != Impl::Vrrpd {
        return; // keepalived leaves a hanging check behind when it stops: not ours to judge
    }
    // Stopped while a check hangs: the daemon kills it on its way out.
    flag(&lab, "r1-ok", false);
    lab.wait("a hanging check", S(4), |_| hanging(&hang) == 1);
    lab.stop(0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hanging(&hang), 0, "a check survived its daemon");
}

/// How many `sleep SECS` processes exist (exact command line).
fn hanging(secs: &str) -> usize {
    let out = std::process::Command::new("pgrep")
        .args(["-x", "-f", &format!("sleep {secs}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn weight_zero_check_faults_vrrpd() {
    faulting([Impl::Vrrpd, Impl::Keepalived]);
}

#[test]
fn weight_zero_check_faults_keepalived() {
    faulting([Impl::Keepalived, Impl::Vrrpd]);
}

/// `track_interface` with a weight (docs/vrrp.md, FAULT and sync groups): r1 (150) loses 60
/// while its tracked eth1 is down, so keepalived's r2 (100) preempts, and takes the VIP back
/// when it comes up; r1 never faults (the weight moves the priority instead).
#[test]
fn weighted_track_interface_moves_master_to_keepalived_and_back() {
    let mut lab = Lab::new(&["vlan10", "eth1"], vrrpd());
    let vip = [lab.vip(0)];
    let vip_line = format!("{}/24 dev vlan10", lab.vip(0));
    let inst = |prio: u8, extra: &'static str| {
        conf(
            2,
            true,
            &[Inst {
                name: "interne",
                iface: "vlan10",
                vrid: 100,
                priority: prio,
                advert_int: "1",
                vips: vec![vip_line.clone()],
                extra,
            }],
            &[],
        )
    };
    lab.start(1, Impl::Keepalived, &inst(100, ""));
    lab.start(
        0,
        Impl::Vrrpd,
        &inst(
            150,
            "    track_interface {\n        eth1 weight -60\n    }\n",
        ),
    );
    lab.wait_holder(&vip, 0, MDI * 3 + S(2));
    lab.link(0, 1, false);
    let took = lab.wait_holder(&vip, 1, INTERVAL + MDI + S(1));
    eprintln!("eth1 down -> keepalived master in {took:?}");
    let st = lab.status(0);
    assert_eq!(st["instances"][0]["priority"], 90, "{st}");
    assert_eq!(st["instances"][0]["state"], "BACKUP", "{st}");
    lab.link(0, 1, true);
    lab.wait_holder(&vip, 0, INTERVAL + MDI + S(1));
    assert_eq!(lab.status(0)["instances"][0]["priority"], 150);
}
