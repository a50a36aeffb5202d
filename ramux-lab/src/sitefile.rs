//! [`SiteFacts`] from a labwall site file, through labwall's library: the same compiler the
//! router images are built with, so the lab is checked against what the routers will do.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use ramux_contract::Role;

use crate::site::{SiteDev, SiteFacts};

/// Compile `path` (as the MASTER: both roles' addresses are in its model) and read the facts.
/// Err: labwall's diagnostics, rendered.
pub fn site_facts(path: &Path) -> Result<SiteFacts, String> {
    let opts = labwall::Options {
        role: Role::Master.as_str().into(),
        // `hostname` backticks: a fixed name, so the facts never depend on the machine.
        defines: vec![("HOSTNAME".into(), "ramux-lab".into())],
        allow_exec: false,
        compat_vips_all: false,
        system_hostname: None,
    };
    let compiled = labwall::compile_path(path, &opts).map_err(|d| labwall::diag::render_all(&d))?;
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    Ok(facts_of(&compiled.site, file))
}

fn v4(a: IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

/// NETINIT's first device is the uplink (EXTERNALDEV), its second the internal one.
fn facts_of(site: &labwall::model::Site, file: String) -> SiteFacts {
    let external = site.netinit.first().map(|d| SiteDev::new(d));
    let internal = site.netinit.get(1).map(|d| SiteDev::new(d));
    let mut f = SiteFacts {
        file,
        external_dev: external,
        internal_dev: internal.clone(),
        ..SiteFacts::default()
    };
    for i in &site.ifaces {
        let on_internal = internal.as_ref().is_some_and(|d| d.name == i.dev);
        if let Some(vid) = i.vid {
            if on_internal {
                f.vlans.insert(vid);
            }
            f.vips.extend(i.vip4.map(|a| (vid, a)));
            f.vlan_networks
                .extend(v4(i.net4.addr).map(|a| (vid, (a, i.net4.len))));
        } else if i.uplink {
            f.uplink_vip = f.uplink_vip.or(i.vip4);
        }
        for (role, a) in [(Role::Master, i.master4), (Role::Backup, i.backup4)] {
            f.role_addresses.entry(role).or_default().extend(a);
        }
    }
    f.hosts = hosts(site);
    f
}

/// The aliases that are hosts: every address a single one (HOST lines; NET lines are prefixes).
fn hosts(site: &labwall::model::Site) -> BTreeMap<String, Vec<Ipv4Addr>> {
    site.aliases
        .iter()
        .filter(|a| a.nets.iter().all(|n| n.is_host()))
        .map(|a| {
            (
                a.name.clone(),
                a.nets.iter().filter_map(|n| v4(n.addr)).collect(),
            )
        })
        .collect()
}
