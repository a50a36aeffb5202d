//! The keywords `vrrp_instance` and `vrrp_sync_group` both take: the `notify*` scripts and
//! the `track_interface` block, so both sections accept and report them identically.

use super::ctx::Ctx;
use super::lexer::Stmt;
use super::{Notify, TrackIf};

pub(super) fn parse_track(ctx: &mut Ctx, block: &Option<Vec<Stmt>>, line: usize) -> Vec<TrackIf> {
    let Some(b) = block else {
        ctx.err(line, "'track_interface' needs a { block }");
        return vec![];
    };
    let mut out = Vec::new();
    for s in b {
        let weight = match s.args.as_slice() {
            [] => 0,
            [w, v] if w == "weight" => match v.parse::<i32>() {
                Ok(n) if (-253..=253).contains(&n) => n,
                _ => {
                    ctx.err(s.line, format!("bad weight '{v}' (-253..253)"));
                    0
                }
            },
            _ => {
                ctx.err(s.line, "expected 'IFNAME [weight N]'");
                0
            }
        };
        out.push(TrackIf {
            name: s.key.clone(),
            weight,
        });
    }
    out
}

pub(super) fn notify_kw(ctx: &mut Ctx, s: &Stmt, n: &mut Notify) -> bool {
    let slot = match s.key.as_str() {
        "notify_master" => &mut n.master,
        "notify_backup" => &mut n.backup,
        "notify_fault" => &mut n.fault,
        "notify_stop" => &mut n.stop,
        "notify" => &mut n.generic,
        _ => return false,
    };
    *slot = ctx.script(s);
    true
}
