//! The RADIUS subset MAB needs (RFC 2865 Access-Request/Accept/Reject, RFC 2869
//! Message-Authenticator, RFC 2868/3580 tunnel attributes): an encoder for the MAB request and
//! a decoder that checks a reply before reading any attribute.
//!
//! Adapted from `ramux-vpn-auth/src/radius.rs` (same checks, same reasons for not using the
//! `radius` crate: one fixed request, a handful of reply attributes, and the reply's
//! Message-Authenticator verified over the raw bytes). The MAB request adds User-Password
//! (RFC 2865 5.2 hiding), NAS-IP-Address, NAS-Port and Service-Type Call-Check; the reply
//! decoder adds Session-Timeout. MD5 and HMAC-MD5 come from the RustCrypto `md-5` and `hmac`
//! crates, already used by ramux-vpn-auth.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use std::net::Ipv4Addr;

/// Packet codes.
pub const ACCESS_REQUEST: u8 = 1;
pub const ACCESS_ACCEPT: u8 = 2;
pub const ACCESS_REJECT: u8 = 3;
pub const ACCESS_CHALLENGE: u8 = 11;

/// Attribute types used here.
pub const USER_NAME: u8 = 1;
pub const USER_PASSWORD: u8 = 2;
pub const NAS_IP_ADDRESS: u8 = 4;
pub const NAS_PORT: u8 = 5;
pub const SESSION_TIMEOUT: u8 = 27;
pub const SERVICE_TYPE: u8 = 6;
pub const REPLY_MESSAGE: u8 = 18;
pub const CALLING_STATION_ID: u8 = 31;
pub const NAS_IDENTIFIER: u8 = 32;
pub const NAS_PORT_TYPE: u8 = 61;
pub const TUNNEL_TYPE: u8 = 64;
pub const TUNNEL_MEDIUM_TYPE: u8 = 65;
pub const MESSAGE_AUTHENTICATOR: u8 = 80;
pub const TUNNEL_PRIVATE_GROUP_ID: u8 = 81;

/// NAS-Port-Type Ethernet (RFC 2865 5.41; 15), Service-Type Call-Check (10, what MAB uses).
pub const PORT_TYPE_ETHERNET: u32 = 15;
pub const SERVICE_CALL_CHECK: u32 = 10;
/// Tunnel-Type VLAN and Tunnel-Medium-Type IEEE-802 (RFC 3580 3.31).
pub const TUNNEL_VLAN: u32 = 13;
pub const MEDIUM_802: u32 = 6;

/// The largest RADIUS packet (RFC 2865 3).
pub const MAX_PACKET: usize = 4096;

/// What one MAB Access-Request says: the MAC (User-Name, User-Password and
/// Calling-Station-Id) and who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `AA-BB-CC-DD-EE-FF`, the form labwall's `rewrite_calling_station_id` produces.
    pub mac: String,
    pub nas_ip: Ipv4Addr,
    pub nas_identifier: String,
    pub nas_port: u32,
}

/// Why a request could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A string attribute is empty or longer than 253 bytes.
    BadString(u8),
}

/// Encodes a MAB Access-Request. The Message-Authenticator is the first attribute (the
/// BlastRADIUS advice, CVE-2024-3596).
pub fn encode_request(
    id: u8,
    authenticator: &[u8; 16],
    req: &Request,
    secret: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let mut p = vec![ACCESS_REQUEST, id, 0, 0];
    p.extend_from_slice(authenticator);
    p.extend_from_slice(&[MESSAGE_AUTHENTICATOR, 18]);
    p.extend_from_slice(&[0; 16]);
    push_str(&mut p, USER_NAME, &req.mac)?;
    let pw = hide_password(req.mac.as_bytes(), authenticator, secret);
    p.extend_from_slice(&[USER_PASSWORD, pw.len() as u8 + 2]);
    p.extend_from_slice(&pw);
    push_str(&mut p, CALLING_STATION_ID, &req.mac)?;
    p.extend_from_slice(&[NAS_IP_ADDRESS, 6]);
    p.extend_from_slice(&req.nas_ip.octets());
    push_str(&mut p, NAS_IDENTIFIER, &req.nas_identifier)?;
    push_u32(&mut p, NAS_PORT, req.nas_port);
    push_u32(&mut p, NAS_PORT_TYPE, PORT_TYPE_ETHERNET);
    push_u32(&mut p, SERVICE_TYPE, SERVICE_CALL_CHECK);
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    let mac = hmac_md5(secret, &p);
    p[22..38].copy_from_slice(&mac);
    Ok(p)
}

