//! QEMU `-netdev stream` peers (4-byte big-endian length + frame): `--stream PATH` and
//! `--port-streams` unix listeners, `--stream-tcp` TCP listeners (also legacy `-netdev
//! socket,connect=`), and `--stream-connect` sockets the switch connects to and reconnects
//! to. Each peer becomes an endpoint whose frames are switched straight out of its
//! reassembly buffer.

use super::super::setup::{set_dir_mode, set_socket_mode};
use super::super::sys::{check_dir, peer_uid, set_nonblocking};
use super::super::{Daemon, FIRST_CONN, MAX_FRAME_LEN, READ_BUDGET};
use super::{port_request, Conn, Endpoint, Sink};
use crate::accounts;
use crate::core::EndpointInfo;
use crate::wire;
use anyhow::{Context, Result};
use mio::unix::SourceFd;
use mio::{Interest, Token};
use std::fs::File;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Stream listener: unix (`--stream`) or TCP (`--stream-tcp`, also QEMU `-netdev socket,connect=`).
pub(in crate::daemon) enum Listener {
    Unix(std::os::unix::net::UnixListener),
    Tcp(std::net::TcpListener),
}

impl Listener {
    pub(in crate::daemon) fn fd(&self) -> RawFd {
        match self {
            Listener::Unix(l) => l.as_raw_fd(),
            Listener::Tcp(l) => l.as_raw_fd(),
        }
    }

    /// Accept one peer as a plain fd-backed stream, with its kernel uid: SO_PEERCRED for
    /// a unix peer, none for a TCP peer (a remote host's uid means nothing here).
    fn accept(&self) -> io::Result<(File, Option<u32>)> {
        Ok(match self {
            Listener::Unix(l) => {
                let s = File::from(OwnedFd::from(l.accept()?.0));
                let uid = peer_uid(s.as_raw_fd()).ok();
                (s, uid)
            }
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                // QEMU disables Nagle on its side too: frames are latency-sensitive.
                let _ = s.set_nodelay(true);
                (File::from(OwnedFd::from(s)), None)
            }
        })
    }
}

/// A QEMU `-netdev stream,server=on` socket the switch connects to, and reconnects to after
/// a disconnect (the QEMU side survives switch restarts this way).
pub(in crate::daemon) struct Connector {
    path: PathBuf,
    port: Option<u16>,
    pub(in crate::daemon) ep: Option<usize>,
    last_try: Option<Instant>,
}

impl Connector {
    pub(in crate::daemon) fn new(path: PathBuf, port: Option<u16>) -> Self {
        Connector {
            path,
            port,
            ep: None,
            last_try: None,
        }
    }

    /// Down, and the last attempt is at least 0.5 s old.
    fn due(&self) -> bool {
        self.ep.is_none()
            && self
                .last_try
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(500))
    }
}

impl Daemon {
    /// `--port-streams`: one stream listener per port, so a QEMU guest can attach to port N
    /// with `-netdev stream,server=off,addr.type=unix,addr.path=DIR.streams/N` instead of
    /// `-netdev vde`: a stream carries many frames per syscall (docs/benchmarks.md: a small
    /// fraction of the switch's CPU per frame on the VDE datagram path).
    pub(in crate::daemon) fn add_port_streams(&mut self) -> Result<()> {
        let layout = self.layout();
        let dir = layout.streams();
        match std::fs::create_dir(&dir) {
            Ok(()) => self.created_streams_dir = true,
            // The same rules as the switch directory: one owned by another user (or a
            // symlink) could have its sockets replaced.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check_dir(&dir, self.cfg.group)?,
            Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
        }
        // The same mode as the switch directory.
        set_dir_mode(&dir, self.cfg.dir_mode(), self.cfg.group)?;
        for p in 1..=self.cfg.numports {
            self.add_stream_listener(&layout.stream(p), Some(p))?;
        }
        Ok(())
    }

    pub(in crate::daemon) fn add_stream_listener(
        &mut self,
        path: &Path,
        port: Option<u16>,
    ) -> Result<()> {
        Self::check_socket_path(path)?;
        let l = std::os::unix::net::UnixListener::bind(path)
            .with_context(|| format!("bind --stream {}", path.display()))?;
        l.set_nonblocking(true)?;
        set_socket_mode(path, self.cfg.mode, self.cfg.group)?;
        self.listen(Listener::Unix(l), port, path.to_path_buf())
    }

    pub(in crate::daemon) fn add_tcp_stream_listener(
        &mut self,
        addr: SocketAddr,
        port: Option<u16>,
    ) -> Result<()> {
        let l = std::net::TcpListener::bind(addr)
            .with_context(|| format!("bind --stream-tcp {addr}"))?;
        l.set_nonblocking(true)?;
        self.listen(Listener::Tcp(l), port, PathBuf::from(addr.to_string()))
    }

