//! The control socket, served without ever blocking the event loop: every connection is
//! non-blocking, reads into a bounded buffer, has one deadline for its whole life and there is
//! a bounded number of them (docs/security-vrrpd.md, Control socket). A client that sends one
//! byte at a time, or nothing, costs one poll slot until its deadline and never delays an
//! advert.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fsm::Time;

/// Longest command line accepted (the only command is `status`).
pub const MAX_LINE: usize = 256;
/// Connections served at once; more are accepted and closed at once (counted).
pub const MAX_CONNS: usize = 16;
/// A connection's whole life: read the command, write the reply.
pub const CONN_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest reply kept for a slow reader (a status of many instances is well below).
pub const MAX_REPLY: usize = 4 << 20;

/// A command read from the control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Status,
    /// Anything else, kept (lossily, bounded by [`MAX_LINE`]) for the error reply.
    Unknown(String),
}

/// Parse one command line (without its newline). Pure, total: any bytes give a command.
pub fn parse_command(line: &[u8]) -> Command {
    let s = String::from_utf8_lossy(&line[..line.len().min(MAX_LINE)]);
    match s.trim() {
        "status" | "" => Command::Status,
        other => Command::Unknown(other.chars().filter(|c| !c.is_control()).collect()),
    }
}

/// Counters of the control socket, shown in `vrrpd status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ControlStats {
    pub accepted: u64,
    /// Closed at once because [`MAX_CONNS`] were open.
    pub rejected_busy: u64,
    /// Closed at their deadline before the reply was written.
    pub timed_out: u64,
    /// Closed because the command line exceeded [`MAX_LINE`].
    pub oversized: u64,
}

/// Where a connection is in its life.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Reading,
    Writing,
    Done,
}

/// Feed received bytes to a line buffer: `Ok(Some(line))` once a newline (or EOF) ends it,
/// `Err(())` when it would exceed [`MAX_LINE`].
fn feed(buf: &mut Vec<u8>, data: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    if let Some(p) = data.iter().position(|&b| b == b'\n') {
        if buf.len() + p > MAX_LINE {
            return Err(());
        }
        buf.extend_from_slice(&data[..p]);
        return Ok(Some(std::mem::take(buf)));
    }
    if buf.len() + data.len() > MAX_LINE {
        return Err(());
    }
    buf.extend_from_slice(data);
    Ok(None)
}

struct Conn {
    stream: UnixStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    deadline: Time,
    phase: Phase,
}

impl Conn {
    /// Read what is there; on a complete line, build the reply with `answer`.
    fn on_readable(&mut self, stats: &mut ControlStats, answer: &mut dyn FnMut(Command) -> String) {
        let mut chunk = [0u8; 512];
        loop {
            let line = match self.stream.read(&mut chunk) {
                Ok(0) => Some(std::mem::take(&mut self.inbuf)),
                Ok(n) => match feed(&mut self.inbuf, &chunk[..n]) {
                    Ok(l) => l,
                    Err(()) => {
                        stats.oversized += 1;
                        self.phase = Phase::Done;
                        return;
                    }
                },
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.phase = Phase::Done;
                    return;
                }
            };
            if let Some(l) = line {
                let mut reply = answer(parse_command(&l));
                reply.truncate(MAX_REPLY);
                reply.push('\n');
                self.out = reply.into_bytes();
                self.phase = Phase::Writing;
                self.on_writable();
                return;
            }
        }
    }

    /// Write as much of the reply as the socket takes; done when all is written.
    fn on_writable(&mut self) {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.phase = Phase::Done;
    }
}

/// The listener and its live connections.
pub struct Control {
    listener: UnixListener,
    conns: Vec<Conn>,
    pub stats: ControlStats,
}

impl Control {
    /// Serve on a bound listener (made non-blocking here).
    pub fn new(listener: UnixListener) -> std::io::Result<Control> {
        listener.set_nonblocking(true)?;
        Ok(Control {
            listener,
            conns: Vec::new(),
            stats: ControlStats::default(),
        })
    }

    pub fn listener_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// The connections' fds and the poll events each waits for, in connection order.
    pub fn conn_fds(&self) -> Vec<(RawFd, i16)> {
        self.conns
            .iter()
            .map(|c| {
                let ev = match c.phase {
                    Phase::Writing => libc::POLLOUT,
                    _ => libc::POLLIN,
                };
                (c.stream.as_raw_fd(), ev)
            })
            .collect()
    }

