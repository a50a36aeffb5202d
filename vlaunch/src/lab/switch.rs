//! A lab's switches: the console commands that give a switch its VLANs and ports (pure), the
//! daemon's start and stop, and the vde_switch management console spoken over its unix socket
//! (both vswitch and Debian's vde_switch take the same commands).

use anyhow::{bail, Context, Result};
use ramux_contract::switch_dir::SwitchDir;
use ramux_lab::model::{Engine, Lab, Switch, VlanMode};
use std::io::{Read, Write};
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

/// The console commands for `sw`: `vlan/create` for each of its VLANs, then per used port
/// `port/create P` and its VLANs: access (and a trunk's native VLAN) with `port/setvlan P VID`
/// (untagged), trunk VLANs with `vlan/addport VID P` (tagged).
pub fn switch_commands(lab: &Lab, sw: &Switch) -> Vec<String> {
    let mut cmds: Vec<String> = sw
        .vlans
        .keys()
        .map(|v| format!("vlan/create {v}"))
        .collect();
    for (port, mode) in used_ports(lab, sw) {
        cmds.push(format!("port/create {port}"));
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
    cmds
}

/// The program and arguments that start `sw` daemonised at `dir`. vswitch's ports are
/// 1..=N; vde_switch's are 1..N-1, so it gets one more.
pub fn start_command(engine: Engine, bin: &Path, dir: &Path, ports: u16) -> Vec<String> {
    let d = SwitchDir::new(dir);
    let s = |p: &Path| p.display().to_string();
    let mut argv = vec![s(bin), "-s".into(), s(dir)];
    let n = match engine {
        Engine::Vswitch => {
            argv.push("--port-streams".into());
            ports
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
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
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
        );
        assert_eq!(
            b.join(" "),
            "vde_switch -s /d -n 33 -M /d.mgmt -p /d.pid -d"
        );
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
