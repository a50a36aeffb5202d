//! The checks that need only the lab file: names, switches, ports, VLANs, MACs, `after`, tests.
//! Each check appends to the same list, so `validate` shows every problem in one run.

use std::collections::BTreeMap;

use crate::diag::{At, Diags, Pos};
use crate::model::{Lab, LabTest, Node, TestKind, VlanMode};
use crate::plan::start_plan;

/// Run every lab check. (A node after itself is reported by `after_entry`, not as a cycle.)
pub fn validate_lab(lab: &Lab, diags: &mut Diags) {
    lab_name(lab, diags);
    names(lab, diags);
    nodes(lab, diags);
    ports_and_vlans(lab, diags);
    macs(lab, diags);
    after(lab, diags);
    tests(lab, diags);
    trunks_and_uplinks(lab, diags);
}

/// vlaunch gives TAPs and VXLAN trunks to vswitch only (it places each TAP on its port with
/// vswitch's port rules, and Debian's vde_switch has no VXLAN); a trunk's `remote` must be
/// one IPv4 address (the peer) or two (both hosts: each uses the one it does not have).
fn trunks_and_uplinks(lab: &Lab, diags: &mut Diags) {
    for u in &lab.uplinks {
        let sw = lab.switch(&u.switch.value);
        if sw.is_some_and(|s| s.engine == crate::model::Engine::VdeSwitch) {
            diags.error(
                u.switch.pos,
                format!(
                    "uplink {}: switch {} is a vde_switch, and uplinks need a vswitch",
                    u.name.value, u.switch.value
                ),
                format!("write engine = \"vswitch\" in [switch.{}]", u.switch.value),
            );
        }
    }
    for s in &lab.switches {
        let Some(v) = &s.vxlan else { continue };
        if s.engine == crate::model::Engine::VdeSwitch {
            diags.error(
                s.name.pos,
                format!(
                    "switch {}: a vde_switch cannot carry a VXLAN trunk",
                    s.name.value
                ),
                format!("write engine = \"vswitch\" in [switch.{}]", s.name.value),
            );
        }
        let addrs: Vec<&str> = v.remote.split(',').map(str::trim).collect();
        let ok = addrs
            .iter()
            .all(|a| a.parse::<std::net::Ipv4Addr>().is_ok());
        if !ok || addrs.len() > 2 {
            diags.error(
                s.name.pos,
                format!(
                    "switch {}: vxlan remote {:?} is not one or two IPv4 addresses",
                    s.name.value, v.remote
                ),
                "write remote = \"192.0.2.2\" (the peer), or \"192.0.2.1,192.0.2.2\" (both hosts)",
            );
        }
    }
}

/// `[a-z0-9_]{1,16}`: the lab's name becomes directory, socket and TAP names (IFNAMSIZ is 16).
pub fn valid_lab_name(s: &str) -> bool {
    (1..=16).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Node, switch and uplink names: `[A-Za-z0-9][A-Za-z0-9_-]{0,31}` (VM and socket names).
pub fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=32).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

fn lab_name(lab: &Lab, diags: &mut Diags) {
    let n = &lab.name;
    if !n.value.is_empty() && !valid_lab_name(&n.value) {
        let suggestion: String = n
            .value
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(16)
            .collect();
        diags.error(
            n.pos,
            format!(
                "lab name {:?} is not [a-z0-9_], 1 to 16 characters",
                n.value
            ),
            format!("it names directories, sockets and TAPs: write name = {suggestion:?}"),
        );
    }
}

fn names(lab: &Lab, diags: &mut Diags) {
    let all = lab
        .switches
        .iter()
        .map(|s| ("switch", &s.name))
        .chain(lab.uplinks.iter().map(|u| ("uplink", &u.name)))
        .chain(lab.nodes.iter().map(|n| ("node", &n.name)));
    let mut seen: BTreeMap<&str, (&str, Pos)> = BTreeMap::new();
    for (kind, name) in all {
        if !valid_name(&name.value) {
            diags.error(
                name.pos,
                format!(
                    "{kind} name {:?} is not [A-Za-z0-9][A-Za-z0-9_-], at most 32 characters",
                    name.value
                ),
                "rename it: the name is used for VM, socket and console names",
            );
        }
        if let Some((other, p)) = seen.insert(&name.value, (kind, name.pos)) {
            let msg = format!(
                "{kind} {} has the name of the {other} on line {}",
                name.value, p.line
            );
            let fix = "give every switch, uplink and node its own name \
                       (`console LAB NAME` must know which one)";
            diags.error(name.pos, msg, fix);
        }
    }
}

