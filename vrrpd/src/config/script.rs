//! `vrrp_script NAME { ... }` and the `track_script { ... }` blocks that refer to them.
//!
//! A health check decides failover in most keepalived sites, so every keyword keepalived
//! 2.2.7 documents in keepalived.conf(5) is read with its default (interval 1 s, timeout =
//! interval, rise 1, fall 1, weight 0); a `track_script` naming no `vrrp_script` is an error
//! (keepalived only logs it and runs without the check, which is a silent change of failover).

use std::time::Duration;

use super::ctx::{split_command, Ctx};
use super::lexer::Stmt;
use super::{ScriptConfig, TrackScript};

/// Highest weight keepalived accepts (a weight moves the priority within 1..254).
const MAX_WEIGHT: i32 = 253;

/// A `vrrp_script` block; one without a `script` line (as when that line is conditional on
/// another config id) is left out with a warning and its name put in `empty`, as keepalived
/// does, so the `track_script` entries naming it can be dropped too.
pub(super) fn parse_script(
    ctx: &mut Ctx,
    s: &Stmt,
    empty: &mut Vec<String>,
) -> Option<ScriptConfig> {
    let name = match s.args.as_slice() {
        [n] => n.clone(),
        _ => {
            ctx.err(s.line, "expected 'vrrp_script NAME {'");
            return None;
        }
    };
    let mut c = ScriptConfig {
        name,
        line: s.line,
        argv: vec![],
        interval: Duration::from_secs(1),
        timeout: None,
        rise: 1,
        fall: 1,
        weight: 0,
        reverse: false,
        init_fail: false,
        user: None,
    };
    for k in s.block.iter().flatten() {
        script_kw(ctx, k, &mut c);
    }
    if c.argv.is_empty() {
        ctx.warn(
            s.line,
            format!("vrrp_script {}: no 'script' line, so the script and every track_script naming it are ignored (as keepalived does)", c.name),
        );
        empty.push(c.name);
        return None;
    }
    Some(c)
}

/// Drop the `track_script` entries naming a script in `empty`, each with a warning.
pub(super) fn drop_empty(
    ctx: &mut Ctx,
    owner: &str,
    tracked: &mut Vec<TrackScript>,
    empty: &[String],
) {
    tracked.retain(|t| {
        let keep = !empty.contains(&t.name);
        if !keep {
            ctx.warn(
                t.line,
                format!(
                    "{owner}: track_script '{}' ignored: its vrrp_script has no 'script'",
                    t.name
                ),
            );
        }
        keep
    });
}

/// One keyword of a `vrrp_script` block.
fn script_kw(ctx: &mut Ctx, k: &Stmt, c: &mut ScriptConfig) {
    match k.key.as_str() {
        "script" => c.argv = script_argv(ctx, k),
        "interval" => {
            if let Some(d) = positive_secs(ctx, k) {
                c.interval = d
            }
        }
        "timeout" => c.timeout = positive_secs(ctx, k),
        "rise" => c.rise = ctx.num(k, 1, 10_000).unwrap_or(c.rise),
        "fall" => c.fall = ctx.num(k, 1, 10_000).unwrap_or(c.fall),
        "weight" => {
            if let Some((w, r)) = weight_args(ctx, k, &k.args) {
                (c.weight, c.reverse) = (w, r)
            }
        }
        "user" => match k.args.as_slice() {
            [u] => c.user = Some((u.clone(), None)),
            [u, g] => c.user = Some((u.clone(), Some(g.clone()))),
            _ => ctx.err(k.line, "expected 'user USERNAME [GROUPNAME]'"),
        },
        "init_fail" => c.init_fail = true,
        _ => ctx.unknown(k, &format!("vrrp_script {}", c.name)),
    }
}

/// The command line: one (usually quoted) string split like keepalived, or several words.
fn script_argv(ctx: &mut Ctx, k: &Stmt) -> Vec<String> {
    let argv = split_command(&k.args.join(" "));
    match argv.first() {
        None => ctx.err(k.line, "'script' needs a command"),
        Some(a) if a.starts_with(['<', '>', '|', '(']) || a.contains(['$', '`']) => ctx.warn(
            k.line,
            format!("'script {a}' is shell syntax, but scripts run without a shell (as in keepalived): write \"bash -c '...'\""),
        ),
        Some(_) => {}
    }
    argv
}

/// Seconds > 0 (keepalived's interval and timeout; fractions allowed).
fn positive_secs(ctx: &mut Ctx, k: &Stmt) -> Option<Duration> {
    match ctx.secs(k, 86_400.0) {
        Some(d) if !d.is_zero() => Some(d),
        Some(_) => {
            ctx.err(k.line, format!("'{}' must be more than 0 seconds", k.key));
            None
        }
        None => None,
    }
}

/// `N [reverse]` after `weight`.
fn weight_args(ctx: &mut Ctx, k: &Stmt, args: &[String]) -> Option<(i32, bool)> {
    let (w, reverse) = match args {
        [w] => (w, false),
        [w, r] if r == "reverse" => (w, true),
        _ => {
            ctx.err(k.line, "expected 'weight N [reverse]'");
            return None;
        }
    };
    match w.parse::<i32>() {
        Ok(n) if (-MAX_WEIGHT..=MAX_WEIGHT).contains(&n) => Some((n, reverse)),
        _ => {
            ctx.err(
                k.line,
                format!("bad weight '{w}' (-{MAX_WEIGHT}..{MAX_WEIGHT})"),
            );
            None
        }
    }
}

