//! `--vxlan vni=N,local=IP:PORT,remote=IP:PORT[,port=P]`: an RFC 7348 uplink over UDP to
//! one remote VTEP. Frames leave with the 8-byte VXLAN header; datagrams with a bad header
//! or another VNI are ignored.

use super::super::{Daemon, VxlanCfg};
use super::{port_request, Recv, Sink};
use crate::core::EndpointInfo;
use crate::wire;
use anyhow::{Context, Result};
use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

/// Receive one datagram and move its inner frame to the start of `buf`.
pub(super) fn recv(sock: &UdpSocket, vni: u32, buf: &mut [u8]) -> io::Result<Recv> {
    let (n, _) = sock.recv_from(buf)?;
    Ok(match decapsulate(buf, n, vni) {
        Some(len) => Recv::Frame(len),
        None => Recv::Foreign,
    })
}

/// The inner frame's length, moved to the start of `buf[..n]`, if the datagram is VXLAN
/// for `vni`.
fn decapsulate(buf: &mut [u8], n: usize, vni: u32) -> Option<usize> {
    match wire::vxlan_parse(&buf[..n]) {
        Ok((v, inner)) if v == vni => {
            let len = inner.len();
            buf.copy_within(wire::VXLAN_HEADER_LEN..wire::VXLAN_HEADER_LEN + len, 0);
            Some(len)
        }
        _ => None,
    }
}

impl Daemon {
    pub(in crate::daemon) fn add_vxlan(&mut self, v: &VxlanCfg) -> Result<()> {
        let sock =
            UdpSocket::bind(v.local).with_context(|| format!("bind VXLAN socket {}", v.local))?;
        sock.set_nonblocking(true)?;
        let id = sock.as_raw_fd() as u32;
        let info = EndpointInfo {
            id,
            module: "vxlan".into(),
            descr: format!("vni {} {} -> {}", v.vni, v.local, v.remote),
        };
        let port = self
            .sw
            .alloc(port_request(v.port), Some(0), &[], info)
            .map_err(|e| anyhow::anyhow!("vxlan port: {e}"))?;
        let sink = Sink::Vxlan {
            sock,
            remote: v.remote,
            vni: v.vni,
        };
        self.attach(id, port, sink, None)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decapsulation() {
        let frame = [0xaau8; 20];
        let mut buf = wire::vxlan_header(42).to_vec();
        buf.extend_from_slice(&frame);
        let n = buf.len();
        buf.resize(64, 0);
        assert_eq!(decapsulate(&mut buf.clone(), n, 7), None, "foreign VNI");
        assert_eq!(decapsulate(&mut buf, n, 42), Some(20));
        assert_eq!(&buf[..20], &frame);
        let mut short = [0u8; 4];
        assert_eq!(decapsulate(&mut short, 4, 42), None, "no header");
    }
}
