//! The RADIUS socket of port authentication (`auth/setradius`): one unconnected UDP socket,
//! opened when the first request is to go out, datagrams from anyone but the configured
//! server ignored (counted). The decisions are the pure authenticator's (`auth::mab`).

use super::{Daemon, T_RADIUS};
use mio::net::UdpSocket;
use mio::Interest;
use std::io;
use std::net::SocketAddr;

/// How often the authenticator's timers run while some port is in `auth mab`.
pub(super) const AUTH_TICK_MS: u64 = 250;

impl Daemon {
    fn radius_socket(&mut self, to: SocketAddr) -> Option<&UdpSocket> {
        if self.radius.is_none() {
            let bind: SocketAddr = if to.is_ipv4() {
                "0.0.0.0:0".parse().ok()?
            } else {
                "[::]:0".parse().ok()?
            };
            let mut s = UdpSocket::bind(bind).ok()?;
            self.poll
                .registry()
                .register(&mut s, T_RADIUS, Interest::READABLE)
                .ok()?;
            self.radius = Some(s);
        }
        self.radius.as_ref()
    }

    /// The authenticator's timers, then whatever it queued (from frames, replies, ticks).
    pub(super) fn run_auth(&mut self, now_ms: u64) {
        if now_ms >= self.last_auth_tick_ms + AUTH_TICK_MS {
            self.last_auth_tick_ms = now_ms;
            self.sw.auth_tick(now_ms);
        }
        let out = self.sw.take_radius();
        if out.is_empty() {
            return;
        }
        let Some(to) = self.sw.auth.server.as_ref().map(|s| s.addr) else {
            self.sw.auth.counters.send_errors += out.len() as u64;
            return;
        };
        let mut failed = 0;
        match self.radius_socket(to) {
            Some(s) => {
                for p in &out {
                    if s.send_to(p, to).is_err() {
                        failed += 1;
                    }
                }
            }
            None => failed = out.len() as u64,
        }
        // An unsent request is a lost one: the authenticator's resend covers it.
        self.sw.auth.counters.send_errors += failed;
    }

    /// Replies on the RADIUS socket.
    pub(super) fn read_radius(&mut self) {
        let mut buf = [0u8; crate::auth::radius::MAX_PACKET];
        loop {
            let Some(s) = self.radius.as_ref() else {
                return;
            };
            match s.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let now = self.now_ms();
                    if self.sw.auth.server.as_ref().map(|s| s.addr) == Some(from) {
                        self.sw.auth_reply(&buf[..n], now);
                    } else {
                        self.sw.auth.counters.unknown_replies += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}
