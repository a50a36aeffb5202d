//! The QEMU command line, as a pure function of a [`LaunchSpec`].
//!
//! Everything QEMU does for vlaunch is visible here: which firmware, how the ISO is attached
//! (CD or USB stick), where the serial console goes (a socket for `vlaunch console` plus a log
//! file that `--wait-ready` and `ps` read), the QMP socket for `stop`, the guest agent's
//! virtio-serial channel for `exec`, and one virtio NIC per switch port. Keeping it pure lets the unit tests pin every argument.
//!
//! The line is rendered from a [`QemuCommand`], which the tests that boot their own tiny
//! guests (a kernel and an initramfs, or iPXE alone) fill in too, so they run the same machine
//! as vlaunch with the few things they need added (`-kernel`, `-serial stdio`, `-no-reboot`...).

use crate::accel::Accel;
use crate::net::{Mac, Nic};
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
    /// `secure_boot`: the SMM build with Microsoft's and Debian's keys enrolled, so only signed
    /// boot loaders and kernels start (the machine needs SMM and a secure flash).
    Uefi {
        code: PathBuf,
        vars: PathBuf,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        secure_boot: bool,
    },
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
    /// The guest agent channel (`vlaunch exec`); default for vm.json files written before it.
    #[serde(default)]
    pub qga_sock: PathBuf,
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
            qga_sock: v.qga_sock(),
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
    /// Extra QEMU arguments, appended last (`qemu_args` of a lab node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
    /// The site secrets overlay handed over as fw_cfg `opt/ramux/secrets` (docs/secrets.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<PathBuf>,
    /// The site key's disk image, attached as a second USB stick (docs/keep.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
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

/// How the guest boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// From the ISO attached as `media` (what vlaunch does).
    Iso { iso: PathBuf, media: Media },
    /// Direct kernel boot, `-kernel K -initrd I -append CMDLINE`: no disk at all (the tests'
    /// tiny guests).
    Kernel {
        kernel: PathBuf,
        initrd: PathBuf,
        append: String,
    },
    /// From the NICs' option ROMs only (`-boot n`: iPXE's DHCP).
    Network,
}

/// Where the guest's first serial port (ttyS0) goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serial {
    /// Nowhere (`-nodefaults` leaves no serial port).
    None,
    /// QEMU's own stdin and stdout (`-serial stdio`).
    Stdio,
    /// A unix socket server, one client at a time, with everything also logged to `log`
    /// (what vlaunch does: `vlaunch console` on the socket, `--wait-ready` on the log). QEMU
    /// writes the log to descriptor [`SERIAL_LOG_FD`], a pipe to vlaunch's bounded writer
    /// ([`crate::vm::keep_serial_log`]), which writes `log`: a plain logfile grew without end.
    Socket { sock: PathBuf, log: PathBuf },
}

/// The descriptor QEMU gets the serial log pipe on (`logfile=/dev/fd/3`).
pub const SERIAL_LOG_FD: i32 = 3;

/// The host side of a NIC (`-netdev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetBackend {
    /// A port of a VDE switch: `vde,sock=DIR,port=N`.
    Vde { switch_dir: PathBuf, port: u16 },
    /// A client of a stream socket (vswitch's per-port listener): `stream,server=off,...`.
    StreamConnect(PathBuf),
    /// A stream socket QEMU listens on (`stream,server=on,...`), for a switch to connect to.
    StreamListen(PathBuf),
    /// Unix datagrams from `local` to `remote` (`dgram,...`).
    Dgram { local: PathBuf, remote: PathBuf },
    /// The legacy `socket,connect=HOST:PORT` (TCP, same 4-byte framing as stream).
    SocketConnect(std::net::SocketAddr),
    /// User-mode networking with no way out (`user,restrict=on`): a NIC for a guest that
    /// needs one to exist but talks to nobody.
    UserRestricted,
}

/// One NIC: the backend and the guest device (`-netdev` + `-device MODEL,netdev=...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDevice {
    pub backend: NetBackend,
    /// QEMU device model, e.g. `virtio-net-pci`, `e1000`.
    pub model: String,
    /// `None` lets QEMU pick (52:54:00:12:34:56 for the first NIC).
    pub mac: Option<Mac>,
    /// `false` adds `romfile=`: no iPXE option ROM, for guests that never boot from the
    /// network (direct kernel boots).
    pub option_rom: bool,
}