/// RFC 2865 5.2: the password padded to 16-byte blocks, each XORed with
/// MD5(secret + previous block), the first previous block being the request authenticator.
/// `pw` is at most 128 bytes here (a MAC string).
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

fn push_str(p: &mut Vec<u8>, t: u8, v: &str) -> Result<(), EncodeError> {
    if v.is_empty() || v.len() > 253 {
        return Err(EncodeError::BadString(t));
    }
    p.extend_from_slice(&[t, v.len() as u8 + 2]);
    p.extend_from_slice(v.as_bytes());
    Ok(())
}

fn push_u32(p: &mut Vec<u8>, t: u8, v: u32) {
    p.extend_from_slice(&[t, 6]);
    p.extend_from_slice(&v.to_be_bytes());
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

/// A reply whose authenticators were verified, with the attributes the daemon reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Session-Timeout in seconds.
    pub session_timeout: Option<u32>,
    /// Tunnel-Type value (the tag byte stripped).
    pub tunnel_type: Option<u32>,
    pub tunnel_medium: Option<u32>,
    /// Tunnel-Private-Group-Id (the optional tag byte stripped).
    pub group_id: Option<Vec<u8>>,
    pub reply_message: Option<String>,
    pub message_authenticator: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: Code,
    pub attrs: Attrs,
}

/// Why a datagram is not an acceptable reply. Every variant is counted by the daemon.
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
/// Message-Authenticator (when `require_ma`, it must be there) over the whole packet.
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
    } else if require_ma {
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
    // Tagged integer (RFC 2868 3.1): one tag octet, then a 24-bit value.
    let tagged = |v: &[u8]| -> Result<u32, ReplyError> {
        match v {
            [_, a, b, c] => Ok(u32::from_be_bytes([0, *a, *b, *c])),
            _ => Err(ReplyError::BadAttribute(t)),
        }
    };
    match t {
        SESSION_TIMEOUT => {
            let b: [u8; 4] = v.try_into().map_err(|_| ReplyError::BadAttribute(t))?;
            set(&mut a.session_timeout, u32::from_be_bytes(b), t)
        }
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
        _ => Ok(()),
    }
}

/// Builds a reply the way a server would (used by the tests, the fuzz seeds and the benchmark's
/// slow server): `attrs` as (type, value) pairs, a Message-Authenticator added when `with_ma`.
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

