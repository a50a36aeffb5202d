//! `stp/*`: the spanning tree (`-F`) from the console, and its `json` forms.

use super::{ints, Ctx, Reply};
use crate::core::{PortId, Switch};
use crate::stp::bpdu::BridgeId;
use crate::stp::cst::{Cst, Mode};
use crate::stp::fsm::PortState;
use crate::stp::rstp::P2p;
use serde_json::json;

const OFF: &str = "spanning tree is off (start vswitch with -F)";
const NOT_RSTP: &str = "per-port edge, p2p, priority and mcheck need RSTP (stp/setmode rstp)";

fn secs(t: u16) -> f64 {
    f64::from(t) / 256.0
}

fn state(stp: &Cst, s: PortState) -> &'static str {
    match s {
        PortState::Disabled => "disabled",
        PortState::Blocking if stp.bridge.mode() == Mode::Rstp => "discarding",
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

fn p2p_name(p: P2p) -> &'static str {
    match p {
        P2p::Auto => "auto",
        P2p::Yes => "yes",
        P2p::No => "no",
    }
}

/// RSTP's per-port view: protocol spoken, edge, point to point, handshake.
fn rstp_port(stp: &Cst, i: usize) -> Option<serde_json::Value> {
    let r = stp.bridge.rstp()?;
    let ((admin, auto, oper), (p2p, oper_p2p)) = (r.edge(i), r.p2p(i));
    let (proposing, agreed) = r.handshake(i);
    Some(json!({
        "protocol": if r.sends_rstp(i) { "rstp" } else { "stp" },
        "admin_edge": admin, "auto_edge": auto, "oper_edge": oper,
        "p2p": p2p_name(p2p), "oper_p2p": oper_p2p,
        "proposing": proposing, "agreed": agreed,
    }))
}

/// `PORT FLAG` with FLAG 0 or 1.
fn port_flag(arg: &str, numports: i64) -> Option<(PortId, bool)> {
    match ints(arg, 2) {
        Some(v) if (1..=numports).contains(&v[0]) && (0..=1).contains(&v[1]) => {
            Some((v[0] as PortId, v[1] == 1))
        }
        _ => None,
    }
}

/// The per-port RSTP commands.
fn rstp_cmd(sw: &mut Switch, now: u64, cmd: &str, arg: &str) -> Reply {
    let n = sw.numports as i64;
    let stp = sw.stp.as_mut().expect("checked by the caller");
    let words: Vec<&str> = arg.split_whitespace().collect();
    let port = || match words.first().and_then(|w| ints(w, 1)) {
        Some(v) if (1..=n).contains(&v[0]) => Some(v[0] as PortId),
        _ => None,
    };
    let r = match cmd {
        "stp/setedge" | "stp/setautoedge" => match port_flag(arg, n) {
            Some((p, on)) if cmd == "stp/setedge" => {
                stp.rstp_port(p, now, |b, i, t| b.set_admin_edge(i, on, t))
            }
            Some((p, on)) => stp.rstp_port(p, now, |b, i, t| b.set_auto_edge(i, on, t)),
            None => return Reply::err(libc::EINVAL),
        },
        "stp/setp2p" => {
            let v = match words.get(1).copied() {
                Some("auto") => P2p::Auto,
                Some("yes" | "1") => P2p::Yes,
                Some("no" | "0") => P2p::No,
                _ => return Reply::err(libc::EINVAL),
            };
            match (port(), words.len()) {
                (Some(p), 2) => stp.rstp_port(p, now, |b, i, t| b.set_p2p(i, v, t)),
                _ => return Reply::err(libc::EINVAL),
            }
        }
        "stp/setportprio" => match ints(arg, 2) {
            Some(v) if (1..=n).contains(&v[0]) && (0..=240).contains(&v[1]) && v[1] % 16 == 0 => {
                let prio = v[1] as u8;
                stp.rstp_port(v[0] as PortId, now, |b, i, t| {
                    b.set_port_priority(i, prio, t)
                })
            }
            _ => return Reply::err(libc::EINVAL),
        },
        _ => match (port(), words.len()) {
            (Some(p), 1) => stp.rstp_port(p, now, |b, i, t| b.mcheck(i, t)),
            _ => return Reply::err(libc::EINVAL),
        },
    };
    match r {
        Some(stopped) => {
            sw.stp_do(|_| stopped);
            Reply::ok()
        }
        None => Reply::data_err(vec![NOT_RSTP.into()], libc::ENOSYS),
    }
}

/// `stp/*` commands.
pub(super) fn stp_cmd(sw: &mut Switch, ctx: &Ctx<'_>, cmd: &str, arg: &str) -> Reply {
    let numports = sw.numports as i64;
    let Some(stp) = sw.stp.as_ref() else {
        return Reply::data_err(vec![OFF.into()], libc::ENOSYS);
    };
    if matches!(
        cmd,
        "stp/setedge" | "stp/setautoedge" | "stp/setp2p" | "stp/setportprio" | "stp/mcheck"
    ) {
        return rstp_cmd(sw, ctx.now_ms, cmd, arg);
    }
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
                format!("Protocol {}", b.mode().name()),
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
                        b.role(i).name(),
                        state(stp, b.state(i)),
                        b.path_cost(i)
                    ));
                    if let Some(r) = rstp_port(stp, i) {
                        d.push(format!(
                            " protocol {} edge admin {} auto {} oper {} p2p {} ({}) proposing {} agreed {}",
                            r["protocol"].as_str().unwrap_or_default(),
                            r["admin_edge"],
                            r["auto_edge"],
                            r["oper_edge"],
                            r["p2p"].as_str().unwrap_or_default(),
                            r["oper_p2p"],
                            r["proposing"],
                            r["agreed"]
                        ));
                    }
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
                    sw.stp_do(|s| s.set_timers(t, ctx.now_ms));
                    Reply::ok()
                }
                _ => Reply::err(libc::EINVAL),
            }
        }
        "stp/setmode" => {
            let mode = match arg.trim() {
                "stp" => Mode::Stp,
                "rstp" => Mode::Rstp,
                _ => return Reply::err(libc::EINVAL),
            };
            sw.stp_do(|s| s.set_mode(mode, ctx.now_ms));
            Reply::ok()
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
            "mode": b.mode().name(),
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
                    let mut v = json!({
                        "port": p,
                        "port_id": format!("{:04x}", b.port_id(i)),
                        "role": b.role(i).name(),
                        "state": state(stp, b.state(i)),
                        "path_cost": b.path_cost(i),
                        "designated_root": id(root),
                        "designated_cost": cost,
                        "designated_bridge": id(dbridge),
                        "designated_port": format!("{dport:04x}"),
                        "bpdu_in": c.bpdu_in,
                        "bpdu_bad": c.bpdu_bad,
                        "bpdu_out": c.bpdu_out,
                        "discarded": c.discarded,
                    });
                    if let (Some(r), Some(o)) = (rstp_port(stp, i), v.as_object_mut()) {
                        o.insert("rstp".into(), r);
                    }
                    v
                })
                .collect();
            json!({ "ports": ports })
        }
    })
}
