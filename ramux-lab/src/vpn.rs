//! The `vpn` test kind, its pure half: what a VPN user's connection from an outside node must
//! show (the site's VPNUSER address in the tunnel, through one of the site's VPN servers' relays
//! on 443), what OpenVPN's client log says happened, and the verdict. vlaunch runs the client
//! in the guest (docs/lab.md, "vpn tests").

use crate::model::{Expect, Fault, Lab, LabTest, TestKind};
use crate::report::Outcome;
use labwall::model::Site;
use std::net::Ipv4Addr;
use std::time::Duration;

/// One VPN server as the test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The site's VPNSERVER host name (`vpn1`).
    pub name: String,
    /// The lab node that is this instance (`VPN1`), when the lab has one.
    pub node: Option<String>,
    /// The relay's address (what the client's log names).
    pub outside: Ipv4Addr,
    /// The name the profile dials (absent from the lab's DNS: the client's /etc/hosts).
    pub public_name: String,
}

/// What a `vpn` test runs and expects.
#[derive(Debug, Clone, PartialEq)]
pub struct VpnPlan {
    pub from: String,
    pub user: String,
    pub vlan: u16,
    /// The user's address (VPNUSER), which RADIUS answers and the tunnel must carry.
    pub addr: Ipv4Addr,
    pub servers: Vec<Server>,
    pub resolve: Option<String>,
    pub addresses: Vec<String>,
    pub failover: Option<(Fault, Duration)>,
    pub expect: Expect,
}

/// The plan of test `t`, from the site's VPN lines and the lab's nodes.
pub fn plan(lab: &Lab, site: &Site, t: &LabTest) -> Result<VpnPlan, String> {
    let TestKind::Vpn {
        user,
        resolve,
        addresses,
        failover,
    } = &t.kind
    else {
        return Err(format!("test {:?} is not a vpn test", t.name.value));
    };
    let u = labwall::vpn::vpn_user(site, &user.value)
        .map_err(|e| format!("{e}; a vpn test connects as one"))?;
    let servers = site
        .vpn
        .servers
        .iter()
        .map(|s| Server {
            name: s.name.clone(),
            node: instance_node(lab, &s.name),
            outside: s.outside,
            public_name: s.public_name.clone(),
        })
        .collect();
    Ok(VpnPlan {
        from: t.from.as_ref().map(|f| f.value.clone()).unwrap_or_default(),
        user: u.cn.clone(),
        vlan: u.vlan,
        addr: u.addr,
        servers,
        resolve: resolve.as_ref().map(|r| r.value.clone()),
        addresses: addresses.clone(),
        failover: *failover,
        expect: t.expect,
    })
}

/// The enabled lab node built as site instance `name` (node `VPN1` is instance `vpn1`).
fn instance_node(lab: &Lab, name: &str) -> Option<String> {
    lab.nodes
        .iter()
        .find(|n| n.enabled && n.instance() == name)
        .map(|n| n.name.value.clone())
}

impl VpnPlan {
    /// `/etc/hosts` lines for the servers' public names (the outside's DNS in a real site).
    pub fn hosts_lines(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("{} {}\n", s.outside, s.public_name))
            .collect()
    }

    /// The server whose relay is at `addr`.
    pub fn server_at(&self, addr: Ipv4Addr) -> Option<&Server> {
        self.servers.iter().find(|s| s.outside == addr)
    }
}

/// What the OpenVPN client's log (verb 3) says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientLog {
    /// How many times the tunnel came up ("Initialization Sequence Completed").
    pub completed: usize,
    /// The relay of the last connection that came up.
    pub via: Option<Ipv4Addr>,
    /// The server refused the user (`AUTH_FAILED`).
    pub auth_failed: bool,
    /// The DNS servers of the last PUSH_REPLY, in order.
    pub dns: Vec<Ipv4Addr>,
}

/// Reads the client's log text.
pub fn parse_log(text: &str) -> ClientLog {
    let mut l = ClientLog::default();
    let mut peer = None;
    for line in text.lines() {
        if let Some(a) = after_af_inet(line, "Peer Connection Initiated with") {
            peer = Some(a);
        } else if line.contains("Initialization Sequence Completed") {
            l.completed += 1;
            l.via = peer;
        } else if line.contains("AUTH_FAILED") {
            l.auth_failed = true;
        } else if line.contains("PUSH_REPLY") {
            l.dns = pushed_dns(line);
        }
    }
    l
}