fn nodes(lab: &Lab, diags: &mut Diags) {
    for n in &lab.nodes {
        let router = n.profile.value == "router";
        if router && !n.role_given {
            let fix = "add role = \"MASTER\" or role = \"BACKUP\": \
                       the site file gives each role its addresses";
            diags.error(
                n.name.pos,
                format!("router {} has no `role`", n.name.value),
                fix,
            );
        }
        if n.lab_secrets && lab.secrets.is_none() {
            diags.error(
                n.name.pos,
                format!(
                    "{} takes the lab's secrets (`secrets = true`), but the lab names no `secrets` directory",
                    n.name.value
                ),
                "add secrets = \"DIR\" at the top (vlaunch lab up creates a throwaway one there)",
            );
        }
        if router && n.address.value != crate::model::Address::Unset {
            diags.error(
                n.address.pos,
                format!(
                    "router {} takes its addresses from the site file, not `address`",
                    n.name.value
                ),
                "remove `address` (it is for client nodes)",
            );
        }
    }
}

/// Where a port user is, for "also used by ... (line N)".
struct PortUser {
    what: String,
    pos: Pos,
}

/// A NIC or an uplink on a switch port.
struct PortUse<'a> {
    what: String,
    switch: &'a At<String>,
    port: &'a At<u16>,
    vlan: &'a At<VlanMode>,
    /// Picked by `resolve` (0: none was free, already reported).
    auto: bool,
}

/// Every port use, NICs in file order, then uplinks.
fn port_uses(lab: &Lab) -> Vec<PortUse<'_>> {
    let nics = lab.nodes.iter().flat_map(|n| {
        n.nics.iter().map(move |c| PortUse {
            what: format!("{} eth{}", n.name.value, c.index),
            switch: &c.switch,
            port: &c.port,
            vlan: &c.vlan,
            auto: c.port_auto,
        })
    });
    let uplinks = lab.uplinks.iter().map(|u| PortUse {
        what: format!("uplink {}", u.name.value),
        switch: &u.switch,
        port: &u.port,
        vlan: &u.vlan,
        auto: false,
    });
    nics.chain(uplinks).collect()
}

fn ports_and_vlans(lab: &Lab, diags: &mut Diags) {
    let mut used: BTreeMap<(String, u16), PortUser> = BTreeMap::new();
    for u in port_uses(lab) {
        let Some(sw) = lab.switch(&u.switch.value) else {
            unknown_switch(lab, &u, diags);
            continue;
        };
        vlans_on_switch(&u.what, u.vlan, sw, diags);
        if u.auto && u.port.value == 0 {
            continue;
        }
        let (port, name) = (u.port.value, &sw.name.value);
        if !(1..=sw.ports).contains(&port) {
            let msg = format!(
                "{}: port {port} is out of range: switch {name} has ports 1-{}",
                u.what, sw.ports
            );
            let fix = format!(
                "use a port from 1 to {}, or raise `ports` of [switch.{name}]",
                sw.ports
            );
            diags.error(u.port.pos, msg, fix);
            continue;
        }
        match used.get(&(name.clone(), port)) {
            Some(first) => {
                let msg = format!(
                    "{}: port {port} of switch {name} is used twice (also by {}, line {})",
                    u.what, first.what, first.pos.line
                );
                let fix =
                    "give one of them another port, or leave `port` out to get the first free one";
                diags.error(u.port.pos, msg, fix);
            }
            None => {
                used.insert(
                    (name.clone(), port),
                    PortUser {
                        what: u.what,
                        pos: u.port.pos,
                    },
                );
            }
        }
    }
}

fn unknown_switch(lab: &Lab, u: &PortUse, diags: &mut Diags) {
    let known: Vec<&str> = lab.switches.iter().map(|s| s.name.value.as_str()).collect();
    let fix = if known.is_empty() {
        "declare it with a [switch.NAME] table".to_string()
    } else {
        format!("known switches: {}", known.join(", "))
    };
    diags.error(
        u.switch.pos,
        format!("{}: unknown switch {:?}", u.what, u.switch.value),
        fix,
    );
}

