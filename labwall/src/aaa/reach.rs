//! A cross-role check the compiler can make only once the routers' ruleset exists: every NAS
//! (a switch, a VPN server) must reach every RADIUS server (the SERVERS) on udp/1812 through the
//! routers, or its users are refused on a site that looks right in each role alone. It asks the
//! same offline simulator `labwall explain` uses, so the verdict is the ruleset's own.

use crate::diag::{Diagnostic, Loc};
use crate::explain::{explain, Packet, Proto};
use crate::line::Line;
use crate::model::{Iface, Site};
use crate::nft::Ruleset;
use std::net::IpAddr;

const RADIUS_AUTH: u16 = 1812;

/// One warning per NAS and server the ruleset keeps apart (NAS and server on the same network
/// talk without the routers and are not checked).
pub fn nas_to_radius(site: &Site, rs: &Ruleset, lines: &[Line]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for nas in &site.services.nas {
        let Some(from) = iface_of(site, nas.addr) else {
            continue;
        };
        for s in &site.services.servers {
            let to = iface_of(site, IpAddr::V4(s.addr));
            if to.is_none_or(|t| t.name == from.name) {
                continue;
            }
            let p = Packet {
                src: nas.addr,
                dst: IpAddr::V4(s.addr),
                proto: Proto::Udp,
                dport: Some(RADIUS_AUTH),
                iif: Some(from.ifname.clone()),
            };
            let Ok(e) = explain(site, rs, &p) else {
                continue;
            };
            if e.verdict == "ACCEPT" {
                continue;
            }
            let why = e.decision.as_ref().map_or_else(
                || format!("the default policy of the {} chain", e.path),
                |d| format!("{} (line {})", d.why, d.line),
            );
            let msg = format!(
                "NAS {} ({}) cannot reach RADIUS on {} ({}, udp/{RADIUS_AUTH}): the routers' ruleset says {} by {why}",
                nas.name, nas.addr, s.name, s.addr, e.verdict
            );
            let zone = to.map_or("srv", |t| t.zone.as_str());
            let fix = format!(
                "allow it, e.g. ALLOW {}:{} {zone}:{} radius",
                from.zone, nas.addr, s.name
            );
            out.push(Diagnostic::warning(nas_loc(lines, &nas.name, nas.line), msg).fix(fix));
        }
    }
    out
}

fn iface_of(site: &Site, a: IpAddr) -> Option<&Iface> {
    site.ifaces.iter().find(|i| i.net4.contains(a))
}

/// Where the NAS line is (it may sit in an INCLUDEd file).
fn nas_loc(lines: &[Line], name: &str, line: u32) -> Loc {
    stmt_loc(lines, "NAS", Some(name), line)
}

/// Where statement `keyword` [`name`] on `line` is (it may sit in an INCLUDEd file).
pub(crate) fn stmt_loc(lines: &[Line], keyword: &str, name: Option<&str>, line: u32) -> Loc {
    lines
        .iter()
        .find(|l| {
            l.loc.line == line
                && l.toks.first().is_some_and(|t| t.text == keyword)
                && name.is_none_or(|n| l.toks.get(1).is_some_and(|t| t.text == n))
        })
        .map_or(
            Loc {
                file: "site.lw".into(),
                line,
                col: 1,
            },
            |l| l.loc.clone(),
        )
}

#[cfg(test)]
mod tests {
    use crate::parse::FsLoader;
    use std::path::Path;

    fn warnings(text: &str, path: &Path) -> Vec<String> {
        let opts = crate::Options {
            role: "MASTER".into(),
            defines: vec![("HOSTNAME".into(), "t".into())],
            allow_exec: false,
            compat_vips_all: false,
            system_hostname: None,
            vrrp_daemon: Default::default(),
        };
        let c = crate::compile_source(&FsLoader, path, text, &opts).expect("compiles");
        c.warnings
            .iter()
            .filter(|w| w.message.contains("cannot reach RADIUS"))
            .map(|w| format!("{}: {}", w.loc.line, w.message))
            .collect()
    }

    #[test]
    fn a_nas_the_firewall_keeps_from_radius_is_named() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/router/site.lw");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(warnings(&text, &path), Vec::<String>::new());
        let cut = text.replace("ALLOW users:nas   srv:dns2    radius\n", "");
        let w = warnings(&cut, &path);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("NAS sw1 (172.16.20.241) cannot reach RADIUS on dns2 (172.16.10.14, udp/1812): the routers' ruleset says DROP by NOROUTE"),
            "{w:?}"
        );
    }
}
