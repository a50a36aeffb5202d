//! The endpoints' sockets. Five transports, one module each for how they are opened and
//! read: VDE datagram sockets (`vde`, opened by the handshake), taps (`tap`), QEMU
//! `-netdev stream` peers over unix or TCP, accepted or connected (`stream`), QEMU
//! `-netdev dgram` sockets (`dgram`) and VXLAN uplinks (`vxlan`). This module has what they
//! share: the [`Sink`] that writes an endpoint's frames, the [`Endpoint`] and the
//! connection slots ([`Conn`]) the event loop dispatches on.

mod dgram;
mod stream;
mod tap;
mod vde;
mod vxlan;

pub(super) use stream::{Connector, Listener};
pub(super) use vde::bind_data_socket;

use super::{Daemon, FIRST_CONN, SEND_BATCH};
use crate::core::PortId;
use crate::wire::{self, PortRequest};
use mio::net::{UnixDatagram, UnixStream};
use mio::unix::SourceFd;
use mio::{Interest, Token};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

/// Where an endpoint's frames go.
pub(super) enum Sink {
    Dgram(UnixDatagram),
    Tap(File),
    Vxlan {
        sock: UdpSocket,
        remote: SocketAddr,
        vni: u32,
    },
    /// QEMU `-netdev stream` peer: 4-byte big-endian length + frame.
    Stream {
        s: File,
        dec: Vec<u8>,
    },
    /// QEMU `-netdev dgram` peer: raw frames, peer address learned from recvfrom.
    DgramTo {
        s: std::os::unix::net::UnixDatagram,
        peer: Option<PathBuf>,
    },
}

/// What one read from a [`Sink`] brought.
pub(super) enum Recv {
    /// A frame of this many bytes at the start of the buffer.
    Frame(usize),
    /// A VXLAN datagram with a bad header or another VNI (ignored).
    Foreign,
}

impl Sink {
    pub(super) fn fd(&self) -> RawFd {
        match self {
            Sink::Dgram(d) => d.as_raw_fd(),
            Sink::Tap(f) => f.as_raw_fd(),
            Sink::Vxlan { sock, .. } => sock.as_raw_fd(),
            Sink::Stream { s, .. } => s.as_raw_fd(),
            Sink::DgramTo { s, .. } => s.as_raw_fd(),
        }
    }

    /// Append the bytes to write for one frame (stream framing, VXLAN header) to `out`,
    /// which is a recycled queue buffer: no allocation per frame.
    #[inline]
    pub(super) fn encode_into(&self, frame: &[u8], out: &mut Vec<u8>) {
        match self {
            Sink::Stream { .. } => out.extend_from_slice(&(frame.len() as u32).to_be_bytes()),
            Sink::Vxlan { vni, .. } => out.extend_from_slice(&wire::vxlan_header(*vni)),
            _ => {}
        }
        out.extend_from_slice(frame);
    }

    /// Length of [`Self::encode_into`]'s output for a frame of `len` bytes.
    #[inline]
    pub(super) fn encoded_len(&self, len: usize) -> usize {
        match self {
            Sink::Stream { .. } => len + 4,
            Sink::Vxlan { .. } => len + 8,
            _ => len,
        }
    }

    /// Write the head of `queue` with one syscall: `sendmmsg` for datagram peers, `writev` for
    /// streams, one frame for the others. Returns the bytes taken (a stream may stop inside a
    /// frame; datagrams are taken whole).
    pub(super) fn write_batch(&self, queue: &VecDeque<Vec<u8>>) -> io::Result<usize> {
        let fd = match self {
            Sink::Dgram(d) => d.as_raw_fd(),
            Sink::Stream { s, .. } => s.as_raw_fd(),
            _ => return self.write(queue.front().map_or(&[][..], |f| &f[..])),
        };
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; SEND_BATCH];
        let mut cnt = 0;
        for (v, f) in iov.iter_mut().zip(queue) {
            *v = libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            };
            cnt += 1;
        }
        if let Sink::Stream { .. } = self {
            // SAFETY: iov points into queue entries that stay alive and unmodified for the call.
            let n = unsafe { libc::writev(fd, iov.as_ptr(), cnt as i32) };
            return if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            };
        }
        // SAFETY: an all-zero mmsghdr is a valid empty header.
        let mut msgs: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
        for (m, v) in msgs.iter_mut().zip(iov.iter_mut()).take(cnt) {
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: msgs point at iov, iov into queue entries, all alive for the call.
        let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), cnt as u32, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(queue.iter().take(n as usize).map(Vec::len).sum())
    }

    /// Write encoded bytes; returns how many were taken (streams may take part).
    pub(super) fn write(&self, b: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Dgram(d) => d.send(b),
            Sink::Tap(f) => (&*f).write(b),
            Sink::Vxlan { sock, remote, .. } => sock.send_to(b, remote),
            Sink::Stream { s, .. } => (&*s).write(b),
            Sink::DgramTo { s, peer } => match peer {
                Some(p) => s.send_to(b, p),
                None => Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "no dgram peer has sent a frame yet",
                )),
            },
        }
    }

    /// Read one frame into `buf` (taps, VXLAN, QEMU dgram; VDE sockets and streams have
    /// their own batched readers). A dgram peer's address is learned here.
    pub(super) fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        match self {
            Sink::Dgram(s) => s.recv(buf).map(Recv::Frame),
            Sink::Tap(f) => (&*f).read(buf).map(Recv::Frame),
            Sink::Stream { .. } => Err(io::ErrorKind::WouldBlock.into()),
            Sink::DgramTo { s, peer } => dgram::recv(s, peer, buf),
            Sink::Vxlan { sock, vni, .. } => vxlan::recv(sock, *vni, buf),
        }
    }
}