fn vlans_on_switch(what: &str, vlan: &At<VlanMode>, sw: &crate::model::Switch, diags: &mut Diags) {
    let known: Vec<String> = sw
        .vlans
        .iter()
        .map(|(v, l)| format!("{v} ({})", l.value))
        .collect();
    let known = if known.is_empty() {
        "none".to_string()
    } else {
        known.join(", ")
    };
    let mut seen = Vec::new();
    for vid in vlan.value.vids() {
        if seen.contains(&vid) {
            diags.error(
                vlan.pos,
                format!("{what}: VLAN {vid} is listed twice on this port"),
                "list each VLAN once (and the native one not among the tagged)",
            );
            continue;
        }
        seen.push(vid);
        if !sw.vlans.contains_key(&vid) {
            diags.error(
                vlan.pos,
                format!(
                    "{what}: VLAN {vid} is not a VLAN of switch {} (it has {known})",
                    sw.name.value
                ),
                format!(
                    "add {vid} = \"NAME\" to `vlans` of [switch.{}], or use one of its VLANs",
                    sw.name.value
                ),
            );
        }
    }
}

fn macs(lab: &Lab, diags: &mut Diags) {
    let mut seen: BTreeMap<[u8; 6], (String, Pos)> = BTreeMap::new();
    for n in &lab.nodes {
        for c in &n.nics {
            let what = format!("{} eth{}", n.name.value, c.index);
            if let Some((other, p)) = seen.get(&c.mac.value.0) {
                diags.error(
                    c.mac.pos,
                    format!(
                        "{what}: MAC {} is also the MAC of {other} (line {})",
                        c.mac.value, p.line
                    ),
                    "remove `mac` to get a derived one, or give another address",
                );
            } else {
                seen.insert(c.mac.value.0, (what, c.mac.pos));
            }
        }
    }
}

fn after(lab: &Lab, diags: &mut Diags) {
    for n in &lab.nodes {
        for a in &n.after {
            after_entry(lab, n, a, diags);
        }
    }
    if let Err(cycles) = start_plan(lab) {
        for c in cycles.into_iter().filter(|c| c.len() > 2) {
            let first = lab.node(&c[0]).expect("a cycle is made of nodes");
            let pos = first
                .after
                .iter()
                .find(|a| a.value == c[1])
                .map_or(first.name.pos, |a| a.pos);
            diags.error(
                pos,
                format!("`after` makes a cycle: {}", c.join(" -> ")),
                "remove one of these `after` entries: no node of the cycle could ever start",
            );
        }
    }
}

fn after_entry(lab: &Lab, n: &Node, a: &At<String>, diags: &mut Diags) {
    match lab.node(&a.value) {
        None => {
            let known: Vec<&str> = lab
                .nodes
                .iter()
                .map(|m| m.name.value.as_str())
                .filter(|m| *m != n.name.value)
                .collect();
            diags.error(
                a.pos,
                format!(
                    "{} is after {:?}, which is not a node of this lab",
                    n.name.value, a.value
                ),
                format!("known nodes: {}", known.join(", ")),
            );
        }
        Some(m) if m.name.value == n.name.value => diags.error(
            a.pos,
            format!("{} is after itself", n.name.value),
            "remove it from its own `after`",
        ),
        Some(m) if !m.enabled && n.enabled => diags.warning(
            a.pos,
            format!(
                "{} is after {}, which has enabled = false: it will not wait for it",
                n.name.value, m.name.value
            ),
            "enable it, or remove it from `after`",
        ),
        Some(_) => {}
    }
}

fn tests(lab: &Lab, diags: &mut Diags) {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &lab.tests {
        if let Some(line) = seen.insert(&t.name.value, t.name.pos.line) {
            diags.error(
                t.name.pos,
                format!(
                    "a second test named {:?} (the first is on line {line})",
                    t.name.value
                ),
                "give every test its own name: reports and JUnit files use it",
            );
        }
        test_nodes(lab, t, diags);
    }
}

