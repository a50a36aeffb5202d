//! Wire formats, smoltcp style: a zero-copy view with `check_len()` plus a `Repr` for building.
//!
//! * [`Request`]: the VDE2 "version 3" control request a client sends on `DIR/ctl`.
//! * [`EthernetFrame`]: an Ethernet II frame with an optional outer 802.1Q tag.
//! * [`sockaddr_reply`]: the 110-byte `struct sockaddr_un` the switch answers with.
//! * [`StreamDecoder`]: vde_plug's 2-byte big-endian length-prefixed stream framing.

use std::fmt;

/// `0xfeedface` in host byte order (little-endian here: `CE FA ED FE` on the wire).
pub const VDE_MAGIC: u32 = 0xfeed_face;
/// The only request version modern clients send.
pub const VDE_VERSION: u32 = 3;
/// magic + version + type + sockaddr_un (2 + 108).
pub const REQUEST_HEADER_LEN: usize = 122;
/// Size of `struct sockaddr_un` on Linux.
pub const SOCKADDR_UN_LEN: usize = 110;
/// `sun_path` capacity.
pub const SUN_PATH_LEN: usize = 108;
/// vde_switch reads at most this much of a request in one go.
pub const REQUEST_MAX_LEN: usize = 256;
/// Ethernet header without tag.
pub const ETH_HEADER_LEN: usize = 14;
/// The 802.1Q TPID.
pub const TPID_8021Q: u16 = 0x8100;
/// Largest frame accepted on the data path: vdeplug4's jumbo limit (9216 + 18).
pub const MAX_FRAME_LEN: usize = 9234;

/// Why a byte buffer is not a valid packet. Counted by the switch, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Too short for the fixed header.
    Truncated,
    /// Magic is not 0xfeedface.
    BadMagic,
    /// Version other than 3 (v1/v2 clients are obsolete).
    BadVersion,
    /// Request kind other than NEW_CONTROL (0) or NEW_PORT0 (1).
    BadKind,
    /// sun_family is not AF_UNIX.
    BadFamily,
    /// A tagged frame too short to carry the tag, or VID 4095.
    BadTag,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            WireError::Truncated => "truncated",
            WireError::BadMagic => "bad magic (expected 0xfeedface)",
            WireError::BadVersion => "unsupported request version (expected 3)",
            WireError::BadKind => "bad request type",
            WireError::BadFamily => "sockaddr family is not AF_UNIX",
            WireError::BadTag => "bad 802.1Q header",
        };
        f.write_str(s)
    }
}

impl std::error::Error for WireError {}

/// What the client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRequest {
    /// Lowest free allocatable port >= 1 (`port=0`).
    Any,
    /// Exactly this port (`port=N`, N > 0).
    Port(u32),
    /// The management port 0 (`REQ_NEW_PORT0`, vdeplug4 `[0]`).
    Port0,
}

/// Zero-copy view over a VDE v3 request.
#[derive(Debug, Clone, Copy)]
pub struct Request<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Request<T> {
    /// Wrap without checking; call [`Request::check_len`] before the accessors.
    pub fn new_unchecked(buffer: T) -> Self {
        Request { buffer }
    }

    /// Wrap and check the length.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let r = Self::new_unchecked(buffer);
        r.check_len()?;
        Ok(r)
    }

    /// The fixed 122-byte header must be present.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < REQUEST_HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    fn u32_at(&self, off: usize) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
    }

    /// Magic word (host order).
    pub fn magic(&self) -> u32 {
        self.u32_at(0)
    }
    /// Version (host order).
    pub fn version(&self) -> u32 {
        self.u32_at(4)
    }
    /// Raw type field: low 8 bits kind, upper bits requested port.
    pub fn raw_type(&self) -> u32 {
        self.u32_at(8)
    }
    /// `sun_family` of the client's address.
    pub fn family(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_ne_bytes([b[12], b[13]])
    }
    /// Client datagram socket path bytes, up to the first NUL.
    pub fn path(&self) -> &[u8] {
        let p = &self.buffer.as_ref()[14..14 + SUN_PATH_LEN];
        let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
        &p[..end]
    }
    /// Free-text description (everything after byte 122).
    pub fn description(&self) -> &[u8] {
        &self.buffer.as_ref()[REQUEST_HEADER_LEN..]
    }
}

