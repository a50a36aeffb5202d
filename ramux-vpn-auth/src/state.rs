//! One VLAN server's clients as a state machine: management notices and RADIUS outcomes in,
//! commands for OpenVPN, RADIUS queries and kernel changes out. Time is an argument, so the
//! tests drive it without sockets or sleeps.
//!
//! A client is `Checking` from its CONNECT (or REAUTH) until its RADIUS outcome, `Authorised`
//! after `client-auth`, `Established` once OpenVPN says so (its /32 route and proxy-ARP entry
//! are then in place). `holders` says which client owns each address: the kernel entries of an
//! address are removed only by the client that holds them, so when a user reconnects before
//! OpenVPN drops the old session, the old session's DISCONNECT leaves the new one's route alone.

use crate::config::Vlan;
use crate::mgmt::{quote, Head, Notice};
use crate::radius::{Attrs, Code, Reply, MEDIUM_802, TUNNEL_VLAN};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Most clients waiting for RADIUS at once; more are refused at once (bounded memory, and
/// RADIUS is not flooded by one server's reconnect storm).
pub const MAX_PENDING: usize = 64;

/// What the I/O layer must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A command for the management socket (may span lines, ends with `\n`).
    Send(String),
    /// Ask RADIUS about `user` for this client and key.
    Ask {
        cid: u64,
        kid: u32,
        user: String,
        calling: String,
    },
    /// Install the /32 route, the proxy-ARP entry, and send a gratuitous ARP.
    Install(Ipv4Addr),
    /// Remove the route and the proxy-ARP entry.
    Remove(Ipv4Addr),
    /// A line for the log.
    Log(String),
}

/// The result of one RADIUS exchange, as the I/O layer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Reply(Reply),
    /// A reply failed its checks (authenticators, format): refused, never retried.
    Invalid(String),
    /// No server answered in `timeout x tries` each.
    NoAnswer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Checking { kid: u32, since: Instant },
    Authorised,
    Established,
}

#[derive(Debug, Clone)]
struct Client {
    cn: String,
    phase: Phase,
    addr: Option<Ipv4Addr>,
}

/// One line of `--status` per client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientView {
    pub cid: u64,
    pub cn: String,
    pub phase: &'static str,
    pub addr: Option<Ipv4Addr>,
}

/// The state of one VLAN server's clients.
#[derive(Debug)]
pub struct Daemon {
    pub vlan: Vlan,
    clients: BTreeMap<u64, Client>,
    holders: BTreeMap<Ipv4Addr, u64>,
    /// A pending check older than this is refused by [`Daemon::tick`] (a lost RADIUS task).
    deadline: Duration,
}

impl Daemon {
    pub fn new(vlan: Vlan, deadline: Duration) -> Daemon {
        Daemon {
            vlan,
            clients: BTreeMap::new(),
            holders: BTreeMap::new(),
            deadline,
        }
    }

    /// One `>CLIENT:` notice.
    pub fn notice(&mut self, n: Notice, now: Instant) -> Vec<Action> {
        match n.head {
            Head::Connect { cid, kid } => self.connect(cid, kid, &n, now, false),
            Head::Reauth { cid, kid } => self.connect(cid, kid, &n, now, true),
            Head::Established { cid } => self.established(cid, &n),
            Head::Disconnect { cid } => self.disconnect(cid, &n),
            Head::Other => vec![],
        }
    }

    fn connect(&mut self, cid: u64, kid: u32, n: &Notice, now: Instant, re: bool) -> Vec<Action> {
        let cn = n.env.get("common_name").cloned().unwrap_or_default();
        let refuse = |why: &str| deny(cid, kid, &cn, why);
        if n.truncated {
            return refuse("too many ENV lines");
        }
        if !valid_name(&cn) {
            return refuse("no common_name or one with characters outside A-Za-z0-9._@-");
        }
        if self.pending() >= MAX_PENDING {
            return refuse("too many clients waiting for RADIUS");
        }
        let addr = if re {
            self.clients.get(&cid).and_then(|c| c.addr)
        } else {
            None
        };
        let phase = Phase::Checking { kid, since: now };
        self.clients.insert(
            cid,
            Client {
                cn: cn.clone(),
                phase,
                addr,
            },
        );
        let calling = n.env.get("untrusted_ip").cloned().unwrap_or_default();
        let calling = if calling.is_empty() {
            "unknown".into()
        } else {
            calling
        };
        vec![Action::Ask {
            cid,
            kid,
            user: cn,
            calling,
        }]
    }

