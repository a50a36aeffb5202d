//! The VDE control handshake on `DIR/ctl` (docs/vde-protocol.md): a client connects, sends
//! a request (port wanted, path of its datagram socket, description); the switch checks who
//! owns that socket, allocates the port, binds and connects `DIR/PPP.ID`, replies with that
//! address, and keeps the ctl stream open for the life of the endpoint (its EOF closes it).
//! Refusals close the ctl stream (vde_switch 2.3.2 leaves the client hanging).

use super::sys::{fd_path, open_client_socket, peer_uid};
use super::transport::{bind_data_socket, Conn, Sink};
use super::{Daemon, FIRST_CONN};
use crate::accounts;
use crate::core::EndpointInfo;
use crate::wire::{self, Request, RequestRepr, WireError, REQUEST_HEADER_LEN, REQUEST_MAX_LEN};
use anyhow::{bail, Context, Result};
use mio::net::UnixStream;
use mio::{Interest, Token};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Most handshakes pending at once (clients that connected and sent no whole request).
pub(super) const MAX_PENDING: usize = 128;
/// How long a client may take to send its request (real ones send it with the connect).
pub(super) const PENDING_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a pending handshake stands after a read.
#[derive(Debug, PartialEq)]
pub(super) enum Pending {
    /// Not a whole header yet: wait for more.
    Wait,
    /// The client went away before sending a whole header (`bytes` of it, maybe 0).
    Gone {
        bytes: usize,
    },
    Rejected(WireError),
    Request(RequestRepr),
}

/// Judge the bytes a client has sent so far on its ctl stream (`eof`: it closed it).
pub(super) fn classify(buf: &[u8], eof: bool) -> Pending {
    if buf.len() < REQUEST_HEADER_LEN {
        return if eof {
            Pending::Gone { bytes: buf.len() }
        } else {
            Pending::Wait
        };
    }
    match RequestRepr::parse(&Request::new_unchecked(buf)) {
        Ok(r) => Pending::Request(r),
        Err(e) => Pending::Rejected(e),
    }
}

/// Which pending handshake to close before accepting another: the oldest, once there are
/// [`MAX_PENDING`] (the pure core of the bound; `T` is when each was accepted).
pub(super) fn pending_victim<K: Copy, T: Ord + Copy>(pending: &[(K, T)]) -> Option<K> {
    if pending.len() < MAX_PENDING {
        return None;
    }
    pending.iter().min_by_key(|(_, t)| *t).map(|(k, _)| *k)
}

/// The endpoint description `port/print` shows: the request's, without its NUL padding.
pub(super) fn description(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .trim_end_matches('\0')
        .to_string()
}

