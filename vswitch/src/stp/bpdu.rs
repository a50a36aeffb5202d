//! BPDU encode/decode: 802.1D Configuration and TCN BPDUs and RSTP (version 2) BPDUs,
//! carried in an 802.3 length frame with LLC DSAP/SSAP 0x42, control 0x03.
//!
//! Decoding untrusted bytes never panics; every rejection is a [`BpduError`].

use crate::wire::{EthernetFrame, ETH_HEADER_LEN};

/// The bridge group address every BPDU is sent to.
pub const STP_GROUP: [u8; 6] = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x00];
/// LLC header of a BPDU: DSAP 0x42, SSAP 0x42, control 0x03 (UI).
pub const LLC: [u8; 3] = [0x42, 0x42, 0x03];
/// Configuration BPDU body length (protocol id .. forward delay).
pub const CONFIG_LEN: usize = 35;
/// TCN BPDU body length.
pub const TCN_LEN: usize = 4;
/// RST BPDU body length (Configuration + version 1 length octet).
pub const RST_LEN: usize = 36;
/// Minimum Ethernet frame without FCS; shorter frames are padded with zeros.
pub const MIN_FRAME: usize = 60;

/// Flag bits (byte 4 of a Configuration / RST BPDU).
pub mod flags {
    /// Topology change.
    pub const TC: u8 = 0x01;
    /// Proposal (RSTP).
    pub const PROPOSAL: u8 = 0x02;
    /// Port role, two bits (RSTP): see [`super::Role`].
    pub const ROLE_MASK: u8 = 0x0c;
    /// Learning (RSTP).
    pub const LEARNING: u8 = 0x10;
    /// Forwarding (RSTP).
    pub const FORWARDING: u8 = 0x20;
    /// Agreement (RSTP).
    pub const AGREEMENT: u8 = 0x40;
    /// Topology change acknowledgment.
    pub const TCA: u8 = 0x80;
}

/// Port role encoded in RSTP flags bits 2-3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// 0: unknown (also what a plain STP config BPDU carries).
    Unknown,
    /// 1: alternate or backup.
    AlternateBackup,
    /// 2: root.
    Root,
    /// 3: designated.
    Designated,
}

impl Config {
    /// The RSTP port role in the flags (Unknown in a Configuration BPDU).
    pub fn role(&self) -> Role {
        Role::from_flags(self.flags)
    }
    /// Whether flag bit(s) `f` (see [`flags`]) are set.
    pub fn has(&self, f: u8) -> bool {
        self.flags & f == f
    }
}

impl Role {
    /// The role in `flags`.
    pub fn from_flags(f: u8) -> Role {
        match (f & flags::ROLE_MASK) >> 2 {
            0 => Role::Unknown,
            1 => Role::AlternateBackup,
            2 => Role::Root,
            _ => Role::Designated,
        }
    }
    /// The role's flag bits.
    pub fn bits(self) -> u8 {
        (match self {
            Role::Unknown => 0,
            Role::AlternateBackup => 1,
            Role::Root => 2,
            Role::Designated => 3,
        }) << 2
    }
}

/// Bridge identifier: 16-bit priority (4-bit priority + 12-bit system id extension in
/// 802.1D-2004; the whole 16 bits in 1998) followed by the bridge MAC. Orders as the
/// standard compares it: numerically over all eight octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BridgeId {
    /// Priority field (high two octets).
    pub priority: u16,
    /// MAC address.
    pub mac: [u8; 6],
}

