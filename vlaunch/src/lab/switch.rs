//! A lab's switches: the console commands that give a switch its VLANs and ports (pure), the
//! daemon's start and stop, and the vde_switch management console spoken over its unix socket
//! (both vswitch and Debian's vde_switch take the same commands).

use anyhow::{bail, Context, Result};
use ramux_contract::switch_dir::SwitchDir;
use ramux_lab::model::{Engine, Lab, Switch, VlanMode};
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every port of `sw` the lab uses (NICs of enabled nodes and uplinks) with its VLAN mode,
/// sorted by port.
pub fn used_ports(lab: &Lab, sw: &Switch) -> Vec<(u16, VlanMode)> {
    let name = &sw.name.value;
    let nics = lab
        .nodes
        .iter()
        .filter(|n| n.enabled)
        .flat_map(|n| n.nics.iter())
        .filter(|c| &c.switch.value == name)
        .map(|c| (c.port.value, c.vlan.value.clone()));
    let uplinks = lab
        .uplinks
        .iter()
        .filter(|u| &u.switch.value == name)
        .map(|u| (u.port.value, u.vlan.value.clone()));
    let mut out: Vec<(u16, VlanMode)> = nics.chain(uplinks).collect();
    out.sort_by_key(|(p, _)| *p);
    out.dedup_by_key(|(p, _)| *p);
    out
}

/// The ports of `sw` that exist before the console is reached, so they get no `port/create`
/// (it would answer EEXIST): every port up to the highest uplink port (the rc file creates
/// the non-uplink ones, the TAPs take the rest) and the VXLAN trunk's port.
pub fn pre_created_ports(lab: &Lab, sw: &Switch) -> Vec<u16> {
    let top = uplink_ports(lab, sw).last().copied().unwrap_or(0);
    let mut out: Vec<u16> = (1..=top).collect();
    out.extend(sw.vxlan.as_ref().map(|_| vxlan_port(sw)));
    out
}

/// The console commands for `sw`: `vlan/create` for each of its VLANs, then per used port
/// `port/create P` (unless it exists already) and its VLANs: access (and a trunk's native
/// VLAN) with `port/setvlan P VID` (untagged), trunk VLANs with `vlan/addport VID P`
/// (tagged); last the VXLAN trunk's port, tagged in every VLAN of the switch.
pub fn switch_commands(lab: &Lab, sw: &Switch) -> Vec<String> {
    let mut cmds: Vec<String> = sw
        .vlans
        .keys()
        .map(|v| format!("vlan/create {v}"))
        .collect();
    let pre = pre_created_ports(lab, sw);
    for (port, mode) in used_ports(lab, sw) {
        if !pre.contains(&port) {
            cmds.push(format!("port/create {port}"));
        }
        match mode {
            VlanMode::Access(v) => cmds.push(format!("port/setvlan {port} {v}")),
            VlanMode::Trunk { vids, native } => {
                if let Some(n) = native {
                    cmds.push(format!("port/setvlan {port} {n}"));
                }
                cmds.extend(vids.iter().map(|v| format!("vlan/addport {v} {port}")));
            }
        }
    }
    if sw.vxlan.is_some() {
        let p = vxlan_port(sw);
        cmds.extend(sw.vlans.keys().map(|v| format!("vlan/addport {v} {p}")));
    }
    cmds
}

/// The uplink ports of `sw`, ascending: the order its `-t TAP`s must be given in.
pub fn uplink_ports(lab: &Lab, sw: &Switch) -> Vec<u16> {
    let mut out: Vec<u16> = lab
        .uplinks
        .iter()
        .filter(|u| u.switch.value == sw.name.value)
        .map(|u| u.port.value)
        .collect();
    out.sort_unstable();
    out
}

/// The rc file (`-f`) that makes vswitch's first-free-port rule put each TAP on its uplink's
/// port: every port below the highest uplink port that is no uplink port is created
/// (created ports are not allocatable), so the TAPs, given in port order, fill the gaps.
pub fn reserve_commands(lab: &Lab, sw: &Switch) -> Vec<String> {
    let ups = uplink_ports(lab, sw);
    let top = ups.last().copied().unwrap_or(0);
    (1..top)
        .filter(|p| !ups.contains(p))
        .map(|p| format!("port/create {p}"))
        .collect()
}