/// Read what is available of a request, up to its maximum length. Returns true at EOF (or
/// on an error, which ends the connection the same way).
fn read_request(s: &mut UnixStream, buf: &mut Vec<u8>) -> bool {
    let mut tmp = [0u8; REQUEST_MAX_LEN];
    loop {
        let room = REQUEST_MAX_LEN - buf.len();
        if room == 0 {
            return false;
        }
        match s.read(&mut tmp[..room]) {
            Ok(0) => return true,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

impl Daemon {
    /// `DIR/ctl` is readable: every waiting client becomes a pending handshake.
    pub(super) fn accept_ctl(&mut self) {
        loop {
            match self.ctl.accept() {
                Ok((mut s, _)) => {
                    // Before choosing the token: an eviction frees a slot.
                    self.make_room_for_pending();
                    let tok = self.next_token();
                    if self
                        .poll
                        .registry()
                        .register(&mut s, tok, Interest::READABLE)
                        .is_ok()
                    {
                        let since = Instant::now();
                        let c = Conn::CtlPending {
                            s,
                            buf: Vec::new(),
                            since,
                        };
                        let t2 = self.new_slot(c);
                        debug_assert_eq!(t2, tok);
                        // Real clients have usually sent their request already.
                        self.ctl_pending(tok);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return self.accept_failed("ctl", &e),
            }
        }
    }

    /// An accept failed: log it (rate-limited); when it is for want of descriptors, count it
    /// and retry later with a backoff, not at once (the listener stays readable: retrying at
    /// once would spin) and not never (edge-triggered: the backlog would wait for the next
    /// connect).
    pub(in crate::daemon) fn accept_failed(&mut self, what: &str, e: &io::Error) {
        self.log.log("accept", &format!("{what}: {e}"));
        if super::accept_exhaustion(e) {
            self.stats.accept_exhausted += 1;
            self.accept_delay =
                (self.accept_delay * 2).clamp(super::ACCEPT_RETRY_MIN, super::ACCEPT_RETRY_MAX);
            self.accept_retry_at = Some(Instant::now() + self.accept_delay);
        }
    }

    /// The accept backoff is due: accept on every listener again.
    pub(in crate::daemon) fn retry_accepts(&mut self) {
        match self.accept_retry_at {
            Some(at) if Instant::now() >= at => {}
            _ => return,
        }
        self.accept_retry_at = None;
        self.accept_ctl();
        self.accept_mgmt();
        let listeners: Vec<Token> = (self.conns.iter().enumerate())
            .filter(|(_, c)| matches!(c, Some(Conn::StreamListener { .. })))
            .map(|(i, _)| Token(FIRST_CONN + i))
            .collect();
        for tok in listeners {
            self.accept_stream(tok);
        }
        if self.accept_retry_at.is_none() {
            self.accept_delay = Duration::ZERO;
        }
    }

    /// The pending handshakes, with when each was accepted.
    fn pending(&self) -> Vec<(Token, Instant)> {
        let p = self.conns.iter().enumerate().filter_map(|(i, c)| match c {
            Some(Conn::CtlPending { since, .. }) => Some((Token(FIRST_CONN + i), *since)),
            _ => None,
        });
        p.collect()
    }

    /// At [`MAX_PENDING`] handshakes, close the oldest: a client that connects and never
    /// sends must not hold descriptors until the switch can accept nobody (a real client
    /// sends its request with its connect, so it is never the oldest for long).
    fn make_room_for_pending(&mut self) {
        if let Some(tok) = pending_victim(&self.pending()) {
            self.stats.pending_evicted += 1;
            self.close_conn(tok);
        }
    }

    /// Close handshakes pending longer than [`PENDING_TIMEOUT`] (from the timers).
    pub(super) fn expire_pending(&mut self) {
        for (tok, since) in self.pending() {
            if since.elapsed() >= PENDING_TIMEOUT {
                self.stats.pending_timeouts += 1;
                self.close_conn(tok);
            }
        }
    }

    /// A pending handshake is readable: read, then wait, refuse, or make the endpoint.
    pub(super) fn ctl_pending(&mut self, tok: Token) {
        let i = tok.0 - FIRST_CONN;
        let Some(Some(Conn::CtlPending { s, buf, .. })) = self.conns.get_mut(i) else {
            return;
        };
        let eof = read_request(s, buf);
        let verdict = classify(buf, eof);
        if !matches!(verdict, Pending::Wait | Pending::Gone { .. }) {
            buf.clear();
        }
        match verdict {
            Pending::Wait => {}
            Pending::Gone { bytes } => {
                if bytes > 0 {
                    self.stats.bad_handshakes += 1;
                    self.log
                        .log("handshake", &format!("truncated request ({bytes} bytes)"));
                }
                self.close_conn(tok);
            }
            Pending::Rejected(e) => {
                self.stats.bad_handshakes += 1;
                self.log.log("handshake", &format!("rejected request: {e}"));
                self.close_conn(tok);
            }
            Pending::Request(r) => {
                if let Err(e) = self.new_endpoint(tok, r) {
                    self.stats.refused_requests += 1;
                    self.log.log("handshake", &format!("refused: {e:#}"));
                    self.close_conn(tok);
                }
            }
        }
    }

    /// Accept request `r` from the pending handshake `tok`: allocate the port, bind the
    /// data socket, reply, and turn the slot into an endpoint's ctl stream.
    fn new_endpoint(&mut self, tok: Token, r: RequestRepr) -> Result<()> {
        if r.path.is_empty() {
            bail!("client sent an empty socket path");
        }
        let i = tok.0 - FIRST_CONN;
        let Some(Some(Conn::CtlPending { s, .. })) = self.conns.get(i) else {
            bail!("connection vanished")
        };
        let id = s.as_raw_fd() as u32;
        // Who the client is comes from the kernel, not from the socket it names: naming
        // someone else's socket (or /dev/log) must neither borrow their identity nor make
        // the switch, as root, connect to it.
        let uid = peer_uid(s.as_raw_fd()).context("SO_PEERCRED on the control connection")?;
        let client = Path::new(std::ffi::OsStr::from_bytes(&r.path));
        let client_file = open_client_socket(client, uid)?;
        let gids = accounts::user_gids_from_files(uid);
        let info = EndpointInfo {
            id,
            module: "unix prog".into(),
            descr: description(&r.description),
        };
        let port = self
            .sw
            .alloc(r.port, Some(uid), &gids, info)
            .map_err(|e| anyhow::anyhow!("{e} ({:?})", r.port))?;
        let target = fd_path(&client_file, client);
        let (cfg, layout) = (&self.cfg, self.layout());
        let (sock, path) =
            match bind_data_socket(&layout, port, id, &target, uid, cfg.mode, cfg.group) {
                Ok(x) => x,
                Err(e) => {
                    self.sw.release(port, id);
                    return Err(e);
                }
            };
        let reply = wire::sockaddr_reply(path.as_os_str().as_bytes());
        let Some(Some(Conn::CtlPending { s, .. })) = self.conns.get_mut(i) else {
            bail!("connection vanished")
        };
        if let Err(e) = s.write_all(&reply) {
            self.sw.release(port, id);
            let _ = std::fs::remove_file(&path);
            return Err(e).context("write reply");
        }
        // The data slot is reserved while slot i is still occupied, so tokens never collide.
        let ep = match self.attach(id, port, Sink::Dgram(sock), Some(path.clone())) {
            Ok(ep) => ep,
            Err(e) => {
                self.sw.release(port, id);
                let _ = std::fs::remove_file(&path);
                return Err(e).context("register data socket");
            }
        };
        let Some(Conn::CtlPending { s, .. }) = self.conns[i].take() else {
            unreachable!()
        };
        if let Some(Some(e)) = self.eps.get_mut(ep) {
            e.ctl_tok = Some(tok);
        }
        self.conns[i] = Some(Conn::Ctl { s, ep });
        self.ep_added(port, id);
        Ok(())
    }

    /// An endpoint's ctl stream is readable: clients never send more, so this is its EOF
    /// (or junk, ignored until the EOF).
    pub(super) fn ctl_readable(&mut self, tok: Token, ep: usize) {
        let i = tok.0 - FIRST_CONN;
        let Some(Some(Conn::Ctl { s, .. })) = self.conns.get_mut(i) else {
            return;
        };
        let mut tmp = [0u8; 256];
        loop {
            match s.read(&mut tmp) {
                Ok(0) => break,
                Ok(_) => continue, // clients never send more; ignore
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        self.close_endpoint(ep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PortRequest;

    fn request(port: PortRequest) -> Vec<u8> {
        RequestRepr {
            port,
            path: b"/tmp/client.sock".to_vec(),
            description: b"qemu user=root\0\0".to_vec(),
        }
        .emit()
    }

    #[test]
    fn partial_requests_wait_or_end() {
        let full = request(PortRequest::Port(4));
        assert_eq!(classify(&[], false), Pending::Wait);
        assert_eq!(classify(&full[..10], false), Pending::Wait);
        assert_eq!(classify(&[], true), Pending::Gone { bytes: 0 });
        assert_eq!(classify(&full[..10], true), Pending::Gone { bytes: 10 });
    }

    #[test]
    fn whole_requests_parse() {
        let full = request(PortRequest::Port(4));
        let Pending::Request(r) = classify(&full, false) else {
            panic!("not parsed: {:?}", classify(&full, false));
        };
        assert_eq!(r.port, PortRequest::Port(4));
        assert_eq!(r.path, b"/tmp/client.sock");
        assert_eq!(description(&r.description), "qemu user=root");
        // EOF right after a whole request still serves it.
        assert!(matches!(classify(&full, true), Pending::Request(_)));
    }

    #[test]
    fn garbage_is_rejected() {
        let mut bad = request(PortRequest::Any);
        bad[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert!(matches!(classify(&bad, false), Pending::Rejected(_)));
    }

    #[test]
    fn descriptions_lose_their_padding_only() {
        assert_eq!(description(b"vde_plug\0\0\0"), "vde_plug");
        assert_eq!(description(b"a\0b"), "a\0b");
        assert_eq!(description(b""), "");
    }
}
