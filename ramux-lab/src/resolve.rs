//! [`LabFile`] -> [`Lab`]: node settings over `[defaults]` over the built-in defaults, ISO paths,
//! the ports left out, the MACs left out. Deterministic: the same file gives the same lab on
//! every host, so MAC tables, DHCP leases and captures stay comparable between runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ramux_contract::mac::derived;

use crate::diag::{At, Diags, Pos};
use crate::model::{Accel, Address, Boot, Firmware, Lab, Nic, Node};
use crate::parse::{LabFile, NicSpec, NodeSecrets, NodeSpec, Settings};

/// Built-in defaults (what a node gets when neither it nor `[defaults]` says).
pub const DEFAULT_MEMORY_MIB: u64 = 256;
pub const DEFAULT_CPUS: u32 = 1;
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(240);
/// vlaunch's NIC model (a virtio-net with its option ROM).
pub const DEFAULT_NIC_MODEL: &str = "virtio-net-pci";
/// The ISO directory, relative to the lab file's directory, when `images` is not given.
pub const DEFAULT_IMAGES: &str = "images";

/// Resolve the file read from `dir` (the lab file's directory). Problems that make a part
/// unusable (a node without profile, a NIC without switch) are reported and that part dropped.
pub fn resolve(file: &LabFile, dir: &Path, diags: &mut Diags) -> Lab {
    let name = file.name.clone().unwrap_or_else(|| {
        let pos = Pos { line: 1, col: 1 };
        diags.error(
            pos,
            "the lab has no `name`",
            "add name = \"mylab\" at the top ([a-z0-9_], at most 16 characters)",
        );
        At::new(String::new(), pos)
    });
    let images = dir.join(
        file.images
            .as_ref()
            .map_or(DEFAULT_IMAGES, |i| i.value.as_str()),
    );
    let mut ports = Ports::new(file);
    let nodes = file
        .nodes
        .iter()
        .filter_map(|n| {
            node(
                n,
                &file.defaults,
                &name.value,
                (dir, &images),
                &mut ports,
                diags,
            )
        })
        .collect();
    Lab {
        file: diags.file.clone(),
        name,
        dir: dir.to_path_buf(),
        site: file
            .site
            .as_ref()
            .map(|s| At::new(dir.join(&s.value), s.pos)),
        secrets: file
            .secrets
            .as_ref()
            .map(|s| At::new(dir.join(&s.value), s.pos)),
        switches: file.switches.clone(),
        uplinks: file.uplinks.clone(),
        nodes,
        tests: file.tests.clone(),
    }
}

/// The ports taken on each switch, so the NICs without one get the first free port.
struct Ports {
    size: BTreeMap<String, u16>,
    used: BTreeMap<String, BTreeSet<u16>>,
}

impl Ports {
    /// Every port the file gives explicitly is taken before any is picked, so adding a NIC with
    /// an explicit port never moves another NIC's picked port to it.
    fn new(file: &LabFile) -> Self {
        let size = file
            .switches
            .iter()
            .map(|s| (s.name.value.clone(), s.ports))
            .collect();
        let mut used: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
        let nic_ports = file
            .nodes
            .iter()
            .flat_map(|n| &n.nics)
            .filter_map(|n| Some((n.switch.as_ref()?, n.port.as_ref()?)));
        let uplink_ports = file.uplinks.iter().map(|u| (&u.switch, &u.port));
        for (sw, p) in nic_ports.chain(uplink_ports) {
            used.entry(sw.value.clone()).or_default().insert(p.value);
        }
        Ports { size, used }
    }

    /// The lowest free port of `switch`, now taken; None when the switch is unknown or full.
    fn pick(&mut self, switch: &str) -> Option<u16> {
        let size = *self.size.get(switch)?;
        let used = self.used.entry(switch.to_string()).or_default();
        let free = (1..=size).find(|p| !used.contains(p))?;
        used.insert(free);
        Some(free)
    }
}

