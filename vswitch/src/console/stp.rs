//! `stp/*`: the spanning tree (`-F`) from the console, and its `json` forms.

use super::{ints, Ctx, Reply};
use crate::core::{PortId, Switch};
use crate::stp::bpdu::BridgeId;
use crate::stp::cst::Cst;
use crate::stp::fsm::{PortRole, PortState};
use serde_json::json;

const OFF: &str = "spanning tree is off (start vswitch with -F)";

fn secs(t: u16) -> f64 {
    f64::from(t) / 256.0
}

fn role(r: PortRole) -> &'static str {
    match r {
        PortRole::Disabled => "disabled",
        PortRole::Root => "root",
        PortRole::Designated => "designated",
        PortRole::Blocked => "blocked",
    }
}

fn state(s: PortState) -> &'static str {
    match s {
        PortState::Disabled => "disabled",
        PortState::Blocking => "blocking",
        PortState::Listening => "listening",
        PortState::Learning => "learning",
        PortState::Forwarding => "forwarding",
    }
}

/// The switch port of the root port ("none" on the root).
fn root_port(stp: &Cst) -> Option<PortId> {
    stp.bridge.root_port().map(|i| i as PortId + 1)
}

/// Ports `stp/print` shows: the one asked for, else those with a link.
fn shown(sw: &Switch, stp: &Cst, arg: &str) -> Result<Vec<PortId>, i32> {
    if arg.is_empty() {
        return Ok((1..=sw.numports)
            .filter(|&p| stp.state(p) != PortState::Disabled)
            .collect());
    }
    match ints(arg, 1) {
        Some(v) if (1..=sw.numports as i64).contains(&v[0]) => Ok(vec![v[0] as PortId]),
        _ => Err(libc::EINVAL),
    }
}

fn id(b: BridgeId) -> String {
    b.sysfs()
}

/// `stp/*` commands.
pub(super) fn stp_cmd(sw: &mut Switch, ctx: &Ctx<'_>, cmd: &str, arg: &str) -> Reply {
    let numports = sw.numports as i64;
    let Some(stp) = sw.stp.as_ref() else {
        return Reply::data_err(vec![OFF.into()], libc::ENOSYS);
    };
    let b = &stp.bridge;
    match cmd {
        "stp/showinfo" => {
            let (t, c) = (b.timers(), b.conf());
            Reply::data(vec![
                format!("Bridge id {} (priority {})", id(b.id()), b.id().priority),
                format!(
                    "Root id {} root port {} root path cost {}",
                    id(b.root()),
                    root_port(stp).map_or("none".into(), |p| p.to_string()),
                    b.root_cost()
                ),
                format!(
                    "Timers in use: max age {} s hello {} s forward delay {} s",
                    secs(t.max_age),
                    secs(t.hello_time),
                    secs(t.forward_delay)
                ),
                format!(
                    "Timers configured: max age {} s hello {} s forward delay {} s",
                    secs(c.max_age),
                    secs(c.hello_time),
                    secs(c.forward_delay)
                ),
                format!(
                    "Topology change: {} (MAC aging {} s)",
                    if b.topology_change() { "yes" } else { "no" },
                    sw.table.expire() / 1000
                ),
            ])
        }
        "stp/print" => match shown(sw, stp, arg) {
            Err(e) => Reply::data_err(vec![], e),
            Ok(ports) => {
                let mut d = Vec::new();
                for p in ports {
                    let i = p as usize - 1;
                    let (root, cost, dbridge, dport) = b.designated(i);
                    let c = stp.counters[p as usize];
                    d.push(format!(
                        "Port {p:04} id {:04x} role {} state {} path cost {}",
                        b.port_id(i),
                        role(b.role(i)),
                        state(b.state(i)),
                        b.path_cost(i)
                    ));
                    d.push(format!(
                        " designated root {} cost {cost} bridge {} port {dport:04x}",
                        id(root),
                        id(dbridge)
                    ));
                    d.push(format!(
                        " BPDU in {} (bad {}) out {}, data frames discarded {}",
                        c.bpdu_in, c.bpdu_bad, c.bpdu_out, c.discarded
                    ));
                }
                Reply::data(d)
            }
        },
        "stp/setprio" => match ints(arg, 1) {
            Some(v) if (0..=0xffff).contains(&v[0]) => {
                sw.stp_do(|s| s.set_priority(v[0] as u16, ctx.now_ms));
                Reply::ok()
            }
            _ => Reply::err(libc::EINVAL),
        },
        "stp/setcost" => match ints(arg, 2) {
            Some(v) if (1..=numports).contains(&v[0]) && (1..=200_000_000).contains(&v[1]) => {
                sw.stp_do(|s| {
                    s.set_cost(v[0] as PortId, v[1] as u32, ctx.now_ms)
                        .unwrap_or_default()
                });
                Reply::ok()
            }
            _ => Reply::err(libc::EINVAL),
        },
        "stp/setfwddelay" | "stp/sethello" | "stp/setmaxage" => {
            // 802.1D-1998 table 8-3's ranges.
            let range = match cmd {
                "stp/setfwddelay" => 4..=30,
                "stp/sethello" => 1..=10,
                _ => 6..=40,
            };
            match ints(arg, 1) {
                Some(v) if range.contains(&v[0]) => {
                    let units = v[0] as u16 * 256;
                    let mut t = b.conf();
                    match cmd {
                        "stp/setfwddelay" => t.forward_delay = units,
                        "stp/sethello" => t.hello_time = units,
                        _ => t.max_age = units,
                    }
                    sw.stp_do(|s| {
                        s.bridge.set_timers(t);
                        vec![]
                    });
                    Reply::ok()
                }
                _ => Reply::err(libc::EINVAL),
            }
        }
        _ => Reply::err(libc::ENOSYS),
    }
}

/// `json stp/showinfo`, `json stp/print [N]`.
pub(super) fn stp_json(sw: &Switch, cmd: &str, arg: &str) -> Result<serde_json::Value, i32> {
    let stp = sw.stp.as_ref().ok_or(libc::ENOSYS)?;
    let b = &stp.bridge;
    let timers = |t: crate::stp::fsm::Timers| json!({"max_age_s": secs(t.max_age), "hello_time_s": secs(t.hello_time), "forward_delay_s": secs(t.forward_delay)});
    Ok(match cmd {
        "stp/showinfo" => json!({
            "bridge_id": id(b.id()),
            "root_id": id(b.root()),
            "root_port": root_port(stp),
            "root_path_cost": b.root_cost(),
            "timers": timers(b.timers()),
            "configured_timers": timers(b.conf()),
            "topology_change": b.topology_change(),
            "mac_aging_s": sw.table.expire() / 1000,
        }),
        _ => {
            let ports: Vec<_> = shown(sw, stp, arg)?
                .into_iter()
                .map(|p| {
                    let i = p as usize - 1;
                    let (root, cost, dbridge, dport) = b.designated(i);
                    let c = stp.counters[p as usize];
                    json!({
                        "port": p,
                        "port_id": format!("{:04x}", b.port_id(i)),
                        "role": role(b.role(i)),
                        "state": state(b.state(i)),
                        "path_cost": b.path_cost(i),
                        "designated_root": id(root),
                        "designated_cost": cost,
                        "designated_bridge": id(dbridge),
                        "designated_port": format!("{dport:04x}"),
                        "bpdu_in": c.bpdu_in,
                        "bpdu_bad": c.bpdu_bad,
                        "bpdu_out": c.bpdu_out,
                        "discarded": c.discarded,
                    })
                })
                .collect();
            json!({ "ports": ports })
        }
    })
}
