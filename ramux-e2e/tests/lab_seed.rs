//! The seed lab (labs/seed.toml) end to end through the CLI, the one full lab run of the suite:
//! `up --build` builds what is missing (routers with the site baked in, the site's two dns
//! servers as instances dns1 and dns2, three clients, a NAS) and a throwaway secrets set, and
//! boots RT1, RT2, DNS1, DNS2, MV1, MV2, NAS1 and internet; `test` runs the file's tests (ping
//! through the VIP, https allowed and ssh blocked to web1, a DNS query to dns1, MV2's lease
//! through the routers' relay and a name resolved, MAB, PEAP and EAP-TLS from NAS1 to the
//! servers with the VLAN they return, srv and users apart, the DNAT from the internet client, the matrix
//! generated from the site compared live with labwall's simulator, the failover on SIGKILL of
//! RT1 within the VRRP theory, then leasing and resolving with DNS1 crashed); then `restart`
//! brings RT1 back, `fault unplug`/`plug` pulls a cable, and `down` leaves nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Seed {
    run: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Seed {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::ramux_bin("vlaunch"));
        c.arg("lab")
            .args(args)
            .current_dir(common::repo_root())
            .env("VLAUNCH_LAB_DIR", &self.run)
            .env("RAMUX_BIN_DIR", common::bin_dir());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let o = self.cmd(args).output().expect("run vlaunch lab");
        eprintln!(
            "e2e: vlaunch lab {}: {}\n{}{}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        o
    }

    fn json(&self, args: &[&str]) -> (bool, serde_json::Value) {
        let o = self.run(args);
        let v = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("vlaunch lab {args:?} printed no JSON ({e})"));
        (o.status.success(), v)
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        let _ = self.cmd(&["down", "seed", "--force"]).output();
    }
}

fn result<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no test {name:?} in {report}"))
}

fn node_state(status: &serde_json::Value, node: &str) -> String {
    let n = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == node);
    n.map(|n| n["state"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[test]
fn the_seed_lab_passes_its_tests_and_survives_the_loss_of_rt1() {
    let tmp = tempfile::Builder::new()
        .prefix("vl-seed-")
        .tempdir_in("/tmp")
        .unwrap();
    let seed = Seed {
        run: tmp.path().join("run"),
        _tmp: tmp,
    };
    let file = "labs/seed.toml";
    assert!(seed.run(&["up", file, "--build"]).status.success(), "up");
    let (ok, status) = seed.json(&["status", "seed", "--json"]);
    assert!(ok);
    assert_eq!(status["schema_version"], 1);
    for n in [
        "RT1", "RT2", "DNS1", "DNS2", "MV1", "MV2", "NAS1", "VPN1", "VPN2", "internet",
    ] {
        assert_eq!(node_state(&status, n), "ready", "{status}");
    }

    let junit = seed.run.join("seed.xml");
    let (ok, report) = seed.json(&["test", "seed", "--json", "--junit", junit.to_str().unwrap()]);
    assert!(ok, "every test of labs/seed.toml passes: {report}");
    assert_eq!(report["failed"], 0);
    assert_eq!(report["errors"], 0);
    let matrix = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "matrix");
    let (probes, udp) = matrix.fold((0, 0), |(n, u), t| {
        let udp = t["detail"].as_str().unwrap_or("").starts_with("udp");
        (n + 1, u + usize::from(udp))
    });
    assert!(
        probes >= 40 && udp > 0,
        "the matrix ran {probes} probes, {udp} UDP"
    );
    let fo = result(&report, "users survive the loss of RT1");
    let outage = fo["measured"]["outage_ms"]
        .as_u64()
        .expect("an outage measured");
    assert!(outage <= 17_000, "{fo}");
    assert_eq!(fo["measured"]["answered_by"], "RT2", "{fo}");
    eprintln!(
        "e2e: failover outage {outage} ms, theory {} ms",
        fo["measured"]["theory_ms"]
    );
    let lease = result(&report, "users lease through the relay, the VIP as gateway");
    let leased = lease["measured"]["lease"].as_str().unwrap_or("");
    assert!(leased.starts_with("172.16.20."), "{lease}");
    let without = result(&report, "users still lease with DNS1 down");
    let detail = without["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("from server 172.16.10.14"),
        "DNS2 leased: {without}"
    );
    let radius = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "radius" && t["result"] == "pass")
        .count();
    assert_eq!(
        radius, 5,
        "MAB accept and reject, PEAP, EAP-TLS, MAB with DNS1 down"
    );
    let vpn = result(
        &report,
        "alice comes back through the other VPN server with her address",
    );
    let d = vpn["detail"].as_str().unwrap_or("");
    assert!(
        d.contains("tun 172.16.10.130/24 through vpn")
            && d.contains("faulted: tun 172.16.10.130/24"),
        "{vpn}"
    );
    eprintln!(
        "e2e: vpn failover {} ms (the server in use crashed)",
        vpn["measured"]["outage_ms"]
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuite name=\"seed\"") && xml.contains("failures=\"0\""),
        "{xml}"
    );

    let (_, status) = seed.json(&["status", "seed", "--json"]);
    assert_eq!(
        node_state(&status, "RT1"),
        "stopped",
        "the failover crashed RT1"
    );
    assert_eq!(node_state(&status, "DNS1"), "stopped", "down = DNS1");
    assert!(seed.run(&["restart", "seed", "RT1"]).status.success());
    let ping_vip = [
        "exec",
        "seed",
        "MV2",
        "--",
        "ping",
        "-c",
        "2",
        "-w",
        "4",
        "172.16.20.1",
    ];
    assert!(seed.run(&ping_vip).status.success(), "MV2 reaches its VIP");
    assert!(seed
        .run(&["fault", "seed", "MV2", "unplug"])
        .status
        .success());
    assert!(
        !seed.run(&ping_vip).status.success(),
        "not with its cable pulled"
    );
    assert!(seed.run(&["fault", "seed", "MV2", "plug"]).status.success());
    let back = (0..10).any(|_| seed.run(&ping_vip).status.success());
    assert!(back, "MV2 reaches its VIP again once plugged");

    let up_again = seed.run(&["up", file]);
    assert!(
        up_again.status.success(),
        "up on the running, unchanged lab"
    );
    assert!(seed.run(&["down", "seed"]).status.success());
    assert!(
        !seed.run.join("seed").exists(),
        "down removes the lab directory"
    );
    assert_no_process_names(&seed.run);
}

/// No process has the lab directory in its command line any more (QEMUs, the switch).
fn assert_no_process_names(dir: &Path) {
    let want = dir.to_string_lossy().into_owned();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        assert!(!cmd.contains(&want), "left running: {cmd}");
    }
}
