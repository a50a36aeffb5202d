//! The lab as a picture: switches, nodes, uplinks, and one edge per NIC labelled with its port,
//! VLANs and MAC. Mermaid renders in GitHub and GitLab markdown, dot in Graphviz. The output
//! depends only on the lab (file order), so a golden file catches any change in the topology.

use std::fmt::Write;

use crate::model::{Lab, Node, Switch, Uplink};

fn switch_label(s: &Switch) -> Vec<String> {
    let vlans: Vec<String> = s
        .vlans
        .iter()
        .map(|(v, l)| {
            if l.value.is_empty() {
                v.to_string()
            } else {
                format!("{v} {}", l.value)
            }
        })
        .collect();
    let mut lines = vec![
        s.name.value.clone(),
        format!("{}, {} ports", s.engine.as_str(), s.ports),
    ];
    if !vlans.is_empty() {
        lines.push(format!("VLAN {}", vlans.join(", ")));
    }
    if let Some(x) = &s.vxlan {
        lines.push(format!("vxlan {} vni {}", x.remote, x.vni));
    }
    lines
}

fn node_label(n: &Node) -> Vec<String> {
    let mut what = n.profile.value.clone();
    if let Some(r) = &n.role {
        what = format!("{what} {}", r.value);
    }
    if !n.enabled {
        what.push_str(" (disabled)");
    }
    vec![n.name.value.clone(), what]
}

fn uplink_label(u: &Uplink) -> Vec<String> {
    vec![
        format!("uplink {}", u.name.value),
        format!("bridge {}", u.bridge.value),
    ]
}

/// One edge per NIC: (node, switch, label lines).
fn nic_edges(n: &Node) -> Vec<(String, Vec<String>)> {
    n.nics
        .iter()
        .map(|c| {
            (
                c.switch.value.clone(),
                vec![
                    format!("eth{} port {}", c.index, c.port.value),
                    c.vlan.value.describe(),
                    c.mac.value.to_string(),
                ],
            )
        })
        .collect()
}

/// Mermaid `flowchart LR`.
pub fn mermaid(lab: &Lab) -> String {
    let q = |lines: Vec<String>| lines.join("<br/>").replace('"', "#quot;");
    let mut out = format!("flowchart LR\n  %% lab {}\n", lab.name.value);
    for s in &lab.switches {
        let _ = writeln!(
            out,
            "  sw_{}{{{{\"{}\"}}}}",
            s.name.value,
            q(switch_label(s))
        );
    }
    for n in &lab.nodes {
        let _ = writeln!(out, "  node_{}[\"{}\"]", n.name.value, q(node_label(n)));
    }
    for u in &lab.uplinks {
        let _ = writeln!(
            out,
            "  uplink_{}([\"{}\"])",
            u.name.value,
            q(uplink_label(u))
        );
    }
    for n in &lab.nodes {
        for (sw, label) in nic_edges(n) {
            let _ = writeln!(out, "  node_{} ---|\"{}\"| sw_{sw}", n.name.value, q(label));
        }
    }
    for u in &lab.uplinks {
        let label = vec![format!("port {}", u.port.value), u.vlan.value.describe()];
        let _ = writeln!(
            out,
            "  uplink_{} ---|\"{}\"| sw_{}",
            u.name.value,
            q(label),
            u.switch.value
        );
    }
    out
}

/// Graphviz `graph` (undirected: a cable has no direction).
pub fn dot(lab: &Lab) -> String {
    let q = |lines: Vec<String>| {
        lines
            .iter()
            .map(|l| l.replace('\\', "\\\\").replace('"', "\\\""))
            .collect::<Vec<_>>()
            .join("\\n")
    };
    let mut out = format!("graph \"{}\" {{\n  rankdir=LR;\n", lab.name.value);
    out.push_str("  node [fontname=\"monospace\"];\n");
    out.push_str("  edge [fontname=\"monospace\", fontsize=10];\n");
    for s in &lab.switches {
        let _ = writeln!(
            out,
            "  \"switch:{}\" [shape=box3d, label=\"{}\"];",
            s.name.value,
            q(switch_label(s))
        );
    }
    for n in &lab.nodes {
        let style = if n.enabled { "" } else { ", style=dashed" };
        let _ = writeln!(
            out,
            "  \"node:{}\" [shape=box, label=\"{}\"{style}];",
            n.name.value,
            q(node_label(n))
        );
    }
    for u in &lab.uplinks {
        let _ = writeln!(
            out,
            "  \"uplink:{}\" [shape=ellipse, label=\"{}\"];",
            u.name.value,
            q(uplink_label(u))
        );
    }
    for n in &lab.nodes {
        for (sw, label) in nic_edges(n) {
            let _ = writeln!(
                out,
                "  \"node:{}\" -- \"switch:{sw}\" [label=\"{}\"];",
                n.name.value,
                q(label)
            );
        }
    }
    for u in &lab.uplinks {
        let label = vec![format!("port {}", u.port.value), u.vlan.value.describe()];
        let _ = writeln!(
            out,
            "  \"uplink:{}\" -- \"switch:{}\" [label=\"{}\"];",
            u.name.value,
            u.switch.value,
            q(label)
        );
    }
    out.push_str("}\n");
    out
}
