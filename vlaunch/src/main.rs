//! vlaunch command line: parses arguments and calls the library (see lib.rs).

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use vlaunch::console::{self, Detach};
use vlaunch::vm::{self, LaunchOptions, StopOutcome, Vm};
use vlaunch::{AccelRequest, Mac};

const EXAMPLES: &str = "\
Examples:
  # Boot the router image and wait (up to 300 s) until it prints its ready line; it keeps running
  vlaunch images/router-backup.iso --wait-ready
  # Same image as a USB stick under UEFI, named RT2, 2 GiB of RAM, give up after 120 s
  vlaunch images/router-backup.iso --name RT2 --uefi --usb --mem 2048 --wait-ready=120
  # As most shipped PCs boot it: UEFI with Secure Boot enforced, from a USB stick
  vlaunch images/router-backup.iso --secure-boot --usb --wait-ready
  # Two NICs on ports 1 and 5 of the default switch (/run/ramux/switch; vswitch is started there
  # when nothing answers), first NIC with a fixed MAC
  vlaunch RT1.iso --port 1 --port 5 --mac 00:16:3e:00:00:01 --wait-ready
  # Use Debian's vde_switch instead
  vde_switch -s /tmp/sw -d && vlaunch RT1.iso --switch /tmp/sw --port 3 --detach
  # NICs on two switches: eth0 on port 1 of the default switch, eth1 on port 4 of /tmp/wan
  vlaunch RT1.iso --port 1 --port /tmp/wan:4 --wait-ready
  # The dns appliance with the site's keys (vbuild secrets pack site-secrets -o dns1.secrets)
  vlaunch images/dns1.iso --secrets dns1.secrets --port 2 --wait-ready
  # Foreground: the serial console in this terminal (Ctrl-] detaches, the VM keeps running)
  vlaunch RT1.iso
  vlaunch ps                 # running VMs (--all: also stopped ones; --json for scripts)
  vlaunch console RT1        # attach to RT1's serial console; Ctrl-] detaches
  vlaunch wait RT1           # after --detach: block until RT1 printed its ready line
  vlaunch stop RT1           # ACPI power button, kill after --timeout (default 30 s)
  VLAUNCH_ACCEL=tcg vlaunch RT1.iso --detach   # skip KVM detection
  vlaunch accel              # which accelerator would be used, and why

Files: /run/ramux/vms/<NAME>/{serial.log,serial.sock,qmp.sock,pid,qemu.log,vm.json}
(root from $VLAUNCH_STATE_DIR). vswitch is looked up in $RAMUX_BIN_DIR, beside vlaunch, then PATH.";

#[derive(Parser)]
#[command(
    name = "vlaunch",
    version,
    about = "Boot a ramux ISO under QEMU (KVM or TCG) on VDE switch ports, and manage the VMs",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args)]
