//! Real kernel tests: the compiled example ruleset is loaded with `nft -f` into a router network
//! namespace (twice: atomic replace), hosts in other namespaces talk through it over veth pairs
//! (stand-ins for the VLAN interfaces: this host kernel has no 8021q), and for every packet
//! `labwall explain` must name the rule whose kernel counter moved. Needs root, nft, socat.

use labwall::backend::{run, Netns};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn need(tool: &str, pkg: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{tool} is required for this test: apt-get install {pkg}"
    );
}

fn root() {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "kernel tests need root (network namespaces)"
    );
}

fn site() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sites/example/site.lw")
}

/// Background process killed on drop.
struct Bg(Child);
impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct TmpDir(PathBuf);
impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Lab {
    r: Netns,
    net: Netns,
    srv: Netns,
    users: Netns,
    _bg: Vec<Bg>,
}

fn sh(ns: &Netns, cmd: &str) -> String {
    ns.exec(&["sh", "-c", cmd])
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn listen(ns: &Netns, ip: &str, port: u16, reply: &str) -> Bg {
    let c = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "socat",
            &if ip.contains(':') {
                format!("TCP6-LISTEN:{port},bind=[{ip}],reuseaddr,fork")
            } else {
                format!("TCP-LISTEN:{port},bind={ip},reuseaddr,fork")
            },
            &format!("SYSTEM:echo {reply} $SOCAT_PEERADDR"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat (apt-get install socat)");
    let bg = Bg(c);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        let o = ns
            .exec(&[
                "ss",
                "-Hltn",
                &if ip.contains(':') {
                    format!("src [{ip}]:{port}")
                } else {
                    format!("src {ip}:{port}")
                },
            ])
            .unwrap_or_default();
        if !o.trim().is_empty() {
            return bg;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("listener {ip}:{port} in {} did not start", ns.name);
}

#[derive(Debug, PartialEq)]
enum Got {
    Delivered(String),
    Refused,
    Timeout,
}

fn connect(ns: &Netns, src: &str, dst: &str, port: u16) -> Got {
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "timeout",
            "6",
            "socat",
            "-T2",
            "-",
            &if dst.contains(':') {
                format!("TCP6:[{dst}]:{port},bind=[{src}],connect-timeout=2")
            } else {
                format!("TCP:{dst}:{port},bind={src},connect-timeout=2")
            },
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.success() {
        Got::Delivered(String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else if err.contains("refused") {
        Got::Refused
    } else {
        Got::Timeout
    }
}

fn setup(out: &Path) -> Lab {
    let pid = std::process::id();
    let r = Netns::new(&format!("lw{pid}r")).unwrap();
    let net = Netns::new(&format!("lw{pid}n")).unwrap();
    let srv = Netns::new(&format!("lw{pid}s")).unwrap();
    let users = Netns::new(&format!("lw{pid}u")).unwrap();
    // router interface <-> host eth0, one veth pair per VLAN interface (stand-ins)
    for (rif, host) in [("eth1", &net), ("vlan10", &srv), ("vlan20", &users)] {
        run(
            "ip",
            &[
                "link", "add", rif, "netns", &r.name, "type", "veth", "peer", "name", "eth0",
                "netns", &host.name,
            ],
        )
        .unwrap();
        sh(
            host,
            "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; ip link set lo up; ip link set eth0 up",
        );
    }
    // eth0 of the router is the VLAN trunk parent: a lone veth end stands in for it
    run(
        "ip",
        &[
            "-n",
            &r.name,
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
    sh(&r, "ip link set lo up");
    // apply the compiled network.ip, without the `link add ... type vlan` lines (no 8021q here)
    let nip = std::fs::read_to_string(out.join("network.ip")).unwrap();
    let filtered: String = nip
        .lines()
        .filter(|l| !l.starts_with("link add"))
        .map(|l| format!("{l}\n"))
        .collect();
    let fip = out.join("network-standin.ip");
    std::fs::write(&fip, filtered).unwrap();
    run("ip", &["-n", &r.name, "-batch", &fip.to_string_lossy()]).unwrap();
    labwall::backend::apply_sysctl(
        &r,
        &std::fs::read_to_string(out.join("sysctl.conf")).unwrap(),
    )
    .unwrap();
    // the MASTER holds the VIPs (keepalived would add them; that is tested in vrrp_pair.rs)
    sh(&r, "ip addr add 10.1.1.4/24 dev eth1; ip addr add 172.16.10.1/24 dev vlan10; ip addr add 172.16.20.1/24 dev vlan20");
    sh(
        &net,
        "ip addr add 10.1.1.1/24 dev eth0; ip route add 172.16.0.0/16 via 10.1.1.4",
    );
    sh(&srv, "for a in 21 10 30 70; do ip addr add 172.16.10.$a/24 dev eth0; done; ip route add default via 172.16.10.1");
    sh(&users, "ip addr add 172.16.20.5/24 dev eth0; ip addr add 172.16.10.50/32 dev eth0; ip route add default via 172.16.20.1");
    // load twice: the second load replaces the table in one transaction
    let rs = out.join("ruleset.nft").to_string_lossy().into_owned();
    // another tool's table (keepalived, fail2ban...) must survive our loads
    sh(
        &r,
        "nft add table ip othertool; nft add chain ip othertool c",
    );
    r.exec(&["nft", "-f", &rs]).unwrap();
    r.exec(&["nft", "-f", &rs]).unwrap();
    let tables = r.exec(&["nft", "list", "tables"]).unwrap();
    assert!(
        tables.contains("table ip othertool"),
        "a foreign table was removed: {tables}"
    );
    let bg = vec![
        listen(&srv, "172.16.10.21", 443, "web1"),
        listen(&srv, "172.16.10.30", 22, "srv30"),
        listen(&net, "10.1.1.1", 80, "upstream"),
        listen(&r, "172.16.20.100", 22, "router"),
        listen(&r, "172.16.10.100", 22, "router"),
    ];
    Lab {
        r,
        net,
        srv,
        users,
        _bg: bg,
    }
}

/// (chain, index) -> packets, for table inet ramux
fn counters(r: &Netns) -> BTreeMap<(String, usize), u64> {
    let j: Value = serde_json::from_str(
        &r.exec(&["nft", "-j", "list", "table", "inet", "ramux"])
            .unwrap(),
    )
    .unwrap();
    let mut idx: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for item in j["nftables"].as_array().unwrap() {
        let Some(rule) = item.get("rule") else {
            continue;
        };
        let chain = rule["chain"].as_str().unwrap().to_string();
        let i = idx.entry(chain.clone()).or_insert(0);
        let pk = rule["expr"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|e| e.get("counter").map(|c| c["packets"].as_u64().unwrap()))
            .unwrap_or(0);
        out.insert((chain, *i), pk);
        *i += 1;
    }
    out
}

fn explain(from: &str, to: &str, port: u16, iif: Option<&str>) -> Value {
    let site = site();
    let mut a = vec![
        "explain".to_string(),
        site.to_string_lossy().into(),
        "--role".into(),
        "MASTER".into(),
        "-D".into(),
        "HOSTNAME=fw-a".into(),
        "--from".into(),
        from.into(),
        "--to".into(),
        to.into(),
        "--proto".into(),
        "tcp".into(),
        "--dport".into(),
        port.to_string(),
        "--json".into(),
    ];
    if let Some(i) = iif {
        a.push("--in".into());
        a.push(i.into());
    }
    let o = Command::new(env!("CARGO_BIN_EXE_labwall"))
        .args(&a)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "explain failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn step(v: &Value) -> (String, usize) {
    (
        v["chain"].as_str().unwrap().to_string(),
        v["index"].as_u64().unwrap() as usize,
    )
}

const VERDICT_CHAINS_SKIP: &[&str] = &["output", "nat_prerouting", "nat_postrouting"];

/// Run one case: the kernel outcome must be `want`, explain must give `verdict` at `line`, and
/// the only verdict rules whose counters moved must be explain's decision (+ its NAT steps).
#[allow(clippy::too_many_arguments)]
fn case(
    lab: &Lab,
    name: &str,
    ns: &Netns,
    from: &str,
    to: &str,
    port: u16,
    iif: Option<&str>,
    want: &dyn Fn(&Got) -> bool,
    verdict: &str,
    line: u64,
) {
    case_opt(
        lab, name, ns, from, to, port, iif, want, verdict, line, true,
    )
}

/// `exclusive`: also require that no other terminal rule counted (off for IPv6, where the
/// hosts' own MLD/RS traffic to the router counts in policy chains at the same time).
#[allow(clippy::too_many_arguments)]
fn case_opt(
    lab: &Lab,
    name: &str,
    ns: &Netns,
    from: &str,
    to: &str,
    port: u16,
    iif: Option<&str>,
    want: &dyn Fn(&Got) -> bool,
    verdict: &str,
    line: u64,
    exclusive: bool,
) {
    let before = counters(&lab.r);
    let got = connect(ns, from, to, port);
    let after = counters(&lab.r);
    let e = explain(from, to, port, iif);
    assert!(
        want(&got),
        "{name}: kernel outcome {got:?}; explain said {}",
        serde_json::to_string_pretty(&e).unwrap()
    );
    assert_eq!(e["verdict"], verdict, "{name}: explain verdict {}", e);
    assert_eq!(
        e["decision"]["line"].as_u64(),
        Some(line),
        "{name}: explain line {}",
        e
    );
    let moved: Vec<(String, usize)> = after
        .iter()
        .filter(|(k, v)| before.get(*k).copied().unwrap_or(0) < **v)
        .map(|(k, _)| k.clone())
        .collect();
    let dec = step(&e["decision"]);
    assert!(
        moved.contains(&dec),
        "{name}: explain says {dec:?} decided, but the kernel counters that moved are {moved:?}"
    );
    for key in ["dnat", "snat"] {
        if !e[key].is_null() {
            let s = step(&e[key]);
            assert!(
                moved.contains(&s),
                "{name}: explain's {key} {s:?} did not count in the kernel: {moved:?}"
            );
        }
    }
    // every terminal rule (accept/drop/reject) in the filter chains that counted must be explain's
    let rs = lab
        .r
        .exec(&["nft", "-j", "list", "table", "inet", "ramux"])
        .unwrap();
    let j: Value = serde_json::from_str(&rs).unwrap();
    let mut idx: BTreeMap<String, usize> = BTreeMap::new();
    for item in j["nftables"].as_array().unwrap() {
        let Some(rule) = item.get("rule") else {
            continue;
        };
        let chain = rule["chain"].as_str().unwrap().to_string();
        let i = *idx
            .entry(chain.clone())
            .and_modify(|x| *x += 1)
            .or_insert(0);
        let txt = rule["expr"].to_string();
        let terminal =
            (txt.contains("\"accept\"") || txt.contains("\"drop\"") || txt.contains("\"reject\""))
                && !txt.contains("\"ct\"")
                && !txt.contains("\"vmap\"");
        // the router's own output (ND, MLD) goes through output -> fw_* / pol_fw_*: not this packet
        let own_output = chain.starts_with("fw_") || chain.starts_with("pol_fw_");
        if exclusive
            && terminal
            && !txt.contains("nd-neighbor")
            && !own_output
            && !VERDICT_CHAINS_SKIP.contains(&chain.as_str())
            && moved.contains(&(chain.clone(), i))
        {
            assert_eq!(
                (chain.clone(), i),
                dec,
                "{name}: kernel also counted {chain}#{i} ({}), explain decided {dec:?}",
                rule["comment"]
            );
        }
    }
}

#[test]
fn example_site_in_real_kernel() {
    root();
    need("nft", "nftables");
    need("socat", "socat");
    let out = std::env::temp_dir().join(format!("labwall-kt-{}", std::process::id()));
    let _out_guard = TmpDir(out.clone());
    let _ = std::fs::remove_dir_all(&out);
    let st = Command::new(env!("CARGO_BIN_EXE_labwall"))
        .args([
            "compile",
            &site().to_string_lossy(),
            "--role",
            "MASTER",
            "-D",
            "HOSTNAME=fw-a",
            "--out",
            &out.to_string_lossy(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let lab = setup(&out);
    // the replaced table is there once, with our rules
    let list = lab.r.exec(&["nft", "list", "tables"]).unwrap();
    assert_eq!(list.matches("table inet ramux").count(), 1, "{list}");

    let delivered =
        |who: &'static str| move |g: &Got| matches!(g, Got::Delivered(s) if s.starts_with(who));
    // ALLOW users srv:web1 https (line 49)
    case(
        &lab,
        "ALLOW",
        &lab.users,
        "172.16.20.5",
        "172.16.10.21",
        443,
        None,
        &delivered("web1"),
        "ACCEPT",
        49,
    );
    // POLICY users net ACCEPT (66) + SNAT to the VIP (60): the upstream host sees 10.1.1.4
    case(
        &lab,
        "POLICY+SNAT",
        &lab.users,
        "172.16.20.5",
        "10.1.1.1",
        80,
        None,
        &|g| matches!(g, Got::Delivered(s) if s == "upstream 10.1.1.4"),
        "ACCEPT",
        66,
    );
    // DNAT VIP:443 -> web1 (62); the forward accept is ALLOW net srv:web1 https (51), first in file order
    case(
        &lab,
        "DNAT",
        &lab.net,
        "10.1.1.1",
        "10.1.1.4",
        443,
        None,
        &|g| matches!(g, Got::Delivered(s) if s == "web1 10.1.1.1"),
        "ACCEPT",
        51,
    );
    // NOROUTE srv users (29)
    case(
        &lab,
        "NOROUTE",
        &lab.users,
        "172.16.20.5",
        "172.16.10.30",
        22,
        None,
        &|g| *g == Got::Timeout,
        "DROP",
        29,
    );
    // ANTISPOOF strict (28): a users host forging a srv address
    case(
        &lab,
        "ANTISPOOF",
        &lab.users,
        "172.16.10.50",
        "10.1.1.1",
        80,
        Some("vlan20"),
        &|g| *g == Got::Timeout,
        "DROP",
        28,
    );
    // POLICY net all DROP LOG (68)
    case(
        &lab,
        "POLICY DROP",
        &lab.net,
        "10.1.1.1",
        "172.16.10.30",
        22,
        None,
        &|g| *g == Got::Timeout,
        "DROP",
        68,
    );
    // POLICY all all REJECT LOG (69): users -> router ssh gets a reset
    case(
        &lab,
        "POLICY REJECT",
        &lab.users,
        "172.16.20.5",
        "172.16.20.100",
        22,
        None,
        &|g| *g == Got::Refused,
        "REJECT",
        69,
    );
    // ALLOW srv:admins fw ssh (53)
    case(
        &lab,
        "ALLOW to fw",
        &lab.srv,
        "172.16.10.70",
        "172.16.10.100",
        22,
        None,
        &delivered("router"),
        "ACCEPT",
        53,
    );
    // a srv host outside admins does not get ssh on the router: policy all all REJECT (69)
    case(
        &lab,
        "not admins",
        &lab.srv,
        "172.16.10.30",
        "172.16.10.100",
        22,
        None,
        &|g| *g == Got::Refused,
        "REJECT",
        69,
    );
    // the router itself: output -> POLICY fw all ACCEPT (67), and no SNAT for its own address
    case(
        &lab,
        "fw -> net",
        &lab.r,
        "10.1.1.2",
        "10.1.1.1",
        80,
        None,
        &|g| matches!(g, Got::Delivered(s) if s == "upstream 10.1.1.2"),
        "ACCEPT",
        67,
    );
    // IPv6, no NAT: ALLOW net srv:web1 https (51) reaches web1's IPv6 address directly
    sh(&lab.net, "echo 0 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 0 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6; ip -6 addr add 2001:db8:1::1/64 dev eth0 nodad; ip -6 route add 2001:db8:10::/64 via 2001:db8:1::2");
    sh(&lab.srv, "echo 0 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 0 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6; ip -6 addr add 2001:db8:10::21/64 dev eth0 nodad; ip -6 route add default via 2001:db8:10::100");
    let _l6 = listen(&lab.srv, "2001:db8:10::21", 443, "web1v6");
    case_opt(
        &lab,
        "IPv6 ALLOW",
        &lab.net,
        "2001:db8:1::1",
        "2001:db8:10::21",
        443,
        None,
        &|g| matches!(g, Got::Delivered(s) if s.starts_with("web1v6")),
        "ACCEPT",
        51,
        false,
    );
    // IPv6 to a srv host with no rule: POLICY net all DROP (68)
    case_opt(
        &lab,
        "IPv6 POLICY DROP",
        &lab.net,
        "2001:db8:1::1",
        "2001:db8:10::21",
        22,
        None,
        &|g| *g == Got::Timeout,
        "DROP",
        68,
        false,
    );
    drop(_l6);
    drop(lab);
}
