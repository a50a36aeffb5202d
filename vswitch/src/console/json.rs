//! `json <command>` (a vswitch extension): the status commands `port/print`,
//! `port/allprint`, `vlan/print`, `vlan/allprint`, `hash/print` and the `showinfo`s as one
//! JSON document in the data block (`vswitch ctl --json`).

use super::{parse_command_line, parse_int, Ctx, Reply};
use crate::core::{DropReason, PortId, Switch, NO_VLAN};
use crate::wire::fmt_mac;
use serde_json::json;

/// `json <command>`: status commands as one JSON document in the data block.
pub(super) fn json_cmd(sw: &mut Switch, ctx: &Ctx<'_>, arg: &str) -> Reply {
    let Some((cmd, a)) = parse_command_line(arg) else {
        return Reply::data_err(vec![], libc::ENOSYS);
    };
    let v = match cmd {
        "port/print" | "port/allprint" => {
            let all = cmd == "port/allprint";
            let sel: Option<PortId> = if a.is_empty() {
                None
            } else {
                match parse_int(a) {
                    Some(p) if (0..=sw.numports as i64).contains(&p) => Some(p as PortId),
                    _ => return Reply::data_err(vec![], libc::EINVAL),
                }
            };
            let ports: Vec<_> = (0..=sw.numports)
                .filter(|&p| {
                    sel.is_none_or(|s| s == p) && sw.port(p).is_some_and(|x| all || x.active())
                })
                .map(|p| port_json(sw, p))
                .collect();
            if sel.is_some() && ports.is_empty() {
                return Reply::data_err(vec![], libc::ENXIO);
            }
            json!({ "ports": ports })
        }
        "vlan/print" | "vlan/allprint" => {
            let all = cmd == "vlan/allprint";
            let vlans: Vec<_> = sw
                .vlans
                .iter()
                .map(|v| {
                    let ports: Vec<_> = sw
                        .ports
                        .iter()
                        .enumerate()
                        .filter_map(|(p, port)| port.as_ref().map(|x| (p, x)))
                        .filter(|(_, x)| x.member(v) && (all || x.active()))
                        .map(|(p, x)| json!({"port": p, "tagged": x.untagged != v, "active": x.active()}))
                        .collect();
                    json!({"vlan": v, "ports": ports})
                })
                .collect();
            json!({ "vlans": vlans })
        }
        "hash/print" => {
            let now = ctx.uptime_s * 1000;
            let e: Vec<_> = sw
                .table
                .entries()
                .into_iter()
                .map(|((v, m), e)| json!({"vlan": v, "mac": fmt_mac(&m), "port": e.port, "age_s": now.saturating_sub(e.last_seen_ms) / 1000}))
                .collect();
            json!({ "entries": e })
        }
        "auth/print" => match super::auth::auth_json(sw, ctx, a) {
            Ok(v) => v,
            Err(e) => return Reply::data_err(vec![], e),
        },
        "stp/showinfo" | "stp/print" => match super::stp::stp_json(sw, cmd, a) {
            Ok(v) => v,
            Err(e) => return Reply::data_err(vec![], e),
        },
        "port/showinfo" | "showinfo" | "hash/showinfo" => json!({
            "pid": ctx.pid,
            "uptime_s": ctx.uptime_s,
            "numports": sw.numports,
            "hub": sw.hub,
            "ctl_dir": ctx.ctl_dir,
            "mgmt": ctx.mgmt,
            "hash": {"size": sw.table.hashsize, "entries": sw.table.len(), "gc_interval_s": sw.table.gcint_s,
                     "expire_s": sw.table.expire_ms / 1000, "min_persistence_s": sw.table.minper_ms / 1000},
            "captures": ctx.captures.iter().map(|(p, f)| json!({"port": p, "file": f})).collect::<Vec<_>>(),
            "counters": ctx.stats.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "unattributed_drops": DropReason::ALL.iter().map(|r| (r.name().to_string(), json!(sw.global_drops[*r as usize]))).collect::<serde_json::Map<_, _>>(),
        }),
        _ => return Reply::data_err(vec![], libc::ENOSYS),
    };
    Reply::data(vec![v.to_string()])
}

/// One port of `json port/print` (the caller checked that it exists).
fn port_json(sw: &Switch, p: PortId) -> serde_json::Value {
    let port = sw.port(p).expect("caller checked");
    let c = &port.counters;
    let drops: serde_json::Map<String, serde_json::Value> = DropReason::ALL
        .iter()
        .map(|r| (r.name().to_string(), json!(c.drops[*r as usize])))
        .collect();
    json!({
        "port": p,
        "active": port.active(),
        "allocatable": port.allocatable,
        "untagged_vlan": if port.untagged == NO_VLAN { serde_json::Value::Null } else { json!(port.untagged) },
        "tagged_vlans": port.tagged.iter().collect::<Vec<_>>(),
        "user": port.user,
        "in": {"frames": c.in_frames, "bytes": c.in_bytes},
        "out": {"frames": c.out_frames, "bytes": c.out_bytes},
        "drops": drops,
        "impair_in": port.impair_in,
        "impair_out": port.impair_out,
        "endpoints": port.endpoints.iter().map(|e| json!({"id": e.id, "module": e.module, "descr": e.descr})).collect::<Vec<_>>(),
    })
}