/// Parsed, owned form of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRepr {
    pub port: PortRequest,
    /// Client socket path (may be empty for unnamed sockets).
    pub path: Vec<u8>,
    pub description: Vec<u8>,
}

impl RequestRepr {
    /// Validate magic, version, kind and family.
    pub fn parse<T: AsRef<[u8]>>(req: &Request<T>) -> Result<Self, WireError> {
        req.check_len()?;
        if req.magic() != VDE_MAGIC {
            return Err(WireError::BadMagic);
        }
        if req.version() != VDE_VERSION {
            return Err(WireError::BadVersion);
        }
        if req.family() != libc::AF_UNIX as u16 {
            return Err(WireError::BadFamily);
        }
        let t = req.raw_type();
        let port = match t & 0xff {
            0 => match t >> 8 {
                0 => PortRequest::Any,
                n => PortRequest::Port(n),
            },
            1 => PortRequest::Port0,
            _ => return Err(WireError::BadKind),
        };
        let mut description = req.description().to_vec();
        description.truncate(REQUEST_MAX_LEN - REQUEST_HEADER_LEN);
        Ok(RequestRepr {
            port,
            path: req.path().to_vec(),
            description,
        })
    }

    /// Length of the emitted request.
    pub fn buffer_len(&self) -> usize {
        REQUEST_HEADER_LEN + self.description.len()
    }

    /// Build the request bytes as a client (vswitch plug, tests, the benchmark).
    pub fn emit(&self) -> Vec<u8> {
        let mut b = vec![0u8; self.buffer_len()];
        b[0..4].copy_from_slice(&VDE_MAGIC.to_ne_bytes());
        b[4..8].copy_from_slice(&VDE_VERSION.to_ne_bytes());
        let t: u32 = match self.port {
            PortRequest::Any => 0,
            PortRequest::Port(n) => n << 8,
            PortRequest::Port0 => 1,
        };
        b[8..12].copy_from_slice(&t.to_ne_bytes());
        b[12..14].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        // A full 108-byte field without a NUL is a valid Linux path and what `parse` reads
        // back (the fuzz target's round trip found the old 107-byte cut).
        let n = self.path.len().min(SUN_PATH_LEN);
        b[14..14 + n].copy_from_slice(&self.path[..n]);
        b[REQUEST_HEADER_LEN..].copy_from_slice(&self.description);
        b
    }
}

