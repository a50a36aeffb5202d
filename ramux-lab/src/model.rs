//! The lab after resolution: every default applied, every port and MAC known. This is what
//! `up` acts on, `graph` draws and `status` reports, so nothing in it is optional by accident.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ramux_contract::mac::Mac;
use ramux_contract::Role;

use crate::diag::{At, Pos};

/// A whole lab.
#[derive(Debug, Clone)]
pub struct Lab {
    /// How diagnostics name the lab file.
    pub file: String,
    pub name: At<String>,
    /// The lab file's directory: relative paths in the file are relative to it.
    pub dir: PathBuf,
    /// The site file, resolved against `dir`.
    pub site: Option<At<PathBuf>>,
    /// The lab's site secrets directory (`vbuild secrets init`), resolved against `dir`: packed
    /// at `up` for every node with `secrets = true`, read by the `radius` tests.
    pub secrets: Option<At<PathBuf>>,
    pub switches: Vec<Switch>,
    pub uplinks: Vec<Uplink>,
    /// In file order.
    pub nodes: Vec<Node>,
    pub tests: Vec<LabTest>,
}

impl Lab {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name.value == name)
    }
    pub fn switch(&self, name: &str) -> Option<&Switch> {
        self.switches.iter().find(|s| s.name.value == name)
    }
}

/// Which program runs a switch (both speak VDE2 and take the same console commands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Vswitch,
    VdeSwitch,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Vswitch => "vswitch",
            Engine::VdeSwitch => "vde_switch",
        }
    }
}

/// `[switch.NAME]`.
#[derive(Debug, Clone)]
pub struct Switch {
    pub name: At<String>,
    pub engine: Engine,
    pub ports: u16,
    /// VID -> label, with the position of each VID's key.
    pub vlans: BTreeMap<u16, At<String>>,
    pub vxlan: Option<Vxlan>,
}

/// A VXLAN trunk joining this switch to the same switch on another host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vxlan {
    pub remote: String,
    pub vni: u32,
}

/// How a port carries VLANs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VlanMode {
    /// Untagged frames, in this VLAN.
    Access(u16),
    /// These VLANs tagged; untagged frames in `native` (none: the switch's default VLAN).
    Trunk { vids: Vec<u16>, native: Option<u16> },
}

impl VlanMode {
    /// Every VID the port is a member of.
    pub fn vids(&self) -> Vec<u16> {
        match self {
            VlanMode::Access(v) => vec![*v],
            VlanMode::Trunk { vids, native } => vids.iter().chain(native).copied().collect(),
        }
    }

    /// `access 99`, `trunk 10,20`, `trunk 10,20 native 99`.
    pub fn describe(&self) -> String {
        match self {
            VlanMode::Access(v) => format!("access {v}"),
            VlanMode::Trunk { vids, native } => {
                let list: Vec<String> = vids.iter().map(u16::to_string).collect();
                match native {
                    Some(n) => format!("trunk {} native {n}", list.join(",")),
                    None => format!("trunk {}", list.join(",")),
                }
            }
        }
    }
}

/// `[uplink.NAME]`: a TAP on a switch port, enslaved to an existing host bridge.
#[derive(Debug, Clone)]
pub struct Uplink {
    pub name: At<String>,
    pub switch: At<String>,
    pub port: At<u16>,
    pub vlan: At<VlanMode>,
    pub bridge: At<String>,
}

/// QEMU acceleration: `auto` probes KVM and falls back to TCG (vlaunch's rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Auto,
    Kvm,
    Tcg,
}

/// Which medium the ISO is attached as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    Cdrom,
    Usb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Bios,
    Uefi,
    /// UEFI with Secure Boot enforced (the images boot through Debian's signed shim and GRUB).
    SecureBoot,
}

/// Where the default gateway of a static client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gateway {
    /// The routers' VIP of the client's VLAN (from the site file).
    Vip,
    Addr(Ipv4Addr),
    None,
}

/// `address = ...` of a client node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// Not given: routers take theirs from the site file, clients stay unconfigured.
    Unset,
    Dhcp,
    Static {
        addr: Ipv4Addr,
        prefix: u8,
        gateway: Gateway,
    },
}

