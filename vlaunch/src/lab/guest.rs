//! The probes a lab test runs inside its guests, through the QEMU guest agent (never the
//! guest's network, which is what is under test): busybox `ping`, `nc` listeners and clients,
//! `ip`, `nslookup`. The parsers of their output are pure and unit-tested.

use super::node::NodeHandle;
use crate::qga::{Agent, ExecOutput};
use anyhow::{bail, Context, Result};
use std::net::Ipv4Addr;
use std::time::Duration;

/// How long a guest agent may take to answer after the ready line.
pub const AGENT_WAIT: Duration = Duration::from_secs(90);

/// A connected agent of a running node.
pub struct Guest {
    pub name: String,
    agent: Agent,
}

impl Guest {
    pub fn connect(h: &NodeHandle) -> Result<Guest> {
        h.running()?;
        let agent = crate::qga::wait_agent(&h.paths.qga_sock, AGENT_WAIT).with_context(|| {
            format!(
                "{}: no guest agent (only images with qemu-guest-agent, like the client profile, can run probes)",
                h.label()
            )
        })?;
        Ok(Guest {
            name: h.name.clone(),
            agent,
        })
    }

    /// `/bin/sh -c script`, at most `timeout`.
    pub fn sh(&mut self, script: &str, timeout: Duration) -> Result<ExecOutput> {
        let argv = ["/bin/sh".to_string(), "-c".into(), script.to_string()];
        self.agent
            .exec(&argv, None, timeout)
            .with_context(|| format!("{}: running {script:?}", self.name))
    }

    /// [`Guest::sh`] with `input` on its stdin (how files reach the guest: the agent, never
    /// the network under test).
    pub fn sh_input(
        &mut self,
        script: &str,
        input: &[u8],
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let argv = ["/bin/sh".to_string(), "-c".into(), script.to_string()];
        self.agent
            .exec(&argv, Some(input), timeout)
            .with_context(|| format!("{}: running {script:?}", self.name))
    }

    /// [`Guest::sh`], stdout as text; an error when it exits non-zero.
    pub fn sh_ok(&mut self, script: &str, timeout: Duration) -> Result<String> {
        let o = self.sh(script, timeout)?;
        if o.code != Some(0) {
            bail!(
                "{}: {script:?} failed ({:?}): {}",
                self.name,
                o.code,
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// Starts `script` in the background (its output into `log`), returning its pid.
    pub fn spawn(&mut self, script: &str, log: &str) -> Result<u32> {
        let line = format!("({script}) >{log} 2>&1 </dev/null & echo $!");
        let out = self.sh_ok(&line, Duration::from_secs(10))?;
        out.trim()
            .parse()
            .with_context(|| format!("{}: no pid from {line:?}: {out:?}", self.name))
    }

    /// Kills a background probe and returns its log.
    pub fn reap(&mut self, pid: u32, log: &str) -> Result<String> {
        let line = format!("kill {pid} 2>/dev/null; sleep 0.1; cat {log}; rm -f {log}");
        self.sh_ok(&line, Duration::from_secs(10))
    }

    /// The IPv4 address and prefix of `iface`, if it has one.
    pub fn address(&mut self, iface: &str) -> Result<Option<(Ipv4Addr, u8)>> {
        let out = self.sh_ok(
            &format!("ip -4 -o addr show {iface}"),
            Duration::from_secs(10),
        )?;
        Ok(parse_addr(&out))
    }
}

/// `2: eth0    inet 172.16.20.50/24 brd ...` -> (172.16.20.50, 24).
pub fn parse_addr(out: &str) -> Option<(Ipv4Addr, u8)> {
    let mut w = out.split_whitespace();
    w.find(|x| *x == "inet")?;
    let (a, n) = w.next()?.split_once('/')?;
    Some((a.parse().ok()?, n.parse().ok()?))
}

/// `default via 172.16.20.1 dev eth0` -> 172.16.20.1.
pub fn parse_gateway(out: &str) -> Option<Ipv4Addr> {
    let mut w = out.split_whitespace();
    w.find(|x| *x == "via")?;
    w.next()?.parse().ok()
}

/// busybox ping's summary: (received, average round trip in ms).
pub fn parse_ping(out: &str) -> (u32, Option<f64>) {
    let received = out
        .lines()
        .find(|l| l.contains("packets received"))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let avg = out
        .lines()
        .find(|l| l.contains("round-trip"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|a| a.parse().ok());
    (received, avg)
}

/// The `seq=` numbers of busybox ping's reply lines, in order.
pub fn ping_seqs(out: &str) -> Vec<u64> {
    out.lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.split("seq=").nth(1))
        .filter_map(|s| s.split_whitespace().next())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The longest run of missing sequence numbers between replies, and the highest seq seen.
pub fn longest_gap(seqs: &[u64]) -> (u64, u64) {
    let gap = seqs
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]).saturating_sub(1))
        .max()
        .unwrap_or(0);
    (gap, seqs.iter().copied().max().unwrap_or(0))
}

/// `Address: 172.16.10.21` lines of busybox nslookup after the server's own.
pub fn parse_nslookup(out: &str) -> Vec<String> {
    let answers = out.split_once("Name:").map_or("", |(_, rest)| rest);
    answers
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Address"))
        .filter_map(|l| l.split_once(':').map(|(_, a)| a.trim()))
        .map(|a| a.split_whitespace().next().unwrap_or(a).to_string())
        .collect()
}

/// busybox nslookup heard back from the server (an answer, NXDOMAIN too), not a timeout.
pub fn dns_answered(out: &str) -> bool {
    !out.trim().is_empty()
        && !out.contains("timed out")
        && !out.contains("no servers could be reached")
}

/// A DHCP exchange run now, beside the client's own udhcpc: its event script only prints the
/// lease (`-s` with a script that configures nothing), `-q` quits once bound without releasing.
pub const FRESH_LEASE: &str = "umask 077; s=/tmp/ramux-fresh-lease.sh; \
printf '%s\\n' '#!/bin/sh' '[ \"$1\" = bound ] && echo \"lease ip=$ip router=$router serverid=$serverid dns=$dns\"' 'exit 0' >$s; \
chmod 700 $s; udhcpc -i eth0 -f -q -n -t 4 -T 3 -s $s 2>/dev/null; rm -f $s; true";

/// What a fresh exchange leased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshLease {
    pub ip: Ipv4Addr,
    pub router: Ipv4Addr,
    /// The DHCP server that answered (its own address, not the relay's).
    pub server: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
}