/// `... [AF_INET]10.1.1.20:443` after `marker`.
fn after_af_inet(line: &str, marker: &str) -> Option<Ipv4Addr> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let a = rest.split("[AF_INET]").nth(1)?;
    a.split(':').next()?.trim().parse().ok()
}

/// `dhcp-option DNS A` entries of a PUSH_REPLY line.
fn pushed_dns(line: &str) -> Vec<Ipv4Addr> {
    line.split(',')
        .filter_map(|o| o.trim().strip_prefix("dhcp-option DNS "))
        .filter_map(|a| a.trim_end_matches('\'').trim().parse().ok())
        .collect()
}

/// What the runner saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub log: ClientLog,
    /// The tunnel's IPv4 address and prefix length.
    pub tun: Option<(Ipv4Addr, u8)>,
    /// The answers to `resolve` (None when not asked).
    pub resolved: Option<Vec<String>>,
    /// After the fault: the outage in ms (None when the tunnel did not come back), the server
    /// it came back through, and its address then.
    pub after_fault: Option<AfterFault>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AfterFault {
    pub faulted: String,
    pub outage_ms: Option<u64>,
    pub via: Option<Ipv4Addr>,
    pub tun: Option<(Ipv4Addr, u8)>,
    pub resolved: Option<Vec<String>>,
}

/// The verdict and its one-line detail.
pub fn judge(p: &VpnPlan, o: &Observed) -> (Outcome, String) {
    let via = |a: Option<Ipv4Addr>| {
        a.and_then(|a| p.server_at(a))
            .map_or_else(|| "no server".to_string(), |s| s.name.clone())
    };
    let mut d = format!(
        "{} as {} (VLAN {}, {}): {}",
        p.from,
        p.user,
        p.vlan,
        p.addr,
        match (o.log.auth_failed, o.tun) {
            (true, _) => "refused (AUTH_FAILED)".to_string(),
            (false, Some((a, n))) => format!("tun {a}/{n} through {}", via(o.log.via)),
            (false, None) => "no tunnel".to_string(),
        }
    );
    if p.expect == Expect::Blocked {
        let refused = o.tun.is_none();
        return (outcome(refused), d + " (expected: refused)");
    }
    let mut ok = o.tun.map(|t| t.0) == Some(p.addr) && o.log.via.is_some();
    ok &= resolved_ok(p, o.resolved.as_ref(), &mut d);
    if let Some((_, max)) = p.failover {
        ok &= after_fault_ok(p, o, max, &mut d);
    }
    (outcome(ok), d)
}

fn outcome(pass: bool) -> Outcome {
    if pass {
        Outcome::Pass
    } else {
        Outcome::Fail
    }
}

/// `resolve` answered as expected (any answer when `addresses` is empty).
fn resolved_ok(p: &VpnPlan, got: Option<&Vec<String>>, d: &mut String) -> bool {
    let Some(name) = &p.resolve else { return true };
    let mut got = got.cloned().unwrap_or_default();
    got.sort();
    let mut want = p.addresses.clone();
    want.sort();
    d.push_str(&format!("; {name} -> {got:?}"));
    if want.is_empty() {
        !got.is_empty()
    } else {
        got == want
    }
}

