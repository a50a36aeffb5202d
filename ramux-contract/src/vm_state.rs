//! Where vlaunch keeps a VM's state: `<root>/<NAME>/` (default root `/run/ramux/vms`), so `ps`,
//! `console`, `wait` and `stop` find a VM by its name alone.
//!
//! | file | what |
//! |---|---|
//! | `serial.sock` | the serial console (QEMU chardev socket; `vlaunch console` attaches) |
//! | `serial.log` | everything the serial console printed since boot |
//! | `qmp.sock` | QMP control socket (power button, status) |
//! | `qga.sock` | the QEMU guest agent's virtio-serial channel (`vlaunch exec`) |
//! | `pid` | QEMU's pid file |
//! | `qemu.log` | QEMU's own stdout and stderr |
//! | `vm.json` | what was launched and what vlaunch decided (read by `ps`) |
//! | `OVMF_VARS.fd` | the VM's own UEFI variable store (UEFI boots only) |

use std::path::{Path, PathBuf};

/// The default root of the VM state directories.
pub const DEFAULT_STATE_ROOT: &str = "/run/ramux/vms";

/// The files of one VM's state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmDir(PathBuf);

impl VmDir {
    /// The state directory of VM `name` under `root`.
    pub fn under(root: &Path, name: &str) -> VmDir {
        VmDir(root.join(name))
    }

    /// A state directory given by its path.
    pub fn at(dir: impl Into<PathBuf>) -> VmDir {
        VmDir(dir.into())
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }
    pub fn serial_sock(&self) -> PathBuf {
        self.0.join("serial.sock")
    }
    pub fn serial_log(&self) -> PathBuf {
        self.0.join("serial.log")
    }
    pub fn qmp_sock(&self) -> PathBuf {
        self.0.join("qmp.sock")
    }
    pub fn qga_sock(&self) -> PathBuf {
        self.0.join("qga.sock")
    }
    pub fn pidfile(&self) -> PathBuf {
        self.0.join("pid")
    }
    pub fn qemu_log(&self) -> PathBuf {
        self.0.join("qemu.log")
    }
    pub fn vm_json(&self) -> PathBuf {
        self.0.join("vm.json")
    }
    pub fn ovmf_vars(&self) -> PathBuf {
        self.0.join("OVMF_VARS.fd")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let v = VmDir::under(Path::new(DEFAULT_STATE_ROOT), "RT1");
        assert_eq!(v.qmp_sock(), Path::new("/run/ramux/vms/RT1/qmp.sock"));
        assert_eq!(v.qga_sock(), Path::new("/run/ramux/vms/RT1/qga.sock"));
        assert_eq!(v.pidfile(), Path::new("/run/ramux/vms/RT1/pid"));
        assert_eq!(v.ovmf_vars(), Path::new("/run/ramux/vms/RT1/OVMF_VARS.fd"));
    }
}