/// The reply: one `struct sockaddr_un` naming the switch's data socket.
pub fn sockaddr_reply(path: &[u8]) -> [u8; SOCKADDR_UN_LEN] {
    let mut b = [0u8; SOCKADDR_UN_LEN];
    b[0..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
    let n = path.len().min(SUN_PATH_LEN - 1);
    b[2..2 + n].copy_from_slice(&path[..n]);
    b
}

/// Parse a reply (client side): the path of the switch's data socket.
pub fn parse_sockaddr_reply(b: &[u8]) -> Result<Vec<u8>, WireError> {
    if b.len() < SOCKADDR_UN_LEN {
        return Err(WireError::Truncated);
    }
    if u16::from_ne_bytes([b[0], b[1]]) != libc::AF_UNIX as u16 {
        return Err(WireError::BadFamily);
    }
    let p = &b[2..SOCKADDR_UN_LEN];
    let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
    Ok(p[..end].to_vec())
}

/// A MAC address.
pub type Mac = [u8; 6];

/// Format a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(m: &Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Parse `aa:bb:cc:dd:ee:ff` or `aa.bb.cc.dd.ee.ff` (vde_switch accepts both).
pub fn parse_mac(s: &str) -> Option<Mac> {
    let parts: Vec<&str> = s.split([':', '.']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        m[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

/// Zero-copy view over an Ethernet II frame (no FCS).
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wrap and validate: >= 14 bytes, <= [`MAX_FRAME_LEN`], and a complete tag when tagged.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < ETH_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.raw_ethertype() == TPID_8021Q {
            if b.len() < ETH_HEADER_LEN + 4 {
                return Err(WireError::BadTag);
            }
            if self.tci().unwrap_or(0) & 0x0fff == 0x0fff {
                return Err(WireError::BadTag);
            }
        }
        Ok(())
    }

    pub fn dst(&self) -> Mac {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.buffer.as_ref()[0..6]);
        m
    }
    pub fn src(&self) -> Mac {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.buffer.as_ref()[6..12]);
        m
    }
    /// Bytes 12..14: the TPID when tagged, else the ethertype.
    pub fn raw_ethertype(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[12], b[13]])
    }
    /// Outer 802.1Q TCI, when tagged.
    pub fn tci(&self) -> Option<u16> {
        let b = self.buffer.as_ref();
        if self.raw_ethertype() == TPID_8021Q && b.len() >= 16 {
            Some(u16::from_be_bytes([b[14], b[15]]))
        } else {
            None
        }
    }
    /// VLAN ID of the outer tag (VID 0 = priority tag).
    pub fn vid(&self) -> Option<u16> {
        self.tci().map(|t| t & 0x0fff)
    }
    /// Ethertype of the payload (after the tag when tagged).
    pub fn ethertype(&self) -> u16 {
        let b = self.buffer.as_ref();
        if self.tci().is_some() && b.len() >= 18 {
            u16::from_be_bytes([b[16], b[17]])
        } else {
            self.raw_ethertype()
        }
    }
    pub fn len(&self) -> usize {
        self.buffer.as_ref().len()
    }
    pub fn is_empty(&self) -> bool {
        self.buffer.as_ref().is_empty()
    }
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// True for broadcast/multicast (I/G bit).
pub fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 != 0
}

/// Copy `frame` into `out` with its outer tag removed.
pub fn strip_tag(frame: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&frame[..12]);
    out.extend_from_slice(&frame[16..]);
}

/// Copy `frame` into `out` with a tag `0x8100 / vid` inserted after the source MAC.
pub fn insert_tag(frame: &[u8], vid: u16, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&frame[..12]);
    out.extend_from_slice(&TPID_8021Q.to_be_bytes());
    out.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    out.extend_from_slice(&frame[12..]);
}

/// Parsed form of an Ethernet header, for building test frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetRepr {
    pub dst: Mac,
    pub src: Mac,
    pub vid: Option<u16>,
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Build a frame with `payload`.
    pub fn emit(&self, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(18 + payload.len());
        b.extend_from_slice(&self.dst);
        b.extend_from_slice(&self.src);
        if let Some(v) = self.vid {
            b.extend_from_slice(&TPID_8021Q.to_be_bytes());
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&self.ethertype.to_be_bytes());
        b.extend_from_slice(payload);
        b
    }
}

/// Incremental decoder for vde_plug's stream framing: 2-byte big-endian length + frame.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    /// Frames with a zero or > MAX_FRAME_LEN length (the stream is resynchronised by skipping).
    pub bad_lengths: u64,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }
    /// Append bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }
    /// Next complete frame, if any.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        loop {
            if self.buf.len() < 2 {
                return None;
            }
            let n = u16::from_be_bytes([self.buf[0], self.buf[1]]) as usize;
            if n == 0 || n > MAX_FRAME_LEN {
                // Not a length we can trust: count and drop the 2 bytes.
                self.bad_lengths += 1;
                self.buf.drain(..2);
                continue;
            }
            if self.buf.len() < 2 + n {
                return None;
            }
            let f = self.buf[2..2 + n].to_vec();
            self.buf.drain(..2 + n);
            return Some(f);
        }
    }
    /// Bytes buffered but not yet a whole frame (a peer that died mid-frame leaves these).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Encode one frame with the 2-byte big-endian length prefix.