struct RunArgs {
    /// The ISO image to boot.
    iso: Option<PathBuf>,
    /// VM name (state directory, console and stop use it). Default: the ISO file name without
    /// extension.
    #[arg(long)]
    name: Option<String>,
    /// Guest RAM in MiB (the appliance runs entirely from RAM).
    #[arg(long, default_value_t = 1024, value_name = "MiB")]
    mem: u32,
    /// Virtual CPUs.
    #[arg(long, default_value_t = 1)]
    cpus: u32,
    /// Accelerator; auto follows the KVM detection rule (VLAUNCH_ACCEL=kvm|tcg overrides auto).
    #[arg(long, value_enum, default_value_t = AccelRequest::Auto)]
    accel: AccelRequest,
    /// Boot with UEFI firmware (OVMF; a fresh copy of the variable store per boot).
    #[arg(long)]
    uefi: bool,
    /// Boot with UEFI and Secure Boot enforced (OVMF with Microsoft's and Debian's keys
    /// enrolled, SMM on): only signed boot loaders and kernels start, as on most shipped PCs.
    #[arg(long)]
    secure_boot: bool,
    /// Attach the ISO as a USB stick (the `dd` to a stick path) instead of a CD.
    #[arg(long)]
    usb: bool,
    /// Wait until the ready line appears on the serial console (default 300 s), then return and
    /// leave the VM running; non-zero exit with the last console lines otherwise.
    #[arg(long, value_name = "SECS", num_args = 0..=1, require_equals = true, default_missing_value = "300")]
    wait_ready: Option<u64>,
    /// Return as soon as QEMU runs; the VM keeps running in the background.
    #[arg(long)]
    detach: bool,
    /// Add a virtio NIC on this switch port (repeatable; NICs in the order given). `DIR:N`
    /// puts that NIC on port N of the switch at DIR instead of --switch.
    #[arg(long = "port", value_name = "[DIR:]N")]
    ports: Vec<vlaunch::net::PortArg>,
    /// Switch directory (vswitch or Debian's vde_switch). Default: /run/ramux/switch.
    #[arg(long = "switch", value_name = "DIR")]
    switch_dir: Option<PathBuf>,
    /// MAC of the NIC at the same position (repeatable). Default: 00:16:3e + hash(name, index).
    #[arg(long = "mac", value_name = "MAC")]
    macs: Vec<Mac>,
    /// Site secrets overlay (from `vbuild secrets pack`, mode 0600), handed to the guest as QEMU
    /// fw_cfg opt/ramux/secrets; never written to a disk of the VM (docs/secrets.md).
    #[arg(long, value_name = "FILE")]
    secrets: Option<PathBuf>,
    /// The site key: a raw disk image attached as a USB stick, created (64 MiB, FAT32 labelled
    /// RAMUXKEY) when absent; `ramux keep commit` in the guest writes to it (docs/keep.md).
    #[arg(long, value_name = "IMG")]
    key: Option<PathBuf>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// List VMs: name, state, pid, accel, firmware, media, NICs, ready line.
    Ps {
        #[arg(long)]
        json: bool,
        /// Include stopped VMs whose state directory is still there.
        #[arg(long)]
        all: bool,
    },
    /// Attach to a VM's serial console (Ctrl-] detaches; the VM keeps running).
    Console {
        name: String,
        /// With a non-terminal stdin: stay attached this long after input ends and output stops.
        #[arg(long, default_value_t = 2.0, value_name = "SECS")]
        linger: f64,
    },
    /// Power a VM off with the ACPI power button (QMP system_powerdown); kill it after --timeout.
    Stop {
        name: String,
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        timeout: u64,
        #[arg(long)]
        json: bool,
    },
    /// Wait for a running VM's ready line (e.g. after --detach); exit 1 with the last console
    /// lines on timeout or if it stops.
    Wait {
        name: String,
        #[arg(long, default_value_t = 300, value_name = "SECS")]
        timeout: u64,
        #[arg(long)]
        json: bool,
    },
    /// Re-attach a running VM's switch ports after its switch restarted (QEMU's stream
    /// netdevs do not reconnect): each stream is replaced over QMP; the guest sees no link
    /// change. `vlaunch lab reattach` does it for a lab.
    Reattach { name: String },
    /// Remove the state directory (logs) of a stopped VM.
    Rm { name: String },
    /// Show which accelerator `--accel auto` picks on this host, and why.
    Accel {
        #[arg(long)]
        json: bool,
    },
    /// Run a command in a VM through its QEMU guest agent (images with qemu-ga: client);
    /// its output is ours, its exit code ours (128+signal if killed, 124 on --timeout, 125
    /// when vlaunch itself fails).
    #[command(after_help = EXEC_EXAMPLES)]
    Exec(ExecArgs),
    /// A whole lab from a lab.toml: validate, graph, up, down, status, list, console
    /// (docs/lab.md).
    #[command(after_help = LAB_EXAMPLES)]
    Lab {
        #[command(subcommand)]
        cmd: LabCmd,
    },
    /// Write an ISO to a USB stick, SD card or CD, safely, and verify it (docs/burn.md).
    #[command(after_help = ramux_burn::cli::EXAMPLES)]
    Burn(ramux_burn::cli::BurnArgs),
}

