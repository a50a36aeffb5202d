//! A cross-role check: a DNAT to a VPN server's inside address is dead. The vpn role's users
//! come through the relay on the server's own outside address, port 443, and the appliance's
//! ruleset accepts nothing else on its VLAN legs (docs/vpn.md), so such a DNAT only opens a
//! hole in the routers for packets the server drops (the 2009 site's UDP OpenVPN forwarding).

use super::RELAY_PORT;
use crate::aaa::reach::stmt_loc;
use crate::diag::Diagnostic;
use crate::line::Line;
use crate::model::Site;

/// One warning per DNAT whose target is a VPNSERVER's leg.
pub fn dnat_to_vpn_server(site: &Site, lines: &[Line]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for d in &site.dnats {
        let Some(s) = site
            .vpn
            .servers
            .iter()
            .find(|s| s.legs.iter().any(|l| l.addr == d.to))
        else {
            continue;
        };
        let msg = format!(
            "NAT DNAT to {} ({}): {} is a VPN server; its users come through its relay on {}:{RELAY_PORT} \
             and its ruleset drops everything else on its VLAN legs, so this DNAT forwards into a drop",
            s.name, d.to, s.name, s.outside
        );
        let fix = format!(
            "remove the DNAT (and the ALLOW to {} it needs); give the users the profile of \
             `vbuild vpn-client`, which dials the relay",
            s.name
        );
        out.push(Diagnostic::warning(stmt_loc(lines, "NAT", None, d.line), msg).fix(fix));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::parse::FsLoader;
    use std::path::Path;

    #[test]
    fn a_dnat_to_a_vpn_server_is_named() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/router/site.lw");
        let text = std::fs::read_to_string(&path).unwrap();
        let opts = crate::Options {
            role: "MASTER".into(),
            defines: vec![("HOSTNAME".into(), "t".into())],
            ..Default::default()
        };
        let warn = |t: &str| -> Vec<String> {
            let c = crate::compile_source(&FsLoader, &path, t, &opts).expect("compiles");
            c.warnings
                .iter()
                .filter(|w| w.message.contains("is a VPN server"))
                .map(|w| format!("{}: {}", w.loc.line, w.message))
                .collect()
        };
        assert_eq!(warn(&text), Vec::<String>::new(), "the seed site has none");
        let dead = text.replace(
            "NAT DNAT INTER:VIP https   TO web1",
            "NAT DNAT INTER:VIP https   TO web1\nNAT DNAT INTER:VIP openvpn TO vpn1",
        );
        let w = warn(&dead);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("NAT DNAT to vpn1 (172.16.10.20): vpn1 is a VPN server; its users come through its relay on 10.1.1.20:443"), "{w:?}");
    }
}
