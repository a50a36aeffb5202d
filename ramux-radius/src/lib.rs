//! The RADIUS wire format the ramux daemons speak (RFC 2865 Access-Request/Accept/Reject/
//! Challenge, RFC 2869/3579 Message-Authenticator and EAP-Message, RFC 2868/3580 tunnel
//! attributes): a request [`Builder`] that signs what it builds, and [`decode_reply`], which
//! checks a reply's length, identifier and both authenticators before any attribute is read.
//! Shared by vswitch (MAB, 802.1X) and ramux-vpn-auth; no I/O.
//!
//! Hand-written rather than the `radius` crate (or `radius-rust`): the daemons send a few fixed
//! requests and read a dozen attributes, and the reply's Message-Authenticator must be verified
//! over the raw bytes with the request authenticator in place, which is easiest where the bytes
//! are parsed; a dictionary-driven crate brings much more surface for untrusted input than this
//! page, and neither crate verifies Message-Authenticator on replies the BlastRADIUS way.
//! MD5 and HMAC-MD5 come from the RustCrypto `md-5` and `hmac` crates.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use std::net::Ipv4Addr;

#[cfg(test)]
mod tests;

/// Packet codes.
pub const ACCESS_REQUEST: u8 = 1;
pub const ACCESS_ACCEPT: u8 = 2;
pub const ACCESS_REJECT: u8 = 3;
pub const ACCESS_CHALLENGE: u8 = 11;

/// Attribute types used by the daemons.
pub const USER_NAME: u8 = 1;
pub const USER_PASSWORD: u8 = 2;
pub const NAS_IP_ADDRESS: u8 = 4;
pub const NAS_PORT: u8 = 5;
pub const SERVICE_TYPE: u8 = 6;
pub const FRAMED_IP_ADDRESS: u8 = 8;
pub const FRAMED_IP_NETMASK: u8 = 9;
pub const FRAMED_MTU: u8 = 12;
pub const REPLY_MESSAGE: u8 = 18;
pub const STATE: u8 = 24;
pub const SESSION_TIMEOUT: u8 = 27;
pub const CALLED_STATION_ID: u8 = 30;
pub const CALLING_STATION_ID: u8 = 31;
pub const NAS_IDENTIFIER: u8 = 32;
pub const NAS_PORT_TYPE: u8 = 61;
pub const TUNNEL_TYPE: u8 = 64;
pub const TUNNEL_MEDIUM_TYPE: u8 = 65;
pub const EAP_MESSAGE: u8 = 79;
pub const MESSAGE_AUTHENTICATOR: u8 = 80;
pub const TUNNEL_PRIVATE_GROUP_ID: u8 = 81;

/// NAS-Port-Type Virtual and Ethernet (RFC 2865 5.41).
pub const PORT_TYPE_VIRTUAL: u32 = 5;
pub const PORT_TYPE_ETHERNET: u32 = 15;
/// Service-Type Framed-User and Call-Check (what MAB uses).
pub const SERVICE_FRAMED: u32 = 2;
pub const SERVICE_CALL_CHECK: u32 = 10;
/// Tunnel-Type VLAN and Tunnel-Medium-Type IEEE-802 (RFC 3580 3.31).
pub const TUNNEL_VLAN: u32 = 13;
pub const MEDIUM_802: u32 = 6;

/// The largest RADIUS packet (RFC 2865 3).
pub const MAX_PACKET: usize = 4096;
/// The largest attribute value.
pub const MAX_VALUE: usize = 253;

/// Why a request could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A string attribute is empty or longer than 253 bytes.
    BadString(u8),
    /// The packet would be longer than 4096 bytes.
    TooLong,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::BadString(t) => write!(f, "attribute {t} empty or over 253 bytes"),
            EncodeError::TooLong => write!(f, "request over {MAX_PACKET} bytes"),
        }
    }
}

/// An Access-Request being built. The Message-Authenticator is the first attribute (the
/// BlastRADIUS advice, CVE-2024-3596), so a server that requires it sees it before anything.
pub struct Builder {
    p: Vec<u8>,
    authenticator: [u8; 16],
}