    fn pending(&self) -> usize {
        let checking = |c: &&Client| matches!(c.phase, Phase::Checking { .. });
        self.clients.values().filter(checking).count()
    }

    /// The RADIUS outcome for (`cid`, `kid`); a stale one (client gone, newer key) is dropped.
    pub fn outcome(&mut self, cid: u64, kid: u32, o: Outcome, now: Instant) -> Vec<Action> {
        let Some(c) = self.clients.get(&cid) else {
            return vec![];
        };
        let Phase::Checking { kid: k, since } = c.phase else {
            return vec![];
        };
        if k != kid {
            return vec![];
        }
        let ms = now.saturating_duration_since(since).as_millis();
        let cn = c.cn.clone();
        let verdict = match o {
            Outcome::Reply(r) => self.judge(cid, &cn, &r),
            Outcome::Invalid(e) => Err(format!("invalid RADIUS reply: {e}")),
            Outcome::NoAnswer => Err("no RADIUS server answered".into()),
        };
        match verdict {
            Ok(addr) => self.grant(cid, kid, addr, ms),
            Err(why) => {
                let mut out = deny(cid, kid, &cn, &format!("{why} ({ms} ms)"));
                out.extend(self.forget(cid));
                out
            }
        }
    }

    /// Accept with a usable address, or why not.
    fn judge(&self, cid: u64, cn: &str, r: &Reply) -> Result<Ipv4Addr, String> {
        match r.code {
            Code::Accept => {}
            Code::Reject => return Err("RADIUS Access-Reject".into()),
            Code::Challenge => return Err("RADIUS Access-Challenge (unsupported)".into()),
        }
        let addr = check_attrs(&self.vlan, &r.attrs)?;
        let c = &self.clients[&cid];
        if c.addr.is_some_and(|a| a != addr) {
            return Err(format!("RADIUS moved the session to {addr}"));
        }
        match self
            .holders
            .get(&addr)
            .and_then(|h| self.clients.get(h).map(|o| (h, o)))
        {
            Some((h, o)) if *h != cid && o.cn != cn => {
                Err(format!("{addr} is held by {} (cid {h})", o.cn))
            }
            _ => Ok(addr),
        }
    }

    fn grant(&mut self, cid: u64, kid: u32, addr: Ipv4Addr, ms: u128) -> Vec<Action> {
        let mask = self.vlan.network.mask();
        let Some(c) = self.clients.get_mut(&cid) else {
            return vec![];
        };
        let reauth = c.addr.is_some();
        c.addr = Some(addr);
        c.phase = if reauth {
            Phase::Established
        } else {
            Phase::Authorised
        };
        // topology subnet: "ifconfig-push local netmask" (net30/p2p would take the peer).
        let body = if reauth {
            String::new()
        } else {
            format!("ifconfig-push {addr} {mask}\n")
        };
        let log = format!(
            "vlan{} cid {cid} cn={} ACCEPT {addr} (radius {ms} ms)",
            self.vlan.vlan, c.cn
        );
        vec![
            Action::Send(format!("client-auth {cid} {kid}\n{body}END\n")),
            Action::Log(log),
        ]
    }

    fn established(&mut self, cid: u64, n: &Notice) -> Vec<Action> {
        if !self.clients.contains_key(&cid) {
            // Known only from OpenVPN (this daemon reconnected meanwhile): adopt a sane address.
            let cn = n.env.get("common_name").cloned().unwrap_or_default();
            let addr = n
                .env
                .get("ifconfig_pool_remote_ip")
                .and_then(|a| a.parse().ok());
            let ok = addr.filter(|a| self.usable(*a) && !self.holders.contains_key(a));
            let phase = Phase::Authorised;
            self.clients.insert(
                cid,
                Client {
                    cn,
                    phase,
                    addr: ok,
                },
            );
        }
        let Some(c) = self.clients.get_mut(&cid) else {
            return vec![];
        };
        c.phase = Phase::Established;
        let Some(addr) = c.addr else { return vec![] };
        self.holders.insert(addr, cid);
        vec![Action::Install(addr)]
    }

