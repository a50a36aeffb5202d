//! NICs on a VDE switch: deterministic MACs, and finding or starting the switch.
//!
//! QEMU attaches with `-netdev vde,sock=DIR,port=N` (docs/vde-protocol.md), which
//! speaks the VDE2 control protocol on `DIR/ctl`; so does ramux's `vswitch` and Debian's
//! `vde_switch`, and vlaunch only needs to know whether something answers there.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

pub use ramux_contract::switch_dir::{SwitchDir, DEFAULT_SWITCH_DIR};

pub use ramux_contract::mac::{derived as derived_mac, Mac};

/// One NIC of a VM: a virtio-net device on port `port` of the switch in `switch_dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    pub switch_dir: PathBuf,
    pub port: u16,
    pub mac: Mac,
    /// The port's `-netdev stream` socket when the switch offers one (see
    /// [`port_stream_socket`]); `None` attaches with `-netdev vde`.
    #[serde(default)]
    pub stream: Option<PathBuf>,
    /// The guest's device model (`e1000`, ...); None: virtio-net-pci.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// `DIR.streams/N`: where `vswitch --port-streams` listens for QEMU `-netdev stream` peers
/// of port N ([`SwitchDir::stream`]).
pub fn port_stream_path(dir: &Path, port: u16) -> PathBuf {
    SwitchDir::new(dir).stream(port)
}

/// The port's stream socket if the switch at `dir` listens there. A stream carries many
/// frames per syscall, so the switch spends a fraction of the CPU per frame of the VDE
/// datagram path (docs/benchmarks.md); Debian's vde_switch has none, and then the NIC
/// stays on `-netdev vde`.
pub fn port_stream_socket(dir: &Path, port: u16) -> Option<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let p = port_stream_path(dir, port);
    let is_socket = std::fs::metadata(&p).is_ok_and(|m| m.file_type().is_socket());
    is_socket.then_some(p)
}

/// One `--port` argument: `N` (a port of the `--switch` directory) or `DIR:N` (port N of the
/// switch at DIR, for VMs whose NICs go to different switches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortArg {
    pub switch_dir: Option<PathBuf>,
    pub port: u16,
}

impl FromStr for PortArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (dir, n) = match s.rsplit_once(':') {
            Some((d, n)) if !d.is_empty() => (Some(PathBuf::from(d)), n),
            Some(_) => return Err(format!("invalid --port {s:?}: DIR is empty in DIR:N")),
            None => (None, s),
        };
        let port = n.parse::<u16>().map_err(|_| {
            format!("invalid --port {s:?}: expected N or DIR:N with N a port number")
        })?;
        Ok(PortArg {
            switch_dir: dir,
            port,
        })
    }
}

/// NICs for `--port` and `--mac` lists: NIC i goes to `ports[i]` (switch directory, port) and
/// gets `macs[i]` if given, else a derived MAC. More MACs than ports is an error (it would
/// silently drop one).
pub fn plan_nics(vm_name: &str, ports: &[(PathBuf, u16)], macs: &[Mac]) -> Result<Vec<Nic>> {
    if macs.len() > ports.len() {
        bail!(
            "{} --mac given for {} --port: each --mac applies to the --port at the same position",
            macs.len(),
            ports.len()
        );
    }
    let mut nics: Vec<Nic> = Vec::new();
    for (i, (dir, port)) in ports.iter().enumerate() {
        let port = *port;
        if port == 0 {
            bail!("--port 0 is the switch's management port: use a port number from 1");
        }
        if nics.iter().any(|n| n.port == port && &n.switch_dir == dir) {
            bail!(
                "--port {port} of {} is given twice: each NIC needs its own port",
                dir.display()
            );
        }
        let mac = macs
            .get(i)
            .copied()
            .unwrap_or_else(|| derived_mac(vm_name, i));
        nics.push(Nic {
            switch_dir: dir.clone(),
            port,
            mac,
            stream: None,
            model: None,
        });
    }
    for (i, n) in nics.iter().enumerate() {
        if nics[..i].iter().any(|m| m.mac == n.mac) {
            bail!("MAC {} is used by two NICs", n.mac);
        }
    }
    Ok(nics)
}

