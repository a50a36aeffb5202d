//! Minimal IPv4/IPv6 prefix type. Written here (no `ipnet` in the offline registry cache) because
//! labwall only needs parse, contains, overlap and broadcast.

use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address with a prefix length; `addr` is kept as written (host bits allowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Net {
    pub addr: IpAddr,
    pub len: u8,
}

impl Net {
    pub fn new(addr: IpAddr, len: u8) -> Net {
        Net { addr, len }
    }
    pub fn host(addr: IpAddr) -> Net {
        Net {
            addr,
            len: max_len(addr),
        }
    }
    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }
    pub fn is_host(&self) -> bool {
        self.len == max_len(self.addr)
    }
    /// Parse `a.b.c.d`, `a.b.c.d/len`, `x::y`, `x::y/len`.
    pub fn parse(s: &str) -> Option<Net> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let len = match l {
            Some(l) => {
                if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) || l.len() > 3 {
                    return None;
                }
                let v: u8 = l.parse().ok()?;
                if v > max_len(addr) {
                    return None;
                }
                v
            }
            None => max_len(addr),
        };
        Some(Net { addr, len })
    }
    /// The network address (host bits cleared).
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask4(self.len))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask6(self.len))),
        }
    }
    pub fn trunc(&self) -> Net {
        Net {
            addr: self.network(),
            len: self.len,
        }
    }
    pub fn broadcast4(&self) -> Option<Ipv4Addr> {
        match self.addr {
            IpAddr::V4(a) => Some(Ipv4Addr::from(u32::from(a) | !mask4(self.len))),
            IpAddr::V6(_) => None,
        }
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = mask4(self.len);
                u32::from(n) & m == u32::from(a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = mask6(self.len);
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
    pub fn overlaps(&self, o: &Net) -> bool {
        if self.is_v4() != o.is_v4() {
            return false;
        }
        if self.len <= o.len {
            self.contains(o.addr)
        } else {
            o.contains(self.addr)
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

pub fn max_len(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    }
}

/// Netmask `255.255.255.0` or `/24` or `24` to a prefix length; None if not contiguous.
pub fn parse_mask(s: &str) -> Option<u8> {
    let t = s.strip_prefix('/').unwrap_or(s);
    if !t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit()) {
        let v: u8 = t.parse().ok()?;
        return (v <= 32).then_some(v);
    }
    let m: Ipv4Addr = s.parse().ok()?;
    let m = u32::from(m);
    let len = m.leading_ones();
    (m.count_ones() == len).then_some(len as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn basics() {
        let n = Net::parse("172.16.10.0/24").unwrap();
        assert!(n.contains("172.16.10.9".parse().unwrap()));
        assert!(!n.contains("172.16.11.9".parse().unwrap()));
        assert_eq!(n.broadcast4().unwrap().to_string(), "172.16.10.255");
        assert_eq!(parse_mask("255.255.255.0"), Some(24));
        assert_eq!(parse_mask("255.0.255.0"), None);
        assert_eq!(parse_mask("/16"), Some(16));
        assert!(Net::parse("2001:db8::/32")
            .unwrap()
            .overlaps(&Net::parse("2001:db8:1::/64").unwrap()));
        assert!(Net::parse("1.2.3.4/33").is_none());
        assert_eq!(
            Net::parse("10.0.0.0/0").unwrap().network().to_string(),
            "0.0.0.0"
        );
    }
}
