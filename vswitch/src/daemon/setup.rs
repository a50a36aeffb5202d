//! Start-up, in the order [`Daemon::new`] runs it: the switch directory, the ctl and
//! management sockets, the rc file, the start-up commands, then the command line's
//! transports (whose order decides which ports they get).

use super::sys::chown_group;
use super::transport::Connector;
use super::{log, Config, Daemon};
use crate::console;
use crate::core::PortId;
use crate::layout::SwitchDir;
use anyhow::{bail, Context, Result};
use mio::net::UnixListener;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Create the switch directory (and its missing parents) with the configured mode and
/// group. Returns whether it was created (and so is removed again on exit).
pub(super) fn create_switch_dir(cfg: &Config) -> Result<bool> {
    let dir = &cfg.sock_dir;
    // vlaunch's default is /run/ramux/switch: create missing parents (vde_switch would fail).
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("mkdir -p {}", parent.display()))?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(cfg.dir_mode()))
                .with_context(|| format!("chmod {}", dir.display()))?;
            chown_group(dir, None, cfg.group)
                .with_context(|| format!("chgrp {}", dir.display()))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if !dir.is_dir() {
                bail!("{} exists and is not a directory", dir.display());
            }
            Ok(false)
        }
        Err(e) => Err(e).with_context(|| format!("mkdir {}", dir.display())),
    }
}

/// Remove a socket left by a switch that is gone; fail if something still listens on it.
pub(super) fn remove_stale_socket(path: &Path, in_use: &str) -> Result<()> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("{in_use}");
        }
        std::fs::remove_file(path).with_context(|| format!("remove stale {}", path.display()))?;
    }
    Ok(())
}

/// Bind `DIR/ctl`, where VDE clients connect.
pub(super) fn bind_ctl(cfg: &Config) -> Result<UnixListener> {
    let ctl_path = SwitchDir::new(&cfg.sock_dir).ctl();
    remove_stale_socket(
        &ctl_path,
        &format!(
            "another switch is already listening on {}",
            ctl_path.display()
        ),
    )?;
    let ctl =
        UnixListener::bind(&ctl_path).with_context(|| format!("bind {}", ctl_path.display()))?;
    std::fs::set_permissions(&ctl_path, std::fs::Permissions::from_mode(cfg.mode))?;
    chown_group(&ctl_path, None, cfg.group)?;
    Ok(ctl)
}

/// Bind the management socket (`-M`), if there is one.
pub(super) fn bind_mgmt(cfg: &Config) -> Result<Option<UnixListener>> {
    let Some(m) = &cfg.mgmt else { return Ok(None) };
    remove_stale_socket(
        m,
        &format!(
            "management socket {} is in use by another process",
            m.display()
        ),
    )?;
    let l =
        UnixListener::bind(m).with_context(|| format!("bind management socket {}", m.display()))?;
    std::fs::set_permissions(m, std::fs::Permissions::from_mode(cfg.mgmt_mode))?;
    chown_group(m, None, cfg.mgmt_group)?;
    Ok(Some(l))
}

