//! The switch directory layout, the one place vswitch (and its client) names the paths
//! around a switch directory `DIR`:
//!
//! - `DIR/ctl`: the control socket of the VDE handshake (`docs/vde-protocol.md`);
//! - `DIR/PPP.ID`: the switch side of a VDE client's data socket (port, endpoint id);
//! - `DIR.streams/N`: the `--port-streams` listener of port N (beside DIR, not in it: names
//!   inside DIR are VDE ports and port groups to vdeplug4 clients);
//! - `DIR.mgmt`, `DIR.pid`: where vlaunch puts the management socket and the pid file of a
//!   switch it starts (vswitch itself takes both from `-M` and `-p`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

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

/// `DIR/PPP.ID`: the switch-side data socket of endpoint `id` on `port` (vde_switch names it
/// after the port and its data socket's fd; vswitch uses the ctl stream's fd, the endpoint
/// ID `port/print` shows).
pub fn data_socket(dir: &SwitchDir, port: u16, id: u32) -> PathBuf {
    dir.dir().join(format!("{port:03}.{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let d = SwitchDir::new("/run/ramux/switch");
        assert_eq!(d.ctl(), Path::new("/run/ramux/switch/ctl"));
        assert_eq!(d.streams(), Path::new("/run/ramux/switch.streams"));
        assert_eq!(d.stream(12), Path::new("/run/ramux/switch.streams/12"));
        assert_eq!(d.mgmt(), Path::new("/run/ramux/switch.mgmt"));
        assert_eq!(d.pid(), Path::new("/run/ramux/switch.pid"));
        assert_eq!(
            data_socket(&d, 4, 17),
            Path::new("/run/ramux/switch/004.17")
        );
        assert_eq!(
            data_socket(&d, 1234, 5),
            Path::new("/run/ramux/switch/1234.5")
        );
    }
}