impl NetDevice {
    /// A virtio-net NIC with its option ROM (what vlaunch gives every port).
    pub fn virtio(backend: NetBackend, mac: Option<Mac>) -> NetDevice {
        NetDevice {
            backend,
            model: "virtio-net-pci".into(),
            mac,
            option_rom: true,
        }
    }
}

impl From<&Nic> for NetDevice {
    /// A switch port: its stream socket when the switch offers one, else `-netdev vde`.
    fn from(nic: &Nic) -> NetDevice {
        let backend = match &nic.stream {
            Some(path) => NetBackend::StreamConnect(path.clone()),
            None => NetBackend::Vde {
                switch_dir: nic.switch_dir.clone(),
                port: nic.port,
            },
        };
        let mut d = NetDevice::virtio(backend, Some(nic.mac));
        if let Some(m) = &nic.model {
            d.model.clone_from(m);
        }
        d
    }
}

/// A QEMU command line in parts, rendered by [`QemuCommand::args`] in a fixed order. vlaunch
/// builds one from a [`LaunchSpec`] ([`qemu_args`]); tests that boot a kernel directly build
/// one with [`QemuCommand::kernel_boot`] or [`QemuCommand::network_boot`] and set the fields
/// they need, so every QEMU the project starts gets the same base: `-nodefaults
/// -no-user-config -display none -machine q35`, the accelerator, memory and CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuCommand {
    /// `-name NAME,process=vlaunch-NAME` (the process shows as `vlaunch-NAME` in `ps`).
    pub name: Option<String>,
    pub accel: Accel,
    pub mem_mib: u32,
    pub cpus: u32,
    pub firmware: Firmware,
    pub boot: Boot,
    /// In order: the first is `net0` (the guest's eth0).
    pub nics: Vec<NetDevice>,
    /// `-device virtio-rng-pci` (host entropy).
    pub rng: bool,
    /// A standard VGA card (`-vga std`), e.g. for a test that reads the text console (tty0);
    /// `-nodefaults` has none.
    pub vga: bool,
    pub serial: Serial,
    /// A QMP server socket (`-chardev socket,...,server=on,wait=off` + `-mon mode=control`).
    pub qmp: Option<PathBuf>,
    /// The QEMU guest agent's channel: a virtio-serial port named `org.qemu.guest_agent.0` on a
    /// chardev socket server at this path. A guest without an agent just never opens the port.
    pub qga: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    /// `-no-reboot`: a guest reboot (or a kernel panic with `panic=-1`) ends QEMU instead of
    /// starting the guest again.
    pub no_reboot: bool,
    /// Appended as given, last (a lab node's `qemu_args`).
    pub extra: Vec<String>,
    /// `-fw_cfg name=opt/ramux/secrets,file=FILE`: the site secrets overlay, read by
    /// ramux-init from sysfs; never on a disk of the guest (docs/secrets.md).
    pub secrets: Option<PathBuf>,
    /// A raw image attached read-write as a USB stick (`usb-storage` on the xHCI controller):
    /// the site key.
    pub key: Option<PathBuf>,
}

impl QemuCommand {
    fn base(accel: Accel, mem_mib: u32, boot: Boot) -> QemuCommand {
        QemuCommand {
            name: None,
            accel,
            mem_mib,
            cpus: 1,
            firmware: Firmware::Bios,
            boot,
            nics: Vec::new(),
            rng: false,
            vga: false,
            serial: Serial::None,
            qmp: None,
            qga: None,
            pidfile: None,
            no_reboot: false,
            extra: Vec::new(),
            secrets: None,
            key: None,
        }
    }

    /// Boots `kernel` with `initrd` and the command line `append`: one CPU, SeaBIOS, no NIC,
    /// no serial port, no VGA; set the fields for more.
    pub fn kernel_boot(
        accel: Accel,
        mem_mib: u32,
        kernel: &Path,
        initrd: &Path,
        append: &str,
    ) -> QemuCommand {
        let boot = Boot::Kernel {
            kernel: kernel.to_path_buf(),
            initrd: initrd.to_path_buf(),
            append: append.to_string(),
        };
        QemuCommand::base(accel, mem_mib, boot)
    }

