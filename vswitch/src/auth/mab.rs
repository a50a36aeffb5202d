//! MAC Authentication Bypass: which source MACs may use a port in `auth mab` mode, decided by
//! a RADIUS server. Pure: time comes in as `now_ms`, the RADIUS datagrams to send are queued
//! in [`Mab::take_out`] and the replies handed back to [`Mab::reply`]; the daemon does the I/O.
//!
//! Per (port, MAC): unknown (no entry) -> Pending -> Authorized(vlan, until) or
//! Rejected(until). Nothing but an Access-Accept lets a frame in: no server configured, a
//! server that does not answer, or a garbled answer all keep the MAC out.

use super::radius::{self, Code, ReplyError};
use crate::core::PortId;
use crate::wire::Mac;
use md5::{Digest, Md5};
use std::net::{Ipv4Addr, SocketAddr};

/// The RADIUS server and how this switch names itself to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub addr: SocketAddr,
    pub secret: Vec<u8>,
    pub nas_ip: Ipv4Addr,
    pub nas_identifier: String,
}

/// Tunables (console `auth/set*`, defaults documented in docs/switch.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// MACs a port may have at once (authorized, pending or rejected).
    pub max_macs: usize,
    /// How long to wait for a reply before sending again.
    pub timeout_ms: u64,
    /// Sends per attempt (the first one included).
    pub tries: u32,
    /// How long a rejected (or unanswered) MAC stays out before it is tried again.
    pub hold_ms: u64,
    /// Refuse replies without a Message-Authenticator.
    pub require_ma: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_macs: 1,
            timeout_ms: 2_000,
            tries: 3,
            hold_ms: 60_000,
            require_ma: false,
        }
    }
}

/// Where one MAC stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A request is out (or waiting for a free identifier, `id` None). `reauth` holds the VLAN
    /// of a MAC whose session ran out: it keeps forwarding until the answer (or the timeout).
    Pending {
        id: Option<u8>,
        sent_ms: u64,
        tries: u32,
        reauth: Option<Option<u16>>,
    },
    /// Allowed, in `vlan` (None: the port's untagged VLAN); asked again at `until_ms`
    /// (Session-Timeout), None: never.
    Authorized {
        vlan: Option<u16>,
        until_ms: Option<u64>,
    },
    /// Kept out until `until_ms`.
    Rejected { until_ms: u64 },
}

/// One MAC on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Station {
    pub mac: Mac,
    pub state: State,
    authenticator: [u8; 16],
}

/// Per port counters (frames are counted at the port, in `auth/print`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounters {
    pub requests: u64,
    pub accepts: u64,
    pub rejects: u64,
    pub timeouts: u64,
    /// Frames dropped because their MAC was pending, rejected, or over the MAC limit.
    pub dropped_pending: u64,
    pub dropped_rejected: u64,
    pub dropped_limit: u64,
    /// Frames with a group source MAC (never authorized).
    pub dropped_group_src: u64,
    /// Accepts whose VLAN was unusable (not defined, bad Tunnel-* attributes, or not the VLAN
    /// the port's other MACs are in): treated as a reject.
    pub bad_vlan: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortAuth {
    pub mab: bool,
    pub stations: Vec<Station>,
    pub counters: PortCounters,
}

impl PortAuth {
    /// The VLAN the port's authorized MACs are in (they all share one): None when none is
    /// authorized, Some(None) for the port's own untagged VLAN.
    pub fn vlan(&self) -> Option<Option<u16>> {
        self.stations.iter().find_map(|s| match s.state {
            State::Authorized { vlan, .. } => Some(vlan),
            State::Pending {
                reauth: Some(vlan), ..
            } => Some(vlan),
            _ => None,
        })
    }
}

/// Counters not tied to a port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GlobalCounters {
    /// Datagrams that are not a valid reply to an outstanding request (bad length, code,
    /// authenticators, attributes), counted and ignored.
    pub bad_replies: u64,
    /// Valid-looking datagrams for no outstanding request (late, duplicate or foreign).
    pub unknown_replies: u64,
    /// Requests that could not be encoded or sent (no server configured counts here too).
    pub send_errors: u64,
}