    fn usable(&self, a: Ipv4Addr) -> bool {
        self.vlan.network.has_host(a) && !self.vlan.reserved.contains(&a)
    }

    /// A client this daemon never saw established (it reconnected to the socket meanwhile) is
    /// cleaned up from OpenVPN's `ifconfig_pool_remote_ip`, unless someone else holds it.
    fn disconnect(&mut self, cid: u64, n: &Notice) -> Vec<Action> {
        if self.clients.contains_key(&cid) {
            return self.forget(cid);
        }
        let addr = n
            .env
            .get("ifconfig_pool_remote_ip")
            .and_then(|a| a.parse().ok());
        match addr {
            Some(a) if self.usable(a) && !self.holders.contains_key(&a) => vec![Action::Remove(a)],
            _ => vec![],
        }
    }

    /// Drops a client; removes its kernel entries if it still holds its address.
    fn forget(&mut self, cid: u64) -> Vec<Action> {
        let Some(c) = self.clients.remove(&cid) else {
            return vec![];
        };
        match c.addr {
            Some(a) if self.holders.get(&a) == Some(&cid) => {
                self.holders.remove(&a);
                vec![Action::Remove(a)]
            }
            _ => vec![],
        }
    }

    /// The management socket went away (OpenVPN stopped): every client is gone with it.
    pub fn lost(&mut self) -> Vec<Action> {
        let out = self.holders.keys().map(|a| Action::Remove(*a)).collect();
        self.holders.clear();
        self.clients.clear();
        out
    }

    /// Refuses checks older than the deadline (the RADIUS task always ends before it).
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let late: Vec<(u64, u32)> = self
            .clients
            .iter()
            .filter_map(|(cid, c)| match c.phase {
                Phase::Checking { kid, since } if now - since > self.deadline => Some((*cid, kid)),
                _ => None,
            })
            .collect();
        let mut out = vec![];
        for (cid, kid) in late {
            out.extend(self.outcome(cid, kid, Outcome::NoAnswer, now));
        }
        out
    }

    pub fn view(&self) -> Vec<ClientView> {
        let phase = |p: &Phase| match p {
            Phase::Checking { .. } => "checking",
            Phase::Authorised => "authorised",
            Phase::Established => "established",
        };
        self.clients
            .iter()
            .map(|(cid, c)| ClientView {
                cid: *cid,
                cn: c.cn.clone(),
                phase: phase(&c.phase),
                addr: c.addr,
            })
            .collect()
    }
}

/// The checks of an Access-Accept against this VLAN (RFC 3580 attributes, address rules).
pub fn check_attrs(v: &Vlan, a: &Attrs) -> Result<Ipv4Addr, String> {
    if a.tunnel_type != Some(TUNNEL_VLAN) || a.tunnel_medium != Some(MEDIUM_802) {
        return Err("reply lacks Tunnel-Type VLAN / Tunnel-Medium-Type IEEE-802".into());
    }
    let gid = a.group_id.as_deref().unwrap_or_default();
    let vid = std::str::from_utf8(gid)
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u16>().ok());
    if vid != Some(v.vlan) {
        let shown = String::from_utf8_lossy(gid);
        return Err(format!(
            "user belongs to VLAN [{shown}], this is VLAN {}",
            v.vlan
        ));
    }
    let addr = a.framed_ip.ok_or("reply has no Framed-IP-Address")?;
    if !v.network.has_host(addr) {
        return Err(format!(
            "{addr} is not a host of {}/{}",
            v.network.addr, v.network.prefix
        ));
    }
    if v.reserved.contains(&addr) {
        return Err(format!("{addr} is reserved"));
    }
    Ok(addr)
}

/// A user name RADIUS may see (the CN OpenVPN verified; the set labwall allows for VPNUSER).
pub fn valid_name(cn: &str) -> bool {
    !cn.is_empty()
        && cn.len() <= 64
        && cn
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

fn deny(cid: u64, kid: u32, cn: &str, why: &str) -> Vec<Action> {
    vec![
        Action::Send(format!(
            "client-deny {cid} {kid} {} \"not authorised\"\n",
            quote(why)
        )),
        Action::Log(format!("cid {cid} cn={cn:?} DENY {why}")),
    ]
}

#[cfg(test)]
mod tests;