/// Reads an Access-Request's identifier, authenticator and User-Name (for the test servers).
pub fn peek_request(buf: &[u8]) -> Option<(u8, [u8; 16], String)> {
    let pkt = framed(buf).ok()?;
    if pkt[0] != ACCESS_REQUEST {
        return None;
    }
    let auth: [u8; 16] = pkt[4..20].try_into().ok()?;
    let mut i = 20;
    while i + 2 <= pkt.len() {
        let l = pkt[i + 1] as usize;
        if l < 2 || i + l > pkt.len() {
            return None;
        }
        if pkt[i] == USER_NAME {
            let user = String::from_utf8_lossy(&pkt[i + 2..i + l]).into_owned();
            return Some((pkt[1], auth, user));
        }
        i += l;
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    const S: &[u8] = b"s3cret";
    const RA: [u8; 16] = [7; 16];

    fn accept(attrs: &[(u8, Vec<u8>)]) -> Vec<u8> {
        encode_reply(ACCESS_ACCEPT, 9, &RA, attrs, S, true)
    }

    fn req() -> Request {
        Request {
            mac: "52-54-00-10-00-50".into(),
            nas_ip: Ipv4Addr::LOCALHOST,
            nas_identifier: "sw1".into(),
            nas_port: 3,
        }
    }

    #[test]
    fn request_is_signed_and_readable() {
        let p = encode_request(9, &RA, &req(), S).unwrap();
        assert!(request_ma_ok(&p, S));
        assert!(!request_ma_ok(&p, b"other"));
        assert_eq!(peek_request(&p), Some((9, RA, "52-54-00-10-00-50".into())));
    }

    #[test]
    fn password_hiding_round_trips() {
        // Un-hiding is the same XOR chain over the cipher blocks.
        let pw = b"52-54-00-10-00-50";
        let h = hide_password(pw, &RA, S);
        assert_eq!(h.len(), 32);
        let mut prev = RA;
        let mut plain = Vec::new();
        for c in h.chunks(16) {
            let mut m = Md5::new();
            m.update(S);
            m.update(prev);
            let b: [u8; 16] = m.finalize().into();
            plain.extend(c.iter().zip(b).map(|(x, k)| x ^ k));
            prev.copy_from_slice(c);
        }
        assert_eq!(&plain[..pw.len()], pw);
        assert!(plain[pw.len()..].iter().all(|&b| b == 0));
    }

    #[test]
    fn accept_with_rfc3580_attributes() {
        let p = accept(&[
            (SESSION_TIMEOUT, 3600u32.to_be_bytes().to_vec()),
            (TUNNEL_TYPE, vec![0, 0, 0, 13]),
            (TUNNEL_MEDIUM_TYPE, vec![0, 0, 0, 6]),
            (TUNNEL_PRIVATE_GROUP_ID, b"\x0010".to_vec()),
            (99, vec![1, 2, 3]),
        ]);
        let r = decode_reply(&p, 9, &RA, S, true).unwrap();
        assert_eq!(r.code, Code::Accept);
        assert_eq!(r.attrs.session_timeout, Some(3600));
        assert_eq!(r.attrs.tunnel_type, Some(TUNNEL_VLAN));
        assert_eq!(r.attrs.tunnel_medium, Some(MEDIUM_802));
        assert_eq!(r.attrs.group_id.as_deref(), Some(&b"10"[..]));
    }

    #[test]
    fn forged_and_garbled_replies_refused() {
        let good = accept(&[(SESSION_TIMEOUT, vec![0, 0, 0, 5])]);
        assert_eq!(
            decode_reply(&good, 9, &RA, b"wrong", true),
            Err(ReplyError::BadResponseAuthenticator)
        );
        assert_eq!(
            decode_reply(&good, 8, &RA, S, true),
            Err(ReplyError::WrongId)
        );
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            decode_reply(&flipped, 9, &RA, S, true),
            Err(ReplyError::BadResponseAuthenticator)
        );
        let no_ma = encode_reply(ACCESS_ACCEPT, 9, &RA, &[], S, false);
        assert_eq!(
            decode_reply(&no_ma, 9, &RA, S, true),
            Err(ReplyError::MissingMessageAuthenticator)
        );
        assert!(decode_reply(&no_ma, 9, &RA, S, false).is_ok());
        assert_eq!(
            decode_reply(&good[..19], 9, &RA, S, true),
            Err(ReplyError::BadLength)
        );
        let dup = accept(&[(SESSION_TIMEOUT, vec![1; 4]), (SESSION_TIMEOUT, vec![2; 4])]);
        assert_eq!(
            decode_reply(&dup, 9, &RA, S, true),
            Err(ReplyError::Duplicate(SESSION_TIMEOUT))
        );
        let short = accept(&[(SESSION_TIMEOUT, vec![1; 3])]);
        assert_eq!(
            decode_reply(&short, 9, &RA, S, true),
            Err(ReplyError::BadAttribute(SESSION_TIMEOUT))
        );
    }
}