/// The VXLAN trunk's port: one past the lab's ports (vswitch gets `-n ports+1`), so it never
/// takes a port the lab file numbers.
pub fn vxlan_port(sw: &Switch) -> u16 {
    sw.ports.saturating_add(1)
}

/// The UDP port of the VXLAN trunk at both ends: IANA's, a Linux vxlan device's `dstport 4789`.
pub const VXLAN_UDP: u16 = 4789;

/// The two ends of a VXLAN trunk on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanEnds {
    /// The address bound here (0.0.0.0 when `remote` names the peer only).
    pub local: Ipv4Addr,
    pub remote: Ipv4Addr,
}

/// `remote` is the peer's IPv4 address, or `"A,B"`: the two hosts' addresses, the one this
/// host has (`is_local`) is bound, the other is the peer; so one lab file serves both hosts.
pub fn vxlan_ends(remote: &str, is_local: &dyn Fn(Ipv4Addr) -> bool) -> Result<VxlanEnds> {
    let addrs: Vec<Ipv4Addr> = remote
        .split(',')
        .map(|a| a.trim().parse())
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("vxlan remote {remote:?}: not IPv4 addresses"))?;
    match addrs[..] {
        [r] => Ok(VxlanEnds {
            local: Ipv4Addr::UNSPECIFIED,
            remote: r,
        }),
        [a, b] => match (is_local(a), is_local(b)) {
            (true, false) => Ok(VxlanEnds {
                local: a,
                remote: b,
            }),
            (false, true) => Ok(VxlanEnds {
                local: b,
                remote: a,
            }),
            _ => bail!(
                "vxlan remote {remote:?}: exactly one of the two must be an address of this \
                 host (`ip -4 addr` here has {})",
                if is_local(a) { "both" } else { "neither" }
            ),
        },
        _ => bail!("vxlan remote {remote:?}: one address, or two (this host's and the peer's)"),
    }
}

/// vswitch's `--vxlan` value for `sw`'s trunk.
pub fn vxlan_arg(sw: &Switch, vni: u32, ends: VxlanEnds) -> String {
    format!(
        "vni={vni},local={}:{VXLAN_UDP},remote={}:{VXLAN_UDP},port={}",
        ends.local,
        ends.remote,
        vxlan_port(sw)
    )
}

/// What a switch is started with beyond its directory: TAPs in port order, the rc file that
/// places them, the VXLAN trunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extras {
    pub taps: Vec<String>,
    pub rc: Option<PathBuf>,
    pub vxlan: Option<String>,
}

/// The program and arguments that start `sw` daemonised at `dir`. vswitch's ports are
/// 1..=N (one more for a VXLAN trunk); vde_switch's are 1..N-1, so it gets one more.
pub fn start_command(
    engine: Engine,
    bin: &Path,
    dir: &Path,
    ports: u16,
    x: &Extras,
) -> Vec<String> {
    let d = SwitchDir::new(dir);
    let s = |p: &Path| p.display().to_string();
    let mut argv = vec![s(bin), "-s".into(), s(dir)];
    let n = match engine {
        Engine::Vswitch => {
            argv.push("--port-streams".into());
            ports.saturating_add(u16::from(x.vxlan.is_some()))
        }
        Engine::VdeSwitch => ports.saturating_add(1),
    };
    argv.extend([
        "-n".into(),
        n.to_string(),
        "-M".into(),
        s(&d.mgmt()),
        "-p".into(),
        s(&d.pid()),
        "-d".into(),
    ]);
    if let Some(rc) = &x.rc {
        argv.extend(["-f".into(), s(rc)]);
    }
    for t in &x.taps {
        argv.extend(["-t".into(), t.clone()]);
    }
    if let Some(v) = &x.vxlan {
        argv.extend(["--vxlan".into(), v.clone()]);
    }
    argv
}

/// The binary of an engine: vswitch as vlaunch finds it, vde_switch from PATH.
pub fn engine_binary(engine: Engine) -> Result<PathBuf> {
    match engine {
        Engine::Vswitch => crate::net::find_vswitch(),
        Engine::VdeSwitch => std::env::var_os("PATH")
            .and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("vde_switch"))
                    .find(|p| p.is_file())
            })
            .context("vde_switch not found in PATH: apt-get install vde2"),
    }
}