/// What [`Mab::check`] says about a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not an `auth mab` port.
    Open,
    /// Authorized: untagged frames go into this VLAN (None: the port's).
    Allow(Option<u16>),
    Drop,
}

/// What a reply changed, for the core to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Authorized {
        port: PortId,
        mac: Mac,
        vlan: Option<u16>,
    },
    Refused {
        port: PortId,
        mac: Mac,
    },
}

/// The authenticator of the whole switch.
#[derive(Debug, Clone, Default)]
pub struct Mab {
    pub cfg: Config,
    pub server: Option<Server>,
    /// Index = port number.
    pub ports: Vec<PortAuth>,
    pub counters: GlobalCounters,
    /// Outstanding identifiers: (port, MAC).
    ids: Vec<Option<(PortId, Mac)>>,
    next_id: u8,
    seed: [u8; 16],
    nonce: u64,
    out: Vec<Vec<u8>>,
}

/// `AA-BB-CC-DD-EE-FF`.
pub fn mac_string(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join("-")
}

impl Mab {
    /// `seed` makes the request authenticators unpredictable (the daemon reads it from
    /// /dev/urandom); each one is MD5(seed, counter).
    pub fn new(numports: u16, seed: [u8; 16]) -> Self {
        Mab {
            ports: vec![PortAuth::default(); numports as usize + 1],
            ids: vec![None; 256],
            seed,
            ..Mab::default()
        }
    }

    pub fn resize(&mut self, numports: u16) {
        self.ports
            .resize(numports as usize + 1, PortAuth::default());
        for slot in self.ids.iter_mut() {
            if slot.is_some_and(|(p, _)| p > numports) {
                *slot = None;
            }
        }
    }

    /// Whether any port is in `auth mab` (the core's fast path skips everything otherwise).
    pub fn any(&self) -> bool {
        self.ports.iter().any(|p| p.mab)
    }

    /// Turns MAB on or off on `port`; either way its MACs are forgotten.
    pub fn set_mode(&mut self, port: PortId, mab: bool) -> bool {
        let Some(p) = self.ports.get_mut(port as usize) else {
            return false;
        };
        p.mab = mab;
        p.stations.clear();
        for slot in self.ids.iter_mut() {
            if slot.is_some_and(|(q, _)| q == port) {
                *slot = None;
            }
        }
        true
    }

    /// Forgets the MACs of a port (its last client left): the next machine starts over.
    pub fn port_down(&mut self, port: PortId) {
        if self.ports.get(port as usize).is_some_and(|p| p.mab) {
            self.set_mode(port, true);
        }
    }

    /// May an egress frame go out of `port`? An `auth mab` port receives only once one of its
    /// MACs is authorized.
    #[inline]
    pub fn egress_ok(&self, port: PortId) -> bool {
        match self.ports.get(port as usize) {
            Some(p) if p.mab => p.vlan().is_some(),
            _ => true,
        }
    }

    fn authenticator(&mut self) -> [u8; 16] {
        self.nonce += 1;
        let mut h = Md5::new();
        h.update(self.seed);
        h.update(self.nonce.to_be_bytes());
        h.finalize().into()
    }

    fn free_id(&mut self) -> Option<u8> {
        for k in 0..=255u8 {
            let id = self.next_id.wrapping_add(k);
            if self.ids[id as usize].is_none() {
                self.next_id = id.wrapping_add(1);
                return Some(id);
            }
        }
        None
    }

