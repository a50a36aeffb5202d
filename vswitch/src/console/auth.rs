//! `port/setauth` and `auth/*`: MAC authentication (MAB) from the console, and `json
//! auth/print`.

use super::{ints, Ctx, Reply};
use crate::auth::mab::{PortAuth, Server, State};
use crate::core::{PortId, Switch};
use crate::wire::fmt_mac;
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};

/// Ports `auth/print` shows: the one asked for, else those in `auth mab`.
fn shown(sw: &Switch, arg: &str) -> Result<Vec<PortId>, i32> {
    if arg.is_empty() {
        return Ok((1..=sw.numports)
            .filter(|&p| sw.auth.ports.get(p as usize).is_some_and(|a| a.mab))
            .collect());
    }
    match ints(arg, 1) {
        Some(v) if (1..=sw.numports as i64).contains(&v[0]) => Ok(vec![v[0] as PortId]),
        _ => Err(libc::EINVAL),
    }
}

/// (state, VLAN, seconds left) of a station at `now_ms`.
fn station(s: &State, now_ms: u64) -> (&'static str, Option<u16>, Option<u64>) {
    let left = |u: u64| Some(u.saturating_sub(now_ms) / 1000);
    match *s {
        State::Pending {
            reauth: Some(v), ..
        } => ("reauthenticating", v, None),
        State::Pending { .. } => ("pending", None, None),
        State::Authorized { vlan, until_ms } => ("authorized", vlan, until_ms.and_then(left)),
        State::Rejected { until_ms } => ("rejected", None, left(until_ms)),
    }
}

fn port_auth(sw: &Switch, p: PortId) -> PortAuth {
    sw.auth.ports.get(p as usize).cloned().unwrap_or_default()
}

/// The VLAN a station's frames go to: RADIUS's, else the port's untagged VLAN.
fn vlan_of(sw: &Switch, p: PortId, v: Option<u16>) -> Option<u16> {
    v.or_else(|| sw.port(p).map(|x| x.untagged))
}