    /// The earliest connection deadline, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Time> {
        self.conns.iter().map(|c| c.deadline).min()
    }

    /// Accept what waits (at most [`MAX_CONNS`] a wakeup); beyond the limit, close at once.
    pub fn on_accept(&mut self, now: Time) {
        for _ in 0..MAX_CONNS {
            let Ok((s, _)) = self.listener.accept() else {
                return;
            };
            if self.conns.len() >= MAX_CONNS || s.set_nonblocking(true).is_err() {
                self.stats.rejected_busy += 1;
                continue;
            }
            self.stats.accepted += 1;
            self.conns.push(Conn {
                stream: s,
                inbuf: Vec::new(),
                out: Vec::new(),
                sent: 0,
                deadline: now + CONN_TIMEOUT,
                phase: Phase::Reading,
            });
        }
    }

    /// Connection `i` (an index into [`Control::conn_fds`]) is ready.
    pub fn on_ready(&mut self, i: usize, answer: &mut dyn FnMut(Command) -> String) {
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        match c.phase {
            Phase::Reading => c.on_readable(&mut self.stats, answer),
            Phase::Writing => c.on_writable(),
            Phase::Done => {}
        }
    }

    /// Close finished connections and those past their deadline (call after [`on_ready`]).
    ///
    /// [`on_ready`]: Control::on_ready
    pub fn sweep(&mut self, now: Time) {
        let stats = &mut self.stats;
        self.conns.retain(|c| {
            if c.phase == Phase::Done {
                return false;
            }
            if now >= c.deadline {
                stats.timed_out += 1;
                return false;
            }
            true
        });
    }

    pub fn open(&self) -> usize {
        self.conns.len()
    }
}

/// Fuzz body: the command parser and the line buffer never panic and stay bounded.
pub fn fuzz_one(data: &[u8]) {
    let _ = parse_command(data);
    let mut buf = Vec::new();
    for chunk in data.chunks(7) {
        match feed(&mut buf, chunk) {
            Ok(Some(l)) => assert!(l.len() <= MAX_LINE),
            Ok(None) => assert!(buf.len() <= MAX_LINE),
            Err(()) => buf.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(parse_command(b"status"), Command::Status);
        assert_eq!(parse_command(b" status \r"), Command::Status);
        assert_eq!(parse_command(b""), Command::Status);
        assert_eq!(
            parse_command(b"reload\x07"),
            Command::Unknown("reload".into())
        );
        let long = vec![b'x'; 10 * MAX_LINE];
        match parse_command(&long) {
            Command::Unknown(s) => assert_eq!(s.len(), MAX_LINE),
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn line_buffer_is_bounded() {
        let mut b = Vec::new();
        assert_eq!(feed(&mut b, b"sta"), Ok(None));
        assert_eq!(feed(&mut b, b"tus\nrest"), Ok(Some(b"status".to_vec())));
        let mut b = Vec::new();
        for _ in 0..MAX_LINE {
            assert_eq!(feed(&mut b, b"x"), Ok(None));
        }
        assert_eq!(feed(&mut b, b"x"), Err(()));
        let mut b = vec![b'x'; MAX_LINE];
        assert_eq!(feed(&mut b, b"\n"), Ok(Some(vec![b'x'; MAX_LINE])));
        let mut b = vec![b'x'; MAX_LINE];
        assert_eq!(feed(&mut b, b"y\n"), Err(()));
    }

    #[test]
    fn slow_idle_and_excess_clients_are_bounded() {
        let dir = std::env::temp_dir().join(format!("vrrpd-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let _ = std::fs::remove_file(&path);
        let mut c = Control::new(UnixListener::bind(&path).unwrap()).unwrap();
        let t0 = Duration::ZERO;
        let clients: Vec<UnixStream> = (0..MAX_CONNS + 3)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        c.on_accept(t0);
        c.on_accept(t0);
        assert_eq!((c.open(), c.stats.rejected_busy), (MAX_CONNS, 3));
        // One byte of a command: nothing answered, nothing blocks.
        (&clients[0]).write_all(b"s").unwrap();
        let mut answered = 0;
        for i in 0..c.open() {
            c.on_ready(i, &mut |_| {
                answered += 1;
                "x".into()
            });
        }
        assert_eq!(answered, 0);
        c.sweep(t0 + CONN_TIMEOUT - Duration::from_millis(1));
        assert_eq!(c.open(), MAX_CONNS);
        c.sweep(t0 + CONN_TIMEOUT);
        assert_eq!((c.open(), c.stats.timed_out), (0, MAX_CONNS as u64));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fuzz_body_on_samples() {
        for s in [&b"status\n"[..], b"", b"\n\n\n", &[0xff; 600], b"a\nb\nc"] {
            fuzz_one(s);
        }
    }
}