    /// No disk and no kernel: SeaBIOS boots the NICs' option ROMs (iPXE sends DHCP requests).
    pub fn network_boot(accel: Accel, mem_mib: u32) -> QemuCommand {
        QemuCommand::base(accel, mem_mib, Boot::Network)
    }

    /// What vlaunch runs for `spec`.
    pub fn for_spec(spec: &LaunchSpec) -> QemuCommand {
        let p = &spec.paths;
        QemuCommand {
            name: Some(spec.name.clone()),
            cpus: spec.cpus,
            firmware: spec.firmware.clone(),
            nics: spec.nics.iter().map(NetDevice::from).collect(),
            // Host entropy: without it the guest kernel's random pool initialises about 1 s
            // later under TCG (ramux-init's machine-id write waits for it; measured in
            // docs/benchmarks.md).
            rng: true,
            serial: Serial::Socket {
                sock: p.serial_sock.clone(),
                log: p.serial_log.clone(),
            },
            qmp: Some(p.qmp_sock.clone()),
            qga: Some(p.qga_sock.clone()),
            pidfile: Some(p.pidfile.clone()),
            extra: spec.extra_args.clone(),
            secrets: spec.secrets.clone(),
            key: spec.key.clone(),
            ..QemuCommand::base(
                spec.accel,
                spec.mem_mib,
                Boot::Iso {
                    iso: spec.iso.clone(),
                    media: spec.media,
                },
            )
        }
    }

    /// The full argv (without the program name `qemu-system-x86_64`).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
        if let Some(name) = &self.name {
            push(&["-name", &format!("{name},process=vlaunch-{name}")]);
        }
        // No default devices (no VGA, no default NIC, no floppy): the guest sees exactly what
        // is listed.
        push(&["-nodefaults", "-no-user-config", "-display", "none"]);
        // The Secure Boot OVMF keeps its variables in SMM-protected flash.
        let secure = matches!(
            self.firmware,
            Firmware::Uefi {
                secure_boot: true,
                ..
            }
        );
        push(&["-machine", if secure { "q35,smm=on" } else { "q35" }]);
        if secure {
            push(&["-global", "driver=cfi.pflash01,property=secure,value=on"]);
        }
        match self.accel {
            // `-cpu host` exposes the real CPU; with TCG the default model is the portable choice.
            Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => push(&["-accel", "tcg"]),
        }
        push(&[
            "-m",
            &self.mem_mib.to_string(),
            "-smp",
            &self.cpus.to_string(),
        ]);
        if self.no_reboot {
            push(&["-no-reboot"]);
        }
        if self.vga {
            push(&["-vga", "std"]);
        }

        if let Firmware::Uefi { code, vars, .. } = &self.firmware {
            a.push("-drive".into());
            a.push(opt_path(
                "if=pflash,format=raw,unit=0,readonly=on,file=",
                code,
            ));
            a.push("-drive".into());
            a.push(opt_path("if=pflash,format=raw,unit=1,file=", vars));
        }

        match &self.boot {
            Boot::Iso {
                iso,
                media: Media::Cd,
            } => {
                a.push("-drive".into());
                a.push(opt_path(
                    "if=none,id=cd0,format=raw,media=cdrom,readonly=on,file=",
                    iso,
                ));
                a.push("-device".into());
                a.push("ide-cd,drive=cd0,bootindex=0".into());
            }
            Boot::Iso {
                iso,
                media: Media::Usb,
            } => {
                a.push("-device".into());
                a.push("qemu-xhci,id=xhci".into());
                a.push("-drive".into());
                a.push(opt_path(
                    "if=none,id=stick0,format=raw,snapshot=on,file=",
                    iso,
                ));
                a.push("-device".into());
                a.push("usb-storage,bus=xhci.0,drive=stick0,removable=on,bootindex=0".into());
            }
            Boot::Kernel {
                kernel,
                initrd,
                append,
            } => {
                // Plain paths, not option values: no comma escaping.
                a.push("-kernel".into());
                a.push(kernel.clone().into_os_string());
                a.push("-initrd".into());
                a.push(initrd.clone().into_os_string());
                a.push("-append".into());
                a.push(append.into());
            }
            Boot::Network => {
                a.push("-boot".into());
                a.push("n".into());
            }
        }

