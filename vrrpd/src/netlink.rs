//! A small rtnetlink client over a raw `NETLINK_ROUTE` socket: list links and addresses, add and
//! remove addresses, and watch link changes.
//!
//! Hand-rolled rather than the `rtnetlink` crate because that one needs a tokio runtime, and
//! vrrpd is a single-threaded poll loop that must stay a small static binary; the handful of
//! messages needed (RTM_GET/NEW/DELADDR, RTM_GETLINK and the link multicast group) fit in a few
//! hundred lines. Spawning `ip` per VIP was the other option: it costs a fork+exec (about 2 ms
//! each, measured on this machine) on the failover path, and error handling through stderr text.

use crate::config::{RouteConfig, RouteKind, RuleConfig};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const NLMSG_HDR: usize = 16;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_NEWRULE: u16 = 32;
const RTM_DELRULE: u16 = 33;
const NLM_F_REPLACE: u16 = 0x100;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
/// Address flag: a secondary address in a subnet that already has a primary.
pub const IFA_F_SECONDARY: u32 = 0x01;
const IFA_F_NODAD: u32 = 0x02;
const RTMGRP_LINK: u32 = 1;

/// One interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: [u8; 6],
    /// IFF_UP and IFF_RUNNING.
    pub up: bool,
    /// IFLA_MTU (0 if the kernel did not say).
    pub mtu: u32,
}

/// A link notification: new or changed, or deleted (docs/security-vrrpd.md, Interfaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    pub link: Link,
    pub deleted: bool,
}

/// One address on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub flags: u32,
    pub scope: u8,
}

/// What to add or remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrSpec {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub brd: Option<Ipv4Addr>,
    pub label: Option<String>,
    pub scope: u8,
}

/// A netlink socket.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

fn push_attr(buf: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(align(buf.len()), 0);
}

/// Iterate (type, payload) over rtattrs.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let data = &b[4..len];
        b = &b[align(len).min(b.len())..];
        Some((ty, data))
    })
}

/// Iterate (type, flags, payload) over the netlink messages in one datagram.
fn messages(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < NLMSG_HDR {
            return None;
        }
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let ty = u16::from_ne_bytes([b[4], b[5]]);
        if len < NLMSG_HDR || len > b.len() {
            return None;
        }
        let payload = &b[NLMSG_HDR..len];
        b = &b[align(len).min(b.len())..];
        Some((ty, payload))
    })
}

/// Parse an RTM_NEWLINK payload.
pub fn parse_link(p: &[u8]) -> Option<Link> {
    if p.len() < 16 {
        return None;
    }
    let index = i32::from_ne_bytes([p[4], p[5], p[6], p[7]]) as u32;
    let flags = u32::from_ne_bytes([p[8], p[9], p[10], p[11]]);
    let mut name = None;
    let mut mac = [0u8; 6];
    let mut mtu = 0;
    for (ty, d) in attrs(&p[16..]) {
        match ty {
            IFLA_IFNAME => {
                name = Some(
                    String::from_utf8_lossy(d.split(|b| *b == 0).next().unwrap_or(d)).into_owned(),
                )
            }
            IFLA_ADDRESS if d.len() == 6 => mac.copy_from_slice(d),
            IFLA_MTU if d.len() == 4 => mtu = u32::from_ne_bytes([d[0], d[1], d[2], d[3]]),
            _ => {}
        }
    }
    let up = flags & (libc::IFF_UP as u32) != 0 && flags & (libc::IFF_RUNNING as u32) != 0;
    Some(Link {
        index,
        name: name?,
        mac,
        up,
        mtu,
    })
}

impl Netlink {
    /// Open a request socket (`groups` = 0) or a monitor subscribed to link changes.
    fn open_groups(groups: u32) -> io::Result<Netlink> {
        // SAFETY: plain socket(2) call; the fd is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        sa.nl_groups = groups;
        // SAFETY: sa is a valid sockaddr_nl of the given size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Netlink { fd, seq: 1 })
    }

