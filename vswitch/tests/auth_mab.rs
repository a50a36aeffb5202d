//! MAC Authentication Bypass against Debian's FreeRADIUS (root: a network namespace; Debian
//! `freeradius`). FreeRADIUS runs with a copy of Debian's stock configuration, one client
//! (127.0.0.1, a random secret made for the run) and two MAB users in the `files` module, the
//! MAC as name and password, one with the RFC 3580 VLAN 10 reply. vswitch runs in the same
//! namespace; the test's VDE clients reach it through its directory.
//!
//! `mab_against_labwall_freeradius` runs the same checks against the site's configuration
//! as labwall generates it (labwall/tests/radius.rs's way: Debian's configuration with the
//! generated files in place, a throwaway PKI, started by ramux-radius-start), where MAB goes
//! through `rewrite_calling_station_id` and `ramux_macs`. Debian's stock `reject_delay = 1` holds each reject for 1 s,
//! so the reply timeout is set to 1.5 s.

#[allow(unused_imports)]
mod common;

use common::*;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KNOWN: [u8; 6] = [0x52, 0x54, 0, 0x10, 0, 0x50];
const KNOWN2: [u8; 6] = [0x52, 0x54, 0, 0x10, 0, 0x51];
const UNKNOWN: [u8; 6] = [0x52, 0x54, 0, 0x10, 0, 0x66];
const BCAST: [u8; 6] = [0xff; 6];

fn users_entry(mac: &str, vlan: Option<u16>) -> String {
    let mut s = format!("\"{mac}\" Cleartext-Password := \"{mac}\"\n");
    if let Some(v) = vlan {
        s.push_str(&format!(
            "\tTunnel-Type = VLAN,\n\tTunnel-Medium-Type = IEEE-802,\n\t\
             Tunnel-Private-Group-Id = \"{v}\",\n\tSession-Timeout = 3600\n"
        ));
    }
    s.push('\n');
    s
}

