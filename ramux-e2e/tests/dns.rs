//! The dns appliance (docs/dns.md): dns1 built from the seed site
//! (profiles/router/site.lw, the dns profile's default) with a throwaway secrets overlay that it
//! reads from its site key (a `vlaunch --key` USB stick holding `RAMUX/dns1/site.secrets`, as on
//! bare metal; no fw_cfg, so the key alone brings the RADIUS role's secrets), on a vswitch access
//! port of VLAN 10 with a DHCP client VM. The client gets a lease in dns1's
//! half of the range (.50-.74) with the VIP as router and resolves a site name through dns1;
//! dns1's console shows dnsmasq and FreeRADIUS running and no `ramux: failed`. Booted again
//! without the overlay, radius is held back with its `secret ... missing` line while dnsmasq
//! still runs.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Waits until `f(console text)` holds, or fails with the console.
fn wait_log(log: &Path, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> String {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if f(&text) {
            return text;
        }
        assert!(
            t0.elapsed() < timeout,
            "no {what} within {timeout:?}; console:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `vlaunch exec NAME -- ARGS...` (the guest agent): exit code and stdout.
fn exec(root: &Path, name: &str, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(ramux_bin("vlaunch"))
        .env("VLAUNCH_STATE_DIR", root)
        .args(["exec", name, "--"])
        .args(args)
        .output()
        .expect("run vlaunch exec");
    let r = (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    );
    eprintln!("e2e: exec {args:?} -> {r:?}");
    r
}

/// A throwaway site secrets overlay for the seed site (its NAS lines sw1, vpn1, vpn2; user alice).
fn secrets_overlay(dir: &Path) -> PathBuf {
    let src = dir.join("secrets");
    let req = vbuild::secrets::InitRequest {
        dir: src.clone(),
        nas: vec!["sw1".into(), "vpn1".into(), "vpn2".into()],
        users: vec![("alice".into(), "wonderland".into())],
        cns: vec![],
    };
    vbuild::secrets::init(&req).expect("secrets init");
    let file = dir.join("dns1.secrets");
    let bytes = vbuild::secrets::pack(&src, &[]).expect("secrets pack");
    vbuild::secrets::write_overlay(&file, &bytes).expect("write overlay");
    file
}

/// Boots dns1 on port 1 of `sw` (with the site key `key`, if any); returns the guard and its
/// console log.
fn boot_dns1(img: &Image, sw: &SwitchGuard, key: Option<PathBuf>) -> (VmGuard, PathBuf) {
    let root = state_root();
    let mut opts = options(img, "dns1", root.path());
    opts.mem_mib = 768;
    opts.switch_dir = Some(sw.dir.clone());
    opts.ports = vec![1];
    opts.key = key;
    let (g, ready) = boot(opts, root);
    assert!(
        ready.info.line.contains("profile=dns role=- host=dns1"),
        "{}",
        ready.info.line
    );
    let log = g.vm.paths().serial_log.clone();
    (g, log)
}

/// The client's eth0 lease: an address in dns1's half, the VIP as default route.
fn check_lease(root: &Path, name: &str) {
    let t0 = Instant::now();
    let addr = loop {
        let (_, out) = exec(root, name, &["ip", "-4", "addr", "show", "eth0"]);
        let leased = (50..=74).find(|h| out.contains(&format!("inet 172.16.10.{h}/24")));
        if let Some(h) = leased {
            break h;
        }
        assert!(t0.elapsed() < Duration::from_secs(90), "no lease: {out}");
        std::thread::sleep(Duration::from_secs(1));
    };
    eprintln!(
        "e2e: client leased 172.16.10.{addr} after {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let (_, routes) = exec(root, name, &["ip", "-4", "route"]);
    assert!(routes.contains("default via 172.16.10.1 "), "{routes}");
}

/// A site name through the lease's name server (dns1 first) and directly.
fn check_names(root: &Path, name: &str) {
    let (_, resolv) = exec(root, name, &["cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 172.16.10.10"), "{resolv}");
    for args in [
        &["nslookup", "web1.lab.demo.fr"][..],
        &["nslookup", "pc10", "172.16.10.10"][..],
    ] {
        let (code, out) = exec(root, name, args);
        let want = if args[1] == "pc10" {
            "172.16.10.30"
        } else {
            "172.16.10.21"
        };
        assert!(code == 0 && out.contains(want), "{args:?}: {out}");
    }
}

#[test]
fn dns1_serves_dhcp_and_names_and_needs_its_secrets() {
    let dns = image_with("dns", "", &[("instance", "dns1")]);
    assert_eq!(dns.report.hostname, "dns1");
    // The manifest says which secrets the overlay must bring, never their content.
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&dns.report.manifest).unwrap()).unwrap();
    let radius = m["secrets"]["radius"]
        .as_array()
        .expect("radius expects secrets");
    for s in [
        "pki/radius.key",
        "radius/nas/sw1",
        "radius/nas/vpn1",
        "radius/nas/vpn2",
    ] {
        assert!(radius.iter().any(|x| x == s), "{s} in {radius:?}");
    }
    assert!(m["secrets"].get("dnsmasq").is_none(), "{}", m["secrets"]);
    let client = image_with("client", "", &[("address", "dhcp")]);
    let tmp = tempfile::tempdir().unwrap();
    let overlay = secrets_overlay(tmp.path());
    let key = vlaunch::key::ensure(&tmp.path().join("dns1.key"), &mut |_| {}).expect("key");
    mmd(&key, "/RAMUX");
    mmd(&key, "/RAMUX/dns1");
    mcopy(&key, &overlay, "/RAMUX/dns1/site.secrets");
    let _slots = qemu_slots(2);
    let mut sw = SwitchGuard::new();
    sw.start_vswitch(
        "port/create 1\nport/create 2\nvlan/create 10\nport/setvlan 1 10\nport/setvlan 2 10\n",
    );

    let t0 = Instant::now();
    let (g, log) = boot_dns1(&dns, &sw, Some(key));
    eprintln!(
        "e2e: dns1 ready {:.1} s after launch",
        t0.elapsed().as_secs_f64()
    );
    let croot = state_root();
    let mut copts = options(&client, "c10", croot.path());
    copts.mem_mib = 512;
    copts.switch_dir = Some(sw.dir.clone());
    copts.ports = vec![2];
    let (c, _) = boot(copts, croot);
    let (cname, cstate) = (c.vm.name().to_string(), c.state_root.path().to_path_buf());
    check_lease(&cstate, &cname);
    check_names(&cstate, &cname);

    let sock = g.vm.paths().serial_sock.clone();
    let ps = console_run(
        &sock,
        "pidof freeradius >/dev/null && pidof dnsmasq >/dev/null && echo BOTH''RUNNING",
        "BOTHRUNNING",
        Duration::from_secs(30),
    );
    assert!(ps.contains("BOTHRUNNING"), "{ps}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("ramux: failed"), "{text}");
    assert!(
        text.contains("files from the key's site.secrets in /run/ramux/secrets"),
        "{text}"
    );
    assert!(text.contains("DHCPACK(vlan10) 172.16.10."), "{text}");
    drop((c, g));

    let (_g, log) = boot_dns1(&dns, &sw, None);
    let text = wait_log(&log, "dnsmasq and the radius failure", BOOT_TIMEOUT, |t| {
        t.contains("dnsmasq: started") || t.contains("]: started, version")
    });
    assert!(
        text.contains("ramux: failed radius: secret pki/ca.crt missing"),
        "{text}"
    );
    assert!(!text.contains("ramux: failed dnsmasq"), "{text}");
}