impl BridgeId {
    /// From the eight wire octets.
    pub fn from_bytes(b: [u8; 8]) -> BridgeId {
        BridgeId {
            priority: u16::from_be_bytes([b[0], b[1]]),
            mac: [b[2], b[3], b[4], b[5], b[6], b[7]],
        }
    }
    /// The eight wire octets.
    pub fn to_bytes(self) -> [u8; 8] {
        let p = self.priority.to_be_bytes();
        let m = self.mac;
        [p[0], p[1], m[0], m[1], m[2], m[3], m[4], m[5]]
    }
    /// Parse Linux's sysfs spelling `8000.aabbccddeeff` (priority hex, dot, MAC hex).
    pub fn parse_sysfs(s: &str) -> Option<BridgeId> {
        let (p, m) = s.trim().split_once('.')?;
        if p.len() != 4 || m.len() != 12 {
            return None;
        }
        let priority = u16::from_str_radix(p, 16).ok()?;
        let mut mac = [0u8; 6];
        for (i, o) in mac.iter_mut().enumerate() {
            *o = u8::from_str_radix(m.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(BridgeId { priority, mac })
    }
    /// Linux's sysfs spelling (`root_id`, `bridge_id`).
    pub fn sysfs(self) -> String {
        let m = self.mac;
        format!(
            "{:04x}.{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            self.priority, m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// The fields a Configuration BPDU and an RST BPDU share. Times are in 1/256 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Flags octet (see [`flags`]).
    pub flags: u8,
    /// Root bridge identifier.
    pub root: BridgeId,
    /// Root path cost.
    pub root_path_cost: u32,
    /// Transmitting bridge identifier.
    pub bridge: BridgeId,
    /// Transmitting port identifier (4-bit priority, 12-bit number in 2004; 8+8 in 1998).
    pub port_id: u16,
    /// Message age.
    pub message_age: u16,
    /// Max age.
    pub max_age: u16,
    /// Hello time.
    pub hello_time: u16,
    /// Forward delay.
    pub forward_delay: u16,
}

/// One BPDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bpdu {
    /// 802.1D Configuration BPDU (protocol version 0, type 0x00).
    Config(Config),
    /// Topology Change Notification (version 0, type 0x80).
    Tcn,
    /// RST BPDU (version 2, type 0x02); version 1 length is always 0 on the wire.
    Rst(Config),
}

/// Why bytes are not a BPDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BpduError {
    /// Shorter than an Ethernet header.
    ShortFrame,
    /// Destination is not 01:80:c2:00:00:00.
    NotGroupAddress,
    /// Type/length field is an ethertype (>= 0x0600), not an 802.3 length.
    NotLlc,
    /// 802.3 length larger than the bytes present, or too short for LLC.
    BadLength,
    /// LLC is not 42 42 03.
    NotStpLlc,
    /// Protocol identifier is not 0.
    BadProtocol(u16),
    /// Body shorter than its type requires.
    Truncated,
    /// Version/type pair we do not know.
    UnknownType {
        /// Protocol version identifier.
        version: u8,
        /// BPDU type.
        kind: u8,
    },
}

impl std::fmt::Display for BpduError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not a BPDU: {self:?}")
    }
}

impl std::error::Error for BpduError {}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn id8(b: &[u8], at: usize) -> BridgeId {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    BridgeId::from_bytes(a)
}

fn config_body(b: &[u8]) -> Config {
    Config {
        flags: b[4],
        root: id8(b, 5),
        root_path_cost: u32::from_be_bytes([b[13], b[14], b[15], b[16]]),
        bridge: id8(b, 17),
        port_id: be16(b, 25),
        message_age: be16(b, 27),
        max_age: be16(b, 29),
        hello_time: be16(b, 31),
        forward_delay: be16(b, 33),
    }
}

impl Bpdu {
    /// Decode a BPDU body (the bytes after LLC). As 802.1D-2004 9.3.4 says, a body longer
    /// than its type needs is accepted (trailing bytes ignored), and a version above 2 with
    /// type 0x02 is treated as RST.
    pub fn decode_body(b: &[u8]) -> Result<Bpdu, BpduError> {
        if b.len() < TCN_LEN {
            return Err(BpduError::Truncated);
        }
        let proto = be16(b, 0);
        if proto != 0 {
            return Err(BpduError::BadProtocol(proto));
        }
        let (version, kind) = (b[2], b[3]);
        match kind {
            0x80 => Ok(Bpdu::Tcn),
            0x00 => {
                if b.len() < CONFIG_LEN {
                    return Err(BpduError::Truncated);
                }
                Ok(Bpdu::Config(config_body(b)))
            }
            0x02 if version >= 2 => {
                if b.len() < RST_LEN {
                    return Err(BpduError::Truncated);
                }
                Ok(Bpdu::Rst(config_body(b)))
            }
            _ => Err(BpduError::UnknownType { version, kind }),
        }
    }

    /// Decode a whole Ethernet frame (no FCS); returns the source MAC and the BPDU.
    pub fn decode_frame(f: &[u8]) -> Result<([u8; 6], Bpdu), BpduError> {
        if f.len() < ETH_HEADER_LEN {
            return Err(BpduError::ShortFrame);
        }
        let eth = EthernetFrame::new_unchecked(f);
        if eth.dst() != STP_GROUP {
            return Err(BpduError::NotGroupAddress);
        }
        let len = eth.raw_ethertype() as usize;
        if len >= 0x0600 {
            return Err(BpduError::NotLlc);
        }
        let src = eth.src();
        let payload = &f[ETH_HEADER_LEN..];
        if len < 3 || len > payload.len() {
            return Err(BpduError::BadLength);
        }
        let payload = &payload[..len];
        if payload[0..3] != LLC {
            return Err(BpduError::NotStpLlc);
        }
        Ok((src, Bpdu::decode_body(&payload[3..])?))
    }