/// FreeRADIUS in `ns`, killed on drop.
fn start_radius(ns: &Netns, dir: &std::path::Path, secret: &str) -> (Proc, std::path::PathBuf) {
    let conf = dir.join("conf");
    let o = Command::new("cp")
        .args(["-a", "/etc/freeradius/3.0"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(o.status.success(), "copy /etc/freeradius/3.0: {o:?}");
    fs::write(
        conf.join("clients.conf"),
        format!(
            "client vsw {{\n\tipaddr = 127.0.0.1\n\tsecret = {secret}\n\tshortname = vsw\n}}\n"
        ),
    )
    .unwrap();
    let users = conf.join("mods-config/files/authorize");
    let stock = fs::read_to_string(&users).unwrap_or_default();
    let _ = fs::remove_file(&users);
    fs::write(
        &users,
        users_entry("52-54-00-10-00-50", Some(10))
            + &users_entry("52-54-00-10-00-51", None)
            + &stock,
    )
    .unwrap();
    let log = dir.join("radius.log");
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.name, "freeradius", "-f", "-X", "-d"])
        .arg(&conf)
        .stdout(fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn freeradius");
    let mut p = Proc(child);
    wait_for("freeradius ready", Duration::from_secs(20), || {
        if let Ok(Some(st)) = p.0.try_wait() {
            panic!(
                "freeradius exited: {st}\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        fs::read_to_string(&log).is_ok_and(|l| l.contains("Ready to process requests"))
    });
    (p, log)
}

fn auth_json(sw: &Sw) -> serde_json::Value {
    let r = sw.mgmt().cmd("json auth/print").unwrap();
    assert_eq!(r.code, 1000, "{r:?}");
    serde_json::from_str(&r.data.join("\n")).unwrap()
}

fn port_json(v: &serde_json::Value, p: u64) -> serde_json::Value {
    v["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["port"] == p)
        .cloned()
        .unwrap()
}

/// Sends from `from` every 20 ms until `to` receives one; returns the time from the first.
fn time_to_forward(from: &Port, to: &Port, src: [u8; 6], within: Duration) -> Option<Duration> {
    let f = frame(BCAST, src, None, 46);
    let t = Instant::now();
    while t.elapsed() < within {
        from.send(&f);
        if let Some(got) = to.recv_within(20) {
            if got[6..12] == src {
                return Some(t.elapsed());
            }
        }
    }
    None
}

/// labwall's generated FreeRADIUS configuration for a site with one port NAS (127.0.0.1,
/// secret `radius/nas/sw1`) and two MAB lines (KNOWN -> 10, KNOWN2 -> 20), started by
/// ramux-radius-start.
fn start_labwall_radius(
    ns: &Netns,
    dir: &std::path::Path,
    secret: &str,
) -> (Proc, std::path::PathBuf) {
    use labwall::aaa::radius::{freeradius_files_with, Options};
    use labwall::aaa::{MacVlan, Nas, Services};
    require("openssl", "openssl");
    // freeradius drops to freerad: the scratch directory must be traversable.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let secrets = dir.join("secrets");
    fs::create_dir_all(secrets.join("radius/nas")).unwrap();
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o700)).unwrap();
    let script = "set -e; mkdir -p secrets/pki pki; cd pki
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -subj /CN=vsw-test-ca -days 2 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout radius.key -out radius.csr -subj /CN=radius 2>/dev/null
openssl x509 -req -in radius.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out radius.crt -days 2 2>/dev/null
cp ca.crt radius.crt radius.key ../secrets/pki/; chmod 600 ../secrets/pki/*";
    let o = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "pki: {o:?}");
    let sf = secrets.join("radius/nas/sw1");
    fs::write(&sf, format!("{secret}\n")).unwrap();
    fs::set_permissions(&sf, fs::Permissions::from_mode(0o600)).unwrap();
    let services = Services {
        nas: vec![Nas {
            name: "sw1".into(),
            addr: "127.0.0.1".parse().unwrap(),
            secret: "sw1".into(),
            vpn: false,
            line: 1,
        }],
        mab: vec![
            MacVlan {
                mac: KNOWN,
                vlan: 10,
                line: 2,
            },
            MacVlan {
                mac: KNOWN2,
                vlan: 20,
                line: 3,
            },
        ],
        ..Services::default()
    };
    let opts = Options {
        secrets_dir: secrets.display().to_string(),
        run_dir: dir.join("run").display().to_string(),
        vlan_prefix: Default::default(),
    };
    let conf = dir.join("conf");
    let o = Command::new("cp")
        .args(["-a", "/etc/freeradius/3.0"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(o.status.success(), "copy /etc/freeradius/3.0: {o:?}");
    for (rel, text) in freeradius_files_with(&services, &opts).unwrap() {
        let p = conf.join(rel);
        let _ = fs::remove_file(&p); // a stock symlink: replace it, not its target
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
    }
    let start = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../overlays/dns/usr/sbin/ramux-radius-start");
    let log = dir.join("radius.log");
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(start)
        .args(["-X", "-l", "stdout"])
        .env("RAMUX_RADIUS_CONF", &conf)
        .stdout(fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ramux-radius-start");
    let mut p = Proc(child);
    wait_for("freeradius ready", Duration::from_secs(30), || {
        if let Ok(Some(st)) = p.0.try_wait() {
            panic!(
                "freeradius exited: {st}\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        fs::read_to_string(&log).is_ok_and(|l| l.contains("Ready to process requests"))
    });
    (p, log)
}

#[test]
fn mab_against_freeradius() {
    run_mab("stock", start_radius);
}

#[test]
fn mab_against_labwall_freeradius() {
    run_mab("labwall", start_labwall_radius);
}

type Starter = fn(&Netns, &std::path::Path, &str) -> (Proc, std::path::PathBuf);

fn run_mab(tag: &str, start: Starter) {
    require("freeradius", "freeradius");
    assert!(is_root(), "needs root (network namespace)");
    let ns = netns(&tag[..3]);
    let dir = tempfile::Builder::new()
        .prefix("vsw-mab-")
        .tempdir()
        .unwrap();
    let mut rnd = [0u8; 12];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut rnd)
        .unwrap();
    let secret: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
    let (mut radius, log) = start(&ns, dir.path(), &secret);
    let sf = dir.path().join("nas.secret");
    fs::write(&sf, format!("{secret}\n")).unwrap();
    fs::set_permissions(&sf, fs::Permissions::from_mode(0o600)).unwrap();
    let rc = dir.path().join("sw.rc");
    fs::write(
        &rc,
        format!(
            "vlan/create 10\nport/create 2\nport/setvlan 2 10\n\
             port/setauth 1 mab\nport/setauth 3 mab\nport/setauth 5 mab\n\
             auth/settimers 1500 2 60\n\
             auth/setradius 127.0.0.1:1812 {} 127.0.0.1 vsw-test\n",
            sf.display()
        ),
    )
    .unwrap();
    let rcs = rc.to_str().unwrap();
    let wrap = ["ip", "netns", "exec", ns.name.as_str()];
    let sw = Sw::start_with(bin(), &["-n", "8", "-f", rcs], &wrap);
    let p1 = sw.port(1); // auth mab, the known MAC (VLAN 10 by RADIUS)
    let p2 = sw.port(2); // VLAN 10, no auth
    let p3 = sw.port(3); // auth mab, an unknown MAC
    let p4 = sw.port(4); // VLAN 0, no auth
    let p5 = sw.port(5); // auth mab, a known MAC asked while the server is down

    // The known MAC: dropped until the Accept, then forwarded in VLAN 10 only.
    let t = time_to_forward(&p1, &p2, KNOWN, Duration::from_secs(10))
        .expect("known MAC forwarded to VLAN 10");
    println!("MAB ({tag}): first frame to forwarding in VLAN 10: {t:?}");
    let v = auth_json(&sw);
    let a1 = port_json(&v, 1);
    assert_eq!(a1["macs"][0]["state"], "authorized", "{v}");
    assert_eq!(a1["macs"][0]["vlan"], 10, "{v}");
    assert_eq!(a1["accepts"], 1, "{v}");
    assert!(a1["dropped_pending"].as_u64().unwrap() >= 1, "{v}");
    p4.drain();
    p1.send(&frame(BCAST, KNOWN, None, 46));
    assert!(p2.recv_within(1000).is_some(), "VLAN 10 gets the broadcast");
    assert!(p4.recv_within(300).is_none(), "VLAN 0 does not");
    // And back: port 2 reaches the authorized MAC, untagged.
    p2.send(&frame(KNOWN, [2, 0, 0, 0, 0, 2], None, 46));
    let back = p1.recv_within(1000).expect("reply to the known MAC");
    assert_eq!(back[12..14], [0x88, 0xb5], "untagged");

    // The unknown MAC: rejected, every frame dropped and counted.
    p2.drain();
    p4.drain();
    for _ in 0..20 {
        p3.send(&frame(BCAST, UNKNOWN, None, 46));
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(p2.recv_within(200).is_none() && p4.recv_within(200).is_none());
    // Debian's radiusd.conf delays rejects by reject_delay = 1 s.
    wait_for("reject of the unknown MAC", Duration::from_secs(5), || {
        port_json(&auth_json(&sw), 3)["macs"][0]["state"] == "rejected"
    });
    let a3 = port_json(&auth_json(&sw), 3);
    assert_eq!(a3["macs"][0]["state"], "rejected", "{a3}");
    assert_eq!(a3["rejects"], 1, "{a3}");
    let dropped =
        a3["dropped_pending"].as_u64().unwrap() + a3["dropped_rejected"].as_u64().unwrap();
    assert_eq!(dropped, 20, "{a3}");
    println!("MAB ({tag}): unknown MAC: {a3}");

    // FreeRADIUS stopped: a known MAC on another port stays out.
    let _ = radius.0.kill();
    let _ = radius.0.wait();
    let none = time_to_forward(&p5, &p2, KNOWN2, Duration::from_secs(4))
        .or_else(|| time_to_forward(&p5, &p4, KNOWN2, Duration::from_millis(500)));
    assert!(none.is_none(), "nothing gets in while RADIUS is down");
    let a5 = port_json(&auth_json(&sw), 5);
    assert_eq!(a5["timeouts"], 1, "{a5}");
    assert_eq!(a5["requests"], 2, "two tries: {a5}");
    assert_eq!(a5["macs"][0]["state"], "rejected", "{a5}");
    // The MAC authorized before the outage keeps its session.
    assert!(time_to_forward(&p1, &p2, KNOWN, Duration::from_secs(1)).is_some());

    let text = sw.mgmt().cmd("auth/print").unwrap();
    println!("{}", text.data.join("\n"));
    let l = fs::read_to_string(&log).unwrap_or_default();
    assert!(l.contains("Sent Access-Accept"), "freeradius log:\n{l}");
    assert!(l.contains("Sent Access-Reject"), "freeradius log:\n{l}");
}