pub fn stream_encode(frame: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(frame.len() as u16).to_be_bytes());
    out.extend_from_slice(frame);
}

/// Splits QEMU `-netdev stream` framing (4-byte big-endian length + frame) off the front of
/// a reassembly buffer, borrowing the frames in place. Zero-length records are skipped (QEMU
/// never sends them); a length over [`MAX_FRAME_LEN`] poisons the stream, since nothing after
/// it can be trusted to be a boundary.
pub struct QemuFrames<'a> {
    buf: &'a [u8],
    off: usize,
    poisoned: bool,
}

impl<'a> QemuFrames<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        QemuFrames {
            buf,
            off: 0,
            poisoned: false,
        }
    }

    /// Bytes of whole records consumed so far: drain these, keep the rest for the next read.
    pub fn consumed(&self) -> usize {
        self.off
    }

    /// An impossible length was met: the peer must be dropped.
    pub fn poisoned(&self) -> bool {
        self.poisoned
    }
}

impl<'a> Iterator for QemuFrames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let rest = &self.buf[self.off..];
            if self.poisoned || rest.len() < 4 {
                return None;
            }
            let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if n > MAX_FRAME_LEN {
                self.poisoned = true;
                return None;
            }
            if rest.len() < 4 + n {
                return None;
            }
            self.off += 4 + n;
            if n > 0 {
                return Some(&rest[4..4 + n]);
            }
        }
    }
}

/// VXLAN header (RFC 7348): flags 0x08 (I bit), 24-bit VNI.
pub const VXLAN_HEADER_LEN: usize = 8;

/// Parse a VXLAN datagram: returns (VNI, inner frame).
pub fn vxlan_parse(b: &[u8]) -> Result<(u32, &[u8]), WireError> {
    if b.len() < VXLAN_HEADER_LEN + ETH_HEADER_LEN {
        return Err(WireError::Truncated);
    }
    if b[0] & 0x08 == 0 {
        return Err(WireError::BadMagic);
    }
    let vni = u32::from_be_bytes([0, b[4], b[5], b[6]]);
    Ok((vni, &b[VXLAN_HEADER_LEN..]))
}

/// Build the VXLAN header for `vni`.
pub fn vxlan_header(vni: u32) -> [u8; VXLAN_HEADER_LEN] {
    let v = vni.to_be_bytes();
    [0x08, 0, 0, 0, v[1], v[2], v[3], 0]
}