    /// Queues the request for station `i` of `port` (allocating an identifier if it has none).
    fn send(&mut self, port: PortId, i: usize, now_ms: u64) {
        let st = &self.ports[port as usize].stations[i];
        let (mac, mut id, tries, reauth) = match st.state {
            State::Pending {
                id, tries, reauth, ..
            } => (st.mac, id, tries, reauth),
            _ => return,
        };
        if id.is_none() {
            id = self.free_id();
            if let Some(n) = id {
                self.ids[n as usize] = Some((port, mac));
                let a = self.authenticator();
                self.ports[port as usize].stations[i].authenticator = a;
            }
        }
        let st = &mut self.ports[port as usize].stations[i];
        st.state = State::Pending {
            id,
            sent_ms: now_ms,
            tries: if id.is_some() { tries + 1 } else { tries },
            reauth,
        };
        let Some(n) = id else { return };
        let auth = st.authenticator;
        let pkt = self.server.as_ref().map(|s| {
            let req = radius::Request {
                mac: mac_string(&mac),
                nas_ip: s.nas_ip,
                nas_identifier: s.nas_identifier.clone(),
                nas_port: u32::from(port),
            };
            radius::encode_request(n, &auth, &req, &s.secret)
        });
        match pkt {
            Some(Ok(p)) => {
                self.ports[port as usize].counters.requests += 1;
                self.out.push(p);
            }
            _ => self.counters.send_errors += 1,
        }
    }

    /// The decision for a frame from `src` on `port` at `now_ms`. A MAC seen for the first
    /// time on an `auth mab` port queues an Access-Request.
    pub fn check(&mut self, port: PortId, src: &Mac, now_ms: u64) -> Verdict {
        let Some(p) = self.ports.get_mut(port as usize) else {
            return Verdict::Open;
        };
        if !p.mab {
            return Verdict::Open;
        }
        if crate::wire::is_group(src) {
            p.counters.dropped_group_src += 1;
            return Verdict::Drop;
        }
        if let Some(st) = p.stations.iter().find(|s| s.mac == *src) {
            return match st.state {
                State::Authorized { vlan, .. } => Verdict::Allow(vlan),
                State::Pending {
                    reauth: Some(vlan), ..
                } => Verdict::Allow(vlan),
                State::Pending { .. } => {
                    p.counters.dropped_pending += 1;
                    Verdict::Drop
                }
                State::Rejected { .. } => {
                    p.counters.dropped_rejected += 1;
                    Verdict::Drop
                }
            };
        }
        if p.stations.len() >= self.cfg.max_macs {
            p.counters.dropped_limit += 1;
            return Verdict::Drop;
        }
        p.counters.dropped_pending += 1;
        p.stations.push(Station {
            mac: *src,
            state: State::Pending {
                id: None,
                sent_ms: now_ms,
                tries: 0,
                reauth: None,
            },
            authenticator: [0; 16],
        });
        let i = p.stations.len() - 1;
        self.send(port, i, now_ms);
        Verdict::Drop
    }