impl Builder {
    pub fn request(id: u8, authenticator: &[u8; 16]) -> Builder {
        let mut p = vec![ACCESS_REQUEST, id, 0, 0];
        p.extend_from_slice(authenticator);
        p.extend_from_slice(&[MESSAGE_AUTHENTICATOR, 18]);
        p.extend_from_slice(&[0; 16]);
        Builder {
            p,
            authenticator: *authenticator,
        }
    }

    /// A value of 1..=253 bytes.
    pub fn bytes(&mut self, t: u8, v: &[u8]) -> Result<&mut Builder, EncodeError> {
        if v.is_empty() || v.len() > MAX_VALUE {
            return Err(EncodeError::BadString(t));
        }
        self.p.extend_from_slice(&[t, v.len() as u8 + 2]);
        self.p.extend_from_slice(v);
        Ok(self)
    }

    pub fn str(&mut self, t: u8, v: &str) -> Result<&mut Builder, EncodeError> {
        self.bytes(t, v.as_bytes())
    }

    pub fn u32(&mut self, t: u8, v: u32) -> &mut Builder {
        self.p.extend_from_slice(&[t, 6]);
        self.p.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn ipv4(&mut self, t: u8, a: Ipv4Addr) -> &mut Builder {
        self.p.extend_from_slice(&[t, 6]);
        self.p.extend_from_slice(&a.octets());
        self
    }

    /// User-Password, hidden as RFC 2865 5.2 says (at most 128 bytes).
    pub fn password(&mut self, pw: &[u8], secret: &[u8]) -> Result<&mut Builder, EncodeError> {
        if pw.len() > 128 {
            return Err(EncodeError::BadString(USER_PASSWORD));
        }
        let hidden = hide_password(pw, &self.authenticator, secret);
        self.bytes(USER_PASSWORD, &hidden)
    }

    /// One EAP packet as consecutive EAP-Message attributes of up to 253 bytes (RFC 3579 3.1).
    pub fn eap(&mut self, eap: &[u8]) -> Result<&mut Builder, EncodeError> {
        if eap.is_empty() {
            return Err(EncodeError::BadString(EAP_MESSAGE));
        }
        for chunk in eap.chunks(MAX_VALUE) {
            self.bytes(EAP_MESSAGE, chunk)?;
        }
        Ok(self)
    }

    /// Sets the Length and signs the Message-Authenticator.
    pub fn finish(mut self, secret: &[u8]) -> Result<Vec<u8>, EncodeError> {
        if self.p.len() > MAX_PACKET {
            return Err(EncodeError::TooLong);
        }
        let len = self.p.len() as u16;
        self.p[2..4].copy_from_slice(&len.to_be_bytes());
        let mac = hmac_md5(secret, &self.p);
        self.p[22..38].copy_from_slice(&mac);
        Ok(self.p)
    }
}

/// RFC 2865 5.2: the password padded to 16-byte blocks, each XORed with
/// MD5(secret + previous block), the first previous block being the request authenticator.
pub fn hide_password(pw: &[u8], authenticator: &[u8; 16], secret: &[u8]) -> Vec<u8> {
    let n = pw.len().div_ceil(16).max(1) * 16;
    let mut out = pw.to_vec();
    out.resize(n, 0);
    let mut prev: [u8; 16] = *authenticator;
    for chunk in out.chunks_mut(16) {
        let mut h = Md5::new();
        h.update(secret);
        h.update(prev);
        let b: [u8; 16] = h.finalize().into();
        for (c, k) in chunk.iter_mut().zip(b) {
            *c ^= k;
        }
        prev.copy_from_slice(chunk);
    }
    out
}

fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    // HMAC accepts keys of any length: new_from_slice cannot fail for HMAC-MD5.
    let mut m = <Hmac<Md5> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Constant-time equality of two 16-byte digests (no early exit an attacker could time).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The kind of a verified reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Accept,
    Reject,
    Challenge,
}

/// A reply whose authenticators were verified, with the attributes the daemons read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    pub framed_ip: Option<Ipv4Addr>,
    pub framed_netmask: Option<Ipv4Addr>,
    /// Session-Timeout in seconds.
    pub session_timeout: Option<u32>,
    /// Tunnel-Type value (the tag byte stripped).
    pub tunnel_type: Option<u32>,
    pub tunnel_medium: Option<u32>,
    /// Tunnel-Private-Group-Id (the optional tag byte stripped).
    pub group_id: Option<Vec<u8>>,
    pub reply_message: Option<String>,
    /// State, to be echoed in the next request of the same conversation (RFC 2865 5.24).
    pub state: Option<Vec<u8>>,
    /// The EAP-Message attributes joined into one EAP packet (RFC 3579 3.1).
    pub eap: Option<Vec<u8>>,
    pub message_authenticator: bool,
}