fn after_fault_ok(p: &VpnPlan, o: &Observed, max: Duration, d: &mut String) -> bool {
    let Some(a) = &o.after_fault else {
        d.push_str("; the server in use was not found, nothing faulted");
        return false;
    };
    let back = a.via.and_then(|v| p.server_at(v));
    d.push_str(&format!(
        "; {} faulted: {} through {} after {} (bound {} ms)",
        a.faulted,
        a.tun
            .map_or("no tunnel".to_string(), |(t, n)| format!("tun {t}/{n}")),
        back.map_or("no server", |s| s.name.as_str()),
        a.outage_ms
            .map_or("no reconnection".to_string(), |ms| format!("{ms} ms")),
        max.as_millis()
    ));
    let other = back.is_some_and(|s| s.node.as_deref() != Some(a.faulted.as_str()));
    let mut ok = other
        && a.tun.map(|t| t.0) == Some(p.addr)
        && a.outage_ms
            .is_some_and(|ms| u128::from(ms) <= max.as_millis());
    ok &= resolved_ok(p, a.resolved.as_ref(), d);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-12-02 12:00:01 Attempting to establish TCP connection with [AF_INET]10.1.1.20:443
2026-12-02 12:00:01 Send to HTTP proxy: 'CONNECT vpn1.lab.demo.fr:1110 HTTP/1.0'
2026-12-02 12:00:04 [vpn1.lab.demo.fr] Peer Connection Initiated with [AF_INET]10.1.1.20:443
2026-12-02 12:00:05 PUSH: Received control message: 'PUSH_REPLY,topology subnet,route-gateway 172.16.10.20,dhcp-option DNS 172.16.10.10,dhcp-option DNS 172.16.10.14,ifconfig 172.16.10.130 255.255.255.0'
2026-12-02 12:00:05 Initialization Sequence Completed
";

    #[test]
    fn log_says_where_and_what_was_pushed() {
        let l = parse_log(LOG);
        assert_eq!(l.completed, 1);
        assert_eq!(l.via, Some(Ipv4Addr::new(10, 1, 1, 20)));
        assert_eq!(
            l.dns,
            [
                Ipv4Addr::new(172, 16, 10, 10),
                Ipv4Addr::new(172, 16, 10, 14)
            ]
        );
        assert!(!l.auth_failed);
        let refused = "x AUTH: Received control message: AUTH_FAILED\n";
        assert!(parse_log(refused).auth_failed);
        assert_eq!(parse_log(refused).via, None);
    }

    fn plan() -> VpnPlan {
        let srv = |n: &str, node: &str, last: u8| Server {
            name: n.into(),
            node: Some(node.into()),
            outside: Ipv4Addr::new(10, 1, 1, last),
            public_name: format!("{n}.lab.demo.fr"),
        };
        VpnPlan {
            from: "internet".into(),
            user: "alice".into(),
            vlan: 10,
            addr: Ipv4Addr::new(172, 16, 10, 130),
            servers: vec![srv("vpn1", "VPN1", 20), srv("vpn2", "VPN2", 22)],
            resolve: Some("web1.lab.demo.fr".into()),
            addresses: vec!["172.16.10.21".into()],
            failover: Some((Fault::Crash, Duration::from_secs(90))),
            expect: Expect::Ok,
        }
    }

    fn seen() -> Observed {
        let tun = Some((Ipv4Addr::new(172, 16, 10, 130), 24));
        Observed {
            log: parse_log(LOG),
            tun,
            resolved: Some(vec!["172.16.10.21".into()]),
            after_fault: Some(AfterFault {
                faulted: "VPN1".into(),
                outage_ms: Some(70_000),
                via: Some(Ipv4Addr::new(10, 1, 1, 22)),
                tun,
                resolved: Some(vec!["172.16.10.21".into()]),
            }),
        }
    }

    #[test]
    fn verdicts() {
        let (p, o) = (plan(), seen());
        assert_eq!(judge(&p, &o).0, Outcome::Pass, "{}", judge(&p, &o).1);
        assert_eq!(
            p.hosts_lines(),
            "10.1.1.20 vpn1.lab.demo.fr\n10.1.1.22 vpn2.lab.demo.fr\n"
        );
        let mut slow = o.clone();
        slow.after_fault.as_mut().unwrap().outage_ms = Some(95_000);
        assert_eq!(judge(&p, &slow).0, Outcome::Fail);
        let mut same = o.clone();
        same.after_fault.as_mut().unwrap().via = Some(Ipv4Addr::new(10, 1, 1, 20));
        assert_eq!(
            judge(&p, &same).0,
            Outcome::Fail,
            "back through the dead one"
        );
        let mut moved = o.clone();
        moved.after_fault.as_mut().unwrap().tun = Some((Ipv4Addr::new(172, 16, 10, 131), 24));
        assert_eq!(judge(&p, &moved).0, Outcome::Fail, "another address");
        let mut wrong = o.clone();
        wrong.tun = Some((Ipv4Addr::new(172, 16, 10, 131), 24));
        assert_eq!(judge(&p, &wrong).0, Outcome::Fail);
        let mut dns = o.clone();
        dns.resolved = Some(vec![]);
        assert_eq!(judge(&p, &dns).0, Outcome::Fail);
        let blocked = VpnPlan {
            expect: Expect::Blocked,
            ..p.clone()
        };
        assert_eq!(judge(&blocked, &o).0, Outcome::Fail);
        let refused = Observed {
            log: parse_log("AUTH_FAILED\n"),
            ..Observed::default()
        };
        assert_eq!(judge(&blocked, &refused).0, Outcome::Pass);
        assert_eq!(judge(&p, &refused).0, Outcome::Fail);
    }
}
