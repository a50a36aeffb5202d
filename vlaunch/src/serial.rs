//! Reading the guest's serial console: finding the ready line and keeping the last lines.
//!
//! The console is untrusted input (anything in the guest can print anything), so the scanner is
//! a small pure state machine over bytes: bounded memory whatever arrives, no panics, and the
//! same answer however the bytes are chunked (the fuzz target in `fuzz/` checks exactly that).

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The ready line's marker ([`ramux_contract::console`]): `ramux: ready profile=P role=R host=H`.
pub use ramux_contract::console::READY_MARKER;

/// Longest line kept; the rest of a longer line is dropped (its start is still scanned).
pub const MAX_LINE: usize = 4096;

/// What the ready line said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyInfo {
    pub profile: String,
    pub role: String,
    pub host: String,
    /// The line as printed (cleaned of control characters).
    pub line: String,
}

/// Parses one console line; `None` unless it carries the ready marker with a profile.
pub fn parse_ready(line: &str) -> Option<ReadyInfo> {
    let (at, r) = ramux_contract::console::parse_ready(line)?;
    Some(ReadyInfo {
        profile: r.profile,
        role: r.role,
        host: r.host,
        line: line[at..].trim_end().to_string(),
    })
}

/// Removes ANSI escape sequences (GRUB and OVMF paint the screen with them) and other control
/// characters except tab, so lines read cleanly in error messages.
pub fn clean_line(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params final-byte(0x40..=0x7e); other ESC x: drop two chars.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for d in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&d) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Incremental scanner over console bytes.
#[derive(Debug, Clone)]
pub struct ConsoleScanner {
    partial: Vec<u8>,
    last: VecDeque<String>,
    keep: usize,
    ready: Option<ReadyInfo>,
    not_ready: Option<String>,
    failures: Vec<String>,
}

impl ConsoleScanner {
    /// Keeps the last `keep` complete lines for error reports.
    pub fn new(keep: usize) -> Self {
        ConsoleScanner {
            partial: Vec::new(),
            last: VecDeque::new(),
            keep,
            ready: None,
            not_ready: None,
            failures: Vec::new(),
        }
    }

    /// Feeds bytes as they arrive, in any chunking.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                let raw = std::mem::take(&mut self.partial);
                self.line(&raw);
            } else if self.partial.len() < MAX_LINE {
                self.partial.push(b);
            }
        }
    }

    fn line(&mut self, raw: &[u8]) {
        let line = clean_line(raw);
        if self.ready.is_none() {
            self.ready = parse_ready(&line);
        }
        if self.not_ready.is_none() {
            self.not_ready = ramux_contract::console::find_not_ready(&line).map(String::from);
        }
        if let Some(at) = ramux_contract::console::find_failed(&line) {
            if self.failures.len() < 64 {
                self.failures.push(line[at..].to_string());
            }
        }
        if self.keep > 0 {
            if self.last.len() == self.keep {
                self.last.pop_front();
            }
            self.last.push_back(line);
        }
    }

    /// The first ready line seen, if any.
    pub fn ready(&self) -> Option<&ReadyInfo> {
        self.ready.as_ref()
    }

    /// The `ramux: not ready ...` line, if the appliance failed closed.
    pub fn not_ready(&self) -> Option<&str> {
        self.not_ready.as_deref()
    }

    /// `ramux: failed ...` lines seen (at most 64).
    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    /// The last complete lines plus the current partial line (cleaned), oldest first.
    pub fn last_lines(&self) -> Vec<String> {
        let mut v: Vec<String> = self.last.iter().cloned().collect();
        if !self.partial.is_empty() {
            v.push(clean_line(&self.partial));
        }
        v.retain(|l| !l.trim().is_empty());
        v
    }
}

/// The fuzz body (also run by a unit test): feeding `data` whole and in pieces split at the
/// positions given by its first bytes must give the same verdict, and nothing may panic.
pub fn fuzz_console(data: &[u8]) {
    let (cuts, body) = data.split_at(data.len().min(4));
    let mut whole = ConsoleScanner::new(8);
    whole.feed(body);
    let mut pieces = ConsoleScanner::new(8);
    let mut pos = 0;
    for &c in cuts {
        let end = (pos + c as usize).min(body.len());
        pieces.feed(&body[pos..end]);
        pos = end;
    }
    pieces.feed(&body[pos..]);
    assert_eq!(whole.ready(), pieces.ready());
    assert_eq!(whole.failures(), pieces.failures());
    assert_eq!(whole.last_lines(), pieces.last_lines());
    assert!(whole.last_lines().len() <= 9);
    if let Some(r) = whole.ready() {
        assert!(r.line.starts_with(READY_MARKER));
    }
    let _ = parse_ready(&String::from_utf8_lossy(body));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ready_line_among_kernel_noise() {
        let mut s = ConsoleScanner::new(3);
        s.feed(b"[    1.42] Run /init as init process\r\n");
        s.feed(b"ramux: failed sshd: No such file or directory\r\n");
        assert!(s.ready().is_none());
        s.feed(b"ramux: ready profile=router role=BACK");
        assert!(s.ready().is_none(), "partial line must not count");
        s.feed(b"UP host=router-backup\r\n[    1.50] random: crng init done\n");
        let r = s.ready().unwrap();
        assert_eq!(
            (r.profile.as_str(), r.role.as_str(), r.host.as_str()),
            ("router", "BACKUP", "router-backup")
        );
        assert_eq!(
            r.line,
            "ramux: ready profile=router role=BACKUP host=router-backup"
        );
        assert_eq!(
            s.failures(),
            ["ramux: failed sshd: No such file or directory"]
        );
        assert_eq!(s.last_lines().len(), 3);
        assert_eq!(s.last_lines()[2], "[    1.50] random: crng init done");
    }

    #[test]
    fn marker_after_printk_interleave_and_escapes() {
        let l = clean_line(
            b"\x1b[0m\x1b[30;40H[ 2.1] x ramux: ready profile=dns role=MASTER host=d1\r",
        );
        assert_eq!(parse_ready(&l).unwrap().host, "d1");
        assert!(parse_ready("ramux: ready profile= role=X").is_none());
        assert!(parse_ready("echo ramux: ready").is_none());
    }

    #[test]
    fn first_ready_line_wins_and_memory_is_bounded() {
        let mut s = ConsoleScanner::new(2);
        s.feed(b"ramux: ready profile=a role=B host=c\nramux: ready profile=x role=Y host=z\n");
        assert_eq!(s.ready().unwrap().profile, "a");
        s.feed(&vec![b'x'; 100_000]);
        assert_eq!(s.last_lines().last().unwrap().len(), MAX_LINE);
    }

    #[test]
    fn fuzz_body_over_samples() {
        let samples: &[&[u8]] = &[
            b"",
            b"\x03\x05\x01\x00ramux: ready profile=r role=B host=h\n",
            b"\xff\xfe\x00\x01\x1b[\x1b\x1b[999;999Hramux: ready profile=\xc3\x28 role\n",
            b"\x01\x01\x01\x01\n\n\n\r\r\rramux: failed x: y\n",
            &[0x1b; 64],
        ];
        for s in samples {
            fuzz_console(s);
        }
    }
}