impl Attrs {
    /// The VLAN of RFC 3580 tunnel attributes: Some(Ok) when Tunnel-Type is VLAN over 802 and
    /// the group is a number, Some(Err) when they are there but say something else, None when
    /// the reply names no VLAN.
    pub fn vlan(&self) -> Option<Result<u16, ()>> {
        let g = self.group_id.as_ref()?;
        let typed = self.tunnel_type == Some(TUNNEL_VLAN) && self.tunnel_medium == Some(MEDIUM_802);
        let n = std::str::from_utf8(g)
            .ok()
            .and_then(|s| s.trim().parse::<u16>().ok());
        Some(match n {
            Some(v) if typed && (1..=4094).contains(&v) => Ok(v),
            _ => Err(()),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: Code,
    pub attrs: Attrs,
}

/// Why a datagram is not an acceptable reply. Every variant is counted by the daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    /// Shorter than a header, or its Length field is outside 20..=4096 or past the datagram.
    BadLength,
    /// Not the identifier of the outstanding request (a late or foreign packet: ignored).
    WrongId,
    /// A code a reply to Access-Request cannot have.
    BadCode(u8),
    BadResponseAuthenticator,
    BadMessageAuthenticator,
    MissingMessageAuthenticator,
    /// An attribute runs past the packet, is shorter than its header, or has a bad value size.
    BadAttribute(u8),
    /// An attribute the decision depends on appears twice (ambiguous: refused).
    Duplicate(u8),
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::BadLength => write!(f, "bad length"),
            ReplyError::WrongId => write!(f, "wrong identifier"),
            ReplyError::BadCode(c) => write!(f, "unexpected code {c}"),
            ReplyError::BadResponseAuthenticator => write!(f, "bad Response-Authenticator"),
            ReplyError::BadMessageAuthenticator => write!(f, "bad Message-Authenticator"),
            ReplyError::MissingMessageAuthenticator => write!(f, "no Message-Authenticator"),
            ReplyError::BadAttribute(t) => write!(f, "malformed attribute {t}"),
            ReplyError::Duplicate(t) => write!(f, "attribute {t} twice"),
        }
    }
}

/// Checks and decodes a reply to the request (`id`, `req_auth`). Order matters: the length,
/// identifier and Response-Authenticator are checked before any attribute is believed, and the
/// Message-Authenticator over the whole packet. It must be there when `require_ma`, and always
/// when the reply carries EAP (RFC 3579 3.2).
pub fn decode_reply(
    buf: &[u8],
    id: u8,
    req_auth: &[u8; 16],
    secret: &[u8],
    require_ma: bool,
) -> Result<Reply, ReplyError> {
    let pkt = framed(buf)?;
    if pkt[1] != id {
        return Err(ReplyError::WrongId);
    }
    let code = match pkt[0] {
        ACCESS_ACCEPT => Code::Accept,
        ACCESS_REJECT => Code::Reject,
        ACCESS_CHALLENGE => Code::Challenge,
        c => return Err(ReplyError::BadCode(c)),
    };
    let mut h = Md5::new();
    h.update(&pkt[..4]);
    h.update(req_auth);
    h.update(&pkt[20..]);
    h.update(secret);
    if !same(&h.finalize(), &pkt[4..20]) {
        return Err(ReplyError::BadResponseAuthenticator);
    }
    let (attrs, ma_at) = read_attrs(pkt)?;
    if let Some(at) = ma_at {
        check_ma(pkt, at, req_auth, secret)?;
    } else if require_ma || attrs.eap.is_some() {
        return Err(ReplyError::MissingMessageAuthenticator);
    }
    Ok(Reply { code, attrs })
}

/// The packet inside the datagram (RFC 2865 3: octets past Length are padding, ignored).
fn framed(buf: &[u8]) -> Result<&[u8], ReplyError> {
    if buf.len() < 20 {
        return Err(ReplyError::BadLength);
    }
    let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    if !(20..=MAX_PACKET).contains(&len) || len > buf.len() {
        return Err(ReplyError::BadLength);
    }
    Ok(&buf[..len])
}