/// The console command `--impair` turns into creates the port first when it does not exist
/// yet: the port number it names, if any.
fn impair_port(command: &str) -> Option<PortId> {
    command
        .strip_prefix("port/impair ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

impl Daemon {
    /// `-f FILE`: run each line as a console command. vde_switch ignores errors silently;
    /// vswitch warns with `file:line` and goes on.
    pub(super) fn run_rc_file(&mut self) -> Result<()> {
        let Some(rc) = self.cfg.rcfile.clone() else {
            return Ok(());
        };
        let text = std::fs::read_to_string(&rc)
            .with_context(|| format!("read rc file {}", rc.display()))?;
        for (i, line) in text.lines().enumerate() {
            let r = self.console_line(line);
            if r.errno > 0 {
                log::emit(
                    false,
                    &format!(
                        "{}:{}: {:?}: {}",
                        rc.display(),
                        i + 1,
                        line,
                        console::strerror(r.errno)
                    ),
                );
            }
        }
        Ok(())
    }

    /// The command line's console commands (`--impair`); the first failure stops the start.
    pub(super) fn run_start_commands(&mut self) -> Result<()> {
        for c in self.cfg.commands.clone() {
            // `--impair N ...` on a port nobody has connected to yet: create it (allocatable),
            // so the impairment is in place for the first client.
            if let Some(n) = impair_port(&c) {
                if n <= self.sw.numports && self.sw.port(n).is_none() {
                    self.sw.create_port(n, true);
                }
            }
            let r = self.console_line(&c);
            if r.errno > 0 {
                bail!("command {c:?} failed: {}", console::strerror(r.errno));
            }
        }
        Ok(())
    }

    /// Taps, stream listeners, stream connectors, dgram sockets and VXLAN ports, in this order.
    pub(super) fn open_transports(&mut self) -> Result<()> {
        for t in self.cfg.taps.clone() {
            self.add_tap(&t)?;
        }
        for (p, port) in self.cfg.streams.clone() {
            self.add_stream_listener(&p, port)?;
        }
        if self.cfg.port_streams {
            self.add_port_streams()?;
        }
        for (addr, port) in self.cfg.stream_tcps.clone() {
            self.add_tcp_stream_listener(addr, port)?;
        }
        for (path, port) in self.cfg.stream_connects.clone() {
            self.connectors.push(Connector::new(path, port));
        }
        for (p, port) in self.cfg.dgrams.clone() {
            self.add_dgram(&p, port)?;
        }
        for v in self.cfg.vxlans.clone() {
            self.add_vxlan(&v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impair_command_names_its_port() {
        assert_eq!(impair_port("port/impair 4 out delay 20+5"), Some(4));
        assert_eq!(impair_port("port/impair 12"), Some(12));
        assert_eq!(impair_port("port/impair x out loss 5"), None);
        assert_eq!(impair_port("port/impair "), None);
        assert_eq!(impair_port("vlan/create 4"), None);
    }

    #[test]
    fn start_up_binds_the_directory_and_cleanup_removes_it() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b/sw");
        let mgmt = t.path().join("mgmt");
        let cfg = Config {
            sock_dir: dir.clone(),
            mgmt: Some(mgmt.clone()),
            numports: 4,
            port_streams: true,
            commands: vec!["port/impair 3 out loss 10".into()],
            ..Config::default()
        };
        let mut d = Daemon::new(cfg).unwrap();
        assert!(dir.join("ctl").exists());
        assert!(mgmt.exists());
        assert!(t.path().join("a/b/sw.streams/4").exists());
        assert!(!t.path().join("a/b/sw.streams/5").exists());
        assert!(d.sw.port(3).is_some(), "--impair creates the port it names");
        assert!(d.impair_out.contains_key(&3));
        assert!(!d.impair_in.contains_key(&3));
        // A second switch on the same directory is refused and removes nothing.
        let again = Daemon::new(Config {
            sock_dir: dir.clone(),
            ..Config::default()
        });
        let e = again.err().expect("second switch refused").to_string();
        assert!(e.contains("already listening"), "{e}");
        assert!(dir.join("ctl").exists());
        d.cleanup();
        assert!(!dir.exists());
        assert!(!mgmt.exists());
        assert!(!t.path().join("a/b/sw.streams").exists());
        // The parents it created stay (vde_switch would not have created them at all).
        assert!(t.path().join("a/b").is_dir());
    }

    #[test]
    fn a_failing_start_command_stops_the_start_and_cleans_up() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("sw");
        let cfg = Config {
            sock_dir: dir.clone(),
            numports: 4,
            commands: vec!["port/impair 9 out loss 10".into()],
            ..Config::default()
        };
        let e = Daemon::new(cfg)
            .err()
            .expect("port 9 of 4 fails")
            .to_string();
        assert!(
            e.contains("command \"port/impair 9 out loss 10\" failed"),
            "{e}"
        );
        assert!(!dir.exists());
    }
}
