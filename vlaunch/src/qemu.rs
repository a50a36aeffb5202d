//! The QEMU command line, as a pure function of a [`LaunchSpec`].
//!
//! Everything QEMU does for vlaunch is visible here: which firmware, how the ISO is attached
//! (CD or USB stick), where the serial console goes (a socket for `vlaunch console` plus a log
//! file that `--wait-ready` and `ps` read), the QMP socket for `stop`, and one virtio NIC per
//! switch port. Keeping it pure lets the unit tests pin every argument.

use crate::accel::Accel;
use crate::net::Nic;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The QEMU binary vlaunch runs (x86-64 guests only, like the images vbuild makes).
pub const QEMU: &str = "qemu-system-x86_64";

/// How the machine starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Firmware {
    /// SeaBIOS (QEMU's default): ISOLINUX boots the ISO.
    Bios,
    /// OVMF: `code` is mapped read-only, `vars` is this VM's own writable copy of the template.
    Uefi { code: PathBuf, vars: PathBuf },
}

/// How the ISO is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Media {
    /// An IDE CD-ROM drive (El Torito boot).
    Cd,
    /// A USB stick (xHCI + usb-storage), i.e. the ISO written to a stick with `dd`: the isohybrid
    /// MBR (BIOS) or GPT/ESP (UEFI) path. Writes go to a throw-away overlay (`snapshot=on`).
    Usb,
}

/// Files of a VM's state directory that QEMU creates or uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatePaths {
    pub dir: PathBuf,
    pub serial_sock: PathBuf,
    pub serial_log: PathBuf,
    pub qmp_sock: PathBuf,
    pub pidfile: PathBuf,
    /// QEMU's own stdout/stderr.
    pub qemu_log: PathBuf,
    /// vm.json: the [`LaunchSpec`] plus what vlaunch decided (read by `ps`).
    pub vm_json: PathBuf,
}

impl StatePaths {
    /// The layout of [`ramux_contract::vm_state`] under `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        let v = ramux_contract::VmDir::at(dir);
        StatePaths {
            dir: dir.to_path_buf(),
            serial_sock: v.serial_sock(),
            serial_log: v.serial_log(),
            qmp_sock: v.qmp_sock(),
            pidfile: v.pidfile(),
            qemu_log: v.qemu_log(),
            vm_json: v.vm_json(),
        }
    }
}

/// Everything needed to start one VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchSpec {
    pub name: String,
    pub iso: PathBuf,
    pub mem_mib: u32,
    pub cpus: u32,
    pub accel: Accel,
    pub firmware: Firmware,
    pub media: Media,
    pub nics: Vec<Nic>,
    pub paths: StatePaths,
}

fn opt_path(prefix: &str, p: &Path) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(escape_commas(p));
    s
}

/// QEMU option values separate keys with commas; a literal comma is written twice.
fn escape_commas(p: &Path) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut out = Vec::new();
    for &b in p.as_os_str().as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

/// The full argv (without the program name `qemu-system-x86_64`).
pub fn qemu_args(spec: &LaunchSpec) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
    // No default devices (no VGA, no default NIC, no floppy): the guest sees exactly what is listed.
    push(&[
        "-name",
        &format!("{},process=vlaunch-{}", spec.name, spec.name),
    ]);
    push(&["-nodefaults", "-no-user-config", "-display", "none"]);
    push(&["-machine", "q35"]);
    match spec.accel {
        // `-cpu host` exposes the real CPU; with TCG the default model is the portable choice.
        Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
        Accel::Tcg => push(&["-accel", "tcg"]),
    }
    push(&[
        "-m",
        &spec.mem_mib.to_string(),
        "-smp",
        &spec.cpus.to_string(),
    ]);

    if let Firmware::Uefi { code, vars } = &spec.firmware {
        a.push("-drive".into());
        a.push(opt_path(
            "if=pflash,format=raw,unit=0,readonly=on,file=",
            code,
        ));
        a.push("-drive".into());
        a.push(opt_path("if=pflash,format=raw,unit=1,file=", vars));
    }

    match spec.media {
        Media::Cd => {
            a.push("-drive".into());
            a.push(opt_path(
                "if=none,id=cd0,format=raw,media=cdrom,readonly=on,file=",
                &spec.iso,
            ));
            a.push("-device".into());
            a.push("ide-cd,drive=cd0,bootindex=0".into());
        }
        Media::Usb => {
            a.push("-device".into());
            a.push("qemu-xhci,id=xhci".into());
            a.push("-drive".into());
            a.push(opt_path(
                "if=none,id=stick0,format=raw,snapshot=on,file=",
                &spec.iso,
            ));
            a.push("-device".into());
            a.push("usb-storage,bus=xhci.0,drive=stick0,removable=on,bootindex=0".into());
        }
    }

    for (i, nic) in spec.nics.iter().enumerate() {
        a.push("-netdev".into());
        let nd = match &nic.stream {
            // vswitch's per-port stream listener: many frames per syscall (net::port_stream_socket).
            Some(path) => {
                let mut nd = OsString::from(format!(
                    "stream,id=net{i},server=off,addr.type=unix,addr.path="
                ));
                nd.push(escape_commas(path));
                nd
            }
            None => {
                let mut nd = OsString::from(format!("vde,id=net{i},sock="));
                nd.push(escape_commas(&nic.switch_dir));
                nd.push(format!(",port={}", nic.port));
                nd
            }
        };
        a.push(nd);
        a.push("-device".into());
        a.push(format!("virtio-net-pci,netdev=net{i},mac={}", nic.mac).into());
    }

    // Host entropy: without it the guest kernel's random pool initialises about 1 s later under
    // TCG (ramux-init's machine-id write waits for it; measured in docs/benchmarks.md).
    a.push("-device".into());
    a.push("virtio-rng-pci".into());

    // Serial console: one socket client at a time (`vlaunch console`), everything also logged.
    let p = &spec.paths;
    a.push("-chardev".into());
    let mut ch = OsString::from("socket,id=serial0,server=on,wait=off,path=");
    ch.push(escape_commas(&p.serial_sock));
    ch.push(",logfile=");
    ch.push(escape_commas(&p.serial_log));
    ch.push(",logappend=off");
    a.push(ch);
    a.push("-serial".into());
    a.push("chardev:serial0".into());

    a.push("-chardev".into());
    a.push(opt_path(
        "socket,id=qmp0,server=on,wait=off,path=",
        &p.qmp_sock,
    ));
    a.push("-mon".into());
    a.push("chardev=qmp0,mode=control".into());

    a.push("-pidfile".into());
    a.push(p.pidfile.clone().into_os_string());
    a
}

