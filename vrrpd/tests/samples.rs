//! Every sample configuration Debian's keepalived package ships
//! (/usr/share/doc/keepalived/samples), read by `vrrpd --check` and by `keepalived -t`:
//! vrrpd calls a keyword unsupported only where keepalived calls it unknown (apart from LVS,
//! mail alerts and AH, which vrrpd leaves out on purpose), refuses LVS-only files in one line,
//! and, run on two routers in namespaces, elects the same master for every instance as
//! keepalived does. Needs root, keepalived and iproute2.
mod lab;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lab::{Impl, Lab};

const DIR: &str = "/usr/share/doc/keepalived/samples";

fn vrrpd() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vrrpd"))
}

/// The `keepalived.conf.*` samples, sorted.
fn samples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(DIR)
        .unwrap_or_else(|e| panic!("{DIR}: {e} (install keepalived)"))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("keepalived.conf.")
        })
        .collect();
    v.sort();
    v
}

fn has_vrrp(p: &Path) -> bool {
    std::fs::read_to_string(p)
        .unwrap()
        .contains("vrrp_instance")
}

/// `vrrpd --check -f FILE [ARGS]`: (exit success, stdout + stderr).
fn check(p: &Path, args: &[&str]) -> (bool, String) {
    let o = Command::new(vrrpd())
        .args(["--check", "-f"])
        .arg(p)
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    (o.status.success(), text)
}

/// The keywords named between quotes after `marker` in `text`.
fn quoted_after(text: &str, marker: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_once(marker))
        .filter_map(|(_, rest)| rest.split('\'').next().map(str::to_string))
        .collect()
}

/// What vrrpd leaves out on purpose: mail alerts (notify scripts do it) and LVS.
fn deliberate(kw: &str) -> bool {
    kw.starts_with("smtp_") || kw.starts_with("notification_email") || kw.starts_with("lvs_")
}

#[test]
fn vrrpd_calls_unsupported_only_what_keepalived_calls_unknown() {
    let mut checked = 0;
    for p in samples().iter().filter(|p| has_vrrp(p)) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let (ok, out) = check(p, &[]);
        if name.ends_with("SSL_GET") {
            // Its one instance uses AH, which RFC 5798 removed and vrrpd refuses.
            assert!(
                !ok && out.contains("auth_type AH is not supported"),
                "{name}: {out}"
            );
            continue;
        }
        assert!(ok, "{name}: vrrpd --check failed:\n{out}");
        let ka = Command::new("keepalived")
            .args(["-t", "-l", "-f"])
            .arg(p)
            .output()
            .unwrap();
        let ka =
            String::from_utf8_lossy(&ka.stdout).into_owned() + &String::from_utf8_lossy(&ka.stderr);
        let known_unknown = quoted_after(&ka, "Unknown keyword '");
        let ours: BTreeSet<String> = quoted_after(&out, "unsupported keyword '")
            .into_iter()
            .filter(|k| !deliberate(k))
            .collect();
        let extra: Vec<&String> = ours.difference(&known_unknown).collect();
        assert!(extra.is_empty(), "{name}: vrrpd ignores {extra:?}, which keepalived understands:\n{out}\n--- keepalived:\n{ka}");
        checked += 1;
    }
    assert_eq!(checked, 11, "the VRRP samples other than SSL_GET");
}

#[test]
fn lvs_only_samples_are_refused_in_one_line() {
    for p in samples().iter().filter(|p| !has_vrrp(p)) {
        let (ok, out) = check(p, &[]);
        assert!(!ok, "{}: accepted", p.display());
        assert_eq!(out.trim().lines().count(), 1, "{out}");
        assert!(out.contains("vrrpd does VRRP only"), "{out}");
    }
}

#[test]
fn conditional_sample_gives_each_config_id_its_priority() {
    let p = Path::new(DIR).join("keepalived.conf.conditional_conf");
    for (id, prio) in [("high", 170), ("low", 85)] {
        let (ok, out) = check(&p, &["-i", id]);
        assert!(ok, "{out}");
        assert!(out.contains(&format!("priority {prio} ")), "-i {id}: {out}");
        assert!(
            !out.contains("no 'script' line"),
            "-i {id} has its script: {out}"
        );
    }
    // No id matches: keepalived ignores the script without a `script` line, and so do we.
    let (ok, out) = check(&p, &["-i", "neither"]);
    assert!(
        ok && out.contains("track_script 'check_VI_0' ignored"),
        "{out}"
    );
}

