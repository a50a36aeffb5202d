//! Management sessions (`-M PATH`: unixterm, vdeterm, `vswitch ctl`), the stdin console and
//! the rc file all run console lines here: [`crate::console`] decides, this module carries
//! out the actions (debug subscriptions, shutdown, endpoint close, impairments, captures)
//! and writes the replies and the asynchronous `3TTT` debug lines.

use super::transport::Conn;
use super::{Capture, Daemon, FIRST_CONN};
use crate::console::{self, Action, Ctx, Reply};
use crate::core::PortId;
use crate::impair::Impairer;
use mio::unix::SourceFd;
use mio::{Interest, Token};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

/// A session's input beyond this without a newline is not a console client: drop it.
pub(super) const MAX_SESSION_INPUT: usize = 64 * 1024;

/// Take the command lines out of a session's input: every complete line, then (like
/// vde_switch's one read = one command) a trailing partial line too. `inbuf` is left empty.
pub(super) fn take_lines(inbuf: &mut Vec<u8>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(p) = inbuf.iter().position(|&b| b == b'\n') {
        let l: Vec<u8> = inbuf.drain(..=p).collect();
        lines.push(String::from_utf8_lossy(&l).into_owned());
    }
    if !inbuf.is_empty() {
        lines.push(String::from_utf8_lossy(inbuf).into_owned());
        inbuf.clear();
    }
    lines
}

/// What a session gets back for one command: the rendered reply, then the prompt, or
/// `9999 END OF SESSION` when the command ends the session (returned as true).
pub(super) fn session_reply(r: &Reply) -> (String, bool) {
    let mut text = String::new();
    if r.errno >= 0 {
        r.render(&mut text);
    }
    let closing = r
        .actions
        .iter()
        .any(|a| matches!(a, Action::Logout | Action::Shutdown));
    text.push_str(if closing {
        console::END_OF_SESSION
    } else {
        console::PROMPT
    });
    (text, closing)
}

