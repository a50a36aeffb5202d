//! `ramux-init`: PID 1 of ramux appliances, or `ramux-init check` to validate an image's config.
//!
//! `no_main`: Rust's normal startup opens /dev/null for closed fds 0-2 and aborts if it cannot;
//! as the kernel's first process in an initramfs without /dev, that would abort PID 1 and panic
//! the kernel. With our own C `main`, fds are set up after devtmpfs is mounted.
#![no_main]

use std::os::raw::{c_char, c_int};
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ramux-init",
    version,
    about = "PID 1 of ramux appliances (run as /init); `check` validates an image's configuration",
    after_help = "Examples:\n  ramux keep status                  # on an appliance (ramux is this binary)\n  ramux-init check rootfs/etc/ramux/appliance.toml\n  ramux-init check appliance.toml --sysctl sysctl.conf\n  ramux-init check appliance.toml --json\n\nAs PID 1 it ignores its arguments and boots the appliance from /etc/ramux/appliance.toml."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate an appliance.toml (and optionally a sysctl.conf) exactly as PID 1 parses it.
    Check {
        /// Path to appliance.toml.
        file: PathBuf,
        /// Also validate this sysctl.conf.
        #[arg(long)]
        sysctl: Option<PathBuf>,
        /// Print the report as JSON on stdout (exit status still says valid or not).
        #[arg(long)]
        json: bool,
    },
    /// The site's USB key (RAMUXKEY): commit the kept files, or show, compare, list, revert.
    #[command(
        after_help = "Examples:\n  ramux keep status\n  ramux keep diff\n  ramux keep commit -m \"new ssh host key\"\n  ramux keep list --json\n  ramux keep revert 41\n\nThe files kept are those /etc/ramux/keep.list allows; docs/keep.md."
    )]
    Keep {
        #[command(subcommand)]
        action: ramux_init::keep_cmd::Action,
        /// The host's directory on the key (default: this machine's hostname).
        #[arg(long, global = true)]
        host: Option<String>,
    },
}

#[no_mangle]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    if std::process::id() == 1 {
        ramux_init::pid1();
    }
    match Cli::parse().cmd {
        Some(Cmd::Check { file, sysctl, json }) => {
            let report = ramux_init::check(&file, sysctl.as_deref());
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else if report.ok {
                print!("{report}");
            } else {
                eprint!("{report}");
            }
            if report.ok {
                0
            } else {
                1
            }
        }
        Some(Cmd::Keep { action, host }) => {
            ramux_init::keep_cmd::run(&action, host.as_deref(), wall_clock_secs())
        }
        None => {
            eprintln!("ramux-init: must run as PID 1 (the appliance's /init); use `ramux-init check FILE` to validate a config");
            2
        }
    }
}

/// The commit time stored on the key: the one place this binary reads the wall clock.
#[allow(clippy::disallowed_methods)]
fn wall_clock_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