/// Fuzz body: every parser on arbitrary bytes must return, never panic.
pub fn fuzz_parsers(data: &[u8]) {
    if let Ok(r) = Request::new_checked(data) {
        if let Ok(repr) = RequestRepr::parse(&r) {
            let again = repr.emit();
            let r2 = Request::new_checked(&again[..]).expect("emitted request parses");
            assert_eq!(RequestRepr::parse(&r2).expect("roundtrip"), repr);
        }
    }
    let _ = parse_sockaddr_reply(data);
    if let Ok(f) = EthernetFrame::new_checked(data) {
        let _ = (f.dst(), f.src(), f.vid(), f.ethertype());
        let mut out = Vec::new();
        if let Some(v) = f.vid() {
            strip_tag(data, &mut out);
            assert_eq!(out.len(), data.len() - 4);
            let mut back = Vec::new();
            insert_tag(&out, v, &mut back);
            assert_eq!(back.len(), data.len());
        } else {
            insert_tag(data, 7, &mut out);
            assert_eq!(out.len(), data.len() + 4);
        }
    }
    let mut d = StreamDecoder::new();
    d.push(data);
    while let Some(f) = d.next_frame() {
        assert!(!f.is_empty() && f.len() <= MAX_FRAME_LEN);
    }
    let mut q = QemuFrames::new(data);
    let mut seen = 0;
    for f in q.by_ref() {
        assert!(!f.is_empty() && f.len() <= MAX_FRAME_LEN);
        seen += 4 + f.len();
    }
    assert!(q.consumed() >= seen && q.consumed() <= data.len());
    let _ = vxlan_parse(data);
    let _ = crate::console::parse_command_line(&String::from_utf8_lossy(data));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu_request() -> Vec<u8> {
        // Byte-exact copy of the QEMU 7.2 trace in docs/vde-protocol.md ("Byte-level trace").
        let mut b = vec![0xce, 0xfa, 0xed, 0xfe, 3, 0, 0, 0, 0, 4, 0, 0, 1, 0];
        let mut path = b"/tmp/vt/sw4/.13458-00000".to_vec();
        path.resize(108, 0);
        b.extend_from_slice(&path);
        b.extend_from_slice(b"QEMU user=root pid=13458");
        b
    }

    #[test]
    fn parses_qemu_request() {
        let b = qemu_request();
        assert_eq!(b.len(), 146);
        let r = Request::new_checked(&b[..]).unwrap();
        let repr = RequestRepr::parse(&r).unwrap();
        assert_eq!(repr.port, PortRequest::Port(4));
        assert_eq!(repr.path, b"/tmp/vt/sw4/.13458-00000");
        assert_eq!(repr.description, b"QEMU user=root pid=13458");
        assert_eq!(repr.emit(), b);
    }

    #[test]
    fn rejects_bad_requests() {
        let mut b = qemu_request();
        assert_eq!(
            Request::new_checked(&b[..121]).unwrap_err(),
            WireError::Truncated
        );
        b[4] = 2;
        assert_eq!(
            RequestRepr::parse(&Request::new_unchecked(&b[..])),
            Err(WireError::BadVersion)
        );
        b[4] = 3;
        b[0] = 0;
        assert_eq!(
            RequestRepr::parse(&Request::new_unchecked(&b[..])),
            Err(WireError::BadMagic)
        );
        b[0] = 0xce;
        b[8] = 2;
        assert_eq!(
            RequestRepr::parse(&Request::new_unchecked(&b[..])),
            Err(WireError::BadKind)
        );
        b[8] = 1;
        assert_eq!(
            RequestRepr::parse(&Request::new_unchecked(&b[..]))
                .unwrap()
                .port,
            PortRequest::Port0
        );
        b[8] = 0;
        b[9] = 0;
        assert_eq!(
            RequestRepr::parse(&Request::new_unchecked(&b[..]))
                .unwrap()
                .port,
            PortRequest::Any
        );
    }

    #[test]
    fn reply_roundtrip() {
        let r = sockaddr_reply(b"/tmp/vt/sw4/004.9");
        assert_eq!(&r[..4], &[1, 0, b'/', b't']);
        assert_eq!(parse_sockaddr_reply(&r).unwrap(), b"/tmp/vt/sw4/004.9");
    }

    #[test]
    fn ethernet_tags() {
        let f = EthernetRepr {
            dst: [0xff; 6],
            src: [2, 0, 0, 0, 0, 1],
            vid: Some(10),
            ethertype: 0x0800,
        }
        .emit(&[0u8; 46]);
        let v = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(v.vid(), Some(10));
        assert_eq!(v.ethertype(), 0x0800);
        let mut out = Vec::new();
        strip_tag(&f, &mut out);
        assert_eq!(out.len(), 60);
        assert_eq!(EthernetFrame::new_checked(&out[..]).unwrap().vid(), None);
        let mut back = Vec::new();
        insert_tag(&out, 10, &mut back);
        assert_eq!(back, f);
        // Runt, truncated tag, VID 4095.
        assert!(EthernetFrame::new_checked(&f[..13]).is_err());
        assert_eq!(
            EthernetFrame::new_checked(&f[..15]).unwrap_err(),
            WireError::BadTag
        );
        let mut bad = f.clone();
        bad[14] = 0x0f;
        bad[15] = 0xff;
        assert_eq!(
            EthernetFrame::new_checked(&bad[..]).unwrap_err(),
            WireError::BadTag
        );
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("00:16:3e:01:02:0a"),
            Some([0, 0x16, 0x3e, 1, 2, 10])
        );
        assert_eq!(
            parse_mac("00.16.3e.01.02.0a"),
            Some([0, 0x16, 0x3e, 1, 2, 10])
        );
        assert_eq!(parse_mac("00:16:3e:01:02"), None);
        assert_eq!(parse_mac("zz:16:3e:01:02:0a"), None);
        assert_eq!(fmt_mac(&[0, 0x16, 0x3e, 1, 2, 10]), "00:16:3e:01:02:0a");
    }

    #[test]
    fn request_with_a_full_unterminated_path_round_trips() {
        // Found by the fuzz target: 108 path bytes and no NUL.
        let r = RequestRepr {
            port: PortRequest::Port(3),
            path: vec![b'p'; SUN_PATH_LEN],
            description: b"x".to_vec(),
        };
        let b = r.emit();
        let back = RequestRepr::parse(&Request::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn qemu_stream_framing() {
        let mut b = Vec::new();
        for f in [&[1u8; 60][..], &[], &[2u8; 1500]] {
            b.extend_from_slice(&(f.len() as u32).to_be_bytes());
            b.extend_from_slice(f);
        }
        b.extend_from_slice(&[0, 0, 0, 60, 9, 9]); // half a record
        let mut q = QemuFrames::new(&b);
        let got: Vec<usize> = q.by_ref().map(|f| f.len()).collect();
        assert_eq!(got, vec![60, 1500], "the empty record is skipped");
        assert_eq!(q.consumed(), 4 + 60 + 4 + 4 + 1500);
        assert!(!q.poisoned());
        let bad = [0xff, 0xff, 0xff, 0xff, 1, 2];
        let mut q = QemuFrames::new(&bad);
        assert_eq!(q.next(), None);
        assert!(q.poisoned());
        assert_eq!(q.consumed(), 0);
    }

    #[test]
    fn stream_framing() {
        let mut out = Vec::new();
        stream_encode(&[1; 60], &mut out);
        stream_encode(&[2; 1500], &mut out);
        let mut d = StreamDecoder::new();
        d.push(&out[..30]);
        assert!(d.next_frame().is_none());
        d.push(&out[30..]);
        assert_eq!(d.next_frame().unwrap(), vec![1; 60]);
        assert_eq!(d.next_frame().unwrap().len(), 1500);
        assert!(d.next_frame().is_none());
        d.push(&[0, 0]);
        assert!(d.next_frame().is_none());
        assert_eq!(d.bad_lengths, 1);
    }

    #[test]
    fn vxlan() {
        let h = vxlan_header(0x123456);
        let mut b = h.to_vec();
        b.extend_from_slice(&[0u8; 60]);
        let (vni, inner) = vxlan_parse(&b).unwrap();
        assert_eq!(vni, 0x123456);
        assert_eq!(inner.len(), 60);
    }

    #[test]
    fn fuzz_body_on_samples() {
        let mut samples: Vec<Vec<u8>> = vec![vec![], vec![0; 13], vec![0xff; 300], qemu_request()];
        let mut t = vec![0xffu8; 12];
        t.extend_from_slice(&[0x81, 0, 0, 5, 8, 0]);
        samples.push(t);
        samples.push(vec![0, 5, 1, 2, 3, 4, 5, 0, 0]);
        for s in &samples {
            fuzz_parsers(s);
            for cut in 0..s.len().min(40) {
                fuzz_parsers(&s[..cut]);
            }
        }
    }
}