/// `track_script { NAME [weight N [reverse]] ... }` in an instance or a sync group.
pub(super) fn parse_track_script(ctx: &mut Ctx, c: &Stmt) -> Vec<TrackScript> {
    let Some(b) = &c.block else {
        ctx.err(c.line, "'track_script' needs a { block }");
        return vec![];
    };
    let mut out = Vec::new();
    for s in b {
        let weight = match s.args.split_first() {
            None => None,
            Some((w, rest)) if w == "weight" => weight_args(ctx, s, rest),
            Some(_) => {
                ctx.err(s.line, "expected 'SCRIPT [weight N [reverse]]'");
                None
            }
        };
        out.push(TrackScript {
            name: s.key.clone(),
            line: s.line,
            weight,
        });
    }
    out
}

/// Every tracked script names a `vrrp_script`.
pub(super) fn check_tracked<'a>(
    ctx: &mut Ctx,
    scripts: &[ScriptConfig],
    tracked: impl Iterator<Item = (&'a str, &'a TrackScript)>,
) {
    for (owner, t) in tracked {
        if !scripts.iter().any(|s| s.name == t.name) {
            ctx.err(
                t.line,
                format!(
                    "{owner}: track_script '{}': no vrrp_script of that name",
                    t.name
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::p;
    use super::*;

    const INST: &str = "vrrp_instance a {\n interface e\n virtual_router_id 1\n track_script {\n chk\n chk2 weight -30\n chk3 weight 5 reverse\n }\n}\n";

    #[test]
    fn script_defaults_and_keywords() {
        let c = p(&format!("vrrp_script chk {{\n script \"/bin/check -x 'a b'\"\n}}\nvrrp_script chk2 {{\n script /bin/true\n interval 2\n timeout 0.5\n rise 3\n fall 2\n weight -10\n user nobody nogroup\n init_fail\n}}\nvrrp_script chk3 {{\n script /bin/false\n}}\n{INST}")).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let s = &c.scripts[0];
        assert_eq!(s.argv, vec!["/bin/check", "-x", "a b"]);
        assert_eq!(
            (s.interval, s.timeout, s.rise, s.fall),
            (Duration::from_secs(1), None, 1, 1)
        );
        assert_eq!(s.effective_timeout(), Duration::from_secs(1));
        let s = &c.scripts[1];
        assert_eq!(s.timeout, Some(Duration::from_millis(500)));
        assert_eq!((s.rise, s.fall, s.weight, s.init_fail), (3, 2, -10, true));
        assert_eq!(s.user, Some(("nobody".into(), Some("nogroup".into()))));
        let t = &c.instances[0].track_scripts;
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].weight, None);
        assert_eq!(t[1].weight, Some((-30, false)));
        assert_eq!(t[2].weight, Some((5, true)));
    }

    #[test]
    fn a_script_without_script_line_is_ignored_with_its_tracking() {
        // keepalived's conditional_conf sample: the only `script` line is for another id.
        let c = p(&format!("vrrp_script chk {{\n@other script /bin/true\n interval 2\n}}\nvrrp_script chk2 {{\n script /bin/true\n}}\nvrrp_script chk3 {{\n script /bin/true\n}}\n{INST}")).unwrap();
        assert_eq!(c.scripts.len(), 2);
        let t: Vec<&str> = c.instances[0]
            .track_scripts
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(t, ["chk2", "chk3"]);
        let w = super::super::test_util::msgs(&c.warnings).join("\n");
        assert!(w.contains("1: vrrp_script chk: no 'script' line"), "{w}");
        assert!(
            w.contains("15: vrrp_instance a: track_script 'chk' ignored"),
            "{w}"
        );
    }

    #[test]
    fn tracking_a_missing_script_is_an_error() {
        let e = p(INST).unwrap_err().to_string();
        assert!(
            e.contains("k.conf:5: error: vrrp_instance a: track_script 'chk': no vrrp_script"),
            "{e}"
        );
        let e = p("vrrp_script x {\n interval 0\n weight 300\n}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("k.conf:2: error: 'interval' must be more"),
            "{e}"
        );
        assert!(e.contains("k.conf:3: error: bad weight '300'"), "{e}");
    }

    #[test]
    fn shell_syntax_warns() {
        let c = p(&format!("vrrp_script chk {{\n script \"</dev/tcp/127.0.0.1/80\"\n}}\nvrrp_script chk2 {{\n script /bin/true\n}}\nvrrp_script chk3 {{\n script /bin/true\n}}\n{INST}")).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert_eq!(c.warnings[0].line, 2);
    }

    #[test]
    fn group_track_script() {
        let c = p("vrrp_script chk {\n script /bin/true\n}\nvrrp_sync_group g {\n group {\n a\n }\n track_script {\n chk weight 0\n }\n}\nvrrp_instance a {\n interface e\n virtual_router_id 1\n}\n").unwrap();
        assert_eq!(c.sync_groups[0].track_scripts[0].name, "chk");
        assert_eq!(c.sync_groups[0].track_scripts[0].weight, Some((0, false)));
    }
}
