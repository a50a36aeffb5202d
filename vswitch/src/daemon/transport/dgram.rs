//! `--dgram PATH[:PORT]`: a unix datagram socket for QEMU `-netdev dgram` (raw frames);
//! frames go back to the address the peer last sent from.

use super::super::setup::set_socket_mode;
use super::super::Daemon;
use super::{port_request, Recv, Sink};
use crate::core::EndpointInfo;
use anyhow::{Context, Result};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// Receive one frame and remember who sent it (the address replies go to).
pub(super) fn recv(
    s: &UnixDatagram,
    peer: &mut Option<PathBuf>,
    buf: &mut [u8],
) -> io::Result<Recv> {
    let (n, addr) = s.recv_from(buf)?;
    let from = addr.as_pathname().map(Path::to_path_buf);
    if from.is_some() && *peer != from {
        *peer = from;
    }
    Ok(Recv::Frame(n))
}

impl Daemon {
    pub(in crate::daemon) fn add_dgram(&mut self, path: &Path, port: Option<u16>) -> Result<()> {
        Self::check_socket_path(path)?;
        let s =
            UnixDatagram::bind(path).with_context(|| format!("bind --dgram {}", path.display()))?;
        s.set_nonblocking(true)?;
        set_socket_mode(path, self.cfg.mode, self.cfg.group)?;
        let id = s.as_raw_fd() as u32;
        let info = EndpointInfo {
            id,
            module: "dgram".into(),
            descr: format!("dgram peer on {}", path.display()),
        };
        let p = self
            .sw
            .alloc(port_request(port), Some(0), &[], info)
            .map_err(|e| anyhow::anyhow!("--dgram {}: {e}", path.display()))?;
        let sink = Sink::DgramTo { s, peer: None };
        self.attach(id, p, sink, Some(path.to_path_buf()))?;
        Ok(())
    }
}
