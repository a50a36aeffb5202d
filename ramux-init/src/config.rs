//! `/etc/ramux/appliance.toml`: what this appliance is and what it runs (the format is
//! [`ramux_contract::appliance`]; unknown keys are warnings, not errors, so an image built by a
//! newer vbuild still boots).
//!
//! Parsing is pure (text in, [`Appliance`] or a located error out) so the builder can validate
//! the file at build time with `ramux-init check FILE` and PID 1 never meets a surprise at boot.

use std::fmt;

pub use ramux_contract::appliance::{
    Appliance, Service, APPLIANCE_TOML, DEFAULT_RESTART_DELAY_MS, SERVICE_KEYS, TOP_KEYS,
};

/// A config error located in the file, rendered as `file:line:col: message` (col omitted when
/// the error concerns a whole value without a precise position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// Parsed config plus non-fatal remarks (unknown keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub appliance: Appliance,
    pub warnings: Vec<String>,
}

/// Parses and validates `text`; `file` only names the source in messages.
pub fn parse(file: &str, text: &str) -> Result<Parsed, ConfigError> {
    let at = |offset: usize, message: String| {
        let (line, col) = line_col(text, offset);
        ConfigError {
            file: file.to_string(),
            line,
            col,
            message,
        }
    };
    let appliance: Appliance = match toml::from_str(text) {
        Ok(a) => a,
        Err(e) => return Err(at(e.span().map_or(0, |s| s.start), flat(e.message()))),
    };
    let mut warnings = Vec::new();
    if let Ok(table) = text.parse::<toml::Table>() {
        for key in table.keys().filter(|k| !TOP_KEYS.contains(&k.as_str())) {
            warnings.push(format!("{file}: unknown key `{key}` ignored"));
        }
        if let Some(toml::Value::Array(services)) = table.get("service") {
            for (i, s) in services.iter().enumerate() {
                if let toml::Value::Table(t) = s {
                    for key in t.keys().filter(|k| !SERVICE_KEYS.contains(&k.as_str())) {
                        warnings.push(format!(
                            "{file}: [[service]] #{}: unknown key `{key}` ignored",
                            i + 1
                        ));
                    }
                }
            }
        }
    }
    // Semantic checks: located at the offending value's text where we can find it.
    let locate = |needle: &str| text.find(needle).unwrap_or(0);
    for (key, value) in [("profile", &appliance.profile), ("role", &appliance.role)] {
        if value.is_empty()
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(at(
                locate(key),
                format!("`{key}` must be non-empty [A-Za-z0-9_-], got {value:?}"),
            ));
        }
    }
    if let Err(why) = check_hostname(&appliance.hostname) {
        return Err(at(
            locate("hostname"),
            format!("`hostname` {why}: {:?}", appliance.hostname),
        ));
    }
    if appliance.kernel_release.is_empty() || appliance.kernel_release.contains('/') {
        return Err(at(
            locate("kernel_release"),
            format!(
                "`kernel_release` must be a release name like 6.1.0-56-amd64, got {:?}",
                appliance.kernel_release
            ),
        ));
    }
    for m in &appliance.modules {
        if m.is_empty()
            || m.starts_with('/')
            || m.split('/').any(|p| p == "..")
            || !m.contains(".ko")
        {
            return Err(at(
                locate(&format!("\"{m}\"")),
                format!("module {m:?} must be a relative .ko path under /lib/modules/<release>/ (e.g. kernel/drivers/net/virtio_net.ko)"),
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in &appliance.services {
        let here = locate(&format!("\"{}\"", s.name));
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(at(
                here,
                format!("service name {:?} must match [a-z0-9-]+", s.name),
            ));
        }
        if !seen.insert(s.name.as_str()) {
            return Err(at(
                here,
                format!(
                    "service name {:?} is used twice; names must be unique",
                    s.name
                ),
            ));
        }
        match s.argv.first() {
            None => return Err(at(here, format!("service {:?}: argv is empty; give the program and its arguments", s.name))),
            Some(a0) if !a0.starts_with('/') => {
                return Err(at(here, format!("service {:?}: argv[0] {a0:?} must be an absolute path (no shell, no PATH search)", s.name)))
            }
            _ => {}
        }
        for name in &s.secrets {
            if let Err(e) = ramux_contract::secrets::check_path(name) {
                return Err(at(here, format!("service {:?}: secrets: {e}", s.name)));
            }
        }
        if s.argv.iter().any(|a| a.contains('\0'))
            || s.env
                .iter()
                .any(|(k, v)| k.contains(['\0', '=']) || k.is_empty() || v.contains('\0'))
        {
            return Err(at(
                here,
                format!(
                    "service {:?}: argv/env must not contain NUL, env keys no `=`",
                    s.name
                ),
            ));
        }
    }
    Ok(Parsed {
        appliance,
        warnings,
    })
}

/// RFC 1123 host name: labels of [A-Za-z0-9-], not starting/ending with `-`, total <= 64 (the
/// kernel's limit for `sethostname`).
fn check_hostname(h: &str) -> Result<(), &'static str> {
    if h.is_empty() || h.len() > 64 {
        return Err("must be 1..=64 characters");
    }
    for label in h.split('.') {
        if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
            return Err("has an empty label or a label starting/ending with '-'");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("may only contain letters, digits, '-' and '.'");
        }
    }
    Ok(())
}

