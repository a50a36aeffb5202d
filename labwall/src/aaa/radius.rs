//! FreeRADIUS 3.2 configuration for the dns appliances, generated from the site's [`Services`]:
//! one virtual server for MAB, PEAP-MSCHAPv2, EAP-TLS and the VPN servers' authorisations
//! (docs/radius.md). No secret is ever in the output: FreeRADIUS cannot read a client secret
//! from a file, so `ramux-radius-start` (overlays/dns) renders the secrets at boot into the run
//! directory that the generated files `$INCLUDE` or name; the list of what it needs is the
//! generated `ramux/start` file.

mod text;

use super::{secrets, IdentityKind, MacAddr, Services};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Where the boot script renders the secrets for FreeRADIUS (owned by `freerad`: the daemon
/// drops root before it opens the certificates, so it cannot read `/run/ramux/secrets`).
pub const RUN_DIR: &str = "/run/freeradius/ramux";

/// What the generator needs beyond the services.
#[derive(Debug, Clone)]
pub struct Options {
    /// The site secrets directory on the appliance (read by the start script only).
    pub secrets_dir: String,
    /// Where the start script renders them and FreeRADIUS reads them.
    pub run_dir: String,
    /// Per VLAN, its prefix length: the VPN replies' `Framed-IP-Netmask` (omitted if unknown).
    pub vlan_prefix: BTreeMap<u16, u8>,
}

/// The files to write under `/etc/freeradius/3.0` (path relative to it, content), replacing
/// the stock `sites-enabled/default`, `sites-enabled/inner-tunnel`, `mods-enabled/eap` and
/// `clients.conf`.
pub fn freeradius_files(s: &Services, secrets_dir: &str) -> Result<Vec<(String, String)>, String> {
    let o = Options {
        secrets_dir: secrets_dir.to_string(),
        run_dir: RUN_DIR.to_string(),
        vlan_prefix: BTreeMap::new(),
    };
    freeradius_files_with(s, &o)
}

/// [`freeradius_files`] with every path and the VLAN netmasks given.
pub fn freeradius_files_with(s: &Services, o: &Options) -> Result<Vec<(String, String)>, String> {
    check(s, o)?;
    let run = &o.run_dir;
    Ok(vec![
        ("sites-enabled/default".into(), text::SERVER.to_string()),
        ("sites-enabled/inner-tunnel".into(), text::INNER.to_string()),
        ("mods-enabled/eap".into(), text::EAP.replace("@RUN@", run)),
        (
            "mods-enabled/ramux".into(),
            text::FILES.replace("@RUN@", run),
        ),
        ("clients.conf".into(), clients(s, run)),
        ("mods-config/files/ramux_macs".into(), macs(s)),
        ("mods-config/files/ramux_vpn_users".into(), vpn_users(s, o)),
        (
            "mods-config/files/ramux_dot1x_users".into(),
            identities(s, IdentityKind::User),
        ),
        (
            "mods-config/files/ramux_dot1x_certs".into(),
            identities(s, IdentityKind::CertCn),
        ),
        ("ramux/start".into(), start_list(s, o)),
    ])
}

/// Names that end up in configuration syntax or paths: no quoting games, no `..`.
fn check(s: &Services, o: &Options) -> Result<(), String> {
    for p in [&o.secrets_dir, &o.run_dir] {
        if !p.starts_with('/')
            || !p
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '\'' && c != '"')
        {
            return Err(format!(
                "radius: {p:?} is not an absolute path without quotes or spaces"
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for n in &s.nas {
        word(&n.name, "NAS name", n.line)?;
        word(&n.secret, "secret name", n.line)?;
        if !seen.insert(&n.name) {
            return Err(format!("line {}: NAS {} defined twice", n.line, n.name));
        }
    }
    let names = s.dot1x.iter().map(|i| (&i.name, i.line));
    for (name, line) in names.chain(s.vpn_users.iter().map(|u| (&u.cn, u.line))) {
        word(name, "identity", line)?;
    }
    unique(
        s.dot1x.iter().map(|i| (i.name.clone(), i.line)),
        "802.1X identity",
    )?;
    unique(
        s.vpn_users.iter().map(|u| (u.cn.clone(), u.line)),
        "VPN user",
    )?;
    unique(s.mab.iter().map(|m| (mac(&m.mac), m.line)), "MAB MAC")
}

/// Letters, digits and `._@-`, not starting with a dot: safe in a users file, a client
/// block name and a file name.
fn word(w: &str, what: &str, line: u32) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "._@-".contains(c);
    if w.is_empty() || w.starts_with('.') || !w.chars().all(ok) {
        return Err(format!(
            "line {line}: {what} {w:?}: only letters, digits and ._@- (no leading dot)"
        ));
    }
    Ok(())
}

fn unique(items: impl Iterator<Item = (String, u32)>, what: &str) -> Result<(), String> {
    let mut seen = BTreeMap::new();
    for (k, line) in items {
        if let Some(first) = seen.insert(k.clone(), line) {
            return Err(format!(
                "line {line}: {what} {k} already given on line {first}"
            ));
        }
    }
    Ok(())
}

/// `AA-BB-CC-DD-EE-FF`: what `rewrite_calling_station_id` makes of any MAC notation.
fn mac(m: &MacAddr) -> String {
    m.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join("-")
}

/// One client per NAS; its secret is the start script's rendering of `radius/nas/<secret>`.
/// `ramux_role` tells the virtual server what the NAS may ask (`%{client:ramux_role}`).
fn clients(s: &Services, run: &str) -> String {
    let mut t = String::from(text::GENERATED);
    t.push_str("# One client per NAS. The secret is rendered at boot by ramux-radius-start.\n");
    for n in &s.nas {
        let (key, role) = match (n.addr.is_ipv4(), n.vpn) {
            (true, v) => ("ipaddr", if v { "vpn" } else { "port" }),
            (false, v) => ("ipv6addr", if v { "vpn" } else { "port" }),
        };
        let _ = write!(
            t,
            "\n# line {line}\nclient {name} {{\n\t{key} = {addr}\n\tshortname = {name}\n\t\
             $INCLUDE {run}/nas/{secret}.conf\n\trequire_message_authenticator = yes\n\t\
             nas_type = other\n\tramux_role = {role}\n}}\n",
            line = n.line,
            name = n.name,
            addr = n.addr,
            secret = n.secret,
        );
    }
    t
}

/// RFC 3580 reply items for a VLAN.
fn vlan_reply(vlan: u16) -> String {
    format!(
        "\tTunnel-Type = VLAN,\n\tTunnel-Medium-Type = IEEE-802,\n\tTunnel-Private-Group-Id = \"{vlan}\"\n"
    )
}

fn macs(s: &Services) -> String {
    let mut t = format!(
        "{}# MAB: Calling-Station-Id (AA-BB-CC-DD-EE-FF) -> VLAN.\n",
        text::GENERATED
    );
    for m in &s.mab {
        let _ = write!(
            t,
            "\n# line {}\n{}\n{}",
            m.line,
            mac(&m.mac),
            vlan_reply(m.vlan)
        );
    }
    t
}

fn vpn_users(s: &Services, o: &Options) -> String {
    let mut t = format!(
        "{}# VPN authorisation: certificate CN -> address and VLAN.\n",
        text::GENERATED
    );
    for u in &s.vpn_users {
        let _ = write!(
            t,
            "\n# line {}\n\"{}\"\n\tFramed-IP-Address = {},\n",
            u.line, u.cn, u.addr
        );
        if let Some(&p) = o.vlan_prefix.get(&u.vlan) {
            let mask =
                std::net::Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0));
            let _ = writeln!(t, "\tFramed-IP-Netmask = {mask},");
        }
        t.push_str(&vlan_reply(u.vlan));
    }
    t
}

/// PEAP users (inner identity) or EAP-TLS certificate CNs -> VLAN. Two files, so that a
/// password user's name is never accepted as a certificate identity, nor the reverse.
fn identities(s: &Services, kind: IdentityKind) -> String {
    let what = match kind {
        IdentityKind::User => "PEAP-MSCHAPv2 user (inner identity)",
        IdentityKind::CertCn => "EAP-TLS certificate CN (checked by check_cert_cn)",
    };
    let mut t = format!("{}# 802.1X: {what} -> VLAN.\n", text::GENERATED);
    for i in s.dot1x.iter().filter(|i| i.kind == kind) {
        let _ = write!(
            t,
            "\n# line {}\n\"{}\"\n{}",
            i.line,
            i.name,
            vlan_reply(i.vlan)
        );
    }
    t
}

/// What `ramux-radius-start` reads: where the secrets are, where to render them, and each
/// secret file this configuration needs (so a missing one stops the start, named).
fn start_list(s: &Services, o: &Options) -> String {
    let mut t =
        String::from("# Read by ramux-radius-start, not by FreeRADIUS. Generated by labwall.\n");
    let _ = writeln!(t, "secrets_dir {}\nrun_dir {}", o.secrets_dir, o.run_dir);
    let names: BTreeSet<&str> = s.nas.iter().map(|n| n.secret.as_str()).collect();
    for n in names {
        let _ = writeln!(t, "nas {}/{n}", secrets::NAS_DIR);
    }
    if s.dot1x.iter().any(|i| i.kind == IdentityKind::User) {
        let _ = writeln!(t, "nt {}", secrets::DOT1X_NT);
    }
    for p in [secrets::RADIUS_CERT, secrets::RADIUS_KEY, secrets::CA_CERT] {
        let _ = writeln!(t, "pki {p}");
    }
    t
}
