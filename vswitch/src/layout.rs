//! The switch directory layout, the one place vswitch (and its client) names the paths
//! around a switch directory `DIR`. The shared part is ramux-contract's [`SwitchDir`], which
//! vlaunch uses too:
//!
//! - `DIR/ctl`: the control socket of the VDE handshake (`docs/vde-protocol.md`);
//! - `DIR.streams/N`: the `--port-streams` listener of port N (beside DIR, not in it: names
//!   inside DIR are VDE ports and port groups to vdeplug4 clients);
//! - `DIR.mgmt`, `DIR.pid`: where vlaunch puts the management socket and the pid file of a
//!   switch it starts (vswitch itself takes both from `-M` and `-p`).
//!
//! vswitch's own addition is the name of a VDE client's data socket, [`data_socket`].

use std::path::PathBuf;

pub use ramux_contract::SwitchDir;

/// `DIR/PPP.ID`: the switch-side data socket of endpoint `id` on `port` (vde_switch names it
/// after the port and its data socket's fd; vswitch uses the ctl stream's fd, the endpoint
/// ID `port/print` shows).
pub fn data_socket(dir: &SwitchDir, port: u16, id: u32) -> PathBuf {
    dir.dir().join(format!("{port:03}.{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn paths() {
        let d = SwitchDir::new("/run/ramux/switch");
        // What vswitch binds and removes, whatever the contract crate's internals.
        assert_eq!(d.dir(), Path::new("/run/ramux/switch"));
        assert_eq!(d.ctl(), Path::new("/run/ramux/switch/ctl"));
        assert_eq!(d.streams(), Path::new("/run/ramux/switch.streams"));
        assert_eq!(d.stream(12), Path::new("/run/ramux/switch.streams/12"));
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
