//! VDE datagram endpoints: the switch side of a VDE client's data socket (`DIR/PPP.ID`,
//! created by the handshake) and its batched reader (`recvmmsg`).

use super::super::sys::{chmod_nofollow, chown_nofollow, is_root, set_sndbuf};
use super::super::{Daemon, READ_BUDGET, RECV_BATCH};
use super::{Endpoint, Sink};
use crate::core::{DropReason, PortId};
use crate::layout::{self, SwitchDir};
use anyhow::{Context, Result};
use mio::net::UnixDatagram;
use mio::Token;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Bind the switch side of endpoint `id`'s data socket and connect it to the client's
/// socket `client` (owned by `uid`), before the reply is sent: vdeplug4 clients unlink
/// their path right after the reply.
pub(in crate::daemon) fn bind_data_socket(
    dir: &SwitchDir,
    port: PortId,
    id: u32,
    client: &Path,
    uid: u32,
    mode: u32,
    group: Option<u32>,
) -> Result<(UnixDatagram, PathBuf)> {
    let path = layout::data_socket(dir, port, id);
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).with_context(|| format!("bind {}", path.display()))?;
    if let Err(e) = sock.connect(client) {
        let _ = std::fs::remove_file(&path);
        return Err(e).with_context(|| format!("connect to client {}", client.display()));
    }
    // Never through a symlink: the switch directory is writable by its group.
    let _ = chmod_nofollow(&path, mode);
    if is_root() {
        let _ = chown_nofollow(&path, Some(uid), group);
    }
    // Bigger send buffer: more room in the kernel before our own queue is needed.
    set_sndbuf(sock.as_raw_fd(), 1 << 20);
    Ok((sock, path))
}

impl Daemon {
    /// Drain a VDE data socket with recvmmsg: one syscall per batch instead of one per
    /// frame plus a final EAGAIN.
    pub(in crate::daemon) fn read_dgram_batch(&mut self, tok: Token, ep: usize) {
        let mut bufs = std::mem::take(&mut self.mbufs);
        self.cur_in = Some(tok);
        let mut total = 0;
        while let Some(Some(Endpoint {
            sink: Sink::Dgram(sock),
            port,
            ..
        })) = self.eps.get(ep)
        {
            let (fd, port) = (sock.as_raw_fd(), *port);
            // Stack arrays: no allocation on the hot path.
            let mut iov = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; RECV_BATCH];
            // SAFETY: an all-zero mmsghdr is a valid empty header.
            let mut msgs: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
            for (i, b) in bufs.iter_mut().enumerate() {
                iov[i] = libc::iovec {
                    iov_base: b.as_mut_ptr() as *mut libc::c_void,
                    iov_len: b.len(),
                };
                msgs[i].msg_hdr.msg_iov = &mut iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: msgs/iov/bufs are valid for RECV_BATCH entries during the call.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    msgs.as_mut_ptr(),
                    msgs.len() as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock => break,
                    io::ErrorKind::Interrupted => continue,
                    _ => {
                        // ECONNREFUSED etc.: the client is going away; its ctl EOF closes it.
                        self.log.log("recv", &format!("port {port}: {err}"));
                        break;
                    }
                }
            }
            let n = n as usize;
            for i in 0..n {
                let len = msgs[i].msg_len as usize;
                if len == 0 {
                    self.stats.zero_length_datagrams += 1;
                } else if msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    self.sw.count_drop(port, DropReason::Oversize);
                    self.log
                        .log("frame", &format!("oversized datagram on port {port}"));
                } else {
                    self.ingress(port, &bufs[i][..len]);
                }
            }
            total += n;
            if n < RECV_BATCH {
                break;
            }
            if total >= READ_BUDGET || self.paused.contains_key(&tok) {
                self.again.push(tok);
                break;
            }
        }
        self.cur_in = None;
        self.mbufs = bufs;
    }
}
