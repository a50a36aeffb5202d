//! Where a switch keeps its sockets. A switch is named by its directory `DIR` (default
//! `/run/ramux/switch`), the layout of VDE2's `vde_switch -s DIR`, which vswitch keeps:
//!
//! - `DIR/ctl`: the control socket; a client (QEMU `-netdev vde`, `vde_plug`) connects there and
//!   asks for a port (the handshake is described in `docs/vde-protocol.md`);
//! - `DIR.streams/N`: vswitch `--port-streams` only: a QEMU `-netdev stream` listener for port N;
//! - `DIR.mgmt`: the management console socket (`vswitch ctl -M`, unixterm, vdeterm), when the
//!   switch was started with one (vlaunch always asks for it);
//! - `DIR.pid`: the pid file of a switch vlaunch started.
//!
//! The siblings sit beside `DIR`, not in it, because `vde_switch` owns what is inside.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The default switch directory.
pub const DEFAULT_SWITCH_DIR: &str = "/run/ramux/switch";

/// The socket paths of the switch at one directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SwitchDir(PathBuf);

impl SwitchDir {
    pub fn new(dir: impl Into<PathBuf>) -> SwitchDir {
        SwitchDir(dir.into())
    }

    /// `DIR` itself.
    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// `DIR/ctl`.
    pub fn ctl(&self) -> PathBuf {
        self.0.join("ctl")
    }

    /// `DIR.streams`, the directory of the per-port stream listeners.
    pub fn streams(&self) -> PathBuf {
        self.sibling(".streams")
    }

    /// `DIR.streams/N`.
    pub fn stream(&self, port: u16) -> PathBuf {
        self.streams().join(port.to_string())
    }

    /// `DIR.mgmt`.
    pub fn mgmt(&self) -> PathBuf {
        self.sibling(".mgmt")
    }

    /// `DIR.pid`.
    pub fn pid(&self) -> PathBuf {
        self.sibling(".pid")
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut s: OsString = self.0.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    }
}

impl Default for SwitchDir {
    fn default() -> SwitchDir {
        SwitchDir::new(DEFAULT_SWITCH_DIR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let d = SwitchDir::default();
        assert_eq!(d.ctl(), Path::new("/run/ramux/switch/ctl"));
        assert_eq!(d.stream(5), Path::new("/run/ramux/switch.streams/5"));
        assert_eq!(d.mgmt(), Path::new("/run/ramux/switch.mgmt"));
        assert_eq!(d.pid(), Path::new("/run/ramux/switch.pid"));
        // A trailing slash would put the siblings inside DIR: they must stay beside it.
        assert_eq!(
            SwitchDir::new("/tmp/sw").streams(),
            Path::new("/tmp/sw.streams")
        );
    }
}