fn node(
    spec: &NodeSpec,
    defaults: &Settings,
    lab: &str,
    (dir, images): (&Path, &Path),
    ports: &mut Ports,
    diags: &mut Diags,
) -> Option<Node> {
    let s = spec.settings.over(defaults);
    let Some(profile) = s.profile.clone() else {
        diags.error(
            spec.name.pos,
            format!("node {} has no `profile`", spec.name.value),
            "add profile = \"router\" (or \"client\"...) to the node or to [defaults]",
        );
        return None;
    };
    let model = s
        .model
        .as_ref()
        .map_or(DEFAULT_NIC_MODEL.to_string(), |m| m.value.clone());
    let nics = spec
        .nics
        .iter()
        .enumerate()
        .filter_map(|(i, n)| nic(n, i, &spec.name.value, lab, &model, ports, diags))
        .collect();
    Some(Node {
        iso: iso_path(spec, &profile.value, dir, images),
        iso_given: spec.iso.is_some(),
        name: spec.name.clone(),
        profile,
        role: spec.role.clone(),
        role_given: spec.role_given,
        memory_mib: s.memory_mib.map_or(DEFAULT_MEMORY_MIB, |m| m.value),
        cpus: s.cpus.map_or(DEFAULT_CPUS, |c| c.value),
        accel: s.accel.map_or(Accel::Auto, |a| a.value),
        boot: s.boot.map_or(Boot::Cdrom, |b| b.value),
        firmware: s.firmware.map_or(Firmware::Bios, |f| f.value),
        ready_timeout: s.ready_timeout.map_or(DEFAULT_READY_TIMEOUT, |t| t.value),
        after: spec.after.clone(),
        enabled: !matches!(s.enabled, Some(At { value: false, .. })),
        qemu_args: s.qemu_args.map_or_else(Vec::new, |a| a.value),
        address: spec
            .address
            .clone()
            .unwrap_or(At::new(Address::Unset, spec.name.pos)),
        secrets: match spec.secrets.as_ref().map(|s| &s.value) {
            Some(NodeSecrets::File(f)) => Some(dir.join(f)),
            _ => None,
        },
        lab_secrets: matches!(
            spec.secrets.as_ref().map(|s| &s.value),
            Some(NodeSecrets::Lab)
        ),
        key: spec.key.as_ref().map(|k| dir.join(&k.value)),
        nics,
        nics_written: spec.nics.len(),
    })
}

/// `iso` as given (relative to the lab directory), else `IMAGES/<profile>-<role>.iso` (vbuild's
/// name for a role's image), else for a node without role `IMAGES/<node>.iso` when it has an
/// `address` (baked into its own image by `up --build`), `IMAGES/<profile>.iso` when not.
fn iso_path(spec: &NodeSpec, profile: &str, dir: &Path, images: &Path) -> PathBuf {
    match (&spec.iso, &spec.role, &spec.address) {
        (Some(iso), _, _) => dir.join(&iso.value),
        (None, Some(role), _) => images.join(format!("{profile}-{}.iso", role.value.lower())),
        (None, None, Some(_)) => images.join(format!("{}.iso", spec.name.value)),
        (None, None, None) => images.join(format!("{profile}.iso")),
    }
}

fn nic(
    spec: &NicSpec,
    index: usize,
    node: &str,
    lab: &str,
    model: &str,
    ports: &mut Ports,
    diags: &mut Diags,
) -> Option<Nic> {
    let (Some(switch), Some(vlan)) = (spec.switch.clone(), spec.vlan.clone()) else {
        if spec.switch.is_none() {
            diags.error(
                spec.pos,
                format!("NIC {index} (eth{index}) of {node} has no `switch`"),
                "add switch = \"NAME\" naming a [switch.NAME]",
            );
        }
        return None;
    };
    let (port, port_auto) = match &spec.port {
        Some(p) => (p.clone(), false),
        None => (At::new(auto_port(ports, &switch, diags), spec.pos), true),
    };
    let mac_given = spec.mac.is_some();
    let mac = spec
        .mac
        .clone()
        .unwrap_or_else(|| At::new(derived(&format!("{lab}/{node}"), index), spec.pos));
    let model = spec
        .model
        .as_ref()
        .map_or(model.to_string(), |m| m.value.clone());
    Some(Nic {
        index,
        pos: spec.pos,
        switch,
        port,
        port_auto,
        vlan,
        mac,
        mac_given,
        model,
    })
}

/// The first free port, or 0 (reported here when the switch is full; an unknown switch is
/// reported by `validate`).
fn auto_port(ports: &mut Ports, switch: &At<String>, diags: &mut Diags) -> u16 {
    if let Some(p) = ports.pick(&switch.value) {
        return p;
    }
    if let Some(size) = ports.size.get(&switch.value) {
        diags.error(
            switch.pos,
            format!(
                "switch {} has no free port left for this NIC (all {size} are taken)",
                switch.value
            ),
            format!("raise `ports` of [switch.{}]", switch.value),
        );
    }
    0
}
