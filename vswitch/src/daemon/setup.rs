//! Start-up, in the order [`Daemon::new`] runs it: the switch directory, the ctl and
//! management sockets, the rc file, the start-up commands, then the command line's
//! transports (whose order decides which ports they get).

use super::sys::{check_dir, chmod_nofollow, chown_nofollow, fchmod_fchgrp, open_dir_nofollow};
use super::transport::Connector;
use super::{log, Config, Daemon};
use crate::console;
use crate::core::PortId;
use crate::layout::SwitchDir;
use anyhow::{bail, Context, Result};
use mio::net::UnixListener;
use std::io;
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
            set_dir_mode(dir, cfg.dir_mode(), cfg.group)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            check_dir(dir, cfg.group)?;
            Ok(false)
        }
        Err(e) => Err(e).with_context(|| format!("mkdir {}", dir.display())),
    }
}

/// chmod/chgrp a directory the switch created, through a descriptor opened O_NOFOLLOW.
pub(super) fn set_dir_mode(dir: &Path, mode: u32, group: Option<u32>) -> Result<()> {
    let f = open_dir_nofollow(dir).with_context(|| format!("open {}", dir.display()))?;
    fchmod_fchgrp(&f, mode, group).with_context(|| format!("chmod/chgrp {}", dir.display()))
}

/// chmod/chgrp a socket the switch bound, never following a symlink put in its place.
pub(super) fn set_socket_mode(path: &Path, mode: u32, group: Option<u32>) -> Result<()> {
    chmod_nofollow(path, mode).with_context(|| format!("chmod {}", path.display()))?;
    chown_nofollow(path, None, group).with_context(|| format!("chgrp {}", path.display()))
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
    set_socket_mode(&ctl_path, cfg.mode, cfg.group)?;
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
    set_socket_mode(m, cfg.mgmt_mode, cfg.mgmt_group)?;
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

    fn cfg_in(dir: &Path) -> Config {
        Config {
            sock_dir: dir.to_path_buf(),
            numports: 2,
            ..Config::default()
        }
    }

    #[test]
    fn an_existing_directory_writable_by_others_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("sw");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let e = format!("{:#}", Daemon::new(cfg_in(&dir)).err().expect("refused"));
        assert!(e.contains(&dir.display().to_string()), "{e}");
        assert!(e.contains("chmod go-w"), "{e}");
        assert!(!dir.join("ctl").exists(), "nothing bound in it");
        // Group-writable is fine when it is the switch's group (its own, or `-g`'s).
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o2770))
            .unwrap();
        let gid = std::os::unix::fs::MetadataExt::gid(&std::fs::metadata(&dir).unwrap());
        let other = Config {
            group: Some(gid + 1),
            ..cfg_in(&dir)
        };
        let e = format!("{:#}", Daemon::new(other).err().expect("refused"));
        assert!(e.contains("its group"), "{e}");
        let mut d = Daemon::new(Config {
            group: Some(gid),
            ..cfg_in(&dir)
        })
        .expect("the switch's own group may write");
        d.cleanup();
    }

    #[test]
    fn an_existing_directory_of_another_user_is_refused() {
        if !super::super::sys::is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("sw");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
        let e = format!("{:#}", Daemon::new(cfg_in(&dir)).err().expect("refused"));
        assert!(e.contains("owned by uid 65534"), "{e}");
        assert!(e.contains(&dir.display().to_string()), "{e}");
    }

    #[test]
    fn a_symlink_in_place_of_a_directory_or_socket_is_never_followed() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("sw");
        std::fs::create_dir(&dir).unwrap();
        let target = t.path().join("precious");
        std::fs::write(&target, "x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        if super::super::sys::is_root() {
            std::os::unix::fs::chown(&target, Some(65534), Some(65534)).unwrap();
        }
        let before = std::fs::metadata(&target).unwrap();
        // DIR.streams is a symlink to the file: --port-streams must not chmod/chown it.
        std::os::unix::fs::symlink(&target, t.path().join("sw.streams")).unwrap();
        let cfg = Config {
            port_streams: true,
            group: Some(0),
            ..cfg_in(&dir)
        };
        let e = format!("{:#}", Daemon::new(cfg).err().expect("refused"));
        assert!(e.contains("symlink"), "{e}");
        let after = std::fs::metadata(&target).unwrap();
        assert_eq!(after.mode(), before.mode(), "target's mode unchanged");
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
        // A socket path replaced by a symlink: the nofollow helpers refuse it.
        let link = dir.join("ctl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(set_socket_mode(&link, 0o666, Some(0)).is_err());
        let after = std::fs::metadata(&target).unwrap();
        assert_eq!(after.mode(), before.mode(), "target's mode unchanged");
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    }
}
