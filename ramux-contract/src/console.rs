//! The console lines other tools wait for. ramux-init prints them on every console (serial and
//! VGA); vlaunch, the tests and users' scripts match them, so they are formatted and parsed here
//! and nowhere else.
//!
//! - `ramux: ready profile=P role=R host=H`: printed exactly once per console, when the
//!   network is configured, the services are started and the power button is watched (a press
//!   right after the line powers the appliance off).
//! - `ramux: failed WHAT: REASON`: something did not work (a module, a service, a labwall
//!   file); always one line, so it can be grepped.
//! - `ramux: not ready profile=P role=R host=H: REASON`: printed instead of the ready line when
//!   the appliance failed closed (its network or firewall did not apply): no forwarding, no
//!   services. Whoever waits for the ready line stops waiting here.
//! - `ramux: up S s after kernel start (...)`: where the boot time went, after the ready line.

/// What every ready line starts with.
pub const READY_MARKER: &str = "ramux: ready profile=";
/// What every failure line starts with.
pub const FAILED_MARKER: &str = "ramux: failed ";
/// What the line printed instead of the ready line starts with.
pub const NOT_READY_MARKER: &str = "ramux: not ready profile=";
/// What the boot-time line starts with.
pub const UP_MARKER: &str = "ramux: up ";

/// The fields of a ready line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub profile: String,
    pub role: String,
    pub host: String,
}

/// `ramux: ready profile=P role=R host=H`.
pub fn ready_line(profile: &str, role: &str, host: &str) -> String {
    format!("ramux: ready profile={profile} role={role} host={host}")
}

/// Finds a ready line anywhere in `line` (a console may prefix it with escape sequences or a
/// kernel timestamp); `None` unless it names a profile.
pub fn parse_ready(line: &str) -> Option<(usize, Ready)> {
    let at = line.find(READY_MARKER)?;
    let rest = &line[at + "ramux: ready ".len()..];
    let mut r = Ready {
        profile: String::new(),
        role: String::new(),
        host: String::new(),
    };
    for word in rest.split_whitespace() {
        match word.split_once('=') {
            Some(("profile", v)) => r.profile = v.to_string(),
            Some(("role", v)) => r.role = v.to_string(),
            Some(("host", v)) => r.host = v.to_string(),
            _ => {}
        }
    }
    (!r.profile.is_empty()).then_some((at, r))
}

/// `ramux: failed WHAT: REASON`, on one line whatever the reason contains.
pub fn failed_line(what: &str, reason: &str) -> String {
    format!("{FAILED_MARKER}{what}: {}", one_line(reason))
}

/// `ramux: not ready profile=P role=R host=H: REASON`.
pub fn not_ready_line(profile: &str, role: &str, host: &str, reason: &str) -> String {
    format!(
        "{NOT_READY_MARKER}{profile} role={role} host={host}: {}",
        one_line(reason)
    )
}

/// The not-ready line in `line` (from its marker on), if it holds one.
pub fn find_not_ready(line: &str) -> Option<&str> {
    line.find(NOT_READY_MARKER).map(|at| &line[at..])
}

/// Where a failure line starts in `line`, if it holds one.
pub fn find_failed(line: &str) -> Option<usize> {
    line.find(FAILED_MARKER)
}

/// Joins multi-line text so each console message stays one greppable line.
pub fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_not_ready_line_is_no_ready_line() {
        let l = not_ready_line(
            "router",
            "MASTER",
            "r1",
            "/etc/ramux/ruleset.nft did not apply",
        );
        assert_eq!(
            l,
            "ramux: not ready profile=router role=MASTER host=r1: /etc/ramux/ruleset.nft did not apply"
        );
        assert!(parse_ready(&l).is_none());
        assert_eq!(find_not_ready(&format!("\x1b[0m{l}")), Some(l.as_str()));
        assert!(find_not_ready(&ready_line("router", "MASTER", "r1")).is_none());
    }

    #[test]
    fn ready_line_round_trips() {
        let l = ready_line("router", "BACKUP", "router-backup");
        assert_eq!(
            l,
            "ramux: ready profile=router role=BACKUP host=router-backup"
        );
        let (at, r) = parse_ready(&format!("[ 2.1] {l}")).unwrap();
        assert_eq!(at, 7);
        assert_eq!(
            (r.profile.as_str(), r.role.as_str(), r.host.as_str()),
            ("router", "BACKUP", "router-backup")
        );
        assert!(parse_ready("ramux: ready profile= role=X").is_none());
        assert!(parse_ready("echo ramux: ready").is_none());
    }

    #[test]
    fn failed_line_is_one_line() {
        assert_eq!(
            failed_line("labwall", "ip: error\n\n  line 3\n"),
            "ramux: failed labwall: ip: error | line 3"
        );
        assert_eq!(find_failed("x ramux: failed a: b"), Some(2));
        assert_eq!(find_failed("ramux: ready"), None);
    }
}
