//! The loop: wait for events, hand each to its handler, flush what the batch queued, run
//! the timers. [`Daemon::handle`] is the dispatcher: which event goes where.

use super::transport::Conn;
use super::{Daemon, FIRST_CONN, MAX_PAUSE, T_CTL, T_MGMT, T_RADIUS, T_SIGNAL, T_STDIN};
use crate::console;
use crate::core::PortId;
use anyhow::{Context, Result};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::time::Duration;

/// How often the spanning tree's timers run.
const STP_TICK_MS: u64 = 250;

impl Daemon {
    /// Main loop.
    pub fn serve(&mut self) -> Result<()> {
        if self.cfg.daemonize {
            self.daemonize()?;
            self.fresh_poll_after_fork()?;
        }
        self.write_pidfile()?;
        self.setup_signals()?;
        self.signal_ready();
        self.register_listeners()?;
        if self.cfg.stdin_console && !self.cfg.daemonize {
            self.open_stdin_console();
        }
        self.reconnect_streams();
        let mut events = Events::with_capacity(256);
        while !self.shutdown {
            let timeout = self.next_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("epoll_wait");
            }
            self.tick();
            self.dispatch(&events);
        }
        self.cleanup();
        Ok(())
    }

    /// One wake-up: the events, then the sockets whose read budget ran out, then timers;
    /// every step's queued frames are written before the next.
    fn dispatch(&mut self, events: &Events) {
        for ev in events.iter() {
            self.handle(
                ev.token(),
                ev.is_readable() || ev.is_read_closed() || ev.is_error(),
                ev.is_writable(),
            );
            self.flush_dirty();
        }
        let again = std::mem::take(&mut self.again);
        for t in again {
            self.handle(t, true, false);
            self.flush_dirty();
        }
        self.run_timers();
        self.flush_dirty();
    }

    /// The dispatcher.
    fn handle(&mut self, tok: Token, readable: bool, writable: bool) {
        match tok {
            T_CTL => self.accept_ctl(),
            T_MGMT => self.accept_mgmt(),
            T_STDIN => self.read_stdin(),
            T_SIGNAL => self.on_signal_event(),
            T_RADIUS => self.read_radius(),
            Token(t) if t >= FIRST_CONN => self.handle_conn(tok, readable, writable),
            _ => {}
        }
    }

    /// An event on a connection slot, by what the slot holds.
    fn handle_conn(&mut self, tok: Token, readable: bool, writable: bool) {
        match self.conns.get(tok.0 - FIRST_CONN) {
            Some(Some(Conn::CtlPending { .. })) => self.ctl_pending(tok),
            Some(Some(Conn::Ctl { ep, .. })) => {
                let ep = *ep;
                self.ctl_readable(tok, ep)
            }
            Some(Some(Conn::Data { ep })) => {
                let ep = *ep;
                if writable {
                    self.flush_ep(ep);
                }
                if readable {
                    self.read_data(tok, ep);
                }
            }
            Some(Some(Conn::Mgmt { .. })) => self.mgmt_event(tok, readable, writable),
            Some(Some(Conn::StreamListener { .. })) => self.accept_stream(tok),
            _ => {}
        }
    }

    /// The epoll instance was created before fork: a fresh one avoids sharing it with the
    /// parent. Registers again what [`Daemon::new`] registered.
    fn fresh_poll_after_fork(&mut self) -> Result<()> {
        self.poll = Poll::new()?;
        let mut fds: Vec<(RawFd, Token)> = self
            .eps
            .iter()
            .flatten()
            .map(|e| (e.sink.fd(), e.data_tok))
            .collect();
        for (i, c) in self.conns.iter().enumerate() {
            if let Some(Conn::StreamListener { l, .. }) = c {
                fds.push((l.fd(), Token(FIRST_CONN + i)));
            }
        }
        for (fd, t) in fds {
            self.poll
                .registry()
                .register(&mut SourceFd(&fd), t, Interest::READABLE)?;
        }
        Ok(())
    }

    /// Start accepting on `DIR/ctl` and the management socket.
    fn register_listeners(&mut self) -> Result<()> {
        self.poll
            .registry()
            .register(&mut self.ctl, T_CTL, Interest::READABLE)?;
        if let Some(m) = self.mgmt.as_mut() {
            self.poll
                .registry()
                .register(m, T_MGMT, Interest::READABLE)?;
        }
        Ok(())
    }

    /// The foreground console on stdin (if stdin can be polled).
    fn open_stdin_console(&mut self) {
        let fd: RawFd = 0;
        if super::sys::set_nonblocking(fd).is_ok()
            && self
                .poll
                .registry()
                .register(&mut SourceFd(&fd), T_STDIN, Interest::READABLE)
                .is_ok()
        {
            self.stdin_on = true;
            let _ = write!(io::stdout(), "{}{}", console::banner(), console::PROMPT);
            let _ = io::stdout().flush();
        }
    }

    /// How long the next wait may last: until the next impairment release, paused-port
    /// check or reconnect attempt, at most 1 s.
    fn next_timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let now = self.now_us();
        let mut t = if self.paused.is_empty() {
            1_000_000u64
        } else {
            5_000
        };
        if self.connectors.iter().any(|c| c.ep.is_none()) {
            t = t.min(500_000);
        }
        if self.sw.stp.is_some() {
            let next = self.last_stp_tick_ms + STP_TICK_MS;
            t = t.min(next.saturating_sub(now / 1000) * 1000);
        }
        if self.sw.auth_on() {
            let next = self.last_auth_tick_ms + super::radius_io::AUTH_TICK_MS;
            t = t.min(next.saturating_sub(now / 1000) * 1000);
        }
        if let Some(at) = self.accept_retry_at {
            let left = at.saturating_duration_since(std::time::Instant::now());
            t = t.min(left.as_micros() as u64);
        }
        for q in self.impair_in.values().chain(self.impair_out.values()) {
            if let Some(d) = q.next_due() {
                t = t.min(d.saturating_sub(now));
            }
        }
        Some(Duration::from_micros(t))
    }

    fn run_timers(&mut self) {
        let now_ms = self.now_ms();
        if self.sw.stp.is_some() {
            if now_ms >= self.last_stp_tick_ms + STP_TICK_MS {
                self.last_stp_tick_ms = now_ms;
                self.sw.stp_tick(now_ms);
            }
            // BPDUs from the tick, from BPDUs received and from console commands.
            for (p, f) in self.sw.take_bpdus() {
                self.deliver(p, &f);
            }
        }
        if self.sw.auth_on() || self.radius.is_some() {
            self.run_auth(now_ms);
        }
        self.sw.table.gc(now_ms);
        // Once a second: the pending handshakes are few, but this runs every wake-up.
        if now_ms.saturating_sub(self.last_pending_scan_ms) >= 1000 {
            self.last_pending_scan_ms = now_ms;
            self.expire_pending();
        }
        if self.accept_retry_at.is_some() {
            self.retry_accepts();
        }
        if !self.connectors.is_empty() {
            self.reconnect_streams();
        }
        if !self.paused.is_empty() {
            self.resume_expired_pauses();
        }
        if !self.impair_in.is_empty() || !self.impair_out.is_empty() {
            self.release_impaired();
        }
    }

    /// Ingress held back longer than [`MAX_PAUSE`] is read again (its frames may be dropped).
    fn resume_expired_pauses(&mut self) {
        let expired: Vec<Token> = self
            .paused
            .iter()
            .filter(|(_, t)| t.elapsed() >= MAX_PAUSE)
            .map(|(k, _)| *k)
            .collect();
        for t in expired {
            self.paused.remove(&t);
            self.again.push(t);
        }
    }

    /// Frames whose impairment delay is over: ingress ones are switched, egress ones sent.
    fn release_impaired(&mut self) {
        let now = self.now_us();
        let ports: Vec<PortId> = self.impair_in.keys().copied().collect();
        for p in ports {
            while let Some(f) = self.impair_in.get_mut(&p).and_then(|q| q.pop_ready(now)) {
                self.switch_frame(p, &f);
            }
        }
        let ports: Vec<PortId> = self.impair_out.keys().copied().collect();
        for p in ports {
            while let Some(f) = self.impair_out.get_mut(&p).and_then(|q| q.pop_ready(now)) {
                self.send_to_port(p, &f);
            }
        }
    }
}
