//! `vswitch`: command line only; the switch is in the library.
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use vswitch::accounts::gid_of;
use vswitch::daemon::{addr_port, octal, path_port, Config, VxlanCfg};

const EXAMPLES: &str = "\
Examples:
  vswitch -s /run/ramux/switch -M /run/ramux/switch.mgmt -d
  vswitch -s /tmp/sw -f lab.rc -n 64 --hashsize 1024
  qemu-system-x86_64 ... -netdev vde,id=n0,sock=/tmp/sw,port=4 -device virtio-net-pci,netdev=n0
  vswitch ctl -M /tmp/sw.mgmt port/print
  vswitch ctl -M /tmp/sw.mgmt --json port/print 4
  vswitch ctl -M /tmp/sw.mgmt port/impair 4 out delay 20+5
  dpipe vde_plug /tmp/swA = ssh otherhost vswitch plug /tmp/swB:3
  vswitch -s /tmp/sw --stream /tmp/sw.stream:5 --dgram /tmp/sw.dgram:6
    qemu ... -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/tmp/sw.stream
    qemu ... -netdev dgram,id=n0,local.type=unix,local.path=/tmp/q.dgram,remote.type=unix,remote.path=/tmp/sw.dgram
  vswitch -s /tmp/sw --port-streams        (port 4 also at /tmp/sw.streams/4)
    qemu ... -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/tmp/sw.streams/4
  vswitch -s /tmp/sw --vxlan vni=42,local=192.0.2.1:4789,remote=192.0.2.2:4789

rc file / console commands (vde_switch syntax): vlan/create 10, port/create 4,
port/setvlan 4 10, vlan/addport 10 5, port/setnumports 64, help.";

