//! [`SiteFacts`] from a labwall site file, through labwall's library: the same compiler the
//! router images are built with, so the lab is checked against what the routers will do.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use ramux_contract::Role;

use crate::site::{SiteDev, SiteFacts, VrrpInstance};

/// Compile `path` (as the MASTER: both roles' addresses are in its model) and read the facts.
/// Err: labwall's diagnostics, rendered.
pub fn site_facts(path: &Path) -> Result<SiteFacts, String> {
    let compiled = compile(path, Role::Master)?;
    Ok(facts_of(&compiled.site, file_name(path)))
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    )
}

/// Compile the site for one role. Err: labwall's diagnostics, rendered.
pub fn compile(path: &Path, role: Role) -> Result<labwall::Compiled, String> {
    let opts = labwall::Options {
        role: role.as_str().into(),
        // `hostname` backticks: a fixed name, so the facts never depend on the machine.
        defines: vec![("HOSTNAME".into(), "ramux-lab".into())],
        allow_exec: false,
        compat_vips_all: false,
        system_hostname: None,
        vrrp_daemon: Default::default(),
    };
    labwall::compile_path(path, &opts).map_err(|d| labwall::diag::render_all(&d))
}

/// Everything `vlaunch lab test` plans from: the facts, the VRRP instances, and the MASTER's
/// compiled site (model and nft IR) for [`crate::matrix`]'s simulator runs. A separate struct,
/// not more [`SiteFacts`] fields: the integration tests write every SiteFacts field by hand.
#[derive(Debug)]
pub struct SiteModel {
    pub facts: SiteFacts,
    pub vrrp: Vec<VrrpInstance>,
    /// As the MASTER (its initial state holds the VIPs, as in the lab before a fault).
    pub master: labwall::Compiled,
}

/// Compile `path` for both roles: facts and model from the MASTER, priorities from each role's
/// keepalived.conf (what the routers really run, so the theory cannot drift from the emitter).
pub fn site_model(path: &Path) -> Result<SiteModel, String> {
    let master = compile(path, Role::Master)?;
    let backup = compile(path, Role::Backup)?;
    let vrrp = vrrp_instances(
        &master.outputs.keepalived_conf,
        &backup.outputs.keepalived_conf,
    );
    Ok(SiteModel {
        facts: facts_of(&master.site, file_name(path)),
        vrrp,
        master,
    })
}

/// One `vrrp_instance` block of a keepalived.conf, as read.
#[derive(Debug, Default)]
struct KaInstance {
    name: String,
    vrid: u32,
    ifname: String,
    priority: u8,
    advert_ms: u32,
    preempt: bool,
    vips: Vec<Ipv4Addr>,
}

/// The instances of a keepalived.conf written by labwall (keepalived's defaults where a key is
/// absent: priority 100, advert 1 s, preempt on); the global `vrrp_version` (default 2).
fn read_keepalived(text: &str) -> (u8, Vec<KaInstance>) {
    let mut version = 2;
    let mut out: Vec<KaInstance> = Vec::new();
    for line in text.lines().map(str::trim) {
        let mut w = line.split_whitespace();
        let (Some(k), v) = (w.next(), w.next()) else {
            continue;
        };
        let num = |v: Option<&str>| v.and_then(|x| x.parse::<f64>().ok());
        if k == "vrrp_version" {
            version = num(v).map_or(2, |x| x as u8);
        } else if k == "vrrp_instance" {
            out.push(KaInstance {
                name: v.unwrap_or_default().to_string(),
                priority: 100,
                advert_ms: 1000,
                preempt: true,
                ..KaInstance::default()
            });
        } else if let Some(i) = out.last_mut() {
            ka_key(i, k, v, num(v));
        }
    }
    (version, out)
}

fn ka_key(i: &mut KaInstance, k: &str, v: Option<&str>, n: Option<f64>) {
    match (k, n) {
        ("virtual_router_id", Some(x)) => i.vrid = x as u32,
        ("priority", Some(x)) => i.priority = x as u8,
        ("advert_int", Some(x)) => i.advert_ms = (x * 1000.0).round() as u32,
        ("interface", _) => i.ifname = v.unwrap_or_default().to_string(),
        ("nopreempt", _) => i.preempt = false,
        _ => {
            let vip = k.split('/').next().and_then(|a| a.parse::<Ipv4Addr>().ok());
            i.vips
                .extend(vip.filter(|_| v == Some("brd") || v.is_none()));
        }
    }
}

/// Pair the MASTER's and the BACKUP's instances by VRID.
fn vrrp_instances(master: &str, backup: &str) -> Vec<VrrpInstance> {
    let (version, m) = read_keepalived(master);
    let (_, b) = read_keepalived(backup);
    m.into_iter()
        .map(|i| {
            let mut priority = BTreeMap::from([(Role::Master, i.priority)]);
            if let Some(bi) = b.iter().find(|x| x.vrid == i.vrid) {
                priority.insert(Role::Backup, bi.priority);
            }
            VrrpInstance {
                name: i.name,
                vrid: i.vrid,
                ifname: i.ifname,
                version,
                advert_ms: i.advert_ms,
                priority,
                preempt: i.preempt,
                vips: i.vips,
            }
        })
        .collect()
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
