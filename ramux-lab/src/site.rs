//! The checks against the site file: a lab is only a faithful copy of the site when the routers'
//! NICs are where the site expects its devices, their trunks carry every VLAN the site declares,
//! and no two machines claim one of the site's addresses. The facts are a plain struct, so the
//! checks are tested without a site file and whoever reads the site (labwall) only fills it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ramux_contract::Role;

use crate::diag::{Diags, Pos};
use crate::model::{Address, Gateway, Lab, Nic, Node, TestKind, VlanMode};

/// A physical device of the site and the NIC of a router it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteDev {
    /// As the site names it (`eth0`).
    pub name: String,
    /// `ethN` -> N: the N-th NIC of the node (None when the name says nothing about order).
    pub nic_index: Option<usize>,
}

impl SiteDev {
    pub fn new(name: &str) -> Self {
        let nic_index = name.strip_prefix("eth").and_then(|n| n.parse().ok());
        SiteDev {
            name: name.to_string(),
            nic_index,
        }
    }
}

/// What the lab checks need to know about the site file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteFacts {
    /// How messages name the site file.
    pub file: String,
    /// VLAN ids the site declares on its internal device (its VLAN lines).
    pub vlans: BTreeSet<u16>,
    /// NETINIT's second device (the seed's `INTERNALDEV`): the routers' trunk.
    pub internal_dev: Option<SiteDev>,
    /// NETINIT's first device (`EXTERNALDEV`): the uplink, untagged.
    pub external_dev: Option<SiteDev>,
    /// Each role's own IPv4 addresses, on every interface.
    pub role_addresses: BTreeMap<Role, Vec<Ipv4Addr>>,
    /// The VIP of each VLAN.
    pub vips: BTreeMap<u16, Ipv4Addr>,
    /// The uplink's VIP.
    pub uplink_vip: Option<Ipv4Addr>,
    /// Each VLAN's network and prefix length.
    pub vlan_networks: BTreeMap<u16, (Ipv4Addr, u8)>,
    /// `HOST` aliases and their IPv4 addresses.
    pub hosts: BTreeMap<String, Vec<Ipv4Addr>>,
}

fn list(vids: &BTreeSet<u16>) -> String {
    vids.iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every check of the lab against the site.
pub fn check_site(lab: &Lab, site: &SiteFacts, diags: &mut Diags) {
    for n in lab.nodes.iter().filter(|n| n.profile.value == "router") {
        internal_nic(n, site, diags);
        external_nic(n, site, diags);
    }
    claims(lab, site, diags);
    for n in &lab.nodes {
        client_address(n, site, diags);
    }
    test_targets(lab, site, diags);
}

/// The NIC a site device must be; reports a router without it.
fn nic_for<'a>(
    n: &'a Node,
    dev: &SiteDev,
    role: &str,
    site: &SiteFacts,
    diags: &mut Diags,
) -> Option<&'a Nic> {
    let i = dev.nic_index?;
    let nic = n.nics.iter().find(|c| c.index == i);
    if nic.is_none() && i >= n.nics_written {
        let count = if i == 0 {
            "a NIC".to_string()
        } else {
            format!("at least {} NICs", i + 1)
        };
        diags.error(
            n.name.pos,
            format!(
                "router {} has no eth{i}, the site's {role} ({} in {})",
                n.name.value, dev.name, site.file
            ),
            format!(
                "give {} {count}: eth{i} is the {} NIC in `nics`",
                n.name.value,
                ordinal(i)
            ),
        );
    }
    nic
}

fn ordinal(i: usize) -> String {
    match i {
        0 => "first".into(),
        1 => "second".into(),
        2 => "third".into(),
        n => format!("{}th", n + 1),
    }
}