/// Runs the start command and waits until the switch answers on `DIR/ctl` and its management
/// socket exists. Returns the daemon's pid (from `DIR.pid`).
pub fn start(argv: &[String], dir: &Path) -> Result<u32> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null());
    let out = crate::net::close_inherited_fds(&mut cmd)
        .output()
        .with_context(|| format!("starting {}", argv[0]))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let d = SwitchDir::new(dir);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if crate::net::switch_answers(dir) && d.mgmt().exists() {
            if let Some(pid) = live_pid(dir) {
                return Ok(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!(
        "started `{}` but nothing answers on {} after 5 s",
        argv.join(" "),
        d.ctl().display()
    )
}

/// The switch's pid from `DIR.pid` (or `recorded`), if that process is alive and is the
/// switch of this directory (its command line names the pid file).
pub fn live_pid_or(dir: &Path, recorded: Option<u32>) -> Option<u32> {
    let pidfile = SwitchDir::new(dir).pid();
    let from_file = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    [from_file, recorded]
        .into_iter()
        .flatten()
        .find(|&pid| super::process_has_arg(pid, &pidfile))
}

fn live_pid(dir: &Path) -> Option<u32> {
    live_pid_or(dir, None)
}

/// SIGTERM, then SIGKILL after `grace`; true when the process is gone.
pub fn stop(dir: &Path, recorded: Option<u32>, grace: Duration) -> bool {
    let Some(pid) = live_pid_or(dir, recorded) else {
        return true;
    };
    super::terminate(pid, grace, |p| {
        super::process_has_arg(p, &SwitchDir::new(dir).pid())
    })
}

/// Reads until the console prompt (`vde$ ` or any `$ `) or the end of the session.
fn read_prompt(s: &mut UnixStream) -> Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.ends_with(b"$ ") {
        let n = s
            .read(&mut chunk)
            .context("reading the management console")?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The status of one console reply: `1000 Success` is Ok, any other `1NNN text` an error.
pub fn reply_status(text: &str) -> std::result::Result<(), String> {
    let status = text.lines().find(|l| {
        l.len() >= 4 && l.starts_with('1') && l.as_bytes()[..4].iter().all(u8::is_ascii_digit)
    });
    match status {
        Some(l) if l.starts_with("1000") => Ok(()),
        Some(l) => Err(l.to_string()),
        None => Err(format!("no status line in the reply {text:?}")),
    }
}

/// Sends `cmds` one by one on the management socket `mgmt`; stops at the first refusal.
pub fn configure(mgmt: &Path, cmds: &[String]) -> Result<()> {
    let mut s = UnixStream::connect(mgmt)
        .with_context(|| format!("connecting the management console {}", mgmt.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    read_prompt(&mut s)?;
    for c in cmds {
        s.write_all(format!("{c}\n").as_bytes())
            .with_context(|| format!("sending {c:?} to {}", mgmt.display()))?;
        let reply = read_prompt(&mut s)?;
        if let Err(e) = reply_status(&reply) {
            bail!("the switch refused `{c}` ({}): {e}", mgmt.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = r#"
name = "t"
[switch.sw0]
ports = 8
vlans = { 10 = "a", 20 = "b", 99 = "x" }
[switch.sw1]
ports = 4
vlans = { 5 = "c" }
[node.r]
profile = "client"
nics = [ { switch = "sw0", port = 1, trunk = [10, 20], native = 99 },
         { switch = "sw0", access = 20 },
         { switch = "sw1", port = 2, access = 5 } ]
[node.off]
profile = "client"
enabled = false
nics = [ { switch = "sw0", port = 7, access = 10 } ]
"#;

    fn lab(text: &str) -> Lab {
        let c = ramux_lab::check_text(text, "lab.toml", Path::new("/l"), None);
        assert!(c.ok(), "{}", ramux_lab::render_all(&c.diagnostics));
        c.lab.unwrap()
    }

    #[test]
    fn commands_from_the_switch_and_its_nics() {
        let l = lab(LAB);
        let sw0 = l.switch("sw0").unwrap();
        assert_eq!(
            switch_commands(&l, sw0),
            [
                "vlan/create 10",
                "vlan/create 20",
                "vlan/create 99",
                "port/create 1",
                "port/setvlan 1 99",
                "vlan/addport 10 1",
                "vlan/addport 20 1",
                "port/create 2",
                "port/setvlan 2 20",
            ]
        );
        let sw1 = l.switch("sw1").unwrap();
        assert_eq!(
            switch_commands(&l, sw1),
            ["vlan/create 5", "port/create 2", "port/setvlan 2 5"]
        );
    }

    #[test]
    fn start_commands_per_engine() {
        let a = start_command(
            Engine::Vswitch,
            Path::new("/b/vswitch"),
            Path::new("/l/sw/sw0"),
            8,
            &Extras::default(),
        );
        assert_eq!(
            a.join(" "),
            "/b/vswitch -s /l/sw/sw0 --port-streams -n 8 -M /l/sw/sw0.mgmt -p /l/sw/sw0.pid -d"
        );
        let b = start_command(
            Engine::VdeSwitch,
            Path::new("vde_switch"),
            Path::new("/d"),
            32,
            &Extras::default(),
        );
        assert_eq!(
            b.join(" "),
            "vde_switch -s /d -n 33 -M /d.mgmt -p /d.pid -d"
        );
    }

    const UPLINKS: &str = r#"
name = "t"
[switch.sw0]
ports = 8
vlans = { 10 = "a", 20 = "b" }
vxlan = { remote = "192.0.2.1,192.0.2.2", vni = 42 }
[uplink.u6]
switch = "sw0"
port = 6
trunk = [10, 20]
bridge = "br1"
[uplink.u3]
switch = "sw0"
port = 3
access = 10
bridge = "br0"
[node.c]
profile = "client"
nics = [ { switch = "sw0", port = 2, access = 20 }, { switch = "sw0", port = 7, access = 10 } ]
"#;

    #[test]
    fn uplinks_take_their_ports_and_the_vxlan_trunk_every_vlan() {
        let l = lab(UPLINKS);
        let sw = l.switch("sw0").unwrap();
        assert_eq!(uplink_ports(&l, sw), [3, 6]);
        // Ports 1, 2, 4, 5 are created before the TAPs open, so they land on 3 and 6.
        assert_eq!(
            reserve_commands(&l, sw),
            [
                "port/create 1",
                "port/create 2",
                "port/create 4",
                "port/create 5"
            ]
        );
        assert_eq!(
            switch_commands(&l, sw),
            [
                "vlan/create 10",
                "vlan/create 20",
                "port/setvlan 2 20",
                "port/setvlan 3 10",
                "vlan/addport 10 6",
                "vlan/addport 20 6",
                "port/create 7",
                "port/setvlan 7 10",
                "vlan/addport 10 9",
                "vlan/addport 20 9",
            ]
        );
        let local = |a: Ipv4Addr| a == Ipv4Addr::new(192, 0, 2, 2);
        let ends = vxlan_ends("192.0.2.1,192.0.2.2", &local).unwrap();
        assert_eq!(ends.remote, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            vxlan_arg(sw, 42, ends),
            "vni=42,local=192.0.2.2:4789,remote=192.0.2.1:4789,port=9"
        );
        let x = Extras {
            taps: vec!["t-1".into(), "t-2".into()],
            rc: Some("/l/sw/sw0.rc".into()),
            vxlan: Some(vxlan_arg(sw, 42, ends)),
        };
        let argv = start_command(
            Engine::Vswitch,
            Path::new("vswitch"),
            Path::new("/l/sw/sw0"),
            8,
            &x,
        );
        let line = argv.join(" ");
        assert!(line.contains("-n 9 "), "{line}");
        assert!(line.ends_with("-d -f /l/sw/sw0.rc -t t-1 -t t-2 --vxlan vni=42,local=192.0.2.2:4789,remote=192.0.2.1:4789,port=9"), "{line}");
    }

    #[test]
    fn vxlan_ends_from_remote() {
        let none = |_: Ipv4Addr| false;
        let one = vxlan_ends("10.0.0.2", &none).unwrap();
        assert_eq!(
            (one.local, one.remote),
            (Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(10, 0, 0, 2))
        );
        assert!(vxlan_ends("10.0.0.1,10.0.0.2", &none)
            .unwrap_err()
            .to_string()
            .contains("neither"));
        let all = |_: Ipv4Addr| true;
        assert!(vxlan_ends("10.0.0.1,10.0.0.2", &all)
            .unwrap_err()
            .to_string()
            .contains("both"));
        assert!(vxlan_ends("host.example", &none).is_err());
    }

    #[test]
    fn console_replies() {
        assert!(reply_status("1000 Success\n\nvde$ ").is_ok());
        assert_eq!(
            reply_status("vlan/create 10\n1022 Invalid argument\n\nvde$ "),
            Err("1022 Invalid argument".to_string())
        );
        assert!(reply_status("vde$ ").is_err());
    }
}
