//! Console lines: the exact strings other tools match ([`ramux_contract::console`]), and where
//! to write them.

use crate::config::Appliance;
use crate::supervise::{Cause, Exit, Failure};

pub use ramux_contract::console::{failed_line, one_line};

/// Printed exactly once per console device when the appliance is up.
pub fn ready_line(a: &Appliance) -> String {
    ramux_contract::console::ready_line(&a.profile, &a.role, &a.hostname)
}

/// The line printed instead of [`ready_line`] when the appliance failed closed.
pub fn not_ready_line(a: &Appliance, reason: &str) -> String {
    ramux_contract::console::not_ready_line(&a.profile, &a.role, &a.hostname, reason)
}

/// The console line for a supervised entry's failure.
pub fn failure_line(f: &Failure) -> String {
    let mut reason = match &f.cause {
        Cause::SpawnFailed(why) => format!("cannot start: {why}"),
        Cause::Exited(e) => describe_exit(*e),
    };
    if let Some(ms) = f.retry_in_ms {
        reason.push_str(&format!(", restarting in {}", seconds(ms)));
    }
    failed_line(&f.name, &reason)
}

pub fn describe_exit(e: Exit) -> String {
    match e {
        Exit::Code(c) => format!("exited with status {c}"),
        Exit::Signal(s) => match signal_name(s) {
            Some(n) => format!("killed by signal {s} ({n})"),
            None => format!("killed by signal {s}"),
        },
    }
}

fn signal_name(s: i32) -> Option<&'static str> {
    Some(match s {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return None,
    })
}

/// `1.5 s`, `0.2 s`, `30 s` (rounded up to tenths, so a short delay never reads `0 s`).
pub fn seconds(ms: u64) -> String {
    let tenths = ms.div_ceil(100);
    if tenths % 10 == 0 {
        format!("{} s", tenths / 10)
    } else {
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}

/// Device files to write console messages to, from `/sys/class/tty/console/active` (e.g.
/// `tty0 ttyS0`): one write per physical console, so a line shows on VGA and serial but never
/// twice on the serial port. (Writing to `/dev/console` *and* `/dev/ttyS0` would duplicate it,
/// since `/dev/console` is the last `console=` device.) Falls back to `/dev/console`.
pub fn console_devices(active: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in active.unwrap_or("").split_whitespace() {
        let valid = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let dev = format!("/dev/{name}");
        if valid && !out.contains(&dev) {
            out.push(dev);
        }
    }
    if out.is_empty() {
        out.push("/dev/console".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_is_exact() {
        let a = crate::config::parse(
            "a",
            "profile = \"router\"\nrole = \"MASTER\"\nhostname = \"rt1\"\nkernel_release = \"6.1.0-56-amd64\"\n",
        )
        .unwrap()
        .appliance;
        assert_eq!(
            ready_line(&a),
            "ramux: ready profile=router role=MASTER host=rt1"
        );
    }

    #[test]
    fn failure_lines() {
        let f = Failure {
            name: "sshd".into(),
            cause: Cause::Exited(Exit::Code(255)),
            retry_in_ms: Some(1500),
            quiet: false,
        };
        assert_eq!(
            failure_line(&f),
            "ramux: failed sshd: exited with status 255, restarting in 1.5 s"
        );
        let f = Failure {
            name: "x".into(),
            cause: Cause::Exited(Exit::Signal(9)),
            retry_in_ms: None,
            quiet: false,
        };
        assert_eq!(
            failure_line(&f),
            "ramux: failed x: killed by signal 9 (SIGKILL)"
        );
        let f = Failure {
            name: "x".into(),
            cause: Cause::SpawnFailed("No such file or directory (os error 2)".into()),
            retry_in_ms: Some(200),
            quiet: false,
        };
        assert_eq!(failure_line(&f), "ramux: failed x: cannot start: No such file or directory (os error 2), restarting in 0.2 s");
        assert_eq!(
            failed_line(
                "labwall",
                "ip -batch: exit 1\nCannot find device \"eth9\"\n\n"
            ),
            "ramux: failed labwall: ip -batch: exit 1 | Cannot find device \"eth9\""
        );
    }

    #[test]
    fn seconds_format() {
        assert_eq!(seconds(30_000), "30 s");
        assert_eq!(seconds(200), "0.2 s");
        assert_eq!(seconds(50), "0.1 s");
        assert_eq!(seconds(1050), "1.1 s");
    }

    #[test]
    fn console_devices_from_active() {
        assert_eq!(
            console_devices(Some("tty0 ttyS0\n")),
            vec!["/dev/tty0", "/dev/ttyS0"]
        );
        assert_eq!(console_devices(Some("ttyS0 ttyS0")), vec!["/dev/ttyS0"]);
        assert_eq!(console_devices(Some("")), vec!["/dev/console"]);
        assert_eq!(console_devices(None), vec!["/dev/console"]);
        assert_eq!(console_devices(Some("../x")), vec!["/dev/console"]);
    }
}