/// The first IPv4 VIP of every instance of the sample: the address whose holder is its master.
fn first_vips(p: &Path) -> BTreeMap<String, Ipv4Addr> {
    let c = vrrpd::config::load(p).unwrap();
    c.instances
        .iter()
        .filter_map(|i| {
            let v4 = i.vips.iter().find_map(|v| match v.addr {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            })?;
            Some((i.name.clone(), v4))
        })
        .collect()
}

/// Who holds each instance's VIP, once that has not changed for two seconds.
fn settled(lab: &Lab, vips: &BTreeMap<String, Ipv4Addr>) -> BTreeMap<String, Vec<usize>> {
    let snap = || -> BTreeMap<String, Vec<usize>> {
        vips.iter()
            .map(|(n, v)| (n.clone(), lab.holders(*v)))
            .collect()
    };
    let t = Instant::now();
    let (mut last, mut since) = (snap(), Instant::now());
    // At least the master-down interval (3 x advert_int 1 s, plus skew) before trusting it.
    while since.elapsed() < Duration::from_secs(2) || t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(200));
        let now = snap();
        if now != last {
            (last, since) = (now, Instant::now());
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "never settled: {last:?}\n{}",
            lab.all_logs()
        );
    }
    last
}

/// Waits until router `ri` alone holds every VIP (at most 15 s).
fn all_held_by(lab: &Lab, vips: &BTreeMap<String, Ipv4Addr>, ri: usize) {
    let t = Instant::now();
    while !vips.values().all(|v| lab.holders(*v) == [ri]) {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "router {ri} alone never took every VIP\n{}",
            lab.all_logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Both routers run the same file under `imp`; the masters it elects.
///
/// The same file on both routers means equal priorities, and a tie between two backups that
/// start together is decided by whose timer fires first (keepalived and vrrpd alike, as
/// RFC 5798 says a backup never preempts an equal priority). So router 0 starts alone and takes
/// every instance, then router 1 joins: what is compared is how each implementation treats a
/// peer that joins a running master with this file, which does not depend on timing.
fn elect(lab: &mut Lab, p: &Path, imp: Impl) -> BTreeMap<String, Vec<usize>> {
    let text = std::fs::read_to_string(p).unwrap();
    let vips = first_vips(p);
    lab.start(0, imp, &text);
    all_held_by(lab, &vips, 0);
    lab.start(1, imp, &text);
    let got = settled(lab, &vips);
    lab.stop(0);
    lab.stop(1);
    got
}

/// The sample's masters under vrrpd and under keepalived, in a lab of its own.
fn compare(p: &Path) -> String {
    // The samples' interfaces, each a segment between the two routers.
    let mut lab = Lab::with_subnets(
        &[
            ("eth0", [192, 168, 200]),
            ("eth1", [192, 168, 201]),
            ("eth2", [192, 168, 202]),
            ("eth3", [192, 168, 203]),
            ("eth0.1", [192, 168, 204]),
        ],
        vrrpd(),
    );
    let name = p.file_name().unwrap().to_string_lossy().into_owned();
    let ours = elect(&mut lab, p, Impl::Vrrpd);
    let theirs = elect(&mut lab, p, Impl::Keepalived);
    assert_eq!(
        ours,
        theirs,
        "{name}: masters (router index per instance) differ, vrrpd then keepalived\n{}",
        lab.all_logs()
    );
    format!("{name}: {ours:?}")
}

#[test]
fn samples_elect_the_same_masters_as_keepalived() {
    // AH (SSL_GET) is refused; conditional_conf enters namespaces and advertises every 12 s
    // (tests/conditional.rs runs it); for lvs_syncd keepalived's VRRP child starts IPVS, which
    // needs the ip_vs module, and exits FATAL on a kernel without it (as here).
    let skip = ["SSL_GET", "conditional_conf", "lvs_syncd"];
    let runnable: Vec<PathBuf> = samples()
        .into_iter()
        .filter(|p| has_vrrp(p))
        .filter(|p| !skip.iter().any(|s| p.to_string_lossy().ends_with(s)))
        .collect();
    // One lab per sample, all at once: the time goes into VRRP timers, not CPU.
    let results: Vec<std::thread::Result<String>> = std::thread::scope(|sc| {
        let hs: Vec<_> = runnable
            .iter()
            .map(|p| sc.spawn(move || compare(p)))
            .collect();
        hs.into_iter().map(|h| h.join()).collect()
    });
    let failed = results.iter().filter(|r| r.is_err()).count();
    for r in results.iter().flatten() {
        eprintln!("{r}");
    }
    assert_eq!(
        failed,
        0,
        "{failed} of {} samples differ (above)",
        runnable.len()
    );
    assert_eq!(runnable.len(), 9, "the VRRP samples this kernel can run");
}