const EXEC_EXAMPLES: &str = "\
Examples:
  vlaunch exec C1 hostname                          # prints: client
  vlaunch exec C1 -- ip -4 -o addr show dev eth0
  vlaunch exec C1 -- sh -c 'ping -c 3 172.16.20.1; exit 3'; echo $?   # ... 3
  echo hello | vlaunch exec C1 --stdin -- cat       # stdin is passed only with --stdin
  vlaunch exec C1 --timeout 2 -- sleep 60           # killed after 2 s, exit 124
  vlaunch exec C1 --json -- uname -r                # {\"code\":0,\"stdout\":\"6.1.0-...\\n\",...}

The VM needs a guest agent: the client image runs qemu-ga on the channel that vlaunch gives
every VM (<state>/qga.sock). One client at a time per VM; the agent starts a few seconds after
the ready line, and exec waits for it up to --agent-timeout.";

/// `vlaunch exec` (docs/launcher.md, \"exec: commands in the guest\").
#[derive(Args)]
struct ExecArgs {
    /// The VM's name (as in `vlaunch ps`).
    name: String,
    /// Kill the command after this long (exit 124).
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    timeout: f64,
    /// How long to wait for the guest agent to answer.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    agent_timeout: f64,
    /// Read our stdin to its end (at most 8 MiB) and give it to the command.
    #[arg(long)]
    stdin: bool,
    /// Print {"code","signal","stdout","stderr","elapsed_s","timed_out","truncated"} instead
    /// of the output (stdout and stderr as UTF-8, invalid bytes replaced).
    #[arg(long)]
    json: bool,
    /// The command and its arguments; `--` before it when it has options of its own.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

const LAB_EXAMPLES: &str = "\
Examples:
  vlaunch lab validate labs/two.toml       # every problem as FILE:LINE:COL + fix; exit 1 on errors
  vlaunch lab graph labs/two.toml --format dot | dot -Tsvg > two.svg
  vlaunch lab up labs/two.toml             # switches, then nodes in `after` order, gated on ready lines
  vlaunch lab up --only MV1,MV2 --no-wait  # ./lab.toml, two nodes, return once QEMU runs
  vlaunch lab status two --json            # ramux-lab's status document (schema_version 1)
  vlaunch lab list
  vlaunch lab console two MV1              # serial console of node MV1; Ctrl-] detaches
  vlaunch lab exec two MV1 -- ip -4 addr   # through the guest agent, not the network; exit code is the command's
  vlaunch lab fault two RT1 crash          # SIGKILL of RT1's QEMU (power loss); also poweroff, unplug:eth1, plug:eth1
  vlaunch lab restart two RT1              # power off, boot again from the file, wait for the ready line
  vlaunch lab test seed --junit seed.xml   # the file's [[test]] entries against the running lab
  vlaunch lab capture two sw0:3 -w p3.pcap --seconds 10
  vlaunch lab down two                     # from state.json alone; also after a killed `up`

State: $VLAUNCH_LAB_DIR/<lab>/ (default /run/ramux/labs/<lab>/): state.json, sw/<switch>{,.streams,.mgmt,.pid},
vms/<node>/ (vlaunch's VM state directories).";

#[derive(Subcommand)]
enum LabCmd {
    /// Check a lab file (and the host: ISOs, uplink bridges); every problem with its position
    /// and a fix; exit 1 on errors.
    Validate {
        /// The lab file (default ./lab.toml).
        file: Option<PathBuf>,
    },
    /// Draw the lab: one box per switch, node and uplink, one edge per NIC.
    Graph {
        file: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Validate, start the switches (VLANs and ports from the file), then the nodes in `after`
    /// order gated on their ready lines; exit 0 only when every node started is ready.
    Up {
        file: Option<PathBuf>,
        /// Build the ISOs that are missing or stale (vbuild, with the site and each client's
        /// address), before starting anything.
        #[arg(long)]
        build: bool,
        /// Only these nodes (comma-separated).
        #[arg(long, value_delimiter = ',', value_name = "N1,N2")]
        only: Option<Vec<String>>,
        /// Start every node at once and return without waiting for the ready lines.
        #[arg(long)]
        no_wait: bool,
    },
    /// Stop the lab's VMs and switches and remove its directory (from state.json alone).
    Down {
        /// The lab's name (default: the name in ./lab.toml; a lab file works too).
        name: Option<String>,
        /// Kill the VMs at once instead of the ACPI power button.
        #[arg(long)]
        force: bool,
    },
    /// The state of the lab's nodes and switches.
    Status {
        name: Option<String>,
        #[arg(long)]
        json: bool,
        /// Print it again whenever it changes (checked every second) until Ctrl-C.
        #[arg(long)]
        watch: bool,
    },
    /// Labs that have a state directory.
    List,
    /// Attach to a node's serial console (Ctrl-] detaches).
    Console {
        name: String,
        node: String,
        #[arg(long, default_value_t = 2.0, value_name = "SECS")]
        linger: f64,
    },
    /// Power a node off (ACPI, killed after a grace) and boot it again from the lab file as it
    /// is now (memory, ISO, MAC changes apply); waits for its ready line.
    Restart { name: String, node: String },
    /// After a switch of the lab restarted: re-attach every running node's switch ports
    /// (QEMU's stream netdevs do not reconnect; each is replaced over QMP, no link change in
    /// the guest).
    Reattach { name: String },
    /// Break a node on purpose: crash (SIGKILL of QEMU: power loss), poweroff (ACPI button),
    /// unplug[:NIC] / plug[:NIC] (cable pulled / put back: QMP set_link; NIC 1 or eth1,
    /// default every NIC).
    Fault {
        name: String,
        node: String,
        /// crash | poweroff | unplug[:NIC] | plug[:NIC]
        fault: String,
    },
    /// Run a command in a node through its guest agent (not its network): its output and exit
    /// code are ours (124 on timeout). `vlaunch lab exec seed MV2 -- ping -c 3 172.16.20.1`
    Exec {
        /// The lab's name.
        lab: String,
        /// NODE, then options, then `--` and the command.
        #[command(flatten)]
        args: ExecArgs,
    },
    /// Run the lab file's [[test]] entries against the running lab: one PASS/FAIL line each
    /// with what was measured; exit 0 only when every test passed.
    Test {
        name: Option<String>,
        #[arg(long)]
        json: bool,
        /// Also write the results as JUnit XML (for CI systems).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Capture every frame of a switch port into a pcap file until Ctrl-C (vswitch engine).
    Capture {
        name: String,
        /// SWITCH:PORT, e.g. sw0:3
        target: String,
        /// The pcap file to write.
        #[arg(short = 'w', value_name = "FILE")]
        file: PathBuf,
        /// Stop after this long instead of at Ctrl-C.
        #[arg(long, value_name = "SECS")]
        seconds: Option<f64>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GraphFormat {
    Mermaid,
    Dot,
}

fn lab_cmd(cmd: LabCmd) -> Result<i32> {
    use vlaunch::lab::cli;
    match cmd {
        LabCmd::Validate { file } => cli::validate(file),
        LabCmd::Graph { file, format } => cli::graph(file, matches!(format, GraphFormat::Dot)),
        LabCmd::Up {
            file,
            build,
            only,
            no_wait,
        } => cli::up(file, build, only, !no_wait),
        LabCmd::Down { name, force } => cli::down(name, force),
        LabCmd::Status { name, json, watch } => cli::status(name, json, watch),
        LabCmd::List => cli::list(),
        LabCmd::Console { name, node, linger } => {
            let (sock, label) = cli::serial_sock(&name, &node)?;
            console_session(&label, &sock, linger)
        }
        LabCmd::Restart { name, node } => cli::restart(&name, &node),
        LabCmd::Reattach { name } => cli::reattach(&name),
        LabCmd::Test { name, json, junit } => cli::test(name, json, junit),
        LabCmd::Exec { lab, args } => {
            let (dir, _, h) = vlaunch::lab::node::by_name(&lab, &args.name)?;
            h.running()?;
            exec_cmd(&dir.vms_root(), &args)
        }
        LabCmd::Fault { name, node, fault } => cli::fault(&name, &node, &fault),
        LabCmd::Capture {
            name,
            target,
            file,
            seconds,
        } => cli::capture(&name, &target, &file, seconds),
    }
}

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vlaunch: error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32> {
    let root = vm::state_root();
    match cli.cmd {
        Some(Cmd::Ps { json, all }) => ps(&root, json, all),
        Some(Cmd::Console { name, linger }) => {
            vm::validate_name(&name)?;
            let paths = vlaunch::qemu::StatePaths::in_dir(&root.join(&name));
            if vm::running_pid(&paths).is_none() {
                bail!("VM {name} is not running (see `vlaunch ps --all`)");
            }
            console_session(&name, &paths.serial_sock, linger)
        }
        Some(Cmd::Stop {
            name,
            timeout,
            json,
        }) => {
            let out = vm::stop_by_name(&root, &name, Duration::from_secs(timeout))?;
            print_stop(&name, &out, json);
            Ok(0)
        }
        Some(Cmd::Wait {
            name,
            timeout,
            json,
        }) => match vm::wait_ready_by_name(&root, &name, Duration::from_secs(timeout)) {
            Ok(r) => {
                report_failures(&name, &r);
                if json {
                    println!(
                        "{}",
                        json!({"name": name, "ready": r.info, "failures": r.failures})
                    );
                } else {
                    println!("{name}: {}", r.info.line);
                }
                Ok(0)
            }
            Err(e) => {
                eprintln!("vlaunch: {name} is not ready: {e}");
                Ok(1)
            }
        },
        Some(Cmd::Reattach { name }) => {
            let nics = vm::reattach_by_name(&root, &name)?;
            let list: Vec<String> = nics.iter().map(|i| format!("eth{i}")).collect();
            if list.is_empty() {
                println!("{name}: no switch stream to re-attach");
            } else {
                println!("{name}: re-attached {}", list.join(", "));
            }
            Ok(0)
        }
        Some(Cmd::Rm { name }) => {
            vm::remove_by_name(&root, &name)?;
            Ok(0)
        }
        Some(Cmd::Accel { json }) => accel_cmd(json),
        Some(Cmd::Burn(a)) => Ok(ramux_burn::cli::run(a)),
        Some(Cmd::Exec(a)) => Ok(exec_cmd(&root, &a).unwrap_or_else(|e| {
            eprintln!("vlaunch: exec {}: {e:#}", a.name);
            125
        })),
        Some(Cmd::Lab { cmd }) => lab_cmd(cmd),
        None => launch(cli.run, root),
    }
}

fn print_stop(name: &str, out: &StopOutcome, json: bool) {
    if json {
        let mut v = serde_json::to_value(out).unwrap_or_default();
        v["name"] = json!(name);
        println!("{v}");
        return;
    }
    println!("{}", stop_line(name, out));
}

fn stop_line(name: &str, out: &StopOutcome) -> String {
    match out {
        StopOutcome::NotRunning => format!("{name}: not running"),
        StopOutcome::PoweredOff {
            seconds,
            shutdown_reason,
        } => format!(
            "{name}: powered off after {seconds:.1} s ({})",
            shutdown_reason.as_deref().unwrap_or("QEMU exited")
        ),
        StopOutcome::Killed { reason } => format!("{name}: killed ({reason})"),
    }
}

fn ps(root: &std::path::Path, json: bool, all: bool) -> Result<i32> {
    let mut l = vm::list(root)?;
    if !all {
        l.retain(|v| v.running);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&l)?);
        return Ok(0);
    }
    println!(
        "{:<16} {:<8} {:>7} {:<4} {:<4} {:<5} {:>6}  {:<24} READY",
        "NAME", "STATE", "PID", "ACC", "FW", "MEDIA", "MEM", "NICS"
    );
    for v in l {
        let nics: Vec<String> = v
            .nics
            .iter()
            .map(|n| format!("{}:{}", n.port, n.mac))
            .collect();
        let opt = |o: Option<String>| o.unwrap_or_else(|| "-".into());
        println!(
            "{:<16} {:<8} {:>7} {:<4} {:<4} {:<5} {:>6}  {:<24} {}",
            v.name,
            if v.running { "running" } else { "stopped" },
            opt(v.pid.map(|p| p.to_string())),
            opt(v.accel.map(|a| a.to_string())),
            opt(v.firmware),
            opt(v.media.map(|m| format!("{m:?}").to_lowercase())),
            opt(v.mem_mib.map(|m| format!("{m}M"))),
            if nics.is_empty() {
                "-".to_string()
            } else {
                nics.join(",")
            },
            v.ready
                .map(|r| format!("{} {} {}", r.profile, r.role, r.host))
                .unwrap_or_else(|| "-".into()),
        );
    }
    Ok(0)
}

fn accel_cmd(json: bool) -> Result<i32> {
    let facts = vlaunch::accel::probe_facts();
    let env = std::env::var("VLAUNCH_ACCEL").ok();
    let v = vlaunch::accel::decide(AccelRequest::Auto, env.as_deref(), &facts)?;
    let (accel, reason) = match v {
        vlaunch::accel::Verdict::Decided { accel, reason } => (accel.to_string(), reason),
        vlaunch::accel::Verdict::NeedsProbe => (
            "kvm?".to_string(),
            "cheap checks pass; a launch boots a kernel under KVM once to confirm".to_string(),
        ),
    };
    if json {
        println!(
            "{}",
            json!({"accel": accel, "reason": reason, "facts": {
                "dev_kvm": format!("{:?}", facts.dev_kvm), "cpu_virt_flags": facts.cpu_virt_flags,
                "hw_modules": facts.hw_modules, "other_modules": facts.other_modules,
                "api_version": facts.api_version}})
        );
    } else {
        println!("{accel}: {reason}");
    }
    Ok(0)
}

/// `vlaunch exec`: the command's exit code, or an error (exit 125).
fn exec_cmd(root: &std::path::Path, a: &ExecArgs) -> Result<i32> {
    use std::io::Read;
    vm::validate_name(&a.name)?;
    let paths = vlaunch::qemu::StatePaths::in_dir(&root.join(&a.name));
    if vm::running_pid(&paths).is_none() {
        bail!("VM {} is not running (see `vlaunch ps --all`)", a.name);
    }
    if !paths.qga_sock.exists() {
        bail!(
            "{} has no guest agent channel (started by an older vlaunch?)",
            a.name
        );
    }
    let mut input = Vec::new();
    if a.stdin {
        std::io::stdin().take(8 << 20).read_to_end(&mut input)?;
    }
    let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
    let mut agent = vlaunch::qga::wait_agent(&paths.qga_sock, secs(a.agent_timeout))?;
    agent.reply_timeout = Duration::from_secs(30);
    let out = agent.exec(&a.cmd, a.stdin.then_some(&input[..]), secs(a.timeout))?;
    exec_report(a, &out)
}

/// Prints what the command did; its exit code as ours.
fn exec_report(a: &ExecArgs, out: &vlaunch::qga::ExecOutput) -> Result<i32> {
    let code = match (out.timed_out, out.code, out.signal) {
        (true, ..) => 124,
        (_, Some(c), _) => c,
        (_, None, Some(s)) => 128 + s,
        (_, None, None) => 125,
    };
    if a.json {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        println!(
            "{}",
            json!({"code": out.code, "signal": out.signal, "stdout": text(&out.stdout),
                "stderr": text(&out.stderr), "elapsed_s": out.elapsed.as_secs_f64(),
                "timed_out": out.timed_out, "truncated": out.truncated})
        );
    } else {
        std::io::stdout().write_all(&out.stdout)?;
        std::io::stderr().write_all(&out.stderr)?;
    }
    if out.timed_out {
        eprintln!(
            "vlaunch: exec {}: timed out after {} s; killed",
            a.name, a.timeout
        );
    } else if out.truncated {
        eprintln!(
            "vlaunch: exec {}: output truncated (16 MiB a stream)",
            a.name
        );
    }
    Ok(code)
}

fn console_session(name: &str, sock: &std::path::Path, linger: f64) -> Result<i32> {
    let tty = std::io::stdin().is_terminal();
    if tty {
        eprintln!("vlaunch: connected to {name}'s serial console; Ctrl-] detaches\r");
    }
    let mut out = std::io::stdout();
    let d = console::attach(sock, &mut out, Duration::from_secs_f64(linger.max(0.0)))?;
    match d {
        Detach::User => eprintln!(
            "\r\nvlaunch: detached; {name} keeps running (`vlaunch stop {name}` stops it)"
        ),
        Detach::VmGone => eprintln!("\r\nvlaunch: {name} stopped (console closed)"),
        Detach::InputEnded => {}
    }
    Ok(0)
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// The `ramux: failed` lines seen before the ready line, on stderr even with --quiet: the
/// appliance is up but something in it (a service without its secret) is not.
fn report_failures(name: &str, r: &vlaunch::Ready) {
    for f in &r.failures {
        eprintln!("vlaunch: {name}: {f}");
    }
}

fn launch(a: RunArgs, root: PathBuf) -> Result<i32> {
    let Some(iso) = a.iso.clone() else {
        bail!(
            "no ISO given: `vlaunch X.iso [options]` boots one (see `vlaunch --help` for examples)"
        );
    };
    let quiet = a.quiet;
    let mut progress = |m: &str| {
        if !quiet {
            eprintln!("vlaunch: {m}");
        }
    };
    let opts = LaunchOptions {
        iso,
        name: a.name.clone(),
        mem_mib: a.mem,
        cpus: a.cpus,
        accel: a.accel,
        uefi: a.uefi || a.secure_boot,
        secure_boot: a.secure_boot,
        usb: a.usb,
        ports: a.ports.iter().map(|p| p.port).collect(),
        port_switches: a.ports.iter().map(|p| p.switch_dir.clone()).collect(),
        switch_dir: a.switch_dir.clone(),
        macs: a.macs.clone(),
        secrets: a.secrets.clone(),
        key: a.key.clone(),
        state_root: root,
        ..LaunchOptions::new(PathBuf::new())
    };
    let mut vm = vlaunch::launch(&opts, &mut progress)?;
    let name = vm.name().to_string();
    let summary = |vm: &Vm, ready: Option<&vlaunch::Ready>| {
        let s = &vm.record.spec;
        json!({
            "name": s.name, "pid": vm.pid, "state_dir": s.paths.dir,
            "accel": s.accel, "accel_reason": vm.record.accel_reason,
            "firmware": s.firmware, "media": s.media, "mem_mib": s.mem_mib, "nics": s.nics,
            "ready": ready.map(|r| &r.info), "ready_seconds": ready.map(|r| r.seconds),
            "failures": ready.map(|r| &r.failures),
            "qemu_command": vm.record.qemu_command,
        })
    };

    if let Some(secs) = a.wait_ready {
        progress(&format!(
            "waiting up to {secs} s for the ready line on the serial console"
        ));
        let show = std::io::stderr().is_terminal() && !quiet;
        let mut tick = |el: Duration, last: &str| {
            if show {
                let last: String = last.chars().take(100).collect();
                eprint!("\r\x1b[K[{:>4.0}s] {last}", el.as_secs_f64());
                let _ = std::io::stderr().flush();
            }
        };
        let r = vm.wait_ready(Duration::from_secs(secs), &mut tick);
        if show {
            eprint!("\r\x1b[K");
        }
        match r {
            Ok(ready) => {
                progress(&format!(
                    "ready after {:.1} s: {}",
                    ready.seconds, ready.info.line
                ));
                report_failures(&name, &ready);
                if a.json {
                    println!("{}", summary(&vm, Some(&ready)));
                }
                progress(&format!(
                    "{name} keeps running: `vlaunch console {name}`, `vlaunch stop {name}`"
                ));
                vm.detach();
                return Ok(0);
            }
            Err(e) => {
                eprintln!("vlaunch: {name} is not ready: {e}");
                vm.kill();
                eprintln!(
                    "vlaunch: killed {name}; full console log: {}",
                    vm.paths().serial_log.display()
                );
                if a.json {
                    let mut s = summary(&vm, None);
                    s["error"] = json!(e.reason);
                    s["last_lines"] = json!(e.last_lines);
                    println!("{s}");
                }
                return Ok(1);
            }
        }
    }
    if a.detach {
        if a.json {
            println!("{}", summary(&vm, None));
        }
        progress(&format!(
            "{name} runs in the background: `vlaunch console {name}`, `vlaunch stop {name}`"
        ));
        vm.detach();
        return Ok(0);
    }
    if a.json {
        println!("{}", summary(&vm, None));
    }
    foreground(vm, &name)
}

/// No --detach/--wait-ready: the console in this terminal (interactive on a tty), until the VM
/// exits. Ctrl-] detaches from a tty; SIGINT/SIGTERM without a tty power the VM off.
fn foreground(mut vm: Vm, name: &str) -> Result<i32> {
    if std::io::stdin().is_terminal() {
        eprintln!("vlaunch: serial console of {name}; Ctrl-] detaches (the VM keeps running)\r");
        let sock = vm.paths().serial_sock.clone();
        let mut out = std::io::stdout();
        match console::attach(&sock, &mut out, Duration::from_secs(1))? {
            Detach::User | Detach::InputEnded => {
                eprintln!(
                    "\r\nvlaunch: detached; {name} keeps running (`vlaunch stop {name}` stops it)"
                );
                vm.detach();
                return Ok(0);
            }
            Detach::VmGone => {
                let st = vm.stop(Duration::from_secs(5))?;
                if let StopOutcome::Killed { reason } = st {
                    eprintln!("vlaunch: {name}: {reason}");
                }
                return Ok(0);
            }
        }
    }
    // Not a terminal: stream the log, and power off on Ctrl-C / SIGTERM.
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let log = vm.paths().serial_log.clone();
    let mut file: Option<std::fs::File> = None;
    let mut buf = Vec::new();
    let mut out = std::io::stdout();
    loop {
        if file.is_none() {
            file = std::fs::File::open(&log).ok();
        }
        if let Some(f) = file.as_mut() {
            // Rotated (vm::SERIAL_LOG_MAX): finish the old file, then follow the new one.
            let rotated = vlaunch::vm::replaced(f, &log);
            buf.clear();
            if std::io::Read::read_to_end(f, &mut buf).is_ok() && !buf.is_empty() {
                out.write_all(&buf).context("writing stdout")?;
                out.flush()?;
            }
            if rotated {
                file = std::fs::File::open(&log).ok();
            }
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            eprintln!("vlaunch: interrupted, powering {name} off");
            let st = vm.stop(Duration::from_secs(30))?;
            // stdout carries the console stream: status goes to stderr.
            eprintln!("vlaunch: {}", stop_line(name, &st));
            return Ok(130);
        }
        if let Some(st) = vm.exit_status() {
            eprintln!("vlaunch: {name}: QEMU exited ({st})");
            vm.kill(); // reap and remove sockets
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