/// Read what a session sent into `inbuf`. Returns true at EOF, on an error, or when the
/// input grew too long.
fn read_session(s: &mut mio::net::UnixStream, inbuf: &mut Vec<u8>) -> bool {
    let mut tmp = [0u8; 4096];
    loop {
        match s.read(&mut tmp) {
            Ok(0) => return true,
            Ok(n) => {
                inbuf.extend_from_slice(&tmp[..n]);
                if inbuf.len() > MAX_SESSION_INPUT {
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

/// Write what the session can take of `out`. Returns true if the session is gone.
fn write_session(s: &mut mio::net::UnixStream, out: &mut Vec<u8>) -> bool {
    while !out.is_empty() {
        match s.write(out) {
            Ok(n) => {
                out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    false
}

impl Daemon {
    /// The management socket is readable: every waiting client gets a session, greeted with
    /// the banner and the prompt.
    pub(super) fn accept_mgmt(&mut self) {
        loop {
            let Some(l) = self.mgmt.as_ref() else { return };
            match l.accept() {
                Ok((mut s, _)) => {
                    self.stats.mgmt_sessions += 1;
                    let tok = self.next_token();
                    if self
                        .poll
                        .registry()
                        .register(&mut s, tok, Interest::READABLE | Interest::WRITABLE)
                        .is_ok()
                    {
                        let out = format!("{}{}", console::banner(), console::PROMPT).into_bytes();
                        self.new_slot(Conn::Mgmt {
                            s,
                            inbuf: Vec::new(),
                            out,
                            closing: false,
                            debug: Vec::new(),
                        });
                        self.mgmt_event(tok, false, true);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return self.accept_failed("management", &e),
            }
        }
    }

    /// A session is readable (its commands run) or writable (its output is written).
    pub(super) fn mgmt_event(&mut self, tok: Token, readable: bool, _writable: bool) {
        let i = tok.0 - FIRST_CONN;
        let mut lines = Vec::new();
        let mut eof = false;
        if readable {
            let Some(Some(Conn::Mgmt { s, inbuf, .. })) = self.conns.get_mut(i) else {
                return;
            };
            eof = read_session(s, inbuf);
            lines = take_lines(inbuf);
        }
        for l in lines {
            let r = self.session_line(&l, Some(i));
            let (text, closing) = session_reply(&r);
            if let Some(Some(Conn::Mgmt {
                out, closing: c, ..
            })) = self.conns.get_mut(i)
            {
                out.extend_from_slice(text.as_bytes());
                *c |= closing;
                if out.len() > MGMT_OUT_MAX {
                    break;
                }
            }
            if closing {
                break;
            }
        }
        let Some(Some(Conn::Mgmt {
            s, out, closing, ..
        })) = self.conns.get_mut(i)
        else {
            return;
        };
        // Judged before writing: the lines loop stops (and drops the rest) at the bound.
        let overflow = out.len() > MGMT_OUT_MAX;
        eof |= write_session(s, out);
        if overflow {
            // A session that does not read its output (a debug subscriber gone quiet, a
            // script of commands never reading the replies) is dropped, not buffered.
            self.stats.mgmt_overflows += 1;
            self.log
                .log("mgmt", "session dropped: it does not read its output");
        }
        if eof || overflow || (*closing && out.is_empty()) {
            self.close_conn(tok);
        }
    }

    /// The stdin console (foreground only): each line is a command, replies go to stdout.
    pub(super) fn read_stdin(&mut self) {
        let mut tmp = [0u8; 4096];
        // SAFETY: reading fd 0 into a local buffer.
        let n = unsafe { libc::read(0, tmp.as_mut_ptr() as *mut libc::c_void, tmp.len()) };
        if n == 0 {
            // vde_switch 2.3.2 exits on stdin EOF; vswitch keeps running (like --nostdin).
            let _ = self.poll.registry().deregister(&mut SourceFd(&0));
            self.stdin_on = false;
            return;
        }
        if n < 0 {
            return;
        }
        let text = String::from_utf8_lossy(&tmp[..n as usize]).into_owned();
        let mut out = String::new();
        for l in text.lines() {
            let r = self.console_line(l);
            if r.errno >= 0 {
                r.render(&mut out);
            }
            out.push_str(console::PROMPT);
        }
        let _ = io::stdout().write_all(out.as_bytes());
        let _ = io::stdout().flush();
    }

    /// Run one console line and carry out its actions.
    pub fn console_line(&mut self, line: &str) -> Reply {
        self.session_line(line, None)
    }

    /// Debug events for a new endpoint (vde_switch's port/+, port/ep/+, port/descr).
    pub(super) fn ep_added(&mut self, port: PortId, id: u32) {
        if !self.debug_any {
            return;
        }
        let (first, descr) = match self.sw.port(port) {
            Some(p) => (
                p.endpoints.len() == 1,
                p.endpoints
                    .iter()
                    .find(|e| e.id == id)
                    .map(|e| e.descr.clone()),
            ),
            None => return,
        };
        if first {
            self.debug_event("port/+", &format!("{port:02}"));
        }
        self.debug_event("port/ep/+", &format!("Port {port:02} FD {id:2}"));
        if let Some(d) = descr {
            self.debug_event(
                "port/descr",
                &format!("Port {port:02} FD {id:2} -> \"{d}\""),
            );
        }
    }

    /// Write asynchronous `3TTT` debug lines to the sessions subscribed to `cat`.
    pub(super) fn debug_event(&mut self, cat: &'static str, text: &str) {
        if !self.debug_any {
            return;
        }
        let line = format!("{}\n", console::debug_line(cat, text));
        let mut toks = Vec::new();
        for (i, c) in self.conns.iter_mut().enumerate() {
            if let Some(Conn::Mgmt { out, debug, .. }) = c {
                if debug.contains(&cat) {
                    out.extend_from_slice(line.as_bytes());
                    toks.push(Token(FIRST_CONN + i));
                }
            }
        }
        for t in toks {
            self.mgmt_event(t, false, true);
        }
    }

    /// Run one console line for management session `session` (None = rc file / stdin).
    fn session_line(&mut self, line: &str, session: Option<usize>) -> Reply {
        let read = |p: &str| read_script(Path::new(p));
        let ctx = Ctx {
            pid: std::process::id(),
            mac: self.mac,
            uptime_s: self.start.elapsed().as_secs(),
            now_ms: self.now_ms(),
            mgmt: self.cfg.mgmt.as_ref().map(|p| p.display().to_string()),
            mgmt_mode: self.cfg.mgmt_mode,
            ctl_dir: self.cfg.sock_dir.display().to_string(),
            sock_mode: self.cfg.mode,
            read_file: &read,
            stats: vec![
                ("bad_handshakes", self.stats.bad_handshakes),
                ("refused_requests", self.stats.refused_requests),
                ("mgmt_sessions", self.stats.mgmt_sessions),
                ("zero_length_datagrams", self.stats.zero_length_datagrams),
                ("died_mid_frame", self.stats.died_mid_frame),
                ("bad_stream_lengths", self.stats.bad_stream_lengths),
                ("mac_refused", self.sw.table.refused),
                ("pending_evicted", self.stats.pending_evicted),
                ("pending_timeouts", self.stats.pending_timeouts),
                ("mgmt_overflows", self.stats.mgmt_overflows),
                ("accept_exhausted", self.stats.accept_exhausted),
            ],
            debug_on: match session.and_then(|i| self.conns.get(i)) {
                Some(Some(Conn::Mgmt { debug, .. })) => debug.clone(),
                _ => Vec::new(),
            },
            captures: self
                .captures
                .iter()
                .map(|(p, c)| (*p, c.path.clone()))
                .collect(),
        };
        let mut r = console::execute(&mut self.sw, &ctx, line);
        if self.port_eps.len() < self.sw.numports as usize + 1 {
            self.port_eps
                .resize(self.sw.numports as usize + 1, Vec::new());
        }
        for a in r.actions.clone() {
            if let Err(errno) = self.apply(a, session) {
                r.errno = errno;
            }
        }
        // Captures are flushed after each command so `port/capture N off` or a reader sees data.
        for c in self.captures.values_mut() {
            let _ = c.w.flush();
        }
        r
    }

    /// Carry out one action of a console reply; an error is the errno the reply then gets.
    fn apply(&mut self, a: Action, session: Option<usize>) -> Result<(), i32> {
        match a {
            Action::None | Action::Logout => {}
            Action::Debug { on, cats } => self.set_debug(session, on, cats),
            Action::Shutdown => self.shutdown = true,
            Action::EpClose { port, id } => {
                if let Some(ep) = self
                    .eps
                    .iter()
                    .position(|e| e.as_ref().is_some_and(|e| e.port == port && e.id == id))
                {
                    self.close_endpoint(ep);
                }
            }
            Action::Impair { port } => self.set_impairment(port),
            Action::Capture { port, path } => return self.set_capture(port, path),
        }
        Ok(())
    }

    /// `debug/add`, `debug/del`: the session's subscriptions.
    fn set_debug(&mut self, session: Option<usize>, on: bool, cats: Vec<&'static str>) {
        if let Some(Some(Conn::Mgmt { debug, .. })) = session.and_then(|i| self.conns.get_mut(i)) {
            debug.retain(|c| !cats.contains(c));
            if on {
                debug.extend(cats);
            }
        }
        self.debug_any = self
            .conns
            .iter()
            .any(|c| matches!(c, Some(Conn::Mgmt { debug, .. }) if !debug.is_empty()));
    }

    /// `port/impair`: (re)configure the port's impairment queues from its settings.
    fn set_impairment(&mut self, port: PortId) {
        let Some(p) = self.sw.port(port) else {
            return;
        };
        let (ci, co) = (p.impair_in, p.impair_out);
        self.seed = self.seed.wrapping_add(0x9e37_79b9);
        for (map, c) in [(&mut self.impair_in, ci), (&mut self.impair_out, co)] {
            if c.is_none() {
                map.remove(&port);
            } else {
                match map.get_mut(&port) {
                    Some(q) => q.cfg = c,
                    None => {
                        map.insert(port, Impairer::new(c, self.seed));
                    }
                }
            }
        }
    }

    /// `port/capture N FILE` starts a pcap, `port/capture N off` (path None) ends it.
    fn set_capture(&mut self, port: PortId, path: Option<String>) -> Result<(), i32> {
        let Some(p) = path else {
            if let Some(mut c) = self.captures.remove(&port) {
                let _ = c.w.flush();
            }
            return Ok(());
        };
        let f = open_capture(Path::new(&p))?;
        let mut w = BufWriter::new(f);
        if w.write_all(&crate::pcap::file_header(65535)).is_err() {
            return Err(libc::EIO);
        }
        self.captures.insert(port, Capture { w, path: p });
        Ok(())
    }
}

/// Most output bytes a management session may leave unread before it is dropped (a whole
/// `hash/print` of a full MAC table is ~0.5 MiB).
pub(super) const MGMT_OUT_MAX: usize = 4 << 20;

/// Most bytes of a `load` script (a console's command file is a few KiB).
const SCRIPT_MAX: u64 = 1 << 20;

/// Read a `load` script: a regular file (`load /dev/zero` or a FIFO would stall the loop
/// for good), at most [`SCRIPT_MAX`] bytes.
fn read_script(p: &Path) -> io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(p)?;
    let md = f.metadata()?;
    if !md.file_type().is_file() || md.len() > SCRIPT_MAX {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let mut text = String::new();
    f.take(SCRIPT_MAX).read_to_string(&mut text)?;
    Ok(text)
}

/// Open a capture file the way a root daemon must: never through a symlink (O_NOFOLLOW),
/// never blocking (O_NONBLOCK: a FIFO without a reader fails instead of stalling the loop),
/// and only a regular file (a FIFO or a device would block or worse). Truncated only once
/// it is known to be a regular file. Errors are errnos for the console.
fn open_capture(p: &Path) -> Result<File, i32> {
    use std::os::unix::fs::OpenOptionsExt;
    let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(p)
        .map_err(errno)?;
    if !f.metadata().map_err(errno)?.file_type().is_file() {
        return Err(libc::EINVAL);
    }
    f.set_len(0).map_err(errno)?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_on_newlines_and_a_trailing_part_is_a_command() {
        let mut b = b"port/print\nvlan/print 1\nhel".to_vec();
        assert_eq!(
            take_lines(&mut b),
            ["port/print\n", "vlan/print 1\n", "hel"]
        );
        assert!(b.is_empty());
        let mut b = b"\n".to_vec();
        assert_eq!(take_lines(&mut b), ["\n"]);
        assert!(take_lines(&mut Vec::new()).is_empty());
    }

    #[test]
    fn replies_end_with_the_prompt_or_the_end_of_session() {
        let reply = |errno, actions| Reply {
            data: None,
            errno,
            actions,
            prefix: String::new(),
        };
        let (text, closing) = session_reply(&reply(0, vec![]));
        assert!(!closing);
        assert_eq!(text, format!("1000 Success\n{}", console::PROMPT));
        let (text, closing) = session_reply(&reply(libc::ENOENT, vec![]));
        assert!(!closing);
        assert!(text.starts_with("1002 "), "{text:?}");
        // A negative errno prints nothing but the prompt.
        assert_eq!(session_reply(&reply(-1, vec![])).0, console::PROMPT);
        for a in [Action::Logout, Action::Shutdown] {
            let (text, closing) = session_reply(&reply(0, vec![Action::None, a]));
            assert!(closing);
            assert_eq!(text, format!("1000 Success\n{}", console::END_OF_SESSION));
        }
    }

    #[test]
    fn scripts_must_be_small_regular_files() {
        assert!(read_script(Path::new("/dev/zero")).is_err());
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("rc");
        std::fs::write(&p, "vlan/create 3\n").unwrap();
        assert_eq!(read_script(&p).unwrap(), "vlan/create 3\n");
        std::fs::write(&p, vec![b'#'; SCRIPT_MAX as usize + 1]).unwrap();
        assert!(read_script(&p).is_err());
    }

    #[test]
    fn captures_refuse_fifos_and_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let cfg = super::super::Config {
            sock_dir: t.path().join("sw"),
            numports: 2,
            ..Default::default()
        };
        let mut d = Daemon::new(cfg).unwrap();
        // A FIFO with a reader (without one, a blocking open would hang the loop for good).
        let fifo = t.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo/open with a valid path.
        let rd = unsafe {
            assert_eq!(libc::mkfifo(c.as_ptr(), 0o600), 0);
            libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK)
        };
        assert!(rd >= 0);
        let r = d.console_line(&format!("port/capture 1 {}", fifo.display()));
        // SAFETY: closing the fd we opened.
        unsafe { libc::close(rd) };
        assert!(r.errno > 0, "a FIFO is refused");
        // A symlink to a file: the file is left alone.
        let target = t.path().join("precious");
        std::fs::write(&target, "keep").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = t.path().join("link.pcap");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let r = d.console_line(&format!("port/capture 1 {}", link.display()));
        assert!(r.errno > 0, "a symlink is refused");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        // A regular file is fine.
        let ok = t.path().join("ok.pcap");
        let r = d.console_line(&format!("port/capture 1 {}", ok.display()));
        assert_eq!(r.errno, 0);
        d.cleanup();
        assert_eq!(std::fs::metadata(&ok).unwrap().len(), 24, "pcap header");
    }
}