/// True when a switch accepts connections on `DIR/ctl` (connecting without sending a request
/// is harmless: vde_switch and vswitch read EOF and drop the connection).
pub fn switch_answers(dir: &Path) -> bool {
    UnixStream::connect(SwitchDir::new(dir).ctl()).is_ok()
}

/// Where `vswitch` is: `$RAMUX_BIN_DIR`, else beside the running executable, else `PATH`.
pub fn find_vswitch() -> Result<PathBuf> {
    let mut tried = Vec::new();
    if let Some(dir) = std::env::var_os("RAMUX_BIN_DIR") {
        let p = PathBuf::from(dir).join("vswitch");
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let p = dir.join("vswitch");
            if p.is_file() {
                return Ok(p);
            }
            tried.push(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join("vswitch");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!(
        "no switch answers and no vswitch binary found (tried {} and PATH): build it with \
         scripts/build and set RAMUX_BIN_DIR, or start one yourself (`vde_switch -s DIR -d` from the \
         vde2 package also works) and pass --switch DIR",
        tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// What [`ensure_switch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchStatus {
    /// A switch was already answering on DIR/ctl.
    Running,
    /// vlaunch started `vswitch -s DIR --port-streams -d -p PIDFILE` (the binary path is given).
    Started(PathBuf),
}

/// The pid file vlaunch asks a switch it starts to write: beside the directory, never inside it
/// (VDE clients treat names inside DIR as ports or port groups).
pub fn switch_pidfile(dir: &Path) -> PathBuf {
    SwitchDir::new(dir).pid()
}

/// The management socket of a switch vlaunch starts (`DIR.mgmt`, beside the directory like the
/// pid file), so VLANs and ports can be set up with `vswitch ctl -M DIR.mgmt ...`, unixterm or
/// vdeterm.
pub fn switch_mgmt(dir: &Path) -> PathBuf {
    SwitchDir::new(dir).mgmt()
}

/// Makes sure a VDE-compatible switch answers on `DIR/ctl`, starting a daemonised `vswitch`
/// there when nothing does, and waiting (up to `timeout`) until it answers.
pub fn ensure_switch(dir: &Path, timeout: Duration) -> Result<SwitchStatus> {
    if switch_answers(dir) {
        return Ok(SwitchStatus::Running);
    }
    let bin = find_vswitch()?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {} for the switch", parent.display()))?;
    }
    let mut cmd = Command::new(&bin);
    cmd.arg("-s")
        .arg(dir)
        .arg("--port-streams")
        .arg("-d")
        .arg("-p")
        .arg(switch_pidfile(dir))
        .arg("-M")
        .arg(switch_mgmt(dir))
        .stdin(std::process::Stdio::null());
    close_inherited_fds(&mut cmd);
    let out = cmd
        .output()
        .with_context(|| format!("starting {}", bin.display()))?;
    if !out.status.success() {
        // Another vlaunch may have started the switch a moment earlier: then this one refuses
        // to start (a live switch answers on ctl), which is fine.
        if switch_answers(dir) {
            return Ok(SwitchStatus::Running);
        }
        bail!(
            "{} -s {} -d failed ({}): {}",
            bin.display(),
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let start = Instant::now();
    while start.elapsed() < timeout {
        if switch_answers(dir) {
            return Ok(SwitchStatus::Started(bin));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!(
        "started {} -s {} -d but nothing answers on {} after {:?}",
        bin.display(),
        dir.display(),
        SwitchDir::new(dir).ctl().display(),
        timeout
    )
}

/// [`close_inherited_fds`], but `keep` becomes the child's descriptor `at` (> 2, not
/// close-on-exec) and stays open.
pub fn close_inherited_fds_but(cmd: &mut Command, keep: i32, at: i32) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2, fcntl and close_range are async-signal-safe and touch only the child's
    // descriptor table.
    unsafe {
        cmd.pre_exec(move || {
            if keep != at {
                if libc::dup2(keep, at) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else {
                libc::fcntl(at, libc::F_SETFD, 0);
            }
            let from = (at + 1) as u32;
            if libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) != 0 {
                for fd in from as i32..1024 {
                    libc::close(fd);
                }
            }
            for fd in 3..at {
                libc::close(fd);
            }
            Ok(())
        })
    }
}

/// Daemons vlaunch starts (switches, QEMU) outlive it: they must not keep the descriptors it
/// inherited, such as the lock of a `flock` around it, which would then be held until the
/// switch or VM stops. Closes every descriptor above stderr in the child before exec.
pub fn close_inherited_fds(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: close_range is async-signal-safe and touches only the child's descriptor table;
    // std sets up stdin/stdout/stderr (0-2) before this runs.
    unsafe {
        cmd.pre_exec(|| {
            if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
                for fd in 3..1024 {
                    libc::close(fd);
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemons_do_not_inherit_our_descriptors() {
        // dup() makes a descriptor without CLOEXEC, like the one `flock CMD` hands down.
        let f = std::fs::File::open("/dev/null").unwrap();
        let fd = unsafe { libc::dup(std::os::fd::AsRawFd::as_raw_fd(&f)) };
        assert!(fd > 2);
        let fds = |close: bool| {
            let mut c = Command::new("ls");
            c.arg("/proc/self/fd");
            if close {
                close_inherited_fds(&mut c);
            }
            let out = c.output().unwrap();
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert!(fds(false).contains(&fd.to_string()));
        assert!(!fds(true).contains(&fd.to_string()));
        unsafe { libc::close(fd) };
    }

    #[test]
    fn plan_nics_rules() {
        let d = PathBuf::from("/run/ramux/switch");
        let on = |ports: &[u16]| ports.iter().map(|&p| (d.clone(), p)).collect::<Vec<_>>();
        let mac: Mac = "02:00:00:00:00:01".parse().unwrap();
        let n = plan_nics("RT1", &on(&[3, 4]), &[mac]).unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!((n[0].port, n[0].mac), (3, mac));
        assert_eq!((n[1].port, n[1].mac), (4, derived_mac("RT1", 1)));
        assert!(plan_nics("RT1", &on(&[3]), &[mac, mac]).is_err());
        assert!(plan_nics("RT1", &on(&[3, 3]), &[]).is_err());
        assert!(plan_nics("RT1", &on(&[0]), &[]).is_err());
        assert!(plan_nics("RT1", &on(&[1, 2]), &[mac, mac]).is_err());
        assert!(plan_nics("RT1", &[], &[]).unwrap().is_empty());
        // The same port number on two different switches is two different ports.
        let other = PathBuf::from("/tmp/sw2");
        let n = plan_nics("RT1", &[(d.clone(), 3), (other.clone(), 3)], &[]).unwrap();
        assert_eq!(n[1].switch_dir, other);
    }

    #[test]
    fn port_args() {
        assert_eq!(
            "7".parse::<PortArg>().unwrap(),
            PortArg {
                switch_dir: None,
                port: 7
            }
        );
        assert_eq!(
            "/tmp/sw:a:12".parse::<PortArg>().unwrap(),
            PortArg {
                switch_dir: Some("/tmp/sw:a".into()),
                port: 12
            }
        );
        for bad in ["", "x", ":3", "/tmp/sw:", "/tmp/sw:70000", "-1"] {
            assert!(bad.parse::<PortArg>().is_err(), "{bad}");
        }
    }

    #[test]
    fn nothing_answers_on_empty_dir() {
        let d = tempfile::tempdir().unwrap();
        assert!(!switch_answers(d.path()));
        let _l = std::os::unix::net::UnixListener::bind(d.path().join("ctl")).unwrap();
        assert!(switch_answers(d.path()));
    }

    #[test]
    fn pidfile_is_beside_the_dir() {
        assert_eq!(
            switch_pidfile(Path::new("/run/ramux/switch")),
            PathBuf::from("/run/ramux/switch.pid")
        );
        assert_eq!(
            switch_mgmt(Path::new("/run/ramux/switch")),
            PathBuf::from("/run/ramux/switch.mgmt")
        );
    }
}