#[derive(Parser, Debug)]
#[command(name = "vswitch", version, about = "VDE2-compatible 802.1Q switch (drop-in for vde_switch)",
          after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Control directory (clients connect to DIR/ctl).
    #[arg(short = 's', long = "sock", visible_aliases = ["vdesock", "unix"], value_name = "DIR")]
    sock: Option<PathBuf>,
    /// Management console socket (unixterm / vdeterm / `vswitch ctl`).
    #[arg(short = 'M', long = "mgmt", value_name = "PATH")]
    mgmt: Option<PathBuf>,
    /// Number of ports: ports 1..=N are usable (upstream vde-2 HEAD semantics).
    #[arg(short = 'n', long = "numports", default_value_t = 32)]
    numports: u16,
    /// Hub mode: every frame goes to every other port.
    #[arg(short = 'x', long = "hub")]
    hub: bool,
    /// Daemonize (log to syslog, no stdin console).
    #[arg(short = 'd', long = "daemon")]
    daemon: bool,
    /// Write the pid here (must not exist).
    #[arg(short = 'p', long = "pidfile")]
    pidfile: Option<PathBuf>,
    /// Console commands to run at start.
    #[arg(short = 'f', long = "rcfile")]
    rcfile: Option<PathBuf>,
    /// Octal mode of the ctl and data sockets (directory mode derived).
    #[arg(short = 'm', long = "mode", visible_alias = "mod", value_parser = octal)]
    mode: Option<u32>,
    /// Octal mode of the control directory.
    #[arg(long = "dirmode", value_parser = octal)]
    dirmode: Option<u32>,
    /// Group (name or gid) of the directory and sockets.
    #[arg(short = 'g', long = "group")]
    group: Option<String>,
    /// Octal mode of the management socket.
    #[arg(long = "mgmtmode", value_parser = octal)]
    mgmtmode: Option<u32>,
    /// Group of the management socket.
    #[arg(long = "mgmtgroup")]
    mgmtgroup: Option<String>,
    /// MAC table size hint (rounded up to a power of two).
    #[arg(long = "hashsize", default_value_t = 128)]
    hashsize: usize,
    /// Most MAC addresses the switch learns (more are flooded, and counted as refused).
    #[arg(long = "mac-table-size", default_value_t = vswitch::core::DEFAULT_MAC_TABLE_SIZE)]
    mac_table_size: usize,
    /// Most MAC addresses one port may hold in the table.
    #[arg(long = "mac-per-port", default_value_t = vswitch::core::DEFAULT_MAC_PER_PORT)]
    mac_per_port: usize,
    /// Attach an existing Linux TAP device (repeatable; root or CAP_NET_ADMIN).
    #[arg(short = 't', long = "tap")]
    tap: Vec<String>,
    /// VXLAN uplink port: vni=N,local=IP:PORT,remote=IP:PORT[,port=P] (repeatable).
    #[arg(long = "vxlan")]
    vxlan: Vec<VxlanCfg>,
    /// Listen for QEMU `-netdev stream,addr.type=unix,addr.path=PATH` peers; each peer gets
    /// PORT, or the first free port (repeatable).
    #[arg(long = "stream", value_name = "PATH[:PORT]", value_parser = path_port)]
    stream: Vec<(PathBuf, Option<u16>)>,
    /// Bind PATH for QEMU `-netdev dgram,...,remote.type=unix,remote.path=PATH`; frames go
    /// back to the address the peer sends from (repeatable).
    #[arg(long = "dgram", value_name = "PATH[:PORT]", value_parser = path_port)]
    dgram: Vec<(PathBuf, Option<u16>)>,
    /// Also listen for QEMU `-netdev stream` peers on DIR.streams/N for every port N
    /// (vlaunch attaches its guests there when present: many frames per syscall, a small
    /// fraction of the CPU of the VDE datagram path).
    #[arg(long = "port-streams")]
    port_streams: bool,
    /// TCP listener for QEMU `-netdev stream,server=off,addr.type=inet,addr.host=IP,addr.port=TCPPORT`
    /// or legacy `-netdev socket,connect=IP:TCPPORT`; `@PORT` pins the switch port (repeatable).
    #[arg(long = "stream-tcp", value_name = "IP:TCPPORT[@PORT]", value_parser = addr_port)]
    stream_tcp: Vec<(std::net::SocketAddr, Option<u16>)>,
    /// Connect to a QEMU `-netdev stream,server=on,addr.type=unix,addr.path=PATH` socket
    /// (on PORT or the first free port) and reconnect whenever it drops (repeatable).
    #[arg(long = "stream-connect", value_name = "PATH[:PORT]", value_parser = path_port)]
    stream_connect: Vec<(PathBuf, Option<u16>)>,
    /// Impairment at start, console syntax "PORT in|out|both KEY VALUE" (repeatable).
    #[arg(long = "impair", value_name = "SPEC")]
    impair: Vec<String>,
    /// Per-endpoint egress queue bound in KiB (frames beyond it are dropped and counted).
    #[arg(long = "egress-queue-kb", default_value_t = 1024)]
    egress_queue_kb: usize,
    /// Do not read console commands from stdin.
    #[arg(long = "nostdin")]
    nostdin: bool,
    /// Spanning tree: 802.1D STP, one tree over all VLANs, BPDUs untagged (docs/stp.md).
    #[arg(short = 'F', long = "fstp")]
    fstp: bool,
    /// Spanning tree running RSTP (802.1w) instead, with STP fallback per port (implies -F).
    #[arg(long = "rstp")]
    rstp: bool,
    /// Accepted for compatibility (ignored: the bridge address is the switch's).
    #[arg(long = "macaddr", hide = true)]
    macaddr: Option<String>,
    /// Spanning tree bridge priority (decimal or 0x hex, default 0x8000).
    #[arg(long = "priority")]
    priority: Option<String>,
    #[arg(short = 'D', long = "debugclients", hide = true)]
    debugclients: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run one console command on a switch's management socket (vswitch or vde_switch).
    Ctl {
        /// Management socket.
        #[arg(short = 'M', long = "mgmt")]
        mgmt: PathBuf,
        /// Print the data as JSON (vswitch status commands).
        #[arg(long)]
        json: bool,
        /// The command, e.g. `port/print 4`.
        #[arg(required = true, trailing_var_arg = true)]
        command: Vec<String>,
    },
    /// Relay a switch port over stdin/stdout with vde_plug's stream framing.
    Plug {
        /// DIR, DIR:PORT or DIR[PORT].
        target: String,
    },
}