/// HMAC-MD5 over the packet with the request authenticator in place and the field zeroed.
fn check_ma(pkt: &[u8], at: usize, req_auth: &[u8; 16], secret: &[u8]) -> Result<(), ReplyError> {
    let mut copy = pkt.to_vec();
    copy[4..20].copy_from_slice(req_auth);
    copy[at..at + 16].fill(0);
    if same(&hmac_md5(secret, &copy), &pkt[at..at + 16]) {
        Ok(())
    } else {
        Err(ReplyError::BadMessageAuthenticator)
    }
}

/// Walks the attributes; returns those read and the offset of the Message-Authenticator value.
fn read_attrs(pkt: &[u8]) -> Result<(Attrs, Option<usize>), ReplyError> {
    let mut a = Attrs::default();
    let mut ma = None;
    let mut i = 20;
    while i < pkt.len() {
        if i + 2 > pkt.len() {
            return Err(ReplyError::BadAttribute(pkt[i]));
        }
        let (t, l) = (pkt[i], pkt[i + 1] as usize);
        if l < 2 || i + l > pkt.len() {
            return Err(ReplyError::BadAttribute(t));
        }
        let v = &pkt[i + 2..i + l];
        if t == MESSAGE_AUTHENTICATOR {
            if v.len() != 16 {
                return Err(ReplyError::BadAttribute(t));
            }
            set(&mut ma, i + 2, t)?;
            a.message_authenticator = true;
        } else {
            read_attr(&mut a, t, v)?;
        }
        i += l;
    }
    Ok((a, ma))
}

fn set<T>(slot: &mut Option<T>, v: T, t: u8) -> Result<(), ReplyError> {
    if slot.is_some() {
        return Err(ReplyError::Duplicate(t));
    }
    *slot = Some(v);
    Ok(())
}