    /// Timers: resends, timeouts, the end of a hold and of a session. Returns the MACs that
    /// lost their authorization (the core forgets where they were learnt).
    pub fn tick(&mut self, now_ms: u64) -> Vec<Change> {
        let mut changes = Vec::new();
        for port in 0..self.ports.len() {
            let port_id = port as PortId;
            let mut i = 0;
            while i < self.ports[port].stations.len() {
                let st = self.ports[port].stations[i].clone();
                match st.state {
                    State::Rejected { until_ms } if now_ms >= until_ms => {
                        // Forgotten: the next frame asks again.
                        self.ports[port].stations.remove(i);
                        continue;
                    }
                    State::Authorized {
                        vlan,
                        until_ms: Some(u),
                    } if now_ms >= u => {
                        self.ports[port].stations[i].state = State::Pending {
                            id: None,
                            sent_ms: now_ms,
                            tries: 0,
                            reauth: Some(vlan),
                        };
                        self.send(port_id, i, now_ms);
                    }
                    State::Pending { id: None, .. } => self.send(port_id, i, now_ms),
                    State::Pending {
                        id: Some(n),
                        sent_ms,
                        tries,
                        reauth,
                    } if now_ms >= sent_ms + self.cfg.timeout_ms => {
                        if tries < self.cfg.tries {
                            self.send(port_id, i, now_ms);
                        } else {
                            self.ids[n as usize] = None;
                            let p = &mut self.ports[port];
                            p.counters.timeouts += 1;
                            p.stations[i].state = State::Rejected {
                                until_ms: now_ms + self.cfg.hold_ms,
                            };
                            if reauth.is_some() {
                                changes.push(Change::Refused {
                                    port: port_id,
                                    mac: st.mac,
                                });
                            }
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        changes
    }

    /// The datagrams to send to the server.
    pub fn take_out(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.out)
    }

    /// A datagram from the server. `vlan_ok` says whether a VLAN exists on the switch.
    /// Anything that is not a verified answer to an outstanding request is counted and
    /// ignored.
    pub fn reply(
        &mut self,
        buf: &[u8],
        now_ms: u64,
        vlan_ok: impl Fn(u16) -> bool,
    ) -> Option<Change> {
        let Some(server) = self.server.as_ref() else {
            self.counters.unknown_replies += 1;
            return None;
        };
        let Some(&id) = buf.get(1) else {
            self.counters.bad_replies += 1;
            return None;
        };
        let Some((port, mac)) = self.ids[id as usize] else {
            self.counters.unknown_replies += 1;
            return None;
        };
        let p = &self.ports[port as usize];
        let Some(i) = p.stations.iter().position(|s| s.mac == mac) else {
            self.ids[id as usize] = None;
            self.counters.unknown_replies += 1;
            return None;
        };
        let st = &p.stations[i];
        let decoded = radius::decode_reply(
            buf,
            id,
            &st.authenticator,
            &server.secret,
            self.cfg.require_ma,
        );
        let reply = match decoded {
            Ok(r) => r,
            Err(ReplyError::WrongId) => {
                self.counters.unknown_replies += 1;
                return None;
            }
            Err(_) => {
                self.counters.bad_replies += 1;
                return None;
            }
        };
        let other_vlan = p
            .stations
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .find_map(|(_, s)| match s.state {
                State::Authorized { vlan, .. } => Some(vlan),
                _ => None,
            });
        self.ids[id as usize] = None;
        let a = &reply.attrs;
        let vlan = match (reply.code, &a.group_id) {
            (Code::Accept, None) => Some(None),
            (Code::Accept, Some(g)) => {
                let parsed = std::str::from_utf8(g)
                    .ok()
                    .and_then(|s| s.trim().parse::<u16>().ok())
                    .filter(|v| (1..4095).contains(v) && vlan_ok(*v));
                let typed = a.tunnel_type == Some(radius::TUNNEL_VLAN)
                    && a.tunnel_medium == Some(radius::MEDIUM_802);
                match (parsed, typed) {
                    (Some(v), true) => Some(Some(v)),
                    _ => None,
                }
            }
            _ => None,
        };
        let p = &mut self.ports[port as usize];
        match (reply.code, vlan) {
            (Code::Accept, Some(v)) => {
                // No VLAN in the reply (v None): the port's own untagged VLAN.
                if other_vlan.is_some_and(|o| o != v) {
                    p.counters.bad_vlan += 1;
                } else {
                    p.counters.accepts += 1;
                    p.stations[i].state = State::Authorized {
                        vlan: v,
                        until_ms: a
                            .session_timeout
                            .filter(|&s| s > 0)
                            .map(|s| now_ms + u64::from(s) * 1000),
                    };
                    return Some(Change::Authorized { port, mac, vlan: v });
                }
            }
            (Code::Accept, None) => p.counters.bad_vlan += 1,
            _ => p.counters.rejects += 1,
        }
        p.stations[i].state = State::Rejected {
            until_ms: now_ms + self.cfg.hold_ms,
        };
        Some(Change::Refused { port, mac })
    }
}

/// Fuzz body (`vswitch/fuzz`, target `radius_reply`): a switch with one request out gets
/// `data` as the reply, raw and re-signed (Length and both authenticators fixed, so that
/// mutations reach the attribute parser). It never panics, and whatever it decides is one
/// of the states an answer can lead to.
pub fn fuzz_reply(data: &[u8]) {
    const SECRET: &[u8] = b"fuzz-secret";
    let mk = || {
        let mut m = Mab::new(2, [9; 16]);
        m.server = Some(Server {
            addr: SocketAddr::from(([127, 0, 0, 1], 1812)),
            secret: SECRET.to_vec(),
            nas_ip: Ipv4Addr::LOCALHOST,
            nas_identifier: "fuzz".into(),
        });
        m.set_mode(1, true);
        m.check(1, &[2, 0, 0, 0, 0, 1], 0);
        let req = m.take_out().pop().expect("one request");
        (m, req)
    };
    let (mut m, _) = mk();
    let _ = m.reply(data, 1, |v| v % 2 == 0);
    let (mut m, req) = mk();
    let (id, auth, _) = radius::peek_request(&req).expect("our own request");
    let attrs = radius::fuzz_attrs(data.get(1..).unwrap_or_default());
    let code = match data.first().map(|b| b % 3) {
        Some(0) => radius::ACCESS_ACCEPT,
        Some(1) => radius::ACCESS_REJECT,
        _ => radius::ACCESS_CHALLENGE,
    };
    let signed = radius::encode_reply(code, id, &auth, &attrs, SECRET, data.len() % 2 == 0);
    let ch = m.reply(&signed, 1, |v| v % 2 == 0);
    let st = m.ports[1].stations[0].state;
    match ch {
        Some(Change::Authorized { vlan, .. }) => {
            assert!(matches!(st, State::Authorized { .. }));
            assert!(vlan.is_none_or(|v| (1..4095).contains(&v) && v % 2 == 0));
        }
        Some(Change::Refused { .. }) => assert!(matches!(st, State::Rejected { .. })),
        None => assert!(matches!(st, State::Pending { .. })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::radius::*;

    const S: &[u8] = b"nas-secret";
    const M: Mac = [0x52, 0x54, 0, 0x10, 0, 0x50];

    fn mab() -> Mab {
        let mut m = Mab::new(4, [1; 16]);
        m.server = Some(Server {
            addr: "127.0.0.1:1812".parse().unwrap(),
            secret: S.to_vec(),
            nas_ip: Ipv4Addr::LOCALHOST,
            nas_identifier: "sw1".into(),
        });
        m.set_mode(1, true);
        m
    }

    fn answer(req: &[u8], code: u8, attrs: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let (id, auth, user) = peek_request(req).unwrap();
        assert_eq!(user, "52-54-00-10-00-50");
        assert!(request_ma_ok(req, S));
        encode_reply(code, id, &auth, attrs, S, true)
    }

    fn vlan10() -> Vec<(u8, Vec<u8>)> {
        vec![
            (TUNNEL_TYPE, vec![0, 0, 0, 13]),
            (TUNNEL_MEDIUM_TYPE, vec![0, 0, 0, 6]),
            (TUNNEL_PRIVATE_GROUP_ID, b"10".to_vec()),
            (SESSION_TIMEOUT, 60u32.to_be_bytes().to_vec()),
        ]
    }

    #[test]
    fn accept_places_the_mac_in_the_reply_vlan_and_reauths() {
        let mut m = mab();
        assert_eq!(m.check(2, &M, 0), Verdict::Open);
        assert_eq!(m.check(1, &M, 0), Verdict::Drop);
        assert_eq!(m.check(1, &M, 5), Verdict::Drop);
        let out = m.take_out();
        assert_eq!(out.len(), 1, "one request, however many frames");
        assert!(!m.egress_ok(1));
        let r = answer(&out[0], ACCESS_ACCEPT, &vlan10());
        assert_eq!(
            m.reply(&r, 10, |_| true),
            Some(Change::Authorized {
                port: 1,
                mac: M,
                vlan: Some(10)
            })
        );
        assert_eq!(m.reply(&r, 11, |_| true), None, "a duplicate is ignored");
        assert_eq!(m.counters.unknown_replies, 1);
        assert_eq!(m.check(1, &M, 20), Verdict::Allow(Some(10)));
        assert!(m.egress_ok(1));
        let c = m.ports[1].counters;
        assert_eq!((c.requests, c.accepts, c.dropped_pending), (1, 1, 2));
        // Session-Timeout 60 s: asked again, still forwarding meanwhile, and out on timeout.
        assert!(m.tick(60_010).is_empty());
        let out = m.take_out();
        assert_eq!(out.len(), 1);
        assert_eq!(m.check(1, &M, 60_020), Verdict::Allow(Some(10)));
        m.tick(62_010);
        m.tick(64_010);
        assert_eq!(m.take_out().len(), 2, "two resends");
        assert_eq!(m.tick(66_010), vec![Change::Refused { port: 1, mac: M }]);
        assert_eq!(m.check(1, &M, 66_020), Verdict::Drop);
        assert!(!m.egress_ok(1));
    }

    #[test]
    fn reject_holds_then_retries() {
        let mut m = mab();
        m.check(1, &M, 0);
        let out = m.take_out();
        let r = answer(&out[0], ACCESS_REJECT, &[]);
        assert_eq!(
            m.reply(&r, 1, |_| true),
            Some(Change::Refused { port: 1, mac: M })
        );
        assert_eq!(m.check(1, &M, 2), Verdict::Drop);
        assert!(m.take_out().is_empty());
        assert_eq!(m.ports[1].counters.dropped_rejected, 1);
        m.tick(60_001);
        assert_eq!(m.check(1, &M, 60_002), Verdict::Drop);
        assert_eq!(m.take_out().len(), 1, "asked again after the hold");
    }

    #[test]
    fn an_outage_never_opens_the_port() {
        let mut m = mab();
        m.check(1, &M, 0);
        for t in 1..=10 {
            m.tick(t * 1000);
        }
        assert_eq!(m.take_out().len(), 3, "three tries, no more");
        assert_eq!(m.ports[1].counters.timeouts, 1);
        assert_eq!(m.check(1, &M, 10_001), Verdict::Drop);
        // No server at all: nothing is sent and nothing gets in.
        let mut m = mab();
        m.server = None;
        assert_eq!(m.check(1, &M, 0), Verdict::Drop);
        assert_eq!(m.counters.send_errors, 1);
    }

    #[test]
    fn bad_replies_and_limits() {
        let mut m = mab();
        m.check(1, &M, 0);
        let out = m.take_out();
        let mut r = answer(&out[0], ACCESS_ACCEPT, &vlan10());
        let last = r.len() - 1;
        r[last] ^= 1;
        assert_eq!(m.reply(&r, 1, |_| true), None);
        assert_eq!(m.reply(&[], 1, |_| true), None);
        assert_eq!(m.counters.bad_replies, 2);
        // An undefined VLAN, or one without the RFC 3580 types, is a reject.
        let r = answer(&out[0], ACCESS_ACCEPT, &vlan10());
        assert_eq!(
            m.reply(&r, 1, |v| v != 10),
            Some(Change::Refused { port: 1, mac: M })
        );
        assert_eq!(m.ports[1].counters.bad_vlan, 1);
        // One MAC per port by default.
        let other = [0x52, 0x54, 0, 0x10, 0, 0x51];
        assert_eq!(m.check(1, &other, 2), Verdict::Drop);
        assert_eq!(m.ports[1].counters.dropped_limit, 1);
        assert_eq!(m.check(1, &[1, 0, 0, 0, 0, 1], 2), Verdict::Drop);
        assert_eq!(m.ports[1].counters.dropped_group_src, 1);
    }

    #[test]
    fn fuzz_body_runs() {
        super::fuzz_reply(&[]);
        super::fuzz_reply(&[0, 64, 6, 0, 0, 0, 13, 65, 6, 0, 0, 0, 6, 81, 4, b'1', b'0']);
        super::fuzz_reply(&[2; 40]);
    }

    #[test]
    fn accept_without_vlan_uses_the_port_vlan() {
        let mut m = mab();
        m.check(1, &M, 0);
        let out = m.take_out();
        let r = answer(&out[0], ACCESS_ACCEPT, &[]);
        assert_eq!(
            m.reply(&r, 1, |_| true),
            Some(Change::Authorized {
                port: 1,
                mac: M,
                vlan: None
            })
        );
    }
}