/// vde_switch uses getopt_long_only: accept `-sock DIR`, `-hub`, ... by rewriting to `--`.
fn normalize_args() -> Vec<String> {
    const LONG: &[&str] = &[
        "sock",
        "vdesock",
        "unix",
        "mgmt",
        "numports",
        "hub",
        "daemon",
        "pidfile",
        "rcfile",
        "mode",
        "mod",
        "dirmode",
        "group",
        "mgmtmode",
        "mgmtgroup",
        "hashsize",
        "tap",
        "fstp",
        "rstp",
        "macaddr",
        "priority",
        "debugclients",
        "nostdin",
        "help",
        "version",
    ];
    std::env::args()
        .map(|a| match a.strip_prefix('-') {
            Some(rest)
                if !rest.starts_with('-')
                    && LONG.contains(&rest.split('=').next().unwrap_or("")) =>
            {
                format!("-{a}")
            }
            _ => a,
        })
        .map(|a| if a == "-v" { "--version".into() } else { a })
        .collect()
}

fn main() {
    let cli = Cli::parse_from(normalize_args());
    let code = match real_main(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vswitch: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn real_main(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Some(Cmd::Ctl {
            mgmt,
            json,
            command,
        }) => {
            let line = command.join(" ");
            let line = if json { format!("json {line}") } else { line };
            let mut s = vswitch::client::MgmtSession::connect(&mgmt)?;
            let r = s.cmd(&line)?;
            for l in r.other.iter().chain(r.data.iter()) {
                println!("{l}");
            }
            if r.code == 1000 || r.code == 9999 {
                Ok(0)
            } else {
                eprintln!("vswitch ctl: {line:?}: {} {}", r.code, r.message);
                Ok(1)
            }
        }
        Some(Cmd::Plug { target }) => {
            let (dir, req) = vswitch::client::parse_target(&target)?;
            vswitch::client::plug_stdio(&dir, req)?;
            Ok(0)
        }
        None => {
            let stp_priority = match cli.priority.as_deref() {
                None => 0x8000,
                Some(s) => parse_u16(s)
                    .ok_or_else(|| anyhow::anyhow!("--priority {s}: expected 0..65535"))?,
            };
            let root = euid() == 0;
            let mut cfg = Config {
                sock_dir: cli.sock.unwrap_or_else(|| {
                    PathBuf::from(if root {
                        "/var/run/vde.ctl"
                    } else {
                        "/tmp/vde.ctl"
                    })
                }),
                mgmt: cli.mgmt,
                numports: cli.numports,
                hub: cli.hub,
                stp: cli.fstp || cli.rstp,
                stp_rstp: cli.rstp,
                stp_priority,
                daemonize: cli.daemon,
                pidfile: cli.pidfile,
                rcfile: cli.rcfile,
                hashsize: cli.hashsize,
                mac_table_size: cli.mac_table_size,
                mac_per_port: cli.mac_per_port,
                taps: cli.tap,
                vxlans: cli.vxlan,
                streams: cli.stream,
                port_streams: cli.port_streams,
                dgrams: cli.dgram,
                stream_connects: cli.stream_connect,
                stream_tcps: cli.stream_tcp,
                commands: cli
                    .impair
                    .iter()
                    .map(|s| format!("port/impair {s}"))
                    .collect(),
                egress_queue_bytes: cli.egress_queue_kb * 1024,
                stdin_console: !cli.nostdin && !cli.daemon,
                ..Config::default()
            };
            cfg.validate()?;
            cfg.set_modes(cli.mode, cli.dirmode);
            if let Some(g) = cli.group {
                cfg.group = Some(gid_of(&g)?);
            }
            if let Some(m) = cli.mgmtmode {
                cfg.mgmt_mode = m;
            }
            if let Some(g) = cli.mgmtgroup {
                cfg.mgmt_group = Some(gid_of(&g)?);
            }
            vswitch::daemon::run(cfg)?;
            Ok(0)
        }
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// A u16 in decimal or 0x hex.
fn parse_u16(s: &str) -> Option<u16> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u16::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}
