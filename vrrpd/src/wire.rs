//! VRRP v2/v3 advertisements on the wire, in the smoltcp style: [`Packet`] is a zero-copy view
//! over a byte buffer (call [`Packet::check_len`] before the accessors), [`Repr`] is the parsed,
//! owned form used to build packets. Also the few neighbouring formats the daemon emits or reads:
//! a minimal IPv4 header view, gratuitous ARP and unsolicited neighbour advertisements.
//!
//! Checksums follow docs/vrrp.md, Checksums: v2 covers the message only; v3 over IPv6 uses the
//! IPv6 pseudo-header; v3 over IPv4 comes in two forms (keepalived 2.2.7 includes an IPv4
//! pseudo-header, RFC 9568 covers the message only), and a receiver must accept both.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// IPv4 multicast group for VRRP.
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group for VRRP.
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The only VRRP message type.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// v2 auth type for the RFC 2338 plain-text password (keepalived `auth_type PASS`).
pub const AUTH_PASS: u8 = 1;

/// Why a buffer is not a well-formed advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the fixed 8-byte header.
    Truncated,
    /// Length does not equal the length implied by the address count (keepalived allows no padding).
    BadLength { expected: usize, got: usize },
    /// Version nibble is neither 2 nor 3.
    BadVersion(u8),
    /// VRRPv2 carries IPv4 addresses only.
    V2OverIpv6,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => write!(f, "packet shorter than the 8-byte VRRP header"),
            Error::BadLength { expected, got } => {
                write!(
                    f,
                    "length {got} does not match the address count (expected {expected})"
                )
            }
            Error::BadVersion(v) => write!(f, "unsupported VRRP version {v}"),
            Error::V2OverIpv6 => write!(f, "VRRPv2 over IPv6"),
        }
    }
}

impl std::error::Error for Error {}

/// Address family of the addresses carried in a packet (fixed by the transport, not the packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// Protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Version {
    V2,
    V3,
}

impl Version {
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// RFC 1071 ones'-complement sum of 16-bit words, not yet folded or inverted.
fn sum_words(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Internet checksum of `data` (with its checksum field already zero or included for verification).
pub fn checksum(data: &[u8]) -> u16 {
    fold(sum_words(0, data))
}

/// Which bytes a checksum covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumForm {
    /// v2, and v3/IPv4 per RFC 9568 (keepalived >= 2.2.8 `v3_checksum_as_v2`): message only.
    MessageOnly,
    /// v3/IPv4 as keepalived 2.2.7 sends it: IPv4 pseudo-header (src, dst, 0, 112, length).
    Ipv4Pseudo { src: Ipv4Addr, dst: Ipv4Addr },
    /// v3/IPv6: the RFC 2460 pseudo-header.
    Ipv6Pseudo { src: Ipv6Addr, dst: Ipv6Addr },
}

/// Checksum of a VRRP message (`msg` with its checksum field treated as zero) in the given form.
pub fn vrrp_checksum(msg: &[u8], form: ChecksumForm) -> u16 {
    let mut acc = 0u32;
    match form {
        ChecksumForm::MessageOnly => {}
        ChecksumForm::Ipv4Pseudo { src, dst } => {
            acc = sum_words(acc, &src.octets());
            acc = sum_words(acc, &dst.octets());
            acc += u32::from(IPPROTO_VRRP);
            acc += msg.len() as u32;
        }
        ChecksumForm::Ipv6Pseudo { src, dst } => {
            acc = sum_words(acc, &src.octets());
            acc = sum_words(acc, &dst.octets());
            acc += msg.len() as u32;
            acc += u32::from(IPPROTO_VRRP);
        }
    }
    if msg.len() >= 8 {
        acc = sum_words(acc, &msg[..6]);
        acc = sum_words(acc, &msg[8..]);
    } else {
        acc = sum_words(acc, msg);
    }
    fold(acc)
}

mod field {
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    pub const AUTH_TYPE: usize = 4; // v2
    pub const ADVER_INT: usize = 5; // v2
    pub const MAX_ADVER_INT: usize = 4; // v3, 12 low bits of a u16
    pub const CHECKSUM: usize = 6;
    pub const ADDRS: usize = 8;
}

/// Zero-copy view of a VRRP message (starting right after the IP header).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap without checking; use [`Packet::new_checked`] for untrusted input.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap and run [`Packet::check_len`].
    pub fn new_checked(buffer: T, family: Family) -> Result<Packet<T>, Error> {
        let p = Packet::new_unchecked(buffer);
        p.check_len(family)?;
        Ok(p)
    }