/// The command line as one shell-quoted string, for logs and `--dry-run`.
pub fn shell_line(args: &[OsString]) -> String {
    std::iter::once(OsString::from(QEMU))
        .chain(args.iter().cloned())
        .map(|a| {
            let s = a.to_string_lossy().into_owned();
            if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=,./:+@".contains(&b))
            {
                s
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Mac;

    fn spec() -> LaunchSpec {
        LaunchSpec {
            name: "RT1".into(),
            iso: "/srv/RT1.iso".into(),
            mem_mib: 1024,
            cpus: 1,
            accel: Accel::Tcg,
            firmware: Firmware::Bios,
            media: Media::Cd,
            nics: vec![],
            paths: StatePaths::in_dir(Path::new("/run/ramux/vms/RT1")),
        }
    }

    fn line(s: &LaunchSpec) -> String {
        shell_line(&qemu_args(s))
    }

    #[test]
    fn bios_cd_tcg() {
        assert_eq!(
            line(&spec()),
            "qemu-system-x86_64 -name RT1,process=vlaunch-RT1 -nodefaults -no-user-config \
             -display none -machine q35 -accel tcg -m 1024 -smp 1 \
             -drive if=none,id=cd0,format=raw,media=cdrom,readonly=on,file=/srv/RT1.iso \
             -device ide-cd,drive=cd0,bootindex=0 \
             -device virtio-rng-pci \
             -chardev socket,id=serial0,server=on,wait=off,path=/run/ramux/vms/RT1/serial.sock,logfile=/run/ramux/vms/RT1/serial.log,logappend=off \
             -serial chardev:serial0 \
             -chardev socket,id=qmp0,server=on,wait=off,path=/run/ramux/vms/RT1/qmp.sock \
             -mon chardev=qmp0,mode=control -pidfile /run/ramux/vms/RT1/pid"
        );
    }

    #[test]
    fn uefi_usb_kvm_with_nics() {
        let mut s = spec();
        s.accel = Accel::Kvm;
        s.media = Media::Usb;
        s.firmware = Firmware::Uefi {
            code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
            vars: "/run/ramux/vms/RT1/OVMF_VARS.fd".into(),
        };
        s.nics = vec![
            Nic {
                switch_dir: "/run/ramux/switch".into(),
                port: 4,
                mac: "00:16:3e:00:00:01".parse::<Mac>().unwrap(),
                stream: None,
            },
            Nic {
                switch_dir: "/tmp/sw,2".into(),
                port: 7,
                mac: "00:16:3e:00:00:02".parse::<Mac>().unwrap(),
                stream: None,
            },
            Nic {
                switch_dir: "/run/ramux/switch".into(),
                port: 5,
                mac: "00:16:3e:00:00:03".parse::<Mac>().unwrap(),
                stream: Some("/run/ramux/switch.streams/5".into()),
            },
        ];
        let l = line(&s);
        assert!(l.contains(" -accel kvm -cpu host "), "{l}");
        assert!(l.contains(
            " -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
             -drive if=pflash,format=raw,unit=1,file=/run/ramux/vms/RT1/OVMF_VARS.fd "
        ), "{l}");
        assert!(l.contains(
            " -device qemu-xhci,id=xhci -drive if=none,id=stick0,format=raw,snapshot=on,file=/srv/RT1.iso \
             -device usb-storage,bus=xhci.0,drive=stick0,removable=on,bootindex=0 "
        ), "{l}");
        // NICs in --port order, commas in paths doubled.
        assert!(l.contains(
            " -netdev vde,id=net0,sock=/run/ramux/switch,port=4 -device virtio-net-pci,netdev=net0,mac=00:16:3e:00:00:01 \
             -netdev vde,id=net1,sock=/tmp/sw,,2,port=7 -device virtio-net-pci,netdev=net1,mac=00:16:3e:00:00:02 \
             -netdev stream,id=net2,server=off,addr.type=unix,addr.path=/run/ramux/switch.streams/5 \
             -device virtio-net-pci,netdev=net2,mac=00:16:3e:00:00:03 "
        ), "{l}");
        assert!(!l.contains("ide-cd"), "{l}");
    }

    #[test]
    fn commas_in_iso_path_are_escaped() {
        let mut s = spec();
        s.iso = "/srv/a,b.iso".into();
        let args = qemu_args(&s);
        assert!(args
            .iter()
            .any(|a| a == "if=none,id=cd0,format=raw,media=cdrom,readonly=on,file=/srv/a,,b.iso"));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(
            shell_line(&["a b".into(), "it's".into(), "".into()]),
            r"qemu-system-x86_64 'a b' 'it'\''s' ''"
        );
    }
}