impl FreshLease {
    pub fn describe(&self) -> String {
        let dns: Vec<String> = self.dns.iter().map(Ipv4Addr::to_string).collect();
        format!(
            "{} via {} from server {} (DNS {})",
            self.ip,
            self.router,
            self.server.map_or("?".into(), |s| s.to_string()),
            dns.join(" ")
        )
    }
}

/// `lease ip=A router=R serverid=S dns=D1 D2` -> the lease.
pub fn parse_fresh_lease(out: &str) -> Option<FreshLease> {
    let l = out.lines().find_map(|l| l.trim().strip_prefix("lease "))?;
    let (head, dns) = l.split_once("dns=").unwrap_or((l, ""));
    let field = |k: &str| {
        head.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next()?.parse::<Ipv4Addr>().ok())
    };
    Some(FreshLease {
        ip: field("ip=")?,
        router: field("router=")?,
        server: field("serverid="),
        dns: dns
            .split_whitespace()
            .filter_map(|d| d.parse().ok())
            .collect(),
    })
}

/// `192.168.1.1 dev eth0 lladdr 00:16:3e:aa:bb:cc REACHABLE` -> the MAC.
pub fn parse_neigh(out: &str) -> Option<String> {
    let mut w = out.split_whitespace();
    w.find(|x| *x == "lladdr")?;
    w.next().map(str::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busybox_outputs() {
        let a = "2: eth0    inet 172.16.20.50/24 scope global eth0\\       valid_lft forever";
        assert_eq!(parse_addr(a), Some(("172.16.20.50".parse().unwrap(), 24)));
        assert_eq!(parse_addr(""), None);
        let g = "default via 172.16.20.1 dev eth0 ";
        assert_eq!(parse_gateway(g), Some("172.16.20.1".parse().unwrap()));
        let p = "PING 10.1.1.50 (10.1.1.50): 56 data bytes\n\
                 64 bytes from 10.1.1.50: seq=0 ttl=63 time=1.853 ms\n\
                 64 bytes from 10.1.1.50: seq=2 ttl=63 time=0.912 ms\n\n\
                 --- 10.1.1.50 ping statistics ---\n\
                 3 packets transmitted, 2 packets received, 33% packet loss\n\
                 round-trip min/avg/max = 0.912/1.382/1.853 ms\n";
        assert_eq!(parse_ping(p), (2, Some(1.382)));
        assert_eq!(ping_seqs(p), [0, 2]);
        assert_eq!(longest_gap(&[0, 1, 2, 7, 8, 10]), (4, 10));
        assert_eq!(longest_gap(&[]), (0, 0));
        let none = "3 packets transmitted, 0 packets received, 100% packet loss\n";
        assert_eq!(parse_ping(none), (0, None));
        let ns = "Server:\t\t172.16.10.10\nAddress:\t172.16.10.10:53\n\n\
                  Name:\tweb1.site\nAddress: 172.16.10.21\n";
        assert_eq!(parse_nslookup(ns), ["172.16.10.21"]);
        let f = parse_fresh_lease(
            "udhcpc: started\nlease ip=172.16.20.60 router=172.16.20.1 serverid=172.16.10.14 dns=172.16.10.10 172.16.10.14\n",
        )
        .unwrap();
        assert_eq!(f.ip.to_string(), "172.16.20.60");
        assert_eq!(
            f.server.map(|s| s.to_string()).as_deref(),
            Some("172.16.10.14")
        );
        assert_eq!(f.dns.len(), 2);
        assert!(
            parse_fresh_lease("lease ip=1.2.3.4 dns=\n").is_none(),
            "no router"
        );
        assert!(dns_answered(
            "Server:\t\t172.16.10.10\n** server can't find x: NXDOMAIN\n"
        ));
        assert!(!dns_answered(
            ";; connection timed out; no servers could be reached\n"
        ));
        let n = "172.16.20.1 dev eth0 lladdr 00:16:3E:AA:BB:CC REACHABLE\n";
        assert_eq!(parse_neigh(n).as_deref(), Some("00:16:3e:aa:bb:cc"));
    }
}