    /// Checks that the accessors will not panic and that the length is exactly what the
    /// address count implies (keepalived rejects both short and padded packets).
    pub fn check_len(&self, family: Family) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < field::ADDRS {
            return Err(Error::Truncated);
        }
        let expected = match self.version_number() {
            2 if family == Family::V6 => return Err(Error::V2OverIpv6),
            2 => field::ADDRS + 4 * usize::from(self.count()) + 8,
            3 => field::ADDRS + family.addr_len() * usize::from(self.count()),
            v => return Err(Error::BadVersion(v)),
        };
        if len != expected {
            return Err(Error::BadLength { expected, got: len });
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn version_number(&self) -> u8 {
        self.b()[field::VER_TYPE] >> 4
    }
    pub fn msg_type(&self) -> u8 {
        self.b()[field::VER_TYPE] & 0x0f
    }
    pub fn vrid(&self) -> u8 {
        self.b()[field::VRID]
    }
    pub fn priority(&self) -> u8 {
        self.b()[field::PRIORITY]
    }
    pub fn count(&self) -> u8 {
        self.b()[field::COUNT]
    }
    /// v2 only.
    pub fn auth_type(&self) -> u8 {
        self.b()[field::AUTH_TYPE]
    }
    /// v2: seconds.
    pub fn adver_int_v2(&self) -> u8 {
        self.b()[field::ADVER_INT]
    }
    /// v3: centiseconds (12 bits; the 4 reserved bits are ignored).
    pub fn max_adver_int_v3(&self) -> u16 {
        let b = self.b();
        u16::from_be_bytes([b[field::MAX_ADVER_INT], b[field::MAX_ADVER_INT + 1]]) & 0x0fff
    }
    /// The 4 reserved bits of v3 (sent as 0, ignored on receive, kept for byte-exact re-emit).
    pub fn rsvd_v3(&self) -> u8 {
        self.b()[field::MAX_ADVER_INT] >> 4
    }
    pub fn checksum(&self) -> u16 {
        let b = self.b();
        u16::from_be_bytes([b[field::CHECKSUM], b[field::CHECKSUM + 1]])
    }
    /// The `i`th address (panics if out of range: call `check_len` first).
    pub fn addr(&self, family: Family, i: usize) -> IpAddr {
        let off = field::ADDRS + family.addr_len() * i;
        let b = self.b();
        match family {
            Family::V4 => IpAddr::V4(Ipv4Addr::new(b[off], b[off + 1], b[off + 2], b[off + 3])),
            Family::V6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[off..off + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            }
        }
    }
    /// v2 only: the 8 authentication bytes after the addresses.
    pub fn auth_data(&self) -> [u8; 8] {
        let off = field::ADDRS + 4 * usize::from(self.count());
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.b()[off..off + 8]);
        a
    }
    /// True when the stored checksum is right for `form`.
    pub fn verify_checksum(&self, form: ChecksumForm) -> bool {
        vrrp_checksum(self.b(), form) == self.checksum()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    pub fn set_checksum(&mut self, v: u16) {
        self.bm()[field::CHECKSUM..field::CHECKSUM + 2].copy_from_slice(&v.to_be_bytes());
    }
    /// Zero the field first, then compute (lesson of keepalived PR #46).
    pub fn fill_checksum(&mut self, form: ChecksumForm) {
        self.set_checksum(0);
        let c = vrrp_checksum(self.buffer.as_ref(), form);
        self.set_checksum(c);
    }
    pub fn set_priority(&mut self, p: u8) {
        self.bm()[field::PRIORITY] = p;
    }
}

/// Parsed advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// v2: seconds; v3: centiseconds. Kept in wire units so re-emitting is byte-exact.
    pub adver_int: u16,
    pub addrs: Vec<IpAddr>,
    /// v2 only: auth type and the 8 auth bytes (zeros for none).
    pub auth_type: u8,
    pub auth_data: [u8; 8],
    /// v3 only: reserved nibble as received (0 when built).
    pub rsvd: u8,
}

