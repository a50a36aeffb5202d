//! `vrrp_sync_group NAME { group { ... } ... }`: instances that fail over together.
//!
//! The members are names, so whether they exist (and are in only one group) is checked by
//! `check_members` once every `vrrp_instance` has been read.

use super::common::{notify_kw, parse_track};
use super::ctx::Ctx;
use super::lexer::Stmt;
use super::script::parse_track_script;
use super::{InstanceConfig, Notify, SyncGroupConfig};

/// One `vrrp_sync_group` block, its member names taken as written.
pub(super) fn parse_group(ctx: &mut Ctx, s: &Stmt) -> Option<SyncGroupConfig> {
    let name = match s.args.as_slice() {
        [n] => n.clone(),
        _ => {
            ctx.err(s.line, "expected 'vrrp_sync_group NAME {'");
            return None;
        }
    };
    let mut g = SyncGroupConfig {
        name,
        line: s.line,
        members: vec![],
        notify: Notify::default(),
        track_interfaces: vec![],
        track_scripts: vec![],
    };
    for c in s.block.iter().flatten() {
        if notify_kw(ctx, c, &mut g.notify) {
            continue;
        }
        match c.key.as_str() {
            "group" => {
                for m in c.block.iter().flatten() {
                    g.members.push(m.key.clone());
                    g.members.extend(m.args.iter().cloned());
                }
            }
            "track_interface" => g.track_interfaces = parse_track(ctx, &c.block, c.line),
            "track_script" => g.track_scripts.extend(parse_track_script(ctx, c)),
            _ => ctx.unknown(c, &format!("vrrp_sync_group {}", g.name)),
        }
    }
    Some(g)
}

/// Every member names a `vrrp_instance`, and no instance is in more than one group.
pub(super) fn check_members(
    ctx: &mut Ctx,
    groups: &[SyncGroupConfig],
    instances: &[InstanceConfig],
) {
    let names: std::collections::HashSet<&str> =
        instances.iter().map(|i| i.name.as_str()).collect();
    let mut in_groups: std::collections::HashMap<&str, usize> = Default::default();
    for g in groups {
        let distinct: std::collections::HashSet<&str> =
            g.members.iter().map(String::as_str).collect();
        for m in distinct {
            *in_groups.entry(m).or_default() += 1;
        }
    }
    for gr in groups {
        for m in &gr.members {
            if !names.contains(m.as_str()) {
                ctx.err(
                    gr.line,
                    format!("vrrp_sync_group {}: no vrrp_instance named '{m}'", gr.name),
                );
            }
            if in_groups.get(m.as_str()).copied().unwrap_or(0) > 1 {
                ctx.err(
                    gr.line,
                    format!("instance '{m}' is in more than one vrrp_sync_group"),
                );
            }
        }
    }
}