/// `[node.NAME]` after `[defaults]` and the built-in defaults are applied.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: At<String>,
    pub profile: At<String>,
    pub role: Option<At<Role>>,
    /// `role` was written, even if unreadable (so "no role" is not reported twice).
    pub role_given: bool,
    /// Resolved against the lab directory.
    pub iso: PathBuf,
    pub iso_given: bool,
    pub memory_mib: u64,
    pub cpus: u32,
    pub accel: Accel,
    pub boot: Boot,
    pub firmware: Firmware,
    pub ready_timeout: Duration,
    pub after: Vec<At<String>>,
    pub enabled: bool,
    pub qemu_args: Vec<String>,
    pub address: At<Address>,
    /// The node's site secrets overlay, resolved against the lab directory.
    pub secrets: Option<PathBuf>,
    /// `secrets = true`: the lab's secrets directory, packed for this node at `up`.
    pub lab_secrets: bool,
    /// The node's site key image (a USB stick; created when absent), resolved against the lab
    /// directory (docs/keep.md).
    pub key: Option<PathBuf>,
    /// Only the NICs that could be read (each keeps its index in the file).
    pub nics: Vec<Nic>,
    /// How many NICs the file lists, readable or not.
    pub nics_written: usize,
}

impl Node {
    /// The site instance a role-less node is built as (`up --build` builds DNS1 as `dns1`):
    /// its name in lower case.
    pub fn instance(&self) -> String {
        self.name.value.to_lowercase()
    }
}

/// One NIC of a node; `index` 0 is the guest's eth0.
#[derive(Debug, Clone)]
pub struct Nic {
    pub index: usize,
    /// The NIC's table in the file.
    pub pos: Pos,
    pub switch: At<String>,
    pub port: At<u16>,
    /// The port was left out and picked by `resolve`.
    pub port_auto: bool,
    pub vlan: At<VlanMode>,
    pub mac: At<Mac>,
    pub mac_given: bool,
    pub model: String,
}

/// What a `[[test]]` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestKind {
    Ping {
        target: At<String>,
    },
    Tcp {
        target: At<String>,
        port: u16,
    },
    Udp {
        target: At<String>,
        port: u16,
    },
    Dhcp,
    Dns {
        name: At<String>,
        addresses: Vec<String>,
    },
    /// A RADIUS request from `from` (a NAS of the site) to `server`, as a switch (MAB) or a
    /// supplicant behind one (PEAP, EAP-TLS) sends it.
    Radius {
        method: RadiusMethod,
        server: At<String>,
        /// The MAC (MAB), the user (PEAP) or the certificate CN (TLS).
        identity: At<String>,
        /// The VLAN the Access-Accept must carry (RFC 3580 Tunnel-Private-Group-Id).
        vlan: Option<u16>,
    },
    Failover {
        node: At<String>,
        fault: Fault,
        probe: At<String>,
        max_outage: Duration,
    },
    Matrix,
    /// A VPN user's OpenVPN client on `from` (outside), its profile made from the lab's
    /// secrets as `vbuild vpn-client` makes it, through a VPN server's relay on 443.
    Vpn {
        /// The VPNUSER (its certificate's CN).
        user: At<String>,
        /// A name asked, through the tunnel, of the first DNS server the VPN server pushed.
        resolve: Option<At<String>>,
        /// The answers `resolve` must give (any answer when empty).
        addresses: Vec<String>,
        /// `fault` and `max_outage`: the server in use is faulted, and the client must be back
        /// through another with the same address within `max_outage`.
        failover: Option<(Fault, Duration)>,
    },
}

/// How a `radius` test authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RadiusMethod {
    Mab,
    Peap,
    Tls,
}

/// A fault to apply to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Crash,
    Poweroff,
    Unplug,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Ok,
    Blocked,
}

/// `[[test]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabTest {
    pub name: At<String>,
    pub pos: Pos,
    pub from: Option<At<String>>,
    pub kind: TestKind,
    pub expect: Expect,
    pub listen: Option<At<String>>,
    /// `down = "NODE"`: the node is crashed (if running) before the test and stays down.
    pub down: Option<At<String>>,
}