impl Repr {
    /// Parse a checked packet. Does not look at the checksum (see [`Packet::verify_checksum`]).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>, family: Family) -> Result<Repr, Error> {
        p.check_len(family)?;
        let version = match p.version_number() {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(Error::BadVersion(v)),
        };
        let addrs = (0..usize::from(p.count()))
            .map(|i| p.addr(family, i))
            .collect();
        Ok(match version {
            Version::V2 => Repr {
                version,
                vrid: p.vrid(),
                priority: p.priority(),
                adver_int: u16::from(p.adver_int_v2()),
                addrs,
                auth_type: p.auth_type(),
                auth_data: p.auth_data(),
                rsvd: 0,
            },
            Version::V3 => Repr {
                version,
                vrid: p.vrid(),
                priority: p.priority(),
                adver_int: p.max_adver_int_v3(),
                addrs,
                auth_type: 0,
                auth_data: [0; 8],
                rsvd: p.rsvd_v3(),
            },
        })
    }

    /// Length of the emitted message.
    pub fn buffer_len(&self) -> usize {
        let per = self
            .addrs
            .first()
            .map(|a| Family::of(a).addr_len())
            .unwrap_or(4);
        field::ADDRS + per * self.addrs.len() + if self.version == Version::V2 { 8 } else { 0 }
    }

    /// The advertisement interval as a duration.
    pub fn interval(&self) -> std::time::Duration {
        match self.version {
            Version::V2 => std::time::Duration::from_secs(u64::from(self.adver_int)),
            Version::V3 => std::time::Duration::from_millis(10 * u64::from(self.adver_int)),
        }
    }

    /// Serialise into a new buffer, with the checksum in `form` (`MessageOnly` for v2).
    pub fn to_bytes(&self, form: ChecksumForm) -> Vec<u8> {
        let mut buf = vec![0u8; self.buffer_len()];
        buf[field::VER_TYPE] = (self.version.number() << 4) | TYPE_ADVERTISEMENT;
        buf[field::VRID] = self.vrid;
        buf[field::PRIORITY] = self.priority;
        buf[field::COUNT] = self.addrs.len() as u8;
        match self.version {
            Version::V2 => {
                buf[field::AUTH_TYPE] = self.auth_type;
                buf[field::ADVER_INT] = self.adver_int.min(255) as u8;
            }
            Version::V3 => {
                let v = (u16::from(self.rsvd & 0x0f) << 12) | (self.adver_int & 0x0fff);
                buf[field::MAX_ADVER_INT..field::MAX_ADVER_INT + 2]
                    .copy_from_slice(&v.to_be_bytes());
            }
        }
        let mut off = field::ADDRS;
        for a in &self.addrs {
            match a {
                IpAddr::V4(a) => {
                    buf[off..off + 4].copy_from_slice(&a.octets());
                    off += 4;
                }
                IpAddr::V6(a) => {
                    buf[off..off + 16].copy_from_slice(&a.octets());
                    off += 16;
                }
            }
        }
        if self.version == Version::V2 {
            buf[off..off + 8].copy_from_slice(&self.auth_data);
        }
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.fill_checksum(form);
        buf
    }
}

/// The PASS password as keepalived puts it on the wire: truncated to 8 bytes, zero-padded.
pub fn pass_bytes(pass: &str) -> [u8; 8] {
    let mut a = [0u8; 8];
    for (d, s) in a.iter_mut().zip(pass.as_bytes()) {
        *d = *s;
    }
    a
}

/// Minimal view of an IPv4 header, enough for what a raw socket hands us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    pub header_len: usize,
    pub total_len: usize,
    pub ttl: u8,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
}

impl Ipv4Header {
    /// Parse the header at the start of `b` (as received on a raw IPv4 socket).
    pub fn parse(b: &[u8]) -> Option<Ipv4Header> {
        if b.len() < 20 || b[0] >> 4 != 4 {
            return None;
        }
        let header_len = usize::from(b[0] & 0x0f) * 4;
        if header_len < 20 || b.len() < header_len {
            return None;
        }
        Some(Ipv4Header {
            header_len,
            total_len: usize::from(u16::from_be_bytes([b[2], b[3]])),
            ttl: b[8],
            protocol: b[9],
            src: Ipv4Addr::new(b[12], b[13], b[14], b[15]),
            dst: Ipv4Addr::new(b[16], b[17], b[18], b[19]),
        })
    }
}

/// EtherType ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// Gratuitous ARP as keepalived sends it (docs/vrrp.md, Gratuitous ARP and unsolicited NA): an
/// ARP *request* to broadcast, sender IP = target IP = the VIP, target MAC ff:ff:ff:ff:ff:ff.
/// 42 bytes including the Ethernet header.
pub fn garp_frame(mac: [u8; 6], vip: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f[14..22].copy_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&vip.octets());
    f[32..38].copy_from_slice(&[0xff; 6]);
    f[38..42].copy_from_slice(&vip.octets());
    f
}

