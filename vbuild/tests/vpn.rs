//! The vpn appliance's client side and a real end-to-end connect: `vbuild secrets init --site`
//! makes the VPN material (openvpn reads the tls-crypt key, openssl verifies the server
//! certificates), `vbuild vpn-client` writes a 0600 profile that a real OpenVPN 2.6 parses,
//! and, as root in network namespaces, an OpenVPN client connects with it through the
//! generated tinyproxy relay to the generated VLAN 10 server and pings a VLAN host.

mod vpn_lab;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use vpn_lab::{can_run, repo, MgmtResponder, VpnLab, SITE};

fn vbuild_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vbuild"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

#[test]
fn secrets_and_profile_from_the_site() {
    let tmp = std::env::temp_dir().join(format!("vbvpn-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let sec = tmp.join("secrets");
    let o = vbuild_cli(&["secrets", "init", sec.to_str().unwrap(), "--site", SITE]);
    assert!(o.status.success(), "{o:?}");
    let listed = String::from_utf8_lossy(&o.stdout);
    for f in [
        "pki/vpn1.crt",
        "pki/vpn2.key",
        "vpn/tls-crypt.key",
        "pki/clients/alice.crt",
        "pki/clients/bob.key",
        "radius/nas/vpn2",
    ] {
        assert!(listed.contains(f), "{f} not in\n{listed}");
    }
    let key = std::fs::read_to_string(sec.join("vpn/tls-crypt.key")).unwrap();
    assert_eq!(key.lines().filter(|l| l.len() == 32).count(), 16, "{key}");
    for c in ["pki/vpn1.crt", "pki/vpn2.crt"] {
        let v = Command::new("openssl")
            .args(["verify", "-purpose", "sslserver", "-CAfile"])
            .arg(sec.join("pki/ca.crt"))
            .arg(sec.join(c))
            .output()
            .unwrap();
        assert!(v.status.success(), "{c}: {v:?}");
    }
    let out = tmp.join("alice.ovpn");
    let o = vbuild_cli(&[
        "vpn-client",
        "alice",
        "--site",
        SITE,
        "--secrets",
        sec.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let p = std::fs::read_to_string(&out).unwrap();
    let blocks = p.split("<connection>").count() - 1;
    assert_eq!(blocks, 2, "{p}");
    assert!(
        p.contains("remote vpn2.lab.demo.fr 1110\nhttp-proxy vpn2.lab.demo.fr 443\n"),
        "{p}"
    );
    // pinned: exactly the two servers' certificates, as openssl prints their fingerprints
    let pins =
        &p[p.find("<peer-fingerprint>").expect("pinned")..p.find("</peer-fingerprint>").unwrap()];
    let openssl_fp = |c: &str| {
        let o = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(sec.join(c))
            .output()
            .unwrap();
        let t = String::from_utf8_lossy(&o.stdout).to_lowercase();
        t.trim().rsplit('=').next().unwrap().to_string()
    };
    for c in ["pki/vpn1.crt", "pki/vpn2.crt"] {
        assert!(pins.contains(&openssl_fp(c)), "{c} not pinned:\n{pins}");
    }
    assert!(!pins.contains(&openssl_fp("pki/radius.crt")), "{pins}");
    assert_eq!(pins.lines().count(), 3, "{pins}");
    let tail = &p[p.find("remote-random").unwrap()..];
    assert!(
        !tail.contains("<ca>") && p.trim_end().ends_with("</connection>"),
        "blocks last"
    );
    // an unknown user: an error, and no file
    let bad = tmp.join("mallory.ovpn");
    let o = vbuild_cli(&[
        "vpn-client",
        "mallory",
        "--site",
        SITE,
        "--secrets",
        sec.to_str().unwrap(),
        "-o",
        bad.to_str().unwrap(),
    ]);
    assert!(!o.status.success() && !bad.exists());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("pki/clients/mallory.crt") || e.contains("no VPNUSER mallory"),
        "{e}"
    );
    openvpn_parses(&out);
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A real `openvpn --config` reads every option, the inline CA, certificate, key and
/// tls-crypt key (its control-channel cipher is set up from the key), then gives up on the
/// relay's name, which resolves nowhere here: proof of parsing without a server.
fn openvpn_parses(profile: &std::path::Path) {
    if Command::new("openvpn").arg("--version").output().is_err() {
        eprintln!("skipped: no openvpn");
        return;
    }
    let o = Command::new("openvpn")
        .arg("--config")
        .arg(profile)
        .args([
            "--verb",
            "4",
            "--connect-retry-max",
            "1",
            "--connect-timeout",
            "1",
            "--resolv-retry",
            "0",
            "--dev",
            "null",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(!log.contains("Options error"), "{log}");
    assert!(
        log.contains("Outgoing Control Channel Encryption"),
        "tls-crypt key not loaded:\n{log}"
    );
    assert!(
        log.contains("http-proxy = vpn1.lab.demo.fr") || log.contains("vpn1.lab.demo.fr"),
        "{log}"
    );
}

/// The whole path as a user takes it: client -> relay (443) -> VLAN 10 server -> the VLAN.
#[test]
fn a_real_client_connects_through_the_relay_and_reaches_its_vlan() {
    if !can_run() {
        return;
    }
    let mut lab = VpnLab::up("t").unwrap();
    lab.start_relay().unwrap();
    let sock = lab.start_server().unwrap();
    let _auth = MgmtResponder::start(&sock, &lab.site, &lab.vpn).unwrap();
    lab.wait_listen(1110).unwrap();
    let profile = lab.client_profile(None).unwrap();
    let took = lab.connect(&profile, "client.log").unwrap();
    eprintln!("connected through the relay in {} ms", took.as_millis());
    let addr = lab.exec(&lab.out, &["ip", "-4", "addr", "show"]).unwrap();
    assert!(addr.contains("inet 172.16.10.130/24"), "{addr}");
    let ping = lab.exec(&lab.out, &["ping", "-c", "1", "-W", "5", "172.16.10.21"]);
    assert!(ping.is_ok(), "{ping:?}\n{}", lab.log("server.log"));
    // never another VLAN: with a route of its own to VLAN 20, nothing reaches a VLAN 20 host
    // (the user's table sends it to VLAN 10's router, never out of eth0.20)
    let out = lab.out.clone();
    lab.exec(
        &out,
        &["ip", "route", "replace", "172.16.20.0/24", "dev", "tun0"],
    )
    .unwrap();
    let cross = lab.exec(&out, &["ping", "-c", "1", "-W", "1", "172.16.20.21"]);
    assert!(cross.is_err(), "{cross:?}");
    // a forged source: OpenVPN drops it before the kernel sees it
    lab.exec(
        &out,
        &["ip", "addr", "add", "172.16.10.140/32", "dev", "tun0"],
    )
    .unwrap();
    let forged = lab.exec(
        &out,
        &[
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "-I",
            "172.16.10.140",
            "172.16.10.21",
        ],
    );
    assert!(forged.is_err(), "{forged:?}");
    // the relay's log names the CONNECT it let through
    assert!(
        lab.log("tinyproxy.log").contains("vpn1.lab.demo.fr"),
        "{}",
        lab.log("tinyproxy.log")
    );
}