        for (i, nic) in self.nics.iter().enumerate() {
            if let NetBackend::StreamConnect(_) = nic.backend {
                // Through a hub (`hubid=i`): the guest's device is peered with hub port
                // `net{i}` for good, the switch connection `sw{i}` with hub port `up{i}`, so
                // a stream whose switch restarted can be replaced over QMP
                // (crate::reattach): QEMU 7.2's stream netdev does not reconnect, and a new
                // netdev cannot be peered with a NIC whose netdev was deleted.
                a.push("-netdev".into());
                a.push(netdev_arg(&nic.backend, &format!("sw{i}")));
                a.push("-netdev".into());
                a.push(format!("hubport,id=up{i},hubid={i},netdev=sw{i}").into());
                a.push("-netdev".into());
                a.push(format!("hubport,id=net{i},hubid={i}").into());
            } else {
                a.push("-netdev".into());
                a.push(netdev_arg(&nic.backend, &format!("net{i}")));
            }
            a.push("-device".into());
            let mut dev = format!("{},netdev=net{i}", nic.model);
            if let Some(mac) = nic.mac {
                dev.push_str(&format!(",mac={mac}"));
            }
            if !nic.option_rom {
                dev.push_str(",romfile=");
            }
            a.push(dev.into());
        }

        if self.rng {
            a.push("-device".into());
            a.push("virtio-rng-pci".into());
        }

        match &self.serial {
            Serial::None => {}
            Serial::Stdio => {
                a.push("-serial".into());
                a.push("stdio".into());
            }
            Serial::Socket { sock, log: _ } => {
                a.push("-chardev".into());
                let mut ch = OsString::from("socket,id=serial0,server=on,wait=off,path=");
                ch.push(escape_commas(sock));
                // The log goes through a pipe (fd 3, see SERIAL_LOG_FD) to vlaunch's bounded
                // writer (vm::keep_serial_log), which writes `log` and rotates it.
                ch.push(format!(",logfile=/dev/fd/{SERIAL_LOG_FD},logappend=on"));
                a.push(ch);
                a.push("-serial".into());
                a.push("chardev:serial0".into());
            }
        }

        if let Some(qmp) = &self.qmp {
            a.push("-chardev".into());
            a.push(opt_path("socket,id=qmp0,server=on,wait=off,path=", qmp));
            a.push("-mon".into());
            a.push("chardev=qmp0,mode=control".into());
        }

        if let Some(qga) = &self.qga {
            a.push("-device".into());
            a.push("virtio-serial-pci,id=vser0".into());
            a.push("-chardev".into());
            a.push(opt_path("socket,id=qga0,server=on,wait=off,path=", qga));
            a.push("-device".into());
            a.push("virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0".into());
        }

        if let Some(key) = &self.key {
            let usb_boot = matches!(
                self.boot,
                Boot::Iso {
                    media: Media::Usb,
                    ..
                }
            );
            if !usb_boot {
                a.push("-device".into());
                a.push("qemu-xhci,id=xhci".into());
            }
            a.push("-drive".into());
            a.push(opt_path("if=none,id=key0,format=raw,file=", key));
            a.push("-device".into());
            a.push("usb-storage,bus=xhci.0,drive=key0,removable=on".into());
        }

        if let Some(file) = &self.secrets {
            a.push("-fw_cfg".into());
            let name = ramux_contract::secrets::FW_CFG_NAME;
            a.push(opt_path(&format!("name={name},file="), file));
        }

        if let Some(pidfile) = &self.pidfile {
            a.push("-pidfile".into());
            a.push(pidfile.clone().into_os_string());
        }
        a.extend(self.extra.iter().map(OsString::from));
        a
    }

    /// `qemu-system-x86_64` with [`QemuCommand::args`], ready to spawn.
    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(QEMU);
        c.args(self.args());
        c
    }
}

/// The `-netdev` value of `backend` with `id`, paths comma-escaped.
fn netdev_arg(backend: &NetBackend, id: &str) -> OsString {
    let with_path = |head: String, path: &Path| {
        let mut nd = OsString::from(head);
        nd.push(escape_commas(path));
        nd
    };
    match backend {
        // vswitch's per-port stream listener: many frames per syscall (net::port_stream_socket).
        NetBackend::StreamConnect(path) => with_path(
            format!("stream,id={id},server=off,addr.type=unix,addr.path="),
            path,
        ),
        NetBackend::StreamListen(path) => with_path(
            format!("stream,id={id},server=on,addr.type=unix,addr.path="),
            path,
        ),
        NetBackend::Vde { switch_dir, port } => {
            let mut nd = with_path(format!("vde,id={id},sock="), switch_dir);
            nd.push(format!(",port={port}"));
            nd
        }
        NetBackend::Dgram { local, remote } => {
            let mut nd = with_path(format!("dgram,id={id},local.type=unix,local.path="), local);
            nd.push(",remote.type=unix,remote.path=");
            nd.push(escape_commas(remote));
            nd
        }
        NetBackend::SocketConnect(addr) => format!("socket,id={id},connect={addr}").into(),
        NetBackend::UserRestricted => format!("user,id={id},restrict=on").into(),
    }
}