/// An ARP request `who-has target tell sender_ip`, broadcast (used by the benchmark's client).
pub fn arp_request_frame(mac: [u8; 6], sender_ip: Ipv4Addr, target: Ipv4Addr) -> [u8; 42] {
    let mut f = garp_frame(mac, sender_ip);
    f[32..38].copy_from_slice(&[0; 6]);
    f[38..42].copy_from_slice(&target.octets());
    f
}

/// Parsed Ethernet+ARP frame (IPv4 over Ethernet only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// Parse an Ethernet frame carrying ARP; None for anything else.
    pub fn parse_frame(f: &[u8]) -> Option<Arp> {
        if f.len() < 42 || u16::from_be_bytes([f[12], f[13]]) != ETHERTYPE_ARP {
            return None;
        }
        if f[14..20] != [0x00, 0x01, 0x08, 0x00, 6, 4] {
            return None;
        }
        let mac = |o: usize| {
            let mut m = [0u8; 6];
            m.copy_from_slice(&f[o..o + 6]);
            m
        };
        Some(Arp {
            op: u16::from_be_bytes([f[20], f[21]]),
            sender_mac: mac(22),
            sender_ip: Ipv4Addr::new(f[28], f[29], f[30], f[31]),
            target_mac: mac(32),
            target_ip: Ipv4Addr::new(f[38], f[39], f[40], f[41]),
        })
    }
}