    fn listen(&mut self, l: Listener, port: Option<u16>, path: PathBuf) -> Result<()> {
        let fd = l.fd();
        let tok = self.new_slot(Conn::StreamListener { l, port, path });
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), tok, Interest::READABLE)?;
        Ok(())
    }

    /// A stream listener is readable: every waiting peer becomes an endpoint.
    pub(in crate::daemon) fn accept_stream(&mut self, tok: Token) {
        loop {
            let Some(Some(Conn::StreamListener { l, port, path })) =
                self.conns.get(tok.0 - FIRST_CONN)
            else {
                return;
            };
            let (port, path) = (*port, path.clone());
            let (s, uid) = match l.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return self.accept_failed("stream", &e),
            };
            self.add_stream_peer(s, uid, port, format!("stream peer on {}", path.display()));
        }
    }

    /// Make a connected stream socket (accepted, or connected to a `server=on` QEMU) an
    /// endpoint under the port ACLs with the peer's kernel `uid` (the same rule as the VDE
    /// handshake). Returns the endpoint index.
    fn add_stream_peer(
        &mut self,
        s: File,
        uid: Option<u32>,
        port: Option<u16>,
        descr: String,
    ) -> Option<usize> {
        set_nonblocking(s.as_raw_fd()).ok()?;
        let id = s.as_raw_fd() as u32;
        let info = EndpointInfo {
            id,
            module: "stream".into(),
            descr: descr.clone(),
        };
        let gids = uid.map(accounts::user_gids_from_files).unwrap_or_default();
        let p = match self.sw.alloc(port_request(port), uid, &gids, info) {
            Ok(p) => p,
            Err(e) => {
                self.stats.refused_requests += 1;
                self.log.log("stream", &format!("refused {descr}: {e}"));
                return None; // dropping s closes it: QEMU sees the disconnect
            }
        };
        let sink = Sink::Stream { s, dec: Vec::new() };
        let Ok(ep) = self.attach(id, p, sink, None) else {
            self.sw.release(p, id);
            return None;
        };
        self.ep_added(p, id);
        Some(ep)
    }

    /// `--stream-connect`: (re)connect to QEMU `server=on` stream sockets that are down.
    pub(in crate::daemon) fn reconnect_streams(&mut self) {
        for k in 0..self.connectors.len() {
            if !self.connectors[k].due() {
                continue;
            }
            let (path, port) = (self.connectors[k].path.clone(), self.connectors[k].port);
            self.connectors[k].last_try = Some(Instant::now());
            if let Ok(s) = std::os::unix::net::UnixStream::connect(&path) {
                let s = File::from(OwnedFd::from(s));
                let uid = peer_uid(s.as_raw_fd()).ok();
                let descr = format!("stream server {}", path.display());
                let ep = self.add_stream_peer(s, uid, port, descr);
                self.connectors[k].ep = ep;
            }
        }
    }

    /// QEMU stream peer: reassemble 4-byte length-prefixed frames across reads. Frames are
    /// switched straight out of the reassembly buffer (no copy or allocation per frame).
    pub(in crate::daemon) fn read_stream(&mut self, tok: Token, ep: usize) {
        self.cur_in = Some(tok);
        let mut tmp = std::mem::take(&mut self.buf);
        let mut close = false;
        let mut budget = 0;
        while let Some(Some(Endpoint {
            sink: Sink::Stream { s, dec },
            port,
            ..
        })) = self.eps.get_mut(ep)
        {
            let port = *port;
            // What one read brings is switched as a whole: keep it within a quarter of an
            // egress queue so back-pressure still holds with a small --egress-queue-kb.
            let cap = (self.cfg.egress_queue_bytes / 4).clamp(MAX_FRAME_LEN + 64, tmp.len());
            match (&*s).read(&mut tmp[..cap]) {
                Ok(0) => {
                    close = true;
                    break;
                }
                Ok(n) => dec.extend_from_slice(&tmp[..n]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    close = true;
                    break;
                }
            }
            let d = std::mem::take(dec);
            close = self.switch_stream_frames(ep, port, d);
            budget += 1;
            if close || self.paused.contains_key(&tok) {
                break;
            }
            if budget >= READ_BUDGET {
                self.again.push(tok);
                break;
            }
        }
        self.buf = tmp;
        self.cur_in = None;
        if close {
            self.close_endpoint(ep);
        }
    }

    /// Switch the complete frames of a stream's reassembly buffer `d` and give the rest back
    /// to endpoint `ep`. Returns true if the stream is poisoned (the peer must be closed).
    fn switch_stream_frames(&mut self, ep: usize, port: u16, mut d: Vec<u8>) -> bool {
        let mut frames = wire::QemuFrames::new(&d);
        for f in frames.by_ref() {
            self.ingress(port, f);
        }
        let (off, poisoned) = (frames.consumed(), frames.poisoned());
        d.drain(..off);
        if poisoned {
            // A bad length poisons the rest of the stream: drop the peer.
            d.clear();
            self.stats.bad_stream_lengths += 1;
            self.log.log(
                "stream",
                &format!("port {port}: impossible frame length; closing peer"),
            );
        }
        if let Some(Some(Endpoint {
            sink: Sink::Stream { dec, .. },
            ..
        })) = self.eps.get_mut(ep)
        {
            *dec = d;
        }
        poisoned
    }
}