fn test_nodes(lab: &Lab, t: &LabTest, diags: &mut Diags) {
    let mut must_be_node: Vec<(&str, &At<String>)> = Vec::new();
    match (&t.from, &t.kind) {
        (Some(f), _) => must_be_node.push(("from", f)),
        (None, TestKind::Matrix) => {}
        (None, _) => diags.error(
            t.pos,
            format!("test {:?} has no `from`", t.name.value),
            "add from = \"NODE\": the node the probe runs on",
        ),
    }
    if let TestKind::Failover { node, .. } = &t.kind {
        must_be_node.push(("failover", node));
    }
    if let Some(l) = &t.listen {
        must_be_node.push(("listen", l));
    }
    if let Some(d) = &t.down {
        must_be_node.push(("down", d));
        if matches!(t.kind, TestKind::Failover { .. } | TestKind::Matrix) {
            diags.error(
                d.pos,
                format!("test {:?}: `down` is for probe tests", t.name.value),
                "a failover test faults its node itself: remove `down`",
            );
        }
    }
    for (key, name) in must_be_node {
        if lab.node(&name.value).is_none() {
            let known: Vec<&str> = lab.nodes.iter().map(|n| n.name.value.as_str()).collect();
            diags.error(
                name.pos,
                format!(
                    "test {:?}: `{key}` = {:?} is not a node of this lab",
                    t.name.value, name.value
                ),
                format!("known nodes: {}", known.join(", ")),
            );
        }
    }
}

#[cfg(test)]
mod trunk_tests {
    use std::path::Path;

    fn errors(switch: &str) -> String {
        let text = format!(
            "name = \"t\"\n[switch.s]\n{switch}\nvlans = {{ 10 = \"a\" }}\n\
             [uplink.u]\nswitch = \"s\"\nport = 1\naccess = 10\nbridge = \"br0\"\n"
        );
        let c = crate::check_text(&text, "lab.toml", Path::new("/l"), None);
        crate::render_all(&c.diagnostics)
    }

    #[test]
    fn uplinks_and_vxlan_need_vswitch_and_addresses() {
        assert_eq!(errors("engine = \"vswitch\""), "");
        let e = errors("engine = \"vde_switch\"\nvxlan = { remote = \"192.0.2.2\", vni = 5 }");
        assert!(
            e.contains("lab.toml:7:10: error: uplink u: switch s is a vde_switch"),
            "{e}"
        );
        assert!(e.contains("a vde_switch cannot carry a VXLAN trunk"), "{e}");
        assert!(
            e.contains("fix: write engine = \"vswitch\" in [switch.s]"),
            "{e}"
        );
        assert_eq!(
            errors("vxlan = { remote = \"192.0.2.1, 192.0.2.2\", vni = 5 }"),
            ""
        );
        let e = errors("vxlan = { remote = \"peer.example\", vni = 5 }");
        assert!(e.contains("is not one or two IPv4 addresses"), "{e}");
        let e = errors("vxlan = { remote = \"192.0.2.1,192.0.2.2,192.0.2.3\", vni = 5 }");
        assert!(e.contains("is not one or two IPv4 addresses"), "{e}");
    }
}

#[cfg(test)]
mod secrets_and_down_tests {
    use std::path::Path;

    fn errors(top: &str, node: &str, test: &str) -> String {
        let text = format!(
            "name = \"t\"\n{top}\n[node.DNS1]\nprofile = \"dns\"\niso = \"d.iso\"\n{node}\n\
             [node.MV2]\nprofile = \"client\"\niso = \"c.iso\"\n\
             [[test]]\nname = \"lease\"\nfrom = \"MV2\"\ndhcp = true\n{test}\n"
        );
        let c = crate::check_text(&text, "lab.toml", Path::new("/l"), None);
        crate::render_all(&c.diagnostics)
    }

    #[test]
    fn lab_secrets_need_the_directory_and_down_a_node() {
        let e = errors("", "secrets = true", "");
        assert!(
            e.contains("DNS1 takes the lab's secrets (`secrets = true`), but the lab names no `secrets` directory"),
            "{e}"
        );
        assert!(!errors("secrets = \"s\"", "secrets = true", "").contains("error"));
        let e = errors("", "secrets = 3", "");
        assert!(
            e.contains("`secrets`") && e.contains("true or a file name"),
            "{e}"
        );
        let e = errors("", "", "down = \"DNS9\"");
        assert!(
            e.contains("`down` = \"DNS9\" is not a node of this lab"),
            "{e}"
        );
        assert!(!errors("", "", "down = \"DNS1\"").contains("error"));
    }
}
