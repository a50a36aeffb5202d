//! `/etc/ramux/sysctl.conf`: `key = value` lines applied by writing `/proc/sys/<key>`.
//!
//! Same syntax as procps `sysctl -p` / sysctl.d(5): `#` and `;` comments, blank lines, keys with
//! `.` separators (or `/`, which allows interface names containing dots such as `eth0.10`), and a
//! leading `-` meaning "ignore a failure to write this key". Written in-house because procps'
//! `sysctl` is not in the image and the format is tiny.

use std::path::PathBuf;

/// One setting to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// 1-based line in the file, for error messages.
    pub line: usize,
    pub key: String,
    pub value: String,
    /// `-key = value`: a write failure is not an error.
    pub ignore_failure: bool,
}

impl Setting {
    /// The file under `/proc/sys` this key names.
    pub fn proc_path(&self) -> PathBuf {
        let rel = if self.key.contains('/') {
            self.key.clone()
        } else {
            self.key.replace('.', "/")
        };
        PathBuf::from("/proc/sys").join(rel.trim_start_matches('/'))
    }
}

/// A line that is not `key = value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses the whole file; returns the good settings and every bad line (bad lines are reported but
/// do not stop the good ones from being applied, like `sysctl -p`).
pub fn parse(text: &str) -> (Vec<Setting>, Vec<ParseError>) {
    let mut settings = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            errors.push(ParseError {
                line,
                message: format!("expected `key = value`, got {l:?}"),
            });
            continue;
        };
        let (ignore_failure, k) = match k.trim().strip_prefix('-') {
            Some(rest) => (true, rest.trim()),
            None => (false, k.trim()),
        };
        let valid = !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
            && !k.split(['.', '/']).any(|p| p == "..")
            && !k.contains("//");
        if !valid || (!k.contains('/') && k.split('.').any(|p| p.is_empty())) {
            errors.push(ParseError {
                line,
                message: format!("invalid sysctl key {k:?}"),
            });
            continue;
        }
        if k.split('/').any(|p| p == "..") {
            errors.push(ParseError {
                line,
                message: format!("invalid sysctl key {k:?}"),
            });
            continue;
        }
        settings.push(Setting {
            line,
            key: k.to_string(),
            value: v.trim().to_string(),
            ignore_failure,
        });
    }
    (settings, errors)
}

/// Fuzz body: never panics, and every accepted key stays under /proc/sys.
pub fn fuzz_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (settings, _) = parse(&text);
    for s in settings {
        let p = s.proc_path();
        assert!(p.starts_with("/proc/sys"));
        assert!(!p.components().any(|c| c == std::path::Component::ParentDir));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let (s, e) = parse("# comment\n; other\n\nnet.ipv4.ip_forward = 1\n -net.ipv6.conf.all.forwarding=1 \nnet/ipv4/conf/eth0.10/rp_filter = 2\nkernel.printk = 4 4 1 7\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].line, 4);
        assert_eq!(
            s[0].proc_path(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert!(s[1].ignore_failure);
        assert_eq!(
            s[2].proc_path(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.10/rp_filter")
        );
        assert_eq!(s[3].value, "4 4 1 7");
    }

    #[test]
    fn reports_bad_lines_and_keeps_good() {
        let (s, e) = parse("net.ipv4.ip_forward\nnet..x = 1\n../etc/passwd = x\nnet/../../x = 1\nvm.swappiness = 10\n");
        assert_eq!(s.len(), 1);
        assert_eq!(
            e.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
    }

    #[test]
    fn fuzz_body_samples() {
        for t in [
            "",
            "=",
            "-=",
            "a=b",
            "/a/../b=1",
            "a.b/c = d",
            "\u{0}=\u{0}",
            "-",
        ] {
            fuzz_parse(t.as_bytes());
        }
    }
}
