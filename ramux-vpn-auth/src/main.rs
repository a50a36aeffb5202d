use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

const EXAMPLES: &str = "Examples:
  ramux-vpn-auth                                   # /etc/ramux/vpn-auth.toml, secrets in /run/ramux/secrets
  ramux-vpn-auth -c /tmp/vpn-auth.toml --secrets-dir /tmp/lab-secrets --status-file /tmp/vpn-auth.status
  ramux-vpn-auth --check -c /etc/ramux/vpn-auth.toml   # validate the file and the secrets, then exit
  ramux-vpn-auth --status                          # counters and clients of the running daemon

Each OpenVPN server it serves runs with:
  management /run/ramux/vpn/vlan10.sock unix
  management-client-auth
  management-hold
  topology subnet

Exit status: 0 after SIGTERM or --check/--status success, 1 on a bad configuration (the message names
file:line:col) or a missing status file.";

/// Authorises OpenVPN clients of every VLAN server through its management interface and RADIUS.
#[derive(Parser, Debug)]
#[command(name = "ramux-vpn-auth", version, after_help = EXAMPLES)]
struct Args {
    /// The authorisation setup written by labwall.
    #[arg(short, long, default_value = ramux_contract::vpn::VPN_AUTH_CONF)]
    config: PathBuf,
    /// Where the RADIUS secrets named in the file are.
    #[arg(long, default_value = "/run/ramux/secrets")]
    secrets_dir: PathBuf,
    /// The status file the daemon rewrites twice a second, and --status reads.
    #[arg(long, default_value = "/run/ramux/vpn-auth.status")]
    status_file: PathBuf,
    /// Print the running daemon's counters and clients, then exit.
    #[arg(long)]
    status: bool,
    /// Refuse RADIUS replies that carry no Message-Authenticator (BlastRADIUS hardening; the
    /// server must sign its Access-Accept/Reject, which FreeRADIUS 3.2.1 does only when told).
    #[arg(long)]
    require_signed_replies: bool,
    /// Check the configuration and secrets, then exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let a = Args::parse();
    if a.status {
        return match std::fs::read_to_string(&a.status_file) {
            Ok(s) => {
                print!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!(
                    "ramux-vpn-auth: {}: {e} (is the daemon running?)",
                    a.status_file.display()
                );
                ExitCode::FAILURE
            }
        };
    }
    let mut cfg = match ramux_vpn_auth::config::load(&a.config, &a.secrets_dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ramux-vpn-auth: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    for s in &mut cfg.servers {
        s.require_ma = a.require_signed_replies;
    }
    if a.check {
        println!(
            "{}: {} VLAN server(s), {} RADIUS server(s): ok",
            a.config.display(),
            cfg.vlans.len(),
            cfg.servers.len()
        );
        return ExitCode::SUCCESS;
    }
    match ramux_vpn_auth::run::run(cfg, a.status_file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ramux-vpn-auth: {e:#}");
            ExitCode::FAILURE
        }
    }
}