/// One attribute into `a`; unknown types are skipped (a server may add its own).
fn read_attr(a: &mut Attrs, t: u8, v: &[u8]) -> Result<(), ReplyError> {
    let four = |v: &[u8]| -> Result<[u8; 4], ReplyError> {
        v.try_into().map_err(|_| ReplyError::BadAttribute(t))
    };
    // Tagged integer (RFC 2868 3.1): one tag octet, then a 24-bit value.
    let tagged = |v: &[u8]| -> Result<u32, ReplyError> {
        match v {
            [_, a, b, c] => Ok(u32::from_be_bytes([0, *a, *b, *c])),
            _ => Err(ReplyError::BadAttribute(t)),
        }
    };
    match t {
        FRAMED_IP_ADDRESS => set(&mut a.framed_ip, Ipv4Addr::from(four(v)?), t),
        FRAMED_IP_NETMASK => set(&mut a.framed_netmask, Ipv4Addr::from(four(v)?), t),
        SESSION_TIMEOUT => set(&mut a.session_timeout, u32::from_be_bytes(four(v)?), t),
        TUNNEL_TYPE => set(&mut a.tunnel_type, tagged(v)?, t),
        TUNNEL_MEDIUM_TYPE => set(&mut a.tunnel_medium, tagged(v)?, t),
        TUNNEL_PRIVATE_GROUP_ID => {
            // The tag octet is there only when the first octet is 0x00..=0x1f (RFC 2868 3.6).
            let s = match v.first() {
                Some(x) if *x <= 0x1f => &v[1..],
                _ => v,
            };
            set(&mut a.group_id, s.to_vec(), t)
        }
        REPLY_MESSAGE => {
            a.reply_message = Some(String::from_utf8_lossy(v).into_owned());
            Ok(())
        }
        STATE => set(&mut a.state, v.to_vec(), t),
        EAP_MESSAGE => {
            a.eap.get_or_insert_with(Vec::new).extend_from_slice(v);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Builds a reply the way a server would (for tests, fuzz seeds and benchmarks' servers):
/// `attrs` as (type, value) pairs, a Message-Authenticator added when `with_ma`.
pub fn encode_reply(
    code: u8,
    id: u8,
    req_auth: &[u8; 16],
    attrs: &[(u8, Vec<u8>)],
    secret: &[u8],
    with_ma: bool,
) -> Vec<u8> {
    let mut p = vec![code, id, 0, 0];
    p.extend_from_slice(req_auth);
    let ma_at = with_ma.then(|| {
        p.extend_from_slice(&[MESSAGE_AUTHENTICATOR, 18]);
        p.extend_from_slice(&[0; 16]);
        22
    });
    for (t, v) in attrs {
        p.extend_from_slice(&[*t, v.len() as u8 + 2]);
        p.extend_from_slice(v);
    }
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    if let Some(at) = ma_at {
        let mac = hmac_md5(secret, &p);
        p[at..at + 16].copy_from_slice(&mac);
    }
    let mut h = Md5::new();
    h.update(&p);
    h.update(secret);
    let auth: [u8; 16] = h.finalize().into();
    p[4..20].copy_from_slice(&auth);
    p
}

/// An Access-Request as a server sees it (for the test servers): identifier, authenticator,
/// User-Name, and the EAP-Message and State it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peeked {
    pub id: u8,
    pub authenticator: [u8; 16],
    pub user_name: Option<String>,
    pub eap: Option<Vec<u8>>,
    pub state: Option<Vec<u8>>,
}

/// Reads an Access-Request without checking it (see [`request_ma_ok`]).
pub fn peek(buf: &[u8]) -> Option<Peeked> {
    let pkt = framed(buf).ok()?;
    if pkt[0] != ACCESS_REQUEST {
        return None;
    }
    let mut out = Peeked {
        id: pkt[1],
        authenticator: pkt[4..20].try_into().ok()?,
        user_name: None,
        eap: None,
        state: None,
    };
    let mut i = 20;
    while i + 2 <= pkt.len() {
        let l = pkt[i + 1] as usize;
        if l < 2 || i + l > pkt.len() {
            return None;
        }
        let v = &pkt[i + 2..i + l];
        match pkt[i] {
            USER_NAME => out.user_name = Some(String::from_utf8_lossy(v).into_owned()),
            EAP_MESSAGE => out.eap.get_or_insert_with(Vec::new).extend_from_slice(v),
            STATE => out.state = Some(v.to_vec()),
            _ => {}
        }
        i += l;
    }
    Some(out)
}

/// Reads an Access-Request's identifier, authenticator and User-Name (for the test servers).
pub fn peek_request(buf: &[u8]) -> Option<(u8, [u8; 16], String)> {
    let p = peek(buf)?;
    Some((p.id, p.authenticator, p.user_name?))
}

/// Verifies an Access-Request's Message-Authenticator (what a server does; for tests).
pub fn request_ma_ok(pkt: &[u8], secret: &[u8]) -> bool {
    let Ok(pkt) = framed(pkt) else { return false };
    let Ok((_, Some(at))) = read_attrs(pkt) else {
        return false;
    };
    let mut copy = pkt.to_vec();
    copy[at..at + 16].fill(0);
    same(&hmac_md5(secret, &copy), &pkt[at..at + 16])
}

/// For fuzz bodies: `data` read as a run of type-length-value attributes (at most 40, lengths
/// clamped to what is there), so a body can re-sign them into a valid packet and mutations reach
/// the attribute parser behind the authenticator checks.
pub fn fuzz_attrs(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut attrs = vec![];
    let mut i = 0;
    while i + 2 <= data.len() && attrs.len() < 40 {
        let l = (data[i + 1] as usize).min(data.len() - i).min(255);
        if l < 2 {
            break;
        }
        attrs.push((data[i], data[i + 2..i + l].to_vec()));
        i += l;
    }
    attrs
}

/// Fuzz body: any datagram as the reply to request 7 (raw and re-signed so mutations reach the
/// attribute walk). Never panics; true when it decoded.
pub fn fuzz_reply(data: &[u8]) -> bool {
    const SECRET: &[u8] = b"fuzz-secret";
    const RA: [u8; 16] = [0x5a; 16];
    let attrs = fuzz_attrs(data);
    let signed = encode_reply(ACCESS_CHALLENGE, 7, &RA, &attrs, SECRET, true);
    let a = decode_reply(data, 7, &RA, SECRET, false).is_ok();
    let b = decode_reply(&signed, 7, &RA, SECRET, true).map(|r| {
        let _ = r.attrs.vlan();
    });
    a || b.is_ok()
}
