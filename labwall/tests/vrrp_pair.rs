//! Both routers for real: two namespaces with the compiled network.ip, sysctl.conf and
//! ruleset.nft, joined per segment by a bridge in a third namespace (veth stand-ins for eth1,
//! vlan10, vlan20), each running Debian's keepalived on its compiled keepalived.conf. The MASTER
//! must take the VIPs, the BACKUP must not (so the ruleset lets the adverts through: its VRRP
//! accept rule counts), and after the MASTER's keepalived stops the BACKUP must take them over.
//! The example site with `pooling 1` instead of 5, to keep the test short.

use labwall::backend::{run, Netns};
use labwall::{compile_source, parse::FsLoader, Options};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Bg(Child);
impl Drop for Bg {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Tmp(std::path::PathBuf);
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn has_vip(ns: &Netns, ip: &str) -> bool {
    ns.exec(&["ip", "-o", "addr", "show"])
        .unwrap_or_default()
        .contains(&format!("inet {ip}/"))
}

fn wait_for(what: &str, secs: u64, f: impl Fn() -> bool) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {secs}s waiting for: {what}");
}

fn vrrp_accept_packets(ns: &Netns) -> u64 {
    packets(ns, "input", "224.0.0.18")
}

/// Packets counted by the rules of `chain` whose JSON mentions `needle`.
fn packets(ns: &Netns, chain: &str, needle: &str) -> u64 {
    let j: serde_json::Value = serde_json::from_str(
        &ns.exec(&["nft", "-j", "list", "chain", "inet", "ramux", chain])
            .unwrap(),
    )
    .unwrap();
    j["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("rule"))
        .filter(|r| r["expr"].to_string().contains(needle))
        .map(|r| {
            r["expr"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|e| e.get("counter").map(|c| c["packets"].as_u64().unwrap()))
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn keepalived_pair_elects_and_fails_over_through_the_ruleset() {
    pair("PASS", "p");
}

/// With AH both start BACKUP (keepalived refuses state MASTER with AH): priority must elect,
/// and the ruleset's VRRP rule must accept AH (protocol 51).
#[test]
fn keepalived_pair_with_ah_authentication() {
    pair("AH", "h");
}

/// The two routers and their switch namespace, each router running keepalived on the compiled
/// outputs of `text` (the example site, edited by the test).
/// Fields drop in order: the daemons first, while their namespaces still exist (keepalived
/// may not die on SIGTERM once its namespace is gone), then the namespaces, then the files.
struct Lab {
    daemons: Vec<Bg>,
    sw: Netns,
    a: Netns,
    b: Netns,
    tmp: Tmp,
}

fn lab(text: &str, tag: &str) -> Lab {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "needs root (network namespaces)"
    );
    assert!(
        Command::new("keepalived").arg("--version").output().is_ok(),
        "keepalived missing: apt-get install keepalived"
    );
    let pid = std::process::id();
    let tmp = Tmp(std::env::temp_dir().join(format!("labwall-pair-{pid}-{tag}")));
    std::fs::create_dir_all(&tmp.0).unwrap();
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sites/example/site.lw");
    let sw = Netns::new(&format!("lw{pid}{tag}w")).unwrap();
    let a = Netns::new(&format!("lw{pid}{tag}a")).unwrap();
    let b = Netns::new(&format!("lw{pid}{tag}b")).unwrap();
    for seg in ["eth1", "vlan10", "vlan20"] {
        run(
            "ip",
            &[
                "-n",
                &sw.name,
                "link",
                "add",
                &format!("br{seg}"),
                "type",
                "bridge",
            ],
        )
        .unwrap();
        run(
            "ip",
            &["-n", &sw.name, "link", "set", &format!("br{seg}"), "up"],
        )
        .unwrap();
        for (ns, tag) in [(&a, "a"), (&b, "b")] {
            let peer = format!("{tag}{seg}");
            run(
                "ip",
                &[
                    "link", "add", seg, "netns", &ns.name, "type", "veth", "peer", "name", &peer,
                    "netns", &sw.name,
                ],
            )
            .unwrap();
            run(
                "ip",
                &[
                    "-n",
                    &sw.name,
                    "link",
                    "set",
                    &peer,
                    "master",
                    &format!("br{seg}"),
                    "up",
                ],
            )
            .unwrap();
        }
    }
    let mut daemons = Vec::new();
    for (ns, role, host) in [(&a, "MASTER", "fw-a"), (&b, "BACKUP", "fw-b")] {
        run(
            "ip",
            &[
                "-n",
                &ns.name,
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                "trunkpeer",
            ],
        )
        .unwrap();
        run("ip", &["-n", &ns.name, "link", "set", "lo", "up"]).unwrap();
        let o = Options {
            role: role.into(),
            defines: vec![("HOSTNAME".into(), host.into())],
            ..Default::default()
        };
        let c = compile_source(&FsLoader, &site, text, &o).unwrap();
        let d = tmp.0.join(role);
        std::fs::create_dir_all(&d).unwrap();
        let nip: String = c
            .outputs
            .network_ip
            .lines()
            .filter(|l| !l.starts_with("link add"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(d.join("network.ip"), nip).unwrap();
        std::fs::write(d.join("sysctl.conf"), &c.outputs.sysctl_conf).unwrap();
        std::fs::write(d.join("ruleset.nft"), &c.outputs.ruleset_nft).unwrap();
        std::fs::write(d.join("keepalived.conf"), &c.outputs.keepalived_conf).unwrap();
        run(
            "ip",
            &[
                "-n",
                &ns.name,
                "-batch",
                &d.join("network.ip").to_string_lossy(),
            ],
        )
        .unwrap();
        labwall::backend::apply_sysctl(ns, &c.outputs.sysctl_conf).unwrap();
        ns.exec(&["nft", "-f", &d.join("ruleset.nft").to_string_lossy()])
            .unwrap();
        let p = |n: &str| d.join(n).to_string_lossy().into_owned();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-P",
                "-f",
                &p("keepalived.conf"),
                "-p",
                &p("ka.pid"),
                "-r",
                &p("vrrp.pid"),
                "-c",
                &p("chk.pid"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("keepalived.log")).unwrap())
            .spawn()
            .unwrap();
        daemons.push(Bg(child));
    }
    Lab {
        tmp,
        sw,
        a,
        b,
        daemons,
    }
}

fn pair(auth: &str, tag: &str) {
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sites/example/site.lw");
    let text = std::fs::read_to_string(&site)
        .unwrap()
        .replace("pooling 5", "pooling 1")
        .replace("VRRP AUTH PASS", &format!("VRRP AUTH {auth}"));
    let Lab {
        tmp,
        sw: _sw,
        a,
        b,
        mut daemons,
    } = lab(&text, tag);
    let log =
        |r: &str| std::fs::read_to_string(tmp.0.join(r).join("keepalived.log")).unwrap_or_default();
    // MASTER takes every VIP of both instances (sync group), BACKUP none
    wait_for(
        &format!("MASTER holds the VIPs\n--- MASTER log\n{}", log("MASTER")),
        20,
        || {
            ["10.1.1.4", "172.16.10.1", "172.16.20.1"]
                .iter()
                .all(|v| has_vip(&a, v))
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !has_vip(&b, "10.1.1.4") && !has_vip(&b, "172.16.10.1"),
        "BACKUP also took the VIPs: adverts blocked?\n{}",
        log("BACKUP")
    );
    assert!(
        vrrp_accept_packets(&b) > 0,
        "the BACKUP's VRRP accept rule never counted"
    );
    // failover: stop the MASTER's keepalived; the BACKUP takes over every VIP
    drop(daemons.remove(0));
    wait_for(
        &format!("BACKUP takes over\n--- BACKUP log\n{}", log("BACKUP")),
        15,
        || {
            ["10.1.1.4", "172.16.10.1", "172.16.20.1"]
                .iter()
                .all(|v| has_vip(&b, v))
        },
    );
    assert!(!has_vip(&a, "10.1.1.4"), "the stopped MASTER kept its VIP");
    drop(daemons);
}

/// The client's neighbour entry for `ip` in the switch namespace (its MAC), after a ping.
fn client_sees(sw: &Netns, ip: &str) -> String {
    sw.exec(&["ping", "-c1", "-W2", ip])
        .unwrap_or_else(|e| panic!("the client cannot ping {ip}: {e}"));
    let n = sw.exec(&["ip", "neigh", "show", ip]).unwrap();
    n.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// `VRRP VMAC` and `VRRP CHECK` for real: the VIP sits on keepalived's macvlan vrrp.100 with
/// the virtual MAC, a client on VLAN 10 reaches it through the ruleset (the vmac's twin rules
/// count), the MASTER's failing check hands every VIP to the BACKUP while the client keeps the
/// same MAC for the VIP, and when the check passes again the MASTER takes them back.
#[test]
fn vmac_and_health_check_through_the_ruleset() {
    let flag = std::env::temp_dir().join(format!("labwall-down-{}", std::process::id()));
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sites/example/site.lw");
    let text = std::fs::read_to_string(&site)
        .unwrap()
        .replace("pooling 5", "pooling 1")
        + &format!(
            "VRRP VMAC\nVRRP CHECK uplink EVERY 1 FALL 2 RISE 1 RUN /usr/bin/test ! -e {}-$ROLE\n",
            flag.display()
        );
    let l = lab(&text, "v");
    let down = flag.with_file_name(format!("labwall-down-{}-MASTER", std::process::id()));
    let _rm = Tmp(down.clone());
    let on_vmac = |ns: &Netns| {
        ns.exec(&["ip", "-o", "addr", "show", "dev", "vrrp.100"])
            .unwrap_or_default()
            .contains("inet 172.16.10.1/")
    };
    let log = |r: &str| {
        std::fs::read_to_string(l.tmp.0.join(r).join("keepalived.log")).unwrap_or_default()
    };
    wait_for(
        &format!("the VIP on the MASTER's vmac\n{}", log("MASTER")),
        20,
        || on_vmac(&l.a),
    );
    l.sw.exec(&["ip", "addr", "add", "172.16.10.50/24", "dev", "brvlan10"])
        .unwrap();
    let vmac = "00:00:5e:00:01:64";
    assert_eq!(client_sees(&l.sw, "172.16.10.1"), vmac);
    assert!(
        packets(&l.a, "input", "vrrp.100") > 0,
        "no vmac rule counted the ping"
    );
    std::fs::write(&down, "").unwrap();
    wait_for(
        &format!(
            "the BACKUP takes over on the failed check\n{}",
            log("BACKUP")
        ),
        20,
        || on_vmac(&l.b) && !has_vip(&l.a, "172.16.10.1") && has_vip(&l.b, "10.1.1.4"),
    );
    assert_eq!(
        client_sees(&l.sw, "172.16.10.1"),
        vmac,
        "the client's entry moved"
    );
    std::fs::remove_file(&down).unwrap();
    wait_for(
        &format!("the MASTER takes back after rise\n{}", log("MASTER")),
        20,
        || on_vmac(&l.a) && !has_vip(&l.b, "172.16.10.1"),
    );
    assert_eq!(client_sees(&l.sw, "172.16.10.1"), vmac);
}
