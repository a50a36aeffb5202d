//! `global_defs`: the settings that apply to every instance.
//!
//! Read before any `vrrp_instance`, so an instance starts from these (router id, default VRRP
//! version, GARP timers, v3 checksum form). The GARP timer and version keywords are shared with
//! the instance block, which is why `garp_kw` and `version_kw` live here.

use crate::wire::Version;

use super::ctx::Ctx;
use super::lexer::Stmt;
use super::Garp;

#[derive(Default)]
pub(super) struct Globals {
    pub(super) router_id: Option<String>,
    pub(super) version: Option<Version>,
    pub(super) garp: Garp,
    pub(super) v3_checksum_as_v2: bool,
}

pub(super) fn parse_globals(ctx: &mut Ctx, block: &[Stmt], g: &mut Globals) {
    for s in block {
        // The GARP timers are the instance keywords with a `vrrp_` prefix.
        if let Some(k) = s.key.strip_prefix("vrrp_") {
            if garp_kw(ctx, s, k, &mut g.garp) {
                continue;
            }
        }
        match s.key.as_str() {
            "router_id" => g.router_id = ctx.one_arg(s).map(str::to_string),
            "vrrp_version" => g.version = version_kw(ctx, s),
            "vrrp_garp_interval" | "vrrp_gna_interval" => {
                if let Some(d) = ctx.secs(s, 1.0) {
                    g.garp.interval = d
                }
            }
            "v3_checksum_as_v2" => g.v3_checksum_as_v2 = true,
            // Accepted without effect: vrrpd always execs scripts directly (no shell).
            "enable_script_security" | "script_user" => {}
            _ => ctx.unknown(s, "global_defs"),
        }
    }
}

/// `version` / `vrrp_version`: 2 or 3, shared by global_defs and instances.
pub(super) fn version_kw(ctx: &mut Ctx, s: &Stmt) -> Option<Version> {
    ctx.num::<u8>(s, 2, 3)
        .map(|v| if v == 2 { Version::V2 } else { Version::V3 })
}

/// The four GARP timers (`key` without any `vrrp_` prefix); false if `key` is not one of them.
pub(super) fn garp_kw(ctx: &mut Ctx, s: &Stmt, key: &str, garp: &mut Garp) -> bool {
    match key {
        "garp_master_delay" => {
            if let Some(d) = ctx.secs(s, 255.0) {
                garp.master_delay = d
            }
        }
        "garp_master_repeat" => {
            if let Some(n) = ctx.num(s, 0, 255) {
                garp.master_repeat = n
            }
        }
        "garp_master_refresh" => {
            if let Some(d) = ctx.secs(s, 86400.0) {
                garp.master_refresh = d
            }
        }
        "garp_master_refresh_repeat" => {
            if let Some(n) = ctx.num(s, 1, 255) {
                garp.master_refresh_repeat = n
            }
        }
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::test_util::p;

    #[test]
    fn garp_timers_global_and_per_instance() {
        let c = p("global_defs {\n vrrp_garp_master_repeat 7\n vrrp_garp_master_delay 2\n}\nvrrp_instance a {\n interface e\n virtual_router_id 1\n garp_master_delay 3\n vrrp_garp_master_refresh 9\n}\n").unwrap();
        let g = c.instances[0].garp;
        assert_eq!(
            (g.master_repeat, g.master_delay),
            (7, Duration::from_secs(3))
        );
        assert_eq!(g.master_refresh, Duration::ZERO);
        assert!(
            c.warnings[0]
                .msg
                .starts_with("unknown or unsupported keyword 'vrrp_garp_master_refresh'"),
            "{:?}",
            c.warnings
        );
        let e = p("global_defs {\n vrrp_garp_master_refresh_repeat 0\n}\nvrrp_instance a {\n interface e\n virtual_router_id 1\n}\n").unwrap_err();
        assert_eq!(e.to_string(), "k.conf:2: error: 'vrrp_garp_master_refresh_repeat' must be a number from 1 to 255, got '0'");
    }
}
