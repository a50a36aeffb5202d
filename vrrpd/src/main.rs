//! vrrpd command line: parses arguments and calls the library.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vrrpd::daemon::{self, Options, DEFAULT_SOCKET};

#[derive(Parser)]
#[command(
    name = "vrrpd",
    version,
    about = "VRRP v2/v3 daemon that reads keepalived.conf and interoperates with keepalived",
    after_help = "Examples:
  vrrpd -n -l -f /etc/keepalived/keepalived.conf     run in the foreground, log to the console
  vrrpd --check -f /etc/keepalived/keepalived.conf   check the configuration and exit
  vrrpd status                                       per-instance state, master, counters
  vrrpd status --json --socket /run/vrrpd/lab.sock   the same as JSON, for scripts"
)]
struct Cli {
    /// keepalived.conf to read.
    #[arg(
        short = 'f',
        long = "use-file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    file: PathBuf,
    /// Don't fork: stay in the foreground.
    #[arg(short = 'n', long = "dont-fork")]
    dont_fork: bool,
    /// Log to the console (stderr) instead of syslog.
    #[arg(short = 'l', long = "log-console")]
    log_console: bool,
    /// Check the configuration, print a summary and exit (non-zero on errors).
    #[arg(short = 't', long = "check")]
    check: bool,
    /// Write the daemon's pid to FILE.
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pid: Option<PathBuf>,
    /// Configuration id for `@NAME` conditional lines (default: the host name up to its first dot).
    #[arg(short = 'i', long = "config-id", value_name = "ID")]
    config_id: Option<String>,
    /// Accepted for keepalived command-line compatibility (detailed logging is always on).
    #[arg(short = 'D', long = "log-detail", hide = true)]
    _log_detail: bool,
    /// Accepted for keepalived command-line compatibility (vrrpd only does VRRP).
    #[arg(short = 'P', long = "vrrp", hide = true)]
    _vrrp_only: bool,
    /// Control socket path.
    #[arg(long, default_value = DEFAULT_SOCKET, global = true)]
    socket: PathBuf,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Ask the running daemon for its state.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Some(Cmd::Status { json }) => daemon::query_status(&cli.socket).map(|s| {
            if json {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            } else {
                print!("{}", s.render());
            }
        }),
        None if cli.check => {
            daemon::check(&cli.file, &daemon::load_options(cli.config_id)).map(|s| print!("{s}"))
        }
        None => daemon::run(&Options {
            config: cli.file,
            socket: cli.socket,
            foreground: cli.dont_fork,
            console_log: cli.log_console,
            pid_file: cli.pid,
            config_id: cli.config_id,
        }),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vrrpd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