/// ICMPv6 body of an unsolicited neighbour advertisement for `target` (to ff02::1, hop limit 255,
/// Override set, Router set when `router`), with a target link-layer address option. The checksum
/// is left zero: the kernel fills it in on raw ICMPv6 sockets.
pub fn unsolicited_na(target: Ipv6Addr, mac: [u8; 6], router: bool) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0] = 136; // Neighbor Advertisement
    b[4] = 0x20 | if router { 0x80 } else { 0 }; // O, R
    b[8..24].copy_from_slice(&target.octets());
    b[24] = 2; // target link-layer address
    b[25] = 1; // 8 bytes
    b[26..32].copy_from_slice(&mac);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // docs/vrrp.md, Wire format (reference packets): VRRPv2 + PASS from r1 (10.10.0.2,
    // prio 150), tcpdump -X.
    const V2_PASS: &str = "45c0 002c 000a 0000 ff70 d079 0a0a 0002
        e000 0012 2164 9602 0101 b8e6 0a0a 0001 0a14 0001 7333 6372 3374 7077";
    // docs/vrrp.md, Wire format (reference packets): VRRPv3 with its Ethernet header.
    const V3_ETH: &str = "0100 5e00 0012 5603 98dd 597c 0800 45c0
        0024 0005 0000 ff70 d086 0a0a 0002 e000 0012 3164 9602 0064 3976 0a0a 0001 0a14 0001";
    const GARP: &str = "ffff ffff ffff 5603 98dd 597c 0806 0001 0800 06 04 0001
        5603 98dd 597c 0a0a 0001 ffff ffff ffff 0a0a 0001";

    #[test]
    fn golden_v2_pass_parses_and_reemits_byte_for_byte() {
        let pkt = hex(V2_PASS);
        let ip = Ipv4Header::parse(&pkt).unwrap();
        assert_eq!(ip.ttl, 255);
        assert_eq!(ip.protocol, IPPROTO_VRRP);
        assert_eq!(ip.src, Ipv4Addr::new(10, 10, 0, 2));
        assert_eq!(ip.dst, MCAST_V4);
        assert_eq!(ip.total_len, pkt.len());
        assert_eq!(checksum(&pkt[..20]), 0, "IPv4 header checksum");
        let msg = &pkt[ip.header_len..];
        let p = Packet::new_checked(msg, Family::V4).unwrap();
        assert!(p.verify_checksum(ChecksumForm::MessageOnly));
        assert_eq!(p.checksum(), 0xb8e6);
        let r = Repr::parse(&p, Family::V4).unwrap();
        assert_eq!(r.version, Version::V2);
        assert_eq!(r.vrid, 100);
        assert_eq!(r.priority, 150);
        assert_eq!(r.adver_int, 1);
        assert_eq!(r.auth_type, AUTH_PASS);
        assert_eq!(r.auth_data, pass_bytes("s3cr3tpw"));
        assert_eq!(
            r.addrs,
            vec![
                IpAddr::V4(Ipv4Addr::new(10, 10, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(10, 20, 0, 1))
            ]
        );
        assert_eq!(r.to_bytes(ChecksumForm::MessageOnly), msg);
    }

    #[test]
    fn golden_v2_resignation_has_keepalived_checksum() {
        let pkt = hex(V2_PASS);
        let mut r = Repr::parse(&Packet::new_unchecked(&pkt[20..]), Family::V4).unwrap();
        r.priority = 0;
        let b = r.to_bytes(ChecksumForm::MessageOnly);
        assert_eq!(&b[..8], &hex("2164 0002 0101 4ee7")[..]);
    }

    #[test]
    fn golden_v3_both_checksum_forms() {
        let frame = hex(V3_ETH);
        assert_eq!(&frame[0..6], &[0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
        let ip = Ipv4Header::parse(&frame[14..]).unwrap();
        assert_eq!(ip.total_len, 36);
        let msg = &frame[14 + ip.header_len..];
        let p = Packet::new_checked(msg, Family::V4).unwrap();
        let pseudo = ChecksumForm::Ipv4Pseudo {
            src: ip.src,
            dst: ip.dst,
        };
        assert!(p.verify_checksum(pseudo));
        assert!(!p.verify_checksum(ChecksumForm::MessageOnly));
        assert_eq!(vrrp_checksum(msg, ChecksumForm::MessageOnly), 0x2415);
        let r = Repr::parse(&p, Family::V4).unwrap();
        assert_eq!(r.version, Version::V3);
        assert_eq!(r.adver_int, 100);
        assert_eq!(r.interval(), std::time::Duration::from_secs(1));
        assert_eq!(r.to_bytes(pseudo), msg);
        // The RFC 9568 form of the same message differs only in the checksum.
        let m = r.to_bytes(ChecksumForm::MessageOnly);
        assert_eq!(&m[6..8], &[0x24, 0x15]);
        assert!(Packet::new_unchecked(&m[..]).verify_checksum(ChecksumForm::MessageOnly));
    }

    #[test]
    fn golden_garp() {
        let g = hex(GARP);
        let mac = [0x56, 0x03, 0x98, 0xdd, 0x59, 0x7c];
        assert_eq!(garp_frame(mac, Ipv4Addr::new(10, 10, 0, 1)).to_vec(), g);
        let a = Arp::parse_frame(&g).unwrap();
        assert_eq!(a.op, 1);
        assert_eq!(a.sender_ip, a.target_ip);
    }

    #[test]
    fn rejects_truncated_and_padded() {
        let pkt = hex(V2_PASS);
        let msg = &pkt[20..];
        assert_eq!(
            Packet::new_checked(&msg[..5], Family::V4).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Packet::new_checked(&msg[..23], Family::V4).unwrap_err(),
            Error::BadLength {
                expected: 24,
                got: 23
            }
        );
        let mut padded = msg.to_vec();
        padded.extend_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(
            Packet::new_checked(&padded[..], Family::V4),
            Err(Error::BadLength { .. })
        ));
        assert_eq!(
            Packet::new_checked(msg, Family::V6).unwrap_err(),
            Error::V2OverIpv6
        );
        let mut v4 = msg.to_vec();
        v4[0] = 0x41;
        assert_eq!(
            Packet::new_checked(&v4[..], Family::V4).unwrap_err(),
            Error::BadVersion(4)
        );
    }

    #[test]
    fn v3_ipv6_roundtrip_and_checksum() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let r = Repr {
            version: Version::V3,
            vrid: 7,
            priority: 200,
            adver_int: 10,
            addrs: vec!["fe80::7".parse().unwrap(), "2001:db8::7".parse().unwrap()],
            auth_type: 0,
            auth_data: [0; 8],
            rsvd: 0,
        };
        let form = ChecksumForm::Ipv6Pseudo { src, dst: MCAST_V6 };
        let b = r.to_bytes(form);
        assert_eq!(b.len(), 8 + 32);
        let p = Packet::new_checked(&b[..], Family::V6).unwrap();
        assert!(p.verify_checksum(form));
        assert_eq!(Repr::parse(&p, Family::V6).unwrap(), r);
    }

    #[test]
    fn na_layout() {
        let na = unsolicited_na("2001:db8::1".parse().unwrap(), [1, 2, 3, 4, 5, 6], true);
        assert_eq!(na[0], 136);
        assert_eq!(na[4], 0xa0);
        assert_eq!(&na[26..], &[1, 2, 3, 4, 5, 6]);
    }
}