fn flat(s: &str) -> String {
    s.trim().replace('\n', " ")
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Module name as the kernel and `lsmod` spell it: file stem without `.ko*`, `-` read as `_`
/// (virtio-rng.ko registers as virtio_rng).
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split(".ko").next().unwrap_or(file).replace('-', "_")
}

/// Fuzz body: parsing arbitrary bytes must never panic.
pub fn fuzz_parse(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = parse("fuzz.toml", text) {
            assert!(!p.appliance.hostname.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
profile = "router"
role = "BACKUP"
hostname = "router-backup"
kernel_release = "6.1.0-56-amd64"
modules = ["kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko"]
[[service]]
name = "sshd"
argv = ["/usr/sbin/sshd", "-D"]
[[service]]
name = "vrrpd"
argv = ["/usr/sbin/vrrpd", "-f", "/etc/keepalived/keepalived.conf"]
env = { RUST_LOG = "info" }
restart_delay_ms = 250
"#;

    #[test]
    fn parses_contract_example() {
        let p = parse("a.toml", GOOD).unwrap();
        let a = p.appliance;
        assert!(p.warnings.is_empty());
        assert_eq!(a.profile, "router");
        assert_eq!(a.role, "BACKUP");
        assert_eq!(a.modules.len(), 2);
        assert_eq!(a.services[0].restart_delay_ms, DEFAULT_RESTART_DELAY_MS);
        assert_eq!(a.services[1].restart_delay_ms, 250);
        assert_eq!(a.services[1].env["RUST_LOG"], "info");
    }

    #[test]
    fn syntax_error_is_located() {
        let e = parse("/etc/ramux/appliance.toml", "profile = \"r\"\nrole = \n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(
            e.to_string().starts_with("/etc/ramux/appliance.toml:2:"),
            "{e}"
        );
    }

    #[test]
    fn missing_field_names_it() {
        let e = parse(
            "a.toml",
            "profile = \"r\"\nrole = \"MASTER\"\nhostname = \"h\"\n",
        )
        .unwrap_err();
        assert!(e.message.contains("kernel_release"), "{e}");
    }

    #[test]
    fn type_error_points_at_value() {
        let text = GOOD.replace("restart_delay_ms = 250", "restart_delay_ms = \"soon\"");
        let e = parse("a.toml", &text).unwrap_err();
        assert_eq!(e.line, 14, "{e}");
    }

    #[test]
    fn rejects_relative_argv0_and_duplicates() {
        let e = parse("a.toml", &GOOD.replace("\"/usr/sbin/sshd\"", "\"sshd\"")).unwrap_err();
        assert!(e.message.contains("absolute"), "{e}");
        assert_eq!(e.line, 8, "{e}");
        let e = parse(
            "a.toml",
            &GOOD.replace("name = \"vrrpd\"", "name = \"sshd\""),
        )
        .unwrap_err();
        assert!(e.message.contains("twice"), "{e}");
        let e = parse(
            "a.toml",
            &GOOD.replace("name = \"vrrpd\"", "name = \"Vrrp d\""),
        )
        .unwrap_err();
        assert!(e.message.contains("[a-z0-9-]+"), "{e}");
        let e = parse(
            "a.toml",
            &GOOD.replace("argv = [\"/usr/sbin/sshd\", \"-D\"]", "argv = []"),
        )
        .unwrap_err();
        assert!(e.message.contains("argv is empty"), "{e}");
    }

    #[test]
    fn rejects_bad_hostname_and_modules() {
        let e = parse("a.toml", &GOOD.replace("router-backup", "-bad")).unwrap_err();
        assert!(e.message.contains("hostname"), "{e}");
        assert_eq!(e.line, 4);
        let e = parse(
            "a.toml",
            &GOOD.replace("kernel/drivers/net/net_failover.ko", "../../etc/x.ko"),
        )
        .unwrap_err();
        assert!(e.message.contains("relative .ko path"), "{e}");
    }

    #[test]
    fn unknown_keys_warn_but_parse() {
        let text = format!(
            "future = 1\n{}",
            GOOD.replace("name = \"sshd\"", "name = \"sshd\"\nuser = \"x\"")
        );
        let p = parse("a.toml", &text).unwrap();
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    }

    #[test]
    fn line_col_never_splits_a_char() {
        assert_eq!(line_col("é\nx", 1), (1, 1));
        assert_eq!(line_col("é\nx", 3), (2, 1));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn module_names() {
        assert_eq!(
            module_name("kernel/drivers/net/virtio_net.ko"),
            "virtio_net"
        );
        assert_eq!(module_name("kernel/drivers/input/evdev.ko.xz"), "evdev");
        assert_eq!(module_name("button.ko"), "button");
        assert_eq!(
            module_name("kernel/drivers/char/hw_random/virtio-rng.ko"),
            "virtio_rng"
        );
    }

    #[test]
    fn fuzz_body_survives_samples() {
        for s in [
            GOOD,
            "",
            "[[service]]",
            "modules = [1]",
            "\u{0}",
            "a = [[[",
            "hostname = \"h\"\n[[service]]\nargv = [\"\"]",
        ] {
            fuzz_parse(s.as_bytes());
        }
        fuzz_parse(&[0xff, 0xfe]);
    }
}