    /// A socket for requests.
    pub fn open() -> io::Result<Netlink> {
        Self::open_groups(0)
    }

    /// A non-blocking socket that receives link change notifications.
    pub fn monitor() -> io::Result<Netlink> {
        let n = Self::open_groups(RTMGRP_LINK)?;
        crate::sys::set_nonblocking(n.fd.as_raw_fd())?;
        Ok(n)
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn send(&mut self, ty: u16, flags: u16, body: &[u8]) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut m = Vec::with_capacity(NLMSG_HDR + body.len());
        m.extend_from_slice(&((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        // SAFETY: m is a valid buffer of m.len() bytes; the kernel is the default destination.
        let r = unsafe { libc::send(self.fd.as_raw_fd(), m.as_ptr().cast(), m.len(), 0) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(self.seq)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: buf is valid for buf.len() bytes.
        let r = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    /// Run a dump request and collect the payloads of messages of type `want`.
    fn dump(&mut self, ty: u16, body: &[u8], want: u16) -> io::Result<Vec<Vec<u8>>> {
        self.send(ty, NLM_F_DUMP, body)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let n = self.recv(&mut buf)?;
            for (t, p) in messages(&buf[..n]) {
                match t {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let e = i32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
                        if e != 0 {
                            return Err(io::Error::from_raw_os_error(-e));
                        }
                    }
                    t if t == want => out.push(p.to_vec()),
                    _ => {}
                }
            }
        }
    }

    /// Send a request and wait for its ACK.
    fn request(&mut self, ty: u16, flags: u16, body: &[u8]) -> io::Result<()> {
        let seq = self.send(ty, flags | NLM_F_ACK, body)?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = self.recv(&mut buf)?;
            let b = &buf[..n];
            for (t, p) in messages(b) {
                if t == NLMSG_ERROR && p.len() >= 4 + NLMSG_HDR {
                    let e = i32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
                    let s = u32::from_ne_bytes([p[12], p[13], p[14], p[15]]);
                    if s != seq {
                        continue;
                    }
                    return if e == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-e))
                    };
                }
            }
        }
    }

    /// All interfaces.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let body = [0u8; 16];
        Ok(self
            .dump(RTM_GETLINK, &body, RTM_NEWLINK)?
            .iter()
            .filter_map(|p| parse_link(p))
            .collect())
    }

    /// All addresses of one family (AF_INET / AF_INET6).
    pub fn addrs(&mut self, family: i32) -> io::Result<Vec<Addr>> {
        let mut body = [0u8; 8];
        body[0] = family as u8;
        let mut out = Vec::new();
        for p in self.dump(RTM_GETADDR, &body, RTM_NEWADDR)? {
            if p.len() < 8 {
                continue;
            }
            let fam = i32::from(p[0]);
            let prefix = p[1];
            let mut flags = u32::from(p[2]);
            let scope = p[3];
            let index = u32::from_ne_bytes([p[4], p[5], p[6], p[7]]);
            let mut addr = None;
            let mut local = None;
            for (ty, d) in attrs(&p[8..]) {
                match ty {
                    IFA_ADDRESS => addr = ip_from(fam, d),
                    IFA_LOCAL => local = ip_from(fam, d),
                    IFA_FLAGS if d.len() == 4 => {
                        flags = u32::from_ne_bytes([d[0], d[1], d[2], d[3]])
                    }
                    _ => {}
                }
            }
            if let Some(a) = local.or(addr) {
                out.push(Addr {
                    index,
                    addr: a,
                    prefix,
                    flags,
                    scope,
                });
            }
        }
        Ok(out)
    }

    fn addr_msg(spec: &AddrSpec) -> Vec<u8> {
        let (fam, bytes): (u8, Vec<u8>) = match spec.addr {
            IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
            IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
        };
        let mut b = vec![fam, spec.prefix, 0, spec.scope];
        b.extend_from_slice(&spec.index.to_ne_bytes());
        push_attr(&mut b, IFA_LOCAL, &bytes);
        push_attr(&mut b, IFA_ADDRESS, &bytes);
        if let Some(brd) = spec.brd {
            push_attr(&mut b, IFA_BROADCAST, &brd.octets());
        }
        if let Some(l) = &spec.label {
            let mut v = l.as_bytes().to_vec();
            v.push(0);
            push_attr(&mut b, IFA_LABEL, &v);
        }
        if spec.addr.is_ipv6() {
            // No duplicate address detection for a VIP: it must answer at once (as keepalived).
            push_attr(&mut b, IFA_FLAGS, &IFA_F_NODAD.to_ne_bytes());
        }
        b
    }

    /// Add an address; Ok(false) if it was already there.
    pub fn add_addr(&mut self, spec: &AddrSpec) -> io::Result<bool> {
        match self.request(
            RTM_NEWADDR,
            NLM_F_CREATE | NLM_F_EXCL,
            &Self::addr_msg(spec),
        ) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Remove an address; Ok(false) if it was not there.
    pub fn del_addr(&mut self, spec: &AddrSpec) -> io::Result<bool> {
        match self.request(RTM_DELADDR, 0, &Self::addr_msg(spec)) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Add (or replace: a crashed run may have left it) a route on interface index `oif`.
    pub fn add_route(&mut self, r: &RouteConfig, oif: Option<u32>, nh: &[u32]) -> io::Result<()> {
        self.request(
            RTM_NEWROUTE,
            NLM_F_CREATE | NLM_F_REPLACE,
            &route_msg(r, oif, nh),
        )
    }

    /// Remove a route; Ok(false) if it was not there.
    pub fn del_route(&mut self, r: &RouteConfig, oif: Option<u32>, nh: &[u32]) -> io::Result<bool> {
        match self.request(RTM_DELROUTE, 0, &route_msg(r, oif, nh)) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Add a rule; Ok(false) if the same rule was already there.
    pub fn add_rule(&mut self, r: &RuleConfig) -> io::Result<bool> {
        match self.request(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, &rule_msg(r)) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Remove a rule; Ok(false) if it was not there.
    pub fn del_rule(&mut self, r: &RuleConfig) -> io::Result<bool> {
        match self.request(RTM_DELRULE, 0, &rule_msg(r)) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Create a macvlan `name` on `base` with `mac`, up (`use_vmac`).
    pub fn add_macvlan(&mut self, name: &str, base: u32, mac: [u8; 6]) -> io::Result<()> {
        self.request(
            RTM_NEWLINK,
            NLM_F_CREATE | NLM_F_EXCL,
            &macvlan_msg(name, base, mac),
        )
    }

    /// Bring interface `index` up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut b = vec![0u8; 16];
        b[4..8].copy_from_slice(&index.to_ne_bytes());
        b[8..12].copy_from_slice(&1u32.to_ne_bytes());
        b[12..16].copy_from_slice(&1u32.to_ne_bytes());
        self.request(RTM_NEWLINK, 0, &b)
    }

    /// Delete interface `index`.
    pub fn del_link(&mut self, index: u32) -> io::Result<()> {
        let mut b = vec![0u8; 16];
        b[4..8].copy_from_slice(&index.to_ne_bytes());
        self.request(RTM_DELLINK, 0, &b)
    }

    /// Drain pending link notifications (monitor socket).
    pub fn read_link_events(&self) -> Vec<LinkEvent> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = self.recv(&mut buf) {
            for (t, p) in messages(&buf[..n]) {
                if t == RTM_NEWLINK || t == RTM_DELLINK {
                    if let Some(mut link) = parse_link(p) {
                        let deleted = t == RTM_DELLINK;
                        link.up &= !deleted;
                        out.push(LinkEvent { link, deleted });
                    }
                }
            }
        }
        out
    }
}

fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn family(v6: bool) -> u8 {
    if v6 {
        libc::AF_INET6 as u8
    } else {
        libc::AF_INET as u8
    }
}

/// The table in the header byte when it fits, else RT_TABLE_UNSPEC with the attribute.
fn table_byte(t: u32) -> u8 {
    u8::try_from(t).unwrap_or(0)
}

/// RTM_NEWROUTE/RTM_DELROUTE body (struct rtmsg + attributes) for `r` out of `oif`, its
/// nexthops (if any) out of `nh_oifs` (same order, 0 = let the kernel find the link).
pub fn route_msg(r: &RouteConfig, oif: Option<u32>, nh_oifs: &[u32]) -> Vec<u8> {
    let kind = match r.kind {
        RouteKind::Unicast => 1,
        RouteKind::Blackhole => 6,
        RouteKind::Unreachable => 7,
        RouteKind::Prohibit => 8,
    };
    // As `ip route`: scope link for a unicast route without a gateway, else universe.
    let scope = r.scope.unwrap_or(
        if r.kind == RouteKind::Unicast && r.via.is_none() && r.nexthops.is_empty() {
            253
        } else {
            0
        },
    );
    // RTPROT_STATIC unless configured.
    let proto = r.proto.unwrap_or(4);
    let mut b = vec![
        family(r.dest.is_ipv6()),
        r.prefix,
        0,
        0,
        table_byte(r.table),
        proto,
        scope,
        kind,
    ];
    b.extend_from_slice(&0u32.to_ne_bytes());
    push_attr(&mut b, RTA_DST, &ip_bytes(r.dest));
    push_attr(&mut b, RTA_TABLE, &r.table.to_ne_bytes());
    if let Some(g) = r.via {
        push_attr(&mut b, RTA_GATEWAY, &ip_bytes(g));
    }
    if let Some(i) = oif {
        push_attr(&mut b, RTA_OIF, &i.to_ne_bytes());
    }
    if let Some(s) = r.src {
        push_attr(&mut b, RTA_PREFSRC, &ip_bytes(s));
    }
    if let Some(m) = r.metric {
        push_attr(&mut b, RTA_PRIORITY, &m.to_ne_bytes());
    }
    if !r.nexthops.is_empty() {
        push_attr(&mut b, RTA_MULTIPATH, &multipath(r, nh_oifs));
    }
    b
}

/// RTA_MULTIPATH payload: a `struct rtnexthop` (len, flags, hops = weight - 1, ifindex) per
/// path, each followed by its RTA_GATEWAY.
fn multipath(r: &RouteConfig, nh_oifs: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, nh) in r.nexthops.iter().enumerate() {
        let mut attrs = Vec::new();
        if let Some(g) = nh.via {
            push_attr(&mut attrs, RTA_GATEWAY, &ip_bytes(g));
        }
        let len = u16::try_from(8 + attrs.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_ne_bytes());
        out.push(0);
        out.push(u8::try_from(nh.weight.saturating_sub(1)).unwrap_or(u8::MAX));
        out.extend_from_slice(&nh_oifs.get(i).copied().unwrap_or(0).to_ne_bytes());
        out.extend_from_slice(&attrs);
    }
    out
}

/// RTM_NEWRULE/RTM_DELRULE body (struct fib_rule_hdr + attributes): lookup `table`.
pub fn rule_msg(r: &RuleConfig) -> Vec<u8> {
    let (dst_len, src_len) = (r.to.map_or(0, |p| p.1), r.from.map_or(0, |p| p.1));
    // FR_ACT_TO_TBL
    let mut b = vec![
        family(r.v6),
        dst_len,
        src_len,
        0,
        table_byte(r.table),
        0,
        0,
        1,
    ];
    b.extend_from_slice(&0u32.to_ne_bytes());
    if let Some((a, _)) = r.to {
        push_attr(&mut b, FRA_DST, &ip_bytes(a));
    }
    if let Some((a, _)) = r.from {
        push_attr(&mut b, FRA_SRC, &ip_bytes(a));
    }
    for (ty, name) in [(FRA_IIFNAME, &r.iif), (FRA_OIFNAME, &r.oif)] {
        if let Some(n) = name {
            let mut v = n.as_bytes().to_vec();
            v.push(0);
            push_attr(&mut b, ty, &v);
        }
    }
    if let Some(p) = r.priority {
        push_attr(&mut b, FRA_PRIORITY, &p.to_ne_bytes());
    }
    push_attr(&mut b, FRA_TABLE, &r.table.to_ne_bytes());
    b
}

/// RTM_NEWLINK body: a private-mode macvlan (keepalived's mode) named `name` on `base`, with
/// `mac`, created down (its sysctls are set before it may send anything).
pub fn macvlan_msg(name: &str, base: u32, mac: [u8; 6]) -> Vec<u8> {
    // struct ifinfomsg: family, pad, type, index, flags, change
    let mut b = vec![0u8; 16];
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    push_attr(&mut b, IFLA_IFNAME, &n);
    push_attr(&mut b, IFLA_LINK, &base.to_ne_bytes());
    push_attr(&mut b, IFLA_ADDRESS, &mac);
    let mut data = Vec::new();
    push_attr(
        &mut data,
        IFLA_MACVLAN_MODE,
        &MACVLAN_MODE_PRIVATE.to_ne_bytes(),
    );
    let mut info = Vec::new();
    push_attr(&mut info, IFLA_INFO_KIND, b"macvlan");
    push_attr(&mut info, IFLA_INFO_DATA, &data);
    push_attr(&mut b, IFLA_LINKINFO, &info);
    b
}

const IFLA_LINK: u16 = 5;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_MACVLAN_MODE: u16 = 1;
const MACVLAN_MODE_PRIVATE: u32 = 1;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const FRA_DST: u16 = 1;
const FRA_SRC: u16 = 2;
const FRA_IIFNAME: u16 = 3;
const FRA_PRIORITY: u16 = 6;
const FRA_TABLE: u16 = 15;
const FRA_OIFNAME: u16 = 17;

fn ip_from(fam: i32, d: &[u8]) -> Option<IpAddr> {
    match (fam, d.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3]))),
        (libc::AF_INET6, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(d);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_and_rule_messages() {
        let c = crate::config::parse_str("vrrp_instance a {\n interface e\n virtual_router_id 1\n virtual_routes {\n 10.9.0.0/24 via 10.0.0.254 table 300 metric 7\n 10.8.0.0/16 dev e\n }\n virtual_rules {\n from 10.2.0.0/24 iif e table 5 priority 11\n }\n}\n", std::path::Path::new("t")).unwrap();
        let r = &c.instances[0].routes;
        let m = route_msg(&r[0], Some(3), &[]);
        // family, dst_len, src_len, tos, table (300 does not fit: 0), proto static, universe, unicast
        assert_eq!(&m[..8], &[2, 24, 0, 0, 0, 4, 0, 1]);
        let a: Vec<(u16, Vec<u8>)> = attrs(&m[12..]).map(|(t, d)| (t, d.to_vec())).collect();
        assert_eq!(a[0], (RTA_DST, vec![10, 9, 0, 0]));
        assert_eq!(a[1], (RTA_TABLE, 300u32.to_ne_bytes().to_vec()));
        assert_eq!(a[2], (RTA_GATEWAY, vec![10, 0, 0, 254]));
        assert_eq!(a[3], (RTA_OIF, 3u32.to_ne_bytes().to_vec()));
        assert_eq!(a[4], (RTA_PRIORITY, 7u32.to_ne_bytes().to_vec()));
        let m = route_msg(&r[1], Some(3), &[]);
        assert_eq!(
            &m[..8],
            &[2, 16, 0, 0, 254, 4, 253, 1],
            "scope link without a gateway"
        );
        let m = rule_msg(&c.instances[0].rules[0]);
        assert_eq!(&m[..8], &[2, 0, 24, 0, 5, 0, 0, 1]);
        let a: Vec<u16> = attrs(&m[12..]).map(|(t, _)| t).collect();
        assert_eq!(a, vec![FRA_SRC, FRA_IIFNAME, FRA_PRIORITY, FRA_TABLE]);
    }

    #[test]
    fn multipath_route_message() {
        let c = crate::config::parse_str("vrrp_instance a {\n interface e\n virtual_router_id 1\n virtual_routes {\n 10.9.0.0/24 nexthop via 10.0.0.1 nexthop via 10.0.0.2 dev e weight 3\n }\n}\n", std::path::Path::new("t")).unwrap();
        let m = route_msg(&c.instances[0].routes[0], None, &[0, 7]);
        assert_eq!(m[6], 0, "scope universe: the paths have gateways");
        let a: Vec<(u16, Vec<u8>)> = attrs(&m[12..]).map(|(t, d)| (t, d.to_vec())).collect();
        let (t, mp) = a.last().unwrap();
        assert_eq!(*t, RTA_MULTIPATH);
        // rtnexthop: len 16 (8 + an 8-byte RTA_GATEWAY), flags 0, hops = weight - 1, ifindex.
        let mut want = Vec::new();
        for (hops, ifi, last) in [(0u8, 0u32, 1u8), (2, 7, 2)] {
            want.extend_from_slice(&16u16.to_ne_bytes());
            want.extend_from_slice(&[0, hops]);
            want.extend_from_slice(&ifi.to_ne_bytes());
            want.extend_from_slice(&8u16.to_ne_bytes());
            want.extend_from_slice(&RTA_GATEWAY.to_ne_bytes());
            want.extend_from_slice(&[10, 0, 0, last]);
        }
        assert_eq!(mp, &want);
    }

    #[test]
    fn macvlan_message() {
        let m = macvlan_msg("vrrp.100", 7, [0, 0, 0x5e, 0, 1, 100]);
        assert_eq!(&m[8..16], &[0; 8], "created down");
        let a: Vec<(u16, Vec<u8>)> = attrs(&m[16..]).map(|(t, d)| (t, d.to_vec())).collect();
        assert_eq!(a[0], (IFLA_IFNAME, b"vrrp.100\0".to_vec()));
        assert_eq!(a[1], (IFLA_LINK, 7u32.to_ne_bytes().to_vec()));
        assert_eq!(a[2], (IFLA_ADDRESS, vec![0, 0, 0x5e, 0, 1, 100]));
        let info: Vec<(u16, Vec<u8>)> = attrs(&a[3].1).map(|(t, d)| (t, d.to_vec())).collect();
        assert_eq!(info[0], (IFLA_INFO_KIND, b"macvlan".to_vec()));
        let data: Vec<(u16, Vec<u8>)> = attrs(&info[1].1).map(|(t, d)| (t, d.to_vec())).collect();
        assert_eq!(data, vec![(IFLA_MACVLAN_MODE, 1u32.to_ne_bytes().to_vec())]);
    }

    #[test]
    fn attr_roundtrip() {
        let mut b = Vec::new();
        push_attr(&mut b, IFA_LABEL, b"eth0:1\0");
        push_attr(&mut b, IFA_LOCAL, &[10, 0, 0, 1]);
        let v: Vec<_> = attrs(&b).collect();
        assert_eq!(v[0], (IFA_LABEL, &b"eth0:1\0"[..]));
        assert_eq!(v[1], (IFA_LOCAL, &[10u8, 0, 0, 1][..]));
        // Malformed lengths stop iteration instead of panicking.
        assert_eq!(attrs(&[0xff, 0xff, 0, 0, 1]).count(), 0);
        assert_eq!(messages(&[0xff; 20]).count(), 0);
    }
}