/// `port/setauth` and `auth/*` commands.
pub(super) fn auth_cmd(sw: &mut Switch, ctx: &Ctx<'_>, cmd: &str, arg: &str) -> Reply {
    match cmd {
        "port/setauth" => {
            let mut it = arg.split_whitespace();
            let (Some(p), Some(mode), None) = (it.next(), it.next(), it.next()) else {
                return Reply::err(libc::EINVAL);
            };
            let Some(p) = super::parse_int(p).filter(|p| (1..=sw.numports as i64).contains(p))
            else {
                return Reply::err(libc::EINVAL);
            };
            let mab = match mode {
                "mab" => true,
                "off" => false,
                _ => return Reply::err(libc::EINVAL),
            };
            if sw.set_auth(p as PortId, mab) {
                Reply::ok()
            } else {
                Reply::err(libc::EINVAL)
            }
        }
        "auth/setradius" => {
            // IP:PORT SECRET_FILE [NAS_IP [NAS_IDENTIFIER]], or `off`.
            let a: Vec<&str> = arg.split_whitespace().collect();
            if a == ["off"] {
                sw.auth.server = None;
                return Reply::ok();
            }
            if !(2..=4).contains(&a.len()) {
                return Reply::err(libc::EINVAL);
            }
            let Ok(addr) = a[0].parse::<SocketAddr>() else {
                return Reply::err(libc::EINVAL);
            };
            let nas_ip = match a.get(2) {
                Some(s) => match s.parse::<Ipv4Addr>() {
                    Ok(ip) => ip,
                    Err(_) => return Reply::err(libc::EINVAL),
                },
                None => Ipv4Addr::LOCALHOST,
            };
            let nas_identifier = a.get(3).unwrap_or(&"vswitch").to_string();
            let secret = match (ctx.read_file)(a[1]) {
                Ok(s) => s.trim_end_matches(['\n', '\r']).as_bytes().to_vec(),
                Err(e) => return Reply::err(e.raw_os_error().unwrap_or(libc::EIO)),
            };
            if secret.is_empty() || nas_identifier.len() > 253 {
                return Reply::err(libc::EINVAL);
            }
            sw.auth.server = Some(Server {
                addr,
                secret,
                nas_ip,
                nas_identifier,
            });
            Reply::ok()
        }
        "auth/setmaxmacs" => match ints(arg, 1) {
            Some(v) if (1..=64).contains(&v[0]) => {
                sw.auth.cfg.max_macs = v[0] as usize;
                Reply::ok()
            }
            _ => Reply::err(libc::EINVAL),
        },
        "auth/settimers" => match ints(arg, 3) {
            // TIMEOUT_MS TRIES HOLD_S
            Some(v)
                if (100..=60_000).contains(&v[0])
                    && (1..=10).contains(&v[1])
                    && (1..=86_400).contains(&v[2]) =>
            {
                sw.auth.cfg.timeout_ms = v[0] as u64;
                sw.auth.cfg.tries = v[1] as u32;
                sw.auth.cfg.hold_ms = v[2] as u64 * 1000;
                Reply::ok()
            }
            _ => Reply::err(libc::EINVAL),
        },
        "auth/print" => match shown(sw, arg) {
            Err(e) => Reply::data_err(vec![], e),
            Ok(ports) => {
                let mut d = Vec::new();
                let c = &sw.auth.counters;
                d.push(format!(
                    "RADIUS {} max MACs per port {}; replies bad {} unknown {}, send errors {}",
                    sw.auth
                        .server
                        .as_ref()
                        .map_or("none".into(), |s| s.addr.to_string()),
                    sw.auth.cfg.max_macs,
                    c.bad_replies,
                    c.unknown_replies,
                    c.send_errors
                ));
                for p in ports {
                    let a = port_auth(sw, p);
                    let c = a.counters;
                    d.push(format!(
                        "Port {p:04} auth {}",
                        if a.mab { "mab" } else { "off" }
                    ));
                    for s in &a.stations {
                        let (st, v, left) = station(&s.state, ctx.now_ms);
                        let mut line = format!(" {} {st}", fmt_mac(&s.mac));
                        if st == "authorized" || st == "reauthenticating" {
                            if let Some(v) = vlan_of(sw, p, v) {
                                line.push_str(&format!(" vlan {v}"));
                            }
                        }
                        if let Some(l) = left {
                            line.push_str(&format!(" ({l} s left)"));
                        }
                        d.push(line);
                    }
                    d.push(format!(
                        " requests {} accepts {} rejects {} timeouts {} bad vlan {}",
                        c.requests, c.accepts, c.rejects, c.timeouts, c.bad_vlan
                    ));
                    d.push(format!(
                        " dropped: pending {} rejected {} over limit {} group source {}",
                        c.dropped_pending, c.dropped_rejected, c.dropped_limit, c.dropped_group_src
                    ));
                }
                Reply::data(d)
            }
        },
        _ => Reply::err(libc::ENOSYS),
    }
}

/// `json auth/print [N]`.
pub(super) fn auth_json(sw: &Switch, ctx: &Ctx<'_>, arg: &str) -> Result<serde_json::Value, i32> {
    let ports: Vec<_> = shown(sw, arg)?
        .into_iter()
        .map(|p| {
            let a = port_auth(sw, p);
            let c = a.counters;
            let macs: Vec<_> = a
                .stations
                .iter()
                .map(|s| {
                    let (st, v, left) = station(&s.state, ctx.now_ms);
                    let vlan = matches!(st, "authorized" | "reauthenticating")
                        .then(|| vlan_of(sw, p, v))
                        .flatten();
                    json!({"mac": fmt_mac(&s.mac), "state": st, "vlan": vlan, "seconds_left": left})
                })
                .collect();
            json!({
                "port": p,
                "mode": if a.mab { "mab" } else { "off" },
                "macs": macs,
                "requests": c.requests,
                "accepts": c.accepts,
                "rejects": c.rejects,
                "timeouts": c.timeouts,
                "bad_vlan": c.bad_vlan,
                "dropped_pending": c.dropped_pending,
                "dropped_rejected": c.dropped_rejected,
                "dropped_limit": c.dropped_limit,
                "dropped_group_source": c.dropped_group_src,
            })
        })
        .collect();
    let c = &sw.auth.counters;
    Ok(json!({
        "radius": sw.auth.server.as_ref().map(|s| s.addr.to_string()),
        "max_macs": sw.auth.cfg.max_macs,
        "bad_replies": c.bad_replies,
        "unknown_replies": c.unknown_replies,
        "send_errors": c.send_errors,
        "ports": ports,
    }))
}