/// The port a `PATH[:PORT]`-style option asks for.
fn port_request(port: Option<u16>) -> PortRequest {
    port.map(|p| PortRequest::Port(p as u32))
        .unwrap_or(PortRequest::Any)
}

/// One attachment to a port: a VDE client, a tap, a stream or dgram peer, a VXLAN uplink.
pub(super) struct Endpoint {
    pub(super) id: u32,
    pub(super) port: PortId,
    pub(super) sink: Sink,
    /// Token of the data source (datagram socket / tap / udp / stream).
    pub(super) data_tok: Token,
    /// Token of the ctl stream (None for taps, vxlan, stream and dgram peers).
    pub(super) ctl_tok: Option<Token>,
    /// Encoded bytes waiting for EPOLLOUT (frames, or stream bytes).
    pub(super) queue: VecDeque<Vec<u8>>,
    pub(super) queued_bytes: usize,
    pub(super) writable_armed: bool,
    /// In [`Daemon::dirty`]: has frames queued in this batch.
    pub(super) dirty: bool,
    /// Socket file removed when the endpoint closes.
    pub(super) sock_path: Option<PathBuf>,
    /// Ingress sources paused because this endpoint's queue passed its high watermark.
    pub(super) paused_ingress: Vec<Token>,
}

/// What a connection slot (token `FIRST_CONN + i`) holds.
pub(super) enum Conn {
    CtlPending {
        s: UnixStream,
        buf: Vec<u8>,
        /// When it was accepted (pending handshakes time out, the oldest go first).
        since: std::time::Instant,
    },
    Ctl {
        s: UnixStream,
        ep: usize,
    },
    Data {
        ep: usize,
    },
    /// `--stream PATH[:PORT]`: each accepted QEMU `-netdev stream` peer becomes an endpoint.
    StreamListener {
        l: Listener,
        port: Option<u16>,
        /// Unix socket path (unlinked at exit) or the TCP address, for messages.
        path: PathBuf,
    },
    Mgmt {
        s: UnixStream,
        inbuf: Vec<u8>,
        out: Vec<u8>,
        closing: bool,
        /// Subscribed debug categories.
        debug: Vec<&'static str>,
    },
}

impl Daemon {
    /// Make `sink` endpoint `id` on `port`: its fd is registered for reading under a new
    /// data token. Returns the endpoint index. On failure the sink is dropped (closed) and
    /// the port is left as it is (the caller releases it if it goes on).
    pub(super) fn attach(
        &mut self,
        id: u32,
        port: PortId,
        sink: Sink,
        sock_path: Option<PathBuf>,
    ) -> io::Result<usize> {
        let fd = sink.fd();
        let tok = self.new_slot(Conn::Data { ep: usize::MAX });
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), tok, Interest::READABLE)
        {
            self.conns[tok.0 - FIRST_CONN] = None;
            return Err(e);
        }
        let ep = self.new_ep(Endpoint {
            id,
            port,
            sink,
            data_tok: tok,
            ctl_tok: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            writable_armed: false,
            dirty: false,
            sock_path,
            paused_ingress: Vec::new(),
        });
        self.conns[tok.0 - FIRST_CONN] = Some(Conn::Data { ep });
        Ok(ep)
    }

    /// Bind a unix socket path for a `--stream`/`--dgram` transport: a stale socket is
    /// removed, one still in use is an error.
    pub(super) fn check_socket_path(path: &Path) -> anyhow::Result<()> {
        super::setup::remove_stale_socket(
            path,
            &format!("{} is in use by another process", path.display()),
        )
    }

    /// Close an endpoint: its sockets, its queue, its port attachment, its socket file.
    pub(super) fn close_endpoint(&mut self, ep: usize) {
        let Some(e) = self.eps.get_mut(ep).and_then(|e| e.take()) else {
            return;
        };
        if let Some(t) = e.ctl_tok {
            self.close_conn(t);
        }
        let _ = self.poll.registry().deregister(&mut SourceFd(&e.sink.fd()));
        if let Sink::Stream { dec, .. } = &e.sink {
            if !dec.is_empty() {
                self.stats.died_mid_frame += 1;
                self.log.log(
                    "stream",
                    &format!(
                        "peer on port {} died mid-frame ({} bytes pending)",
                        e.port,
                        dec.len()
                    ),
                );
            }
        }
        if let Some(slot) = self.conns.get_mut(e.data_tok.0 - FIRST_CONN) {
            *slot = None;
        }
        self.again.retain(|t| *t != e.data_tok);
        self.paused.remove(&e.data_tok);
        for t in e.paused_ingress {
            self.paused.remove(&t);
            self.again.push(t);
        }
        if let Some(p) = e.sock_path {
            let _ = std::fs::remove_file(p);
        }
        if let Some(v) = self.port_eps.get_mut(e.port as usize) {
            v.retain(|&x| x != ep);
        }
        self.sw.release(e.port, e.id);
        for c in self.connectors.iter_mut() {
            if c.ep == Some(ep) {
                c.ep = None;
            }
        }
        self.debug_event("port/ep/-", &format!("Port {:02} FD {:2}", e.port, e.id));
        if !self.sw.port(e.port).is_some_and(|p| p.active()) {
            self.debug_event("port/-", &format!("{:02}", e.port));
        }
    }
}