/// The full argv for `spec` (without the program name `qemu-system-x86_64`).
pub fn qemu_args(spec: &LaunchSpec) -> Vec<OsString> {
    QemuCommand::for_spec(spec).args()
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
            extra_args: vec![],
            secrets: None,
            key: None,
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
             -chardev socket,id=serial0,server=on,wait=off,path=/run/ramux/vms/RT1/serial.sock,logfile=/dev/fd/3,logappend=on \
             -serial chardev:serial0 \
             -chardev socket,id=qmp0,server=on,wait=off,path=/run/ramux/vms/RT1/qmp.sock \
             -mon chardev=qmp0,mode=control \
             -device virtio-serial-pci,id=vser0 \
             -chardev socket,id=qga0,server=on,wait=off,path=/run/ramux/vms/RT1/qga.sock \
             -device virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0 \
             -pidfile /run/ramux/vms/RT1/pid"
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
            secure_boot: false,
        };
        s.nics = vec![
            Nic {
                switch_dir: "/run/ramux/switch".into(),
                port: 4,
                mac: "00:16:3e:00:00:01".parse::<Mac>().unwrap(),
                stream: None,
                model: None,
            },
            Nic {
                switch_dir: "/tmp/sw,2".into(),
                port: 7,
                mac: "00:16:3e:00:00:02".parse::<Mac>().unwrap(),
                stream: None,
                model: Some("e1000".into()),
            },
            Nic {
                switch_dir: "/run/ramux/switch".into(),
                port: 5,
                mac: "00:16:3e:00:00:03".parse::<Mac>().unwrap(),
                stream: Some("/run/ramux/switch.streams/5".into()),
                model: None,
            },
        ];
        // A lab node's qemu_args come last, as given.
        s.extra_args = vec!["-smbios".into(), "type=1,serial=RT1".into()];
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
             -netdev vde,id=net1,sock=/tmp/sw,,2,port=7 -device e1000,netdev=net1,mac=00:16:3e:00:00:02 \
             -netdev stream,id=sw2,server=off,addr.type=unix,addr.path=/run/ramux/switch.streams/5 \
             -netdev hubport,id=up2,hubid=2,netdev=sw2 -netdev hubport,id=net2,hubid=2 \
             -device virtio-net-pci,netdev=net2,mac=00:16:3e:00:00:03 "
        ), "{l}");
        assert!(!l.contains("ide-cd"), "{l}");
        assert!(l.ends_with(" -smbios type=1,serial=RT1"), "{l}");
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
    fn kernel_boot_for_tests() {
        let mut q = QemuCommand::kernel_boot(
            Accel::Tcg,
            384,
            Path::new("/k/vmlinuz"),
            Path::new("/w,1/initrd.cpio"),
            "console=ttyS0 panic=-1",
        );
        assert_eq!(
            shell_line(&q.args()),
            "qemu-system-x86_64 -nodefaults -no-user-config -display none -machine q35 \
             -accel tcg -m 384 -smp 1 \
             -kernel /k/vmlinuz -initrd /w,1/initrd.cpio -append 'console=ttyS0 panic=-1'"
        );
        q.no_reboot = true;
        q.vga = true;
        q.rng = true;
        q.serial = Serial::Stdio;
        q.qmp = Some("/w/qmp.sock".into());
        q.qga = Some("/w,q/qga.sock".into());
        q.nics
            .push(NetDevice::virtio(NetBackend::UserRestricted, None));
        let mut vde = NetDevice::virtio(
            NetBackend::Vde {
                switch_dir: "/tmp/sw".into(),
                port: 3,
            },
            Some("00:16:3e:00:00:03".parse().unwrap()),
        );
        vde.option_rom = false;
        q.nics.push(vde);
        assert_eq!(
            shell_line(&q.args()),
            "qemu-system-x86_64 -nodefaults -no-user-config -display none -machine q35 \
             -accel tcg -m 384 -smp 1 -no-reboot -vga std \
             -kernel /k/vmlinuz -initrd /w,1/initrd.cpio -append 'console=ttyS0 panic=-1' \
             -netdev user,id=net0,restrict=on -device virtio-net-pci,netdev=net0 \
             -netdev vde,id=net1,sock=/tmp/sw,port=3 \
             -device virtio-net-pci,netdev=net1,mac=00:16:3e:00:00:03,romfile= \
             -device virtio-rng-pci -serial stdio \
             -chardev socket,id=qmp0,server=on,wait=off,path=/w/qmp.sock \
             -mon chardev=qmp0,mode=control -device virtio-serial-pci,id=vser0 \
             -chardev socket,id=qga0,server=on,wait=off,path=/w,,q/qga.sock \
             -device virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0"
        );
    }

    #[test]
    fn network_boot_with_every_socket_backend() {
        let mut q = QemuCommand::network_boot(Accel::Tcg, 64);
        for b in [
            NetBackend::StreamListen("/t/q,s.sock".into()),
            NetBackend::StreamConnect("/t/sw.streams/2".into()),
            NetBackend::Dgram {
                local: "/t/q.dgram".into(),
                remote: "/t/sw.dgram".into(),
            },
            NetBackend::SocketConnect("127.0.0.1:4711".parse().unwrap()),
        ] {
            q.nics.push(NetDevice {
                backend: b,
                model: "e1000".into(),
                mac: None,
                option_rom: true,
            });
        }
        assert_eq!(
            shell_line(&q.args()),
            "qemu-system-x86_64 -nodefaults -no-user-config -display none -machine q35 \
             -accel tcg -m 64 -smp 1 -boot n \
             -netdev stream,id=net0,server=on,addr.type=unix,addr.path=/t/q,,s.sock \
             -device e1000,netdev=net0 \
             -netdev stream,id=sw1,server=off,addr.type=unix,addr.path=/t/sw.streams/2 \
             -netdev hubport,id=up1,hubid=1,netdev=sw1 -netdev hubport,id=net1,hubid=1 \
             -device e1000,netdev=net1 \
             -netdev dgram,id=net2,local.type=unix,local.path=/t/q.dgram,remote.type=unix,remote.path=/t/sw.dgram \
             -device e1000,netdev=net2 \
             -netdev socket,id=net3,connect=127.0.0.1:4711 -device e1000,netdev=net3"
        );
    }

    #[test]
    fn the_key_is_a_writable_usb_stick_beside_the_boot_medium() {
        let mut s = spec();
        s.key = Some("/lab/keys/rt1,a.img".into());
        let l = line(&s);
        assert!(
            l.contains(
                " -device qemu-xhci,id=xhci -drive if=none,id=key0,format=raw,file=/lab/keys/rt1,,a.img \
                 -device usb-storage,bus=xhci.0,drive=key0,removable=on "
            ),
            "{l}"
        );
        assert!(
            !l.contains("key0,format=raw,snapshot"),
            "writes must persist: {l}"
        );
        s.media = Media::Usb;
        let l = line(&s);
        assert_eq!(l.matches("qemu-xhci").count(), 1, "one controller: {l}");
        assert!(l.contains("drive=stick0,removable=on,bootindex=0"), "{l}");
    }

    #[test]
    fn secrets_overlay_is_a_fw_cfg_item() {
        let mut s = spec();
        s.secrets = Some("/lab/s,1/site.secrets".into());
        let l = line(&s);
        assert!(
            l.contains(" -fw_cfg name=opt/ramux/secrets,file=/lab/s,,1/site.secrets "),
            "{l}"
        );
        assert!(!line(&spec()).contains("fw_cfg"));
        let old: LaunchSpec = serde_json::from_str(
            &serde_json::to_string(&spec())
                .unwrap()
                .replace(",\"secrets\":null", ""),
        )
        .unwrap();
        assert_eq!(old.secrets, None, "a vm.json without the key still loads");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(
            shell_line(&["a b".into(), "it's".into(), "".into()]),
            r"qemu-system-x86_64 'a b' 'it'\''s' ''"
        );
    }
}