    /// Encode the BPDU body.
    pub fn encode_body(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(RST_LEN);
        v.extend_from_slice(&[0, 0]);
        let c = match self {
            Bpdu::Tcn => {
                v.extend_from_slice(&[0, 0x80]);
                return v;
            }
            Bpdu::Config(c) => {
                v.extend_from_slice(&[0, 0x00]);
                c
            }
            Bpdu::Rst(c) => {
                v.extend_from_slice(&[2, 0x02]);
                c
            }
        };
        v.push(c.flags);
        v.extend_from_slice(&c.root.to_bytes());
        v.extend_from_slice(&c.root_path_cost.to_be_bytes());
        v.extend_from_slice(&c.bridge.to_bytes());
        for x in [
            c.port_id,
            c.message_age,
            c.max_age,
            c.hello_time,
            c.forward_delay,
        ] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        if matches!(self, Bpdu::Rst(_)) {
            v.push(0); // version 1 length
        }
        v
    }

    /// Encode a whole Ethernet frame from `src`, padded to 60 octets.
    pub fn encode_frame(&self, src: [u8; 6]) -> Vec<u8> {
        let body = self.encode_body();
        let mut f = Vec::with_capacity(MIN_FRAME);
        f.extend_from_slice(&STP_GROUP);
        f.extend_from_slice(&src);
        f.extend_from_slice(&((LLC.len() + body.len()) as u16).to_be_bytes());
        f.extend_from_slice(&LLC);
        f.extend_from_slice(&body);
        f.resize(f.len().max(MIN_FRAME), 0);
        f
    }
}

/// Seconds to the BPDU's 1/256 s units.
pub fn secs_to_units(s: u16) -> u16 {
    s.saturating_mul(256)
}

