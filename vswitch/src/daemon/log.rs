//! Log lines: stderr in the foreground, syslog once daemonised, rate-limited per kind.

use std::collections::HashMap;
use std::ffi::CString;
use std::time::{Duration, Instant};

/// Rate-limited logging: at most 10 lines per kind per 10 s window.
pub(super) struct RateLog {
    window: HashMap<&'static str, (Instant, u32, u64)>,
    pub(super) syslog: bool,
}

impl RateLog {
    pub(super) fn new() -> Self {
        RateLog {
            window: HashMap::new(),
            syslog: false,
        }
    }

    pub(super) fn log(&mut self, kind: &'static str, msg: &str) {
        let now = Instant::now();
        let e = self.window.entry(kind).or_insert((now, 0, 0));
        if now.duration_since(e.0) > Duration::from_secs(10) {
            let suppressed = e.2;
            *e = (now, 0, 0);
            if suppressed > 0 {
                emit(
                    self.syslog,
                    &format!("{kind}: {suppressed} similar messages suppressed"),
                );
            }
        }
        e.1 += 1;
        if e.1 <= 10 {
            emit(self.syslog, &format!("{kind}: {msg}"));
        } else {
            e.2 += 1;
        }
    }
}

/// One log line, to syslog or to stderr.
pub(super) fn emit(syslog: bool, msg: &str) {
    if syslog {
        if let Ok(c) = CString::new(msg.replace('%', "%%")) {
            // SAFETY: format string is a constant "%s" and c is a valid NUL-terminated string.
            unsafe { libc::syslog(libc::LOG_INFO, c"%s".as_ptr(), c.as_ptr()) };
        }
    } else {
        eprintln!("vswitch: {msg}");
    }
}
