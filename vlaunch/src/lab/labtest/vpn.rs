//! `vpn` tests: the VPN user's profile made as `vbuild vpn-client` makes it (from the lab's
//! secrets directory, never stored in an image), copied into the outside node through the
//! guest agent, Debian's OpenVPN client started there, and what it got read back: the tunnel's
//! address, the relay it came through, a name asked of the pushed DNS server; with a fault, the
//! server in use is faulted and the time until the tunnel is back through the other measured.

use super::{fault, Run};
use crate::lab::fault::FaultCmd;
use anyhow::{Context, Result};
use ramux_lab::model::LabTest;
use ramux_lab::report::{Measured, Outcome};
use ramux_lab::vpn::{self, AfterFault, ClientLog, Observed, VpnPlan};
use std::time::{Duration, Instant};

/// How long a first connection may take under TCG (the relay's 2 s wait, TLS, RADIUS).
const CONNECT_WAIT: Duration = Duration::from_secs(60);
/// How often the client's log is read while waiting.
const POLL: Duration = Duration::from_millis(500);

/// The client's files in the guest: a private directory per test.
struct Client {
    from: String,
    dir: String,
}

impl Client {
    fn log(&self) -> String {
        format!("{}/openvpn.log", self.dir)
    }
}

impl Run<'_> {
    pub(super) fn vpn(&mut self, t: &LabTest) -> Result<(Outcome, String, Measured)> {
        let p = vpn::plan(self.lab, &self.site.master.site, t).map_err(anyhow::Error::msg)?;
        let c = self.vpn_start(&p)?;
        let r = self.vpn_observe(&p, &c);
        let log = self.vpn_stop(&c);
        let o = r?;
        let (outcome, mut detail) = vpn::judge(&p, &o);
        if outcome != Outcome::Pass {
            detail.push_str(&format!("\nclient log:\n{}", tail(&log, 25)));
        }
        let m = Measured {
            outage_ms: o.after_fault.as_ref().and_then(|a| a.outage_ms),
            addresses: o.resolved.unwrap_or_default(),
            answered_by: o
                .log
                .via
                .and_then(|v| p.server_at(v))
                .map(|s| s.name.clone()),
            ..Measured::default()
        };
        Ok((outcome, detail, m))
    }

    /// Profile and /etc/hosts into the guest, then `openvpn --daemon`.
    fn vpn_start(&mut self, p: &VpnPlan) -> Result<Client> {
        let secrets =
            self.lab.secrets.as_ref().map(|s| s.value.clone()).context(
                "a vpn test makes the user's profile from the lab's `secrets` directory",
            )?;
        let mut pki = vbuild::vpn_client::ClientPki::read(&secrets, &p.user)?;
        pki.pin_servers(&secrets, &self.site.master.site)?;
        let profile = vbuild::vpn_client::render(&self.site.master.site, &p.user, &pki)?;
        let c = Client {
            from: p.from.clone(),
            dir: format!("/tmp/{}", self.token()),
        };
        let g = self.guest(&p.from)?;
        g.sh_ok(
            &format!("umask 077; mkdir {}", c.dir),
            Duration::from_secs(10),
        )?;
        let put = format!("umask 077; cat >{}/user.ovpn", c.dir);
        g.sh_input(&put, profile.as_bytes(), Duration::from_secs(10))?;
        // The public names: a real outside resolves them in public DNS.
        for line in p.hosts_lines().lines() {
            let add = format!("grep -qxF '{line}' /etc/hosts || echo '{line}' >>/etc/hosts");
            g.sh_ok(&add, Duration::from_secs(10))?;
        }
        let start = format!(
            "modprobe tun 2>/dev/null; openvpn --config {0}/user.ovpn --daemon ramux-vpn-test \
             --log {0}/openvpn.log --writepid {0}/openvpn.pid",
            c.dir
        );
        g.sh_ok(&start, Duration::from_secs(20))?;
        Ok(c)
    }

    /// Waits for the tunnel (or the refusal), then the name, then the fault if asked.
    fn vpn_observe(&mut self, p: &VpnPlan, c: &Client) -> Result<Observed> {
        let log = self.vpn_wait(c, CONNECT_WAIT, |l| l.completed > 0 || l.auth_failed)?;
        let mut o = Observed {
            tun: self.guest(&c.from)?.address("tun0")?,
            log,
            ..Observed::default()
        };
        if o.tun.is_none() {
            return Ok(o);
        }
        o.resolved = self.vpn_resolve(p, c, &o.log)?;
        if let Some((f, max)) = p.failover {
            o.after_fault = self.vpn_fault(p, c, &o.log, f.into(), max)?;
        }
        Ok(o)
    }

    /// Reads the client's log every [`POLL`] until `done` holds or `wait` is over.
    fn vpn_wait(
        &mut self,
        c: &Client,
        wait: Duration,
        done: impl Fn(&ClientLog) -> bool,
    ) -> Result<ClientLog> {
        let t0 = Instant::now();
        loop {
            let text = self.guest(&c.from)?.sh_ok(
                &format!("cat {} 2>/dev/null; true", c.log()),
                Duration::from_secs(10),
            )?;
            let l = vpn::parse_log(&text);
            if done(&l) || t0.elapsed() >= wait {
                return Ok(l);
            }
            std::thread::sleep(POLL);
        }
    }

    /// `resolve` asked of the first DNS server the VPN server pushed, through the tunnel.
    fn vpn_resolve(
        &mut self,
        p: &VpnPlan,
        c: &Client,
        log: &ClientLog,
    ) -> Result<Option<Vec<String>>> {
        let Some(name) = &p.resolve else {
            return Ok(None);
        };
        let Some(dns) = log.dns.first() else {
            return Ok(Some(Vec::new()));
        };
        let out = self
            .guest(&c.from)?
            .sh(&format!("nslookup {name} {dns}"), Duration::from_secs(20))?;
        let got = super::guest::parse_nslookup(&String::from_utf8_lossy(&out.stdout));
        Ok(Some(got))
    }

    /// Faults the node of the server in use; the tunnel's return through another server.
    fn vpn_fault(
        &mut self,
        p: &VpnPlan,
        c: &Client,
        log: &ClientLog,
        f: FaultCmd,
        max: Duration,
    ) -> Result<Option<AfterFault>> {
        let Some(node) = log
            .via
            .and_then(|v| p.server_at(v))
            .and_then(|s| s.node.clone())
        else {
            return Ok(None);
        };
        let before = log.completed;
        let h = self.handle(&node)?;
        let t0 = Instant::now();
        fault::apply(&h, f)?;
        let (dir, st) = (self.dir.clone(), &mut self.state);
        fault::record(&dir, st, &node, f)?;
        self.guests.remove(&node);
        let wait = max + Duration::from_secs(10);
        let l = self.vpn_wait(c, wait, |l| l.completed > before)?;
        let outage_ms = (l.completed > before).then(|| t0.elapsed().as_millis() as u64);
        let tun = self.guest(&c.from)?.address("tun0")?;
        let resolved = self.vpn_resolve(p, c, &l)?;
        Ok(Some(AfterFault {
            faulted: node,
            outage_ms,
            via: l.via,
            tun,
            resolved,
        }))
    }

    /// Stops the client and removes its files; its log (for a failure's detail).
    fn vpn_stop(&mut self, c: &Client) -> String {
        let line = format!(
            "cat {0}/openvpn.log; kill $(cat {0}/openvpn.pid) 2>/dev/null; sleep 0.5; rm -rf {0}",
            c.dir
        );
        self.guest(&c.from)
            .and_then(|g| g.sh_ok(&line, Duration::from_secs(15)))
            .unwrap_or_else(|e| format!("(log not read: {e:#})"))
    }
}

/// The last `n` lines of `s`.
fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(super::tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(super::tail("a", 5), "a");
    }
}
