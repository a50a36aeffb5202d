//! `vlaunch lab`: a whole site (switches, nodes, their VLANs) brought up and down from one
//! `lab.toml` (docs/lab.md). The file's reading, checks, start order, graphs and status types
//! are ramux-lab's (pure); this module does the I/O: the host checks, the switch daemons and
//! their consoles, the VMs through [`crate::launch`], and the lab state directory.
//!
//! - [`check`]: `validate` (file, site when available, host) and the lab for `graph`/`up`;
//! - [`state`]: the lab directory and `state.json` (every resource recorded before creation);
//! - [`switch`]: switch commands (pure), daemon start/stop, the management console;
//! - [`up`], [`down`], [`status`]: the commands; [`changes`]: what differs from a running lab;
//! - [`node`] finds a started node; [`fault`], [`restart`], [`capture`] act on one.

pub mod build;
pub mod capture;
pub mod changes;
pub mod check;
pub mod cli;
pub mod down;
pub mod fault;
pub mod guest;
pub mod labtest;
pub mod node;
pub mod restart;
pub mod secrets;
pub mod state;
pub mod status;
pub mod switch;
pub mod up;
pub mod uplink;

use std::path::Path;
use std::time::{Duration, Instant};

pub use check::{check, RealHost};
pub use state::{labs_root, LabDir, LabState};

/// True when `pid` is alive (not a zombie) and its command line has `arg` as one argument:
/// how a recorded pid is trusted (a recycled pid is never signalled).
pub fn process_has_arg(pid: u32, arg: &Path) -> bool {
    let proc = format!("/proc/{pid}");
    let Ok(stat) = std::fs::read_to_string(format!("{proc}/stat")) else {
        return false;
    };
    if let Some((_, rest)) = stat.rsplit_once(')') {
        if matches!(rest.split_whitespace().next(), Some("Z" | "X")) {
            return false;
        }
    }
    let Ok(cmdline) = std::fs::read(format!("{proc}/cmdline")) else {
        return false;
    };
    let want = arg.as_os_str().as_encoded_bytes();
    cmdline.split(|&b| b == 0).any(|a| a == want)
}

/// SIGTERM, wait up to `grace` while `alive(pid)`, then SIGKILL and wait 3 s more. True when
/// the process is gone.
pub fn terminate(pid: u32, grace: Duration, alive: impl Fn(u32) -> bool) -> bool {
    use nix::sys::signal::{kill, Signal};
    let p = nix::unistd::Pid::from_raw(pid as i32);
    for (sig, wait) in [
        (Signal::SIGTERM, grace),
        (Signal::SIGKILL, Duration::from_secs(3)),
    ] {
        let _ = kill(p, sig);
        let t0 = Instant::now();
        while t0.elapsed() < wait {
            if !alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    !alive(pid)
}