/// INTERNALDEV carries the site's VLANs tagged: the router's NIC there must be a trunk of all.
fn internal_nic(n: &Node, site: &SiteFacts, diags: &mut Diags) {
    let Some(dev) = &site.internal_dev else {
        return;
    };
    if site.vlans.is_empty() {
        return;
    }
    let Some(nic) = nic_for(n, dev, "INTERNALDEV", site, diags) else {
        return;
    };
    let want = list(&site.vlans);
    match &nic.vlan.value {
        VlanMode::Access(v) => {
            let trunk = n
                .nics
                .iter()
                .find(|c| matches!(c.vlan.value, VlanMode::Trunk { .. }));
            let fix = match trunk {
                Some(t) => format!(
                    "swap the NICs: the trunk (now eth{}) must come {} in `nics`",
                    t.index,
                    ordinal(nic.index)
                ),
                None => format!("make eth{} a trunk: trunk = [{want}]", nic.index),
            };
            let msg = format!(
                "NIC order contradicts the site: eth{} of {} is access {v}, but it is the site's \
                 INTERNALDEV ({}), which carries VLANs {want} tagged",
                nic.index, n.name.value, dev.name
            );
            diags.error(nic.vlan.pos, msg, fix);
        }
        VlanMode::Trunk { vids, .. } => {
            let missing: BTreeSet<u16> = site
                .vlans
                .iter()
                .copied()
                .filter(|v| !vids.contains(v))
                .collect();
            if !missing.is_empty() {
                let msg = format!(
                    "the trunk eth{} of router {} lacks VLAN {}, which {} declares on INTERNALDEV ({})",
                    nic.index,
                    n.name.value,
                    list(&missing),
                    site.file,
                    dev.name
                );
                let fix =
                    format!("write trunk = [{want}] (each VLAN also in the switch's `vlans`)");
                diags.error(nic.vlan.pos, msg, fix);
            }
        }
    }
}

/// EXTERNALDEV is untagged and outside every internal VLAN.
fn external_nic(n: &Node, site: &SiteFacts, diags: &mut Diags) {
    let Some(dev) = &site.external_dev else {
        return;
    };
    let Some(nic) = nic_for(n, dev, "EXTERNALDEV", site, diags) else {
        return;
    };
    let untagged = match &nic.vlan.value {
        VlanMode::Access(v) => Some(*v),
        VlanMode::Trunk { native, .. } => *native,
    };
    match untagged {
        None => {
            let msg = format!(
                "NIC order contradicts the site: eth{} of {} is a trunk, but it is the site's \
                 EXTERNALDEV ({}), which is untagged",
                nic.index, n.name.value, dev.name
            );
            let fix = format!(
                "make eth{} an access port on the external VLAN (access = VID), \
                 and the trunk the INTERNALDEV NIC",
                nic.index
            );
            diags.error(nic.vlan.pos, msg, fix);
        }
        Some(v) if site.vlans.contains(&v) => {
            let msg = format!(
                "eth{} of {} (EXTERNALDEV, the uplink) is in VLAN {v}, an internal VLAN of the \
                 site: outside traffic would bypass the routers",
                nic.index, n.name.value
            );
            let fix = "put the uplink NICs in a VLAN of their own that the site does not declare \
                       (the example uses 99)";
            diags.error(nic.vlan.pos, msg, fix);
        }
        Some(_) => {}
    }
}

/// Who holds which site address.
struct Claim {
    node: String,
    pos: Pos,
    why: String,
}

/// Among the enabled nodes (a disabled spare may share a role): two routers of one role, or a
/// client on a router's address, a VIP or another client's address.
fn claims(lab: &Lab, site: &SiteFacts, diags: &mut Diags) {
    let mut held: BTreeMap<Ipv4Addr, Claim> = BTreeMap::new();
    for (vlan, vip) in site
        .vips
        .iter()
        .map(|(v, a)| (format!("the VIP of VLAN {v}"), a))
        .chain(
            site.uplink_vip
                .iter()
                .map(|a| ("the uplink VIP".to_string(), a)),
        )
    {
        held.insert(
            *vip,
            Claim {
                node: String::new(),
                pos: Pos::default(),
                why: vlan,
            },
        );
    }
    let mut role_holder: BTreeMap<Role, &Node> = BTreeMap::new();
    for n in lab
        .nodes
        .iter()
        .filter(|n| n.enabled && n.profile.value == "router")
    {
        let Some(role) = &n.role else { continue };
        if let Some(first) = role_holder.insert(role.value, n) {
            diags.error(
                role.pos,
                format!(
                    "routers {} and {} both claim the site's {} addresses",
                    first.name.value, n.name.value, role.value
                ),
                format!("give one of them role = \"{}\"", other(role.value)),
            );
            continue;
        }
        for a in site.role_addresses.get(&role.value).into_iter().flatten() {
            held.insert(
                *a,
                Claim {
                    node: n.name.value.clone(),
                    pos: role.pos,
                    why: format!("an address of {} in {}", role.value, site.file),
                },
            );
        }
    }
    for n in lab.nodes.iter().filter(|n| n.enabled) {
        let Address::Static { addr, .. } = n.address.value else {
            continue;
        };
        match held.get(&addr) {
            Some(c) => {
                let by = if c.node.is_empty() {
                    String::new()
                } else {
                    format!(", held by {} (line {})", c.node, c.pos.line)
                };
                diags.error(
                    n.address.pos,
                    format!("{} claims {addr}, which is {}{by}", n.name.value, c.why),
                    "give it a free address of its VLAN, or address = \"dhcp\"",
                );
            }
            None => {
                held.insert(
                    addr,
                    Claim {
                        node: n.name.value.clone(),
                        pos: n.address.pos,
                        why: "a static address".into(),
                    },
                );
            }
        }
    }
}