/// Fuzz body: decoding arbitrary bytes never panics, whatever decodes re-encodes to bytes
/// that decode to the same BPDU, an RST BPDU's flags split into role and bits and back, and
/// both state machines take it (on a root port and a designated one) without panicking.
pub fn fuzz_bpdu(data: &[u8]) {
    use super::{fsm, rstp};
    let id = BridgeId {
        priority: 0x8000,
        mac: [2, 0, 0, 0, 0, 7],
    };
    let decoded = [
        Bpdu::decode_body(data),
        Bpdu::decode_frame(data).map(|x| x.1),
    ];
    for b in decoded.into_iter().flatten() {
        let body = b.encode_body();
        assert_eq!(Bpdu::decode_body(&body), Ok(b));
        let f = b.encode_frame([2, 0, 0, 0, 0, 1]);
        assert_eq!(Bpdu::decode_frame(&f), Ok(([2, 0, 0, 0, 0, 1], b)));
        if let Bpdu::Rst(c) = b {
            assert_eq!(c.role().bits() | (c.flags & !flags::ROLE_MASK), c.flags);
        }
        let (mut r, _) = rstp::Bridge::new(id, 2, fsm::Timers::default(), 0);
        let (mut s, _) = fsm::Bridge::new(id, 2, fsm::Timers::default(), 0);
        for (port, t) in [(0, 256), (1, 512), (0, 4 * 256), (0, 30 * 256)] {
            let _ = r.receive(port, &b, t);
            let _ = r.tick(t + 64);
            let _ = s.receive(port, &b, t);
            let _ = s.tick(t + 64);
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(id) = BridgeId::parse_sysfs(s) {
            assert_eq!(BridgeId::parse_sysfs(&id.sysfs()), Some(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        Config {
            flags: flags::TC | flags::TCA,
            root: BridgeId {
                priority: 0x1000,
                mac: [0, 1, 2, 3, 4, 5],
            },
            root_path_cost: 19,
            bridge: BridgeId {
                priority: 0x8000,
                mac: [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
            },
            port_id: 0x8001,
            message_age: 256,
            max_age: secs_to_units(20),
            hello_time: secs_to_units(2),
            forward_delay: secs_to_units(15),
        }
    }

    #[test]
    fn config_layout_is_byte_exact() {
        let f = Bpdu::Config(sample()).encode_frame([2, 0, 0, 0, 0, 9]);
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &STP_GROUP);
        assert_eq!(&f[12..14], &[0, 38]);
        assert_eq!(&f[14..17], &LLC);
        let b = &f[17..];
        assert_eq!(&b[0..5], &[0, 0, 0, 0, 0x81]);
        assert_eq!(&b[5..13], &[0x10, 0, 0, 1, 2, 3, 4, 5]);
        assert_eq!(&b[13..17], &[0, 0, 0, 19]);
        assert_eq!(&b[17..25], &[0x80, 0, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        assert_eq!(&b[25..35], &[0x80, 1, 1, 0, 20, 0, 2, 0, 15, 0]);
        assert!(b[35..].iter().all(|&x| x == 0));
        assert_eq!(
            Bpdu::decode_frame(&f),
            Ok(([2, 0, 0, 0, 0, 9], Bpdu::Config(sample())))
        );
    }

    #[test]
    fn tcn_and_rst_roundtrip() {
        let t = Bpdu::Tcn.encode_frame([2; 6]);
        assert_eq!(&t[12..21], &[0, 7, 0x42, 0x42, 3, 0, 0, 0, 0x80]);
        assert_eq!(Bpdu::decode_frame(&t).unwrap().1, Bpdu::Tcn);
        let mut c = sample();
        c.flags = Role::Designated.bits() | flags::PROPOSAL | flags::LEARNING;
        let r = Bpdu::Rst(c);
        let body = r.encode_body();
        assert_eq!(body.len(), RST_LEN);
        assert_eq!(&body[2..4], &[2, 2]);
        assert_eq!(Bpdu::decode_body(&body), Ok(r));
        assert_eq!(Role::from_flags(c.flags), Role::Designated);
        assert_eq!(c.role(), Role::Designated);
        assert!(c.has(flags::PROPOSAL | flags::LEARNING) && !c.has(flags::AGREEMENT));
        for (bits, role) in [
            (0, Role::Unknown),
            (4, Role::AlternateBackup),
            (8, Role::Root),
        ] {
            assert_eq!(Role::from_flags(bits | flags::TC), role);
            assert_eq!(role.bits(), bits);
        }
    }

    #[test]
    fn rejects_malformed_without_panicking() {
        let good = Bpdu::Config(sample()).encode_frame([2; 6]);
        for cut in 0..good.len() {
            let _ = Bpdu::decode_frame(&good[..cut]);
            let _ = Bpdu::decode_body(&good[17..17 + cut.min(good.len() - 17)]);
        }
        assert_eq!(Bpdu::decode_frame(&good[..10]), Err(BpduError::ShortFrame));
        let mut g = good.clone();
        g[5] = 1;
        assert_eq!(Bpdu::decode_frame(&g), Err(BpduError::NotGroupAddress));
        let mut g = good.clone();
        g[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(Bpdu::decode_frame(&g), Err(BpduError::NotLlc));
        let mut g = good.clone();
        g[12..14].copy_from_slice(&[0x01, 0x00]);
        assert_eq!(Bpdu::decode_frame(&g), Err(BpduError::BadLength));
        let mut g = good.clone();
        g[14] = 0xaa;
        assert_eq!(Bpdu::decode_frame(&g), Err(BpduError::NotStpLlc));
        let mut g = good.clone();
        g[18] = 1;
        assert_eq!(Bpdu::decode_frame(&g), Err(BpduError::BadProtocol(0x0001)));
        let mut g = good.clone();
        g[20] = 0x42;
        assert_eq!(
            Bpdu::decode_frame(&g),
            Err(BpduError::UnknownType {
                version: 0,
                kind: 0x42
            })
        );
        // 802.3 length says 20: config body cut short.
        let mut g = good.clone();
        g[12..14].copy_from_slice(&[0, 20]);
        assert_eq!(Bpdu::decode_frame(&g), Err(BpduError::Truncated));
        // RST type with version 0 is unknown; with version 3 it is RST.
        let mut body = Bpdu::Rst(sample()).encode_body();
        body[2] = 0;
        assert!(matches!(
            Bpdu::decode_body(&body),
            Err(BpduError::UnknownType { .. })
        ));
        body[2] = 3;
        assert_eq!(Bpdu::decode_body(&body), Ok(Bpdu::Rst(sample())));
    }

    #[test]
    fn bridge_id_order_and_sysfs() {
        let a = BridgeId::parse_sysfs("1000.ffffffffffff").unwrap();
        let b = BridgeId::parse_sysfs("8000.000000000001").unwrap();
        assert!(a < b);
        assert_eq!(b.sysfs(), "8000.000000000001");
        assert_eq!(BridgeId::parse_sysfs("8000.00000000001"), None);
        assert_eq!(BridgeId::parse_sysfs("80g0.000000000001"), None);
        assert_eq!(BridgeId::parse_sysfs("é000.000000000001"), None);
    }

    #[test]
    fn fuzz_body_on_samples() {
        let f = Bpdu::Config(sample()).encode_frame([2; 6]);
        fuzz_bpdu(&f);
        fuzz_bpdu(&f[17..]);
        fuzz_bpdu(&Bpdu::Rst(sample()).encode_body());
        let mut c = sample();
        c.flags = 0xff;
        c.message_age = u16::MAX;
        fuzz_bpdu(&Bpdu::Rst(c).encode_body());
        c.root.priority = 0;
        c.max_age = 0;
        fuzz_bpdu(&Bpdu::Config(c).encode_body());
        fuzz_bpdu(&Bpdu::Tcn.encode_body());
        fuzz_bpdu(b"8000.0011223344ff");
        fuzz_bpdu(b"");
    }
}