fn other(r: Role) -> Role {
    match r {
        Role::Master => Role::Backup,
        Role::Backup => Role::Master,
    }
}

/// A static client on eth0's VLAN: its address in the VLAN's network, `via vip` only with a VIP.
fn client_address(n: &Node, site: &SiteFacts, diags: &mut Diags) {
    let Address::Static {
        addr,
        prefix,
        gateway,
    } = n.address.value
    else {
        return;
    };
    let Some(VlanMode::Access(vlan)) = n.nics.first().map(|c| &c.vlan.value) else {
        return;
    };
    if let Some((net, len)) = site.vlan_networks.get(vlan) {
        let mask = if *len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(*len))
        };
        if u32::from(addr) & mask != u32::from(*net) || prefix != *len {
            let msg = format!(
                "{} is on VLAN {vlan}, whose network is {net}/{len} in {}, but its address is \
                 {addr}/{prefix}",
                n.name.value, site.file
            );
            let fix = format!("use an address of {net}/{len}, written A.B.C.D/{len}");
            diags.error(n.address.pos, msg, fix);
        }
    }
    if gateway == Gateway::Vip && !site.vips.contains_key(vlan) {
        diags.error(
            n.address.pos,
            format!(
                "`via vip`: VLAN {vlan} of {} has no VIP in {}",
                n.name.value, site.file
            ),
            "write the gateway's address (via A.B.C.D), or move the node to a VLAN with a VIP",
        );
    }
}

/// `vip:VLAN` (and `vip:uplink`) needs a VIP; a name must be a site host or a lab node.
fn test_targets(lab: &Lab, site: &SiteFacts, diags: &mut Diags) {
    for t in &lab.tests {
        let target = match &t.kind {
            TestKind::Ping { target }
            | TestKind::Tcp { target, .. }
            | TestKind::Udp { target, .. } => target,
            TestKind::Failover { probe, .. } => probe,
            TestKind::Radius { server, .. } => server,
            _ => continue,
        };
        let v = target.value.as_str();
        if v.parse::<Ipv4Addr>().is_ok()
            || v.parse::<std::net::Ipv6Addr>().is_ok()
            || lab.node(v).is_some()
            || site.hosts.contains_key(v)
        {
            continue;
        }
        if let Some(vlan) = v.strip_prefix("vip:") {
            let uplink = vlan == "uplink" && site.uplink_vip.is_some();
            if uplink
                || vlan
                    .parse::<u16>()
                    .is_ok_and(|id| site.vips.contains_key(&id))
            {
                continue;
            }
            let known: Vec<String> = site.vips.keys().map(|k| format!("vip:{k}")).collect();
            diags.error(
                target.pos,
                format!("test {:?}: {v} names no VIP of {}", t.name.value, site.file),
                format!("the site's VIPs: {}", known.join(", ")),
            );
            continue;
        }
        let known: Vec<&str> = site.hosts.keys().map(String::as_str).collect();
        diags.error(
            target.pos,
            format!(
                "test {:?}: {v:?} is not an address, a node of the lab or a HOST of {}",
                t.name.value, site.file
            ),
            format!(
                "use an address, vip:VLAN, a node name or one of the site's hosts: {}",
                known.join(", ")
            ),
        );
    }
}

/// One VRRP instance as both routers run it: what the failover theory needs. Kept out of
/// [`SiteFacts`] (whose every field the integration tests spell out by hand): see
/// [`crate::sitefile::SiteModel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    pub name: String,
    pub vrid: u32,
    /// The interface the adverts go out on (`vlan10`).
    pub ifname: String,
    /// 2 (RFC 3768, keepalived's default) or 3 (RFC 5798).
    pub version: u8,
    /// Advertisement_Interval, in milliseconds.
    pub advert_ms: u32,
    /// Each role's priority (1..=255).
    pub priority: BTreeMap<Role, u8>,
    /// A recovered higher-priority router takes the VIPs back (keepalived's default).
    pub preempt: bool,
    pub vips: Vec<Ipv4Addr>,
}
