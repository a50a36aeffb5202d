//! The vpn role: the multi-VLAN OpenVPN appliances (`vpn1`, `vpn2`, active/active) compiled
//! from the same site file. The statements `VPN` and `VPNSERVER` (with the dns role's
//! `VPNUSER` and `NAS ... VPN` lines) become a [`VpnSite`] in the checked model; the generators
//! here only read it and write one appliance's files ([`vpn_files`], docs/vpn.md):
//!
//! - per served VLAN an OpenVPN 2.6 server on 127.0.0.1:1100+VID, routed `dev tun<VID>`, its
//!   management socket answered by `ramux-vpn-auth` (which pushes the user's address);
//! - tinyproxy on the outside address, port 443, relaying CONNECT to the server's own public
//!   name and daemon ports only (the host filter: `ConnectPort` alone filters ports, not hosts);
//! - the trunk's VLAN legs with proxy ARP, a routing table per VLAN, sysctl, the nftables
//!   ruleset and `/etc/ramux/vpn-auth.toml`.

mod auth;
mod netcfg;
mod nft;
mod openvpn;
pub mod reach;
mod relay;

pub use auth::vpn_auth;
pub use netcfg::{hosts, network_ip, sysctl_conf};
pub use nft::ruleset;
pub use openvpn::server_conf;
pub use relay::{tinyproxy_conf, tinyproxy_filter};

use crate::model::{Iface, Site};
use std::net::Ipv4Addr;

/// The trunk NIC carrying the served VLANs (tagged, `eth0.<vid>` legs).
pub const TRUNK: &str = "eth0";
/// The outside NIC (untagged): the relay's address and the default route.
pub const OUTSIDE: &str = "eth1";
/// The relay's port (HTTP CONNECT, what users' clients dial).
pub const RELAY_PORT: u16 = 443;
/// Routing table of VLAN `vid` is `TABLE_BASE + vid` (clear of 253-255, the kernel's own).
pub const TABLE_BASE: u32 = 1000;
/// tinyproxy's user (Debian package tinyproxy); nftables matches its sockets by it.
pub const RELAY_USER: &str = "tinyproxy";
/// Where the secrets are on a running appliance (tmpfs, 0600).
pub const SECRETS: &str = crate::aaa::secrets::RUN_DIR;
/// The site-wide tls-crypt key (OpenVPN static key format), in the secrets directory.
pub const TLS_CRYPT_KEY: &str = "vpn/tls-crypt.key";
/// The generated files' directory on the appliance.
pub const ETC: &str = "/etc/ramux";

/// The vpn role's part of the checked site.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VpnSite {
    /// The VLANs every VPN appliance serves (the `VPN` line), in its order.
    pub vlans: Vec<VpnVlan>,
    /// The appliances (`VPNSERVER` lines), in file order.
    pub servers: Vec<VpnServer>,
}

/// One served VLAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnVlan {
    pub vlan: u16,
    /// `PEERS`: its VPN users may reach each other (else the appliance drops tun -> tun).
    pub peers: bool,
    pub line: u32,
}

/// One VPN appliance (an instance of the `vpn` profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnServer {
    /// Its HOST alias: the instance and image name (`vpn1`).
    pub name: String,
    /// The name users' clients dial (the relay's allow-list holds it).
    pub public_name: String,
    /// The relay's address on the outside NIC, and its prefix length.
    pub outside: Ipv4Addr,
    pub outside_len: u8,
    pub gw: Option<Ipv4Addr>,
    /// Its address in each served VLAN, in the VPN line's order.
    pub legs: Vec<Leg>,
    /// Its NAS line's secret name (`radius/nas/<secret>`).
    pub nas_secret: String,
    pub line: u32,
}

/// The appliance's address in one served VLAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leg {
    pub vlan: u16,
    pub addr: Ipv4Addr,
}

/// VPN user `cn` of `site`, for a client's profile: an error names the site and the users it
/// has, or says it has no VPNSERVER to connect to.
pub fn vpn_user<'a>(site: &'a Site, cn: &str) -> Result<&'a crate::aaa::VpnUser, String> {
    let users = &site.services.vpn_users;
    let u = users.iter().find(|u| u.cn == cn).ok_or_else(|| {
        let cns: Vec<&str> = users.iter().map(|u| u.cn.as_str()).collect();
        format!(
            "{}: no VPNUSER {cn} (the site has: {})",
            site.file,
            cns.join(" ")
        )
    })?;
    if site.vpn.servers.is_empty() {
        return Err(format!(
            "{}: no VPNSERVER line: there is no server to connect to",
            site.file
        ));
    }
    Ok(u)
}

/// The OpenVPN server port of VLAN `vid` (the 2009 convention: 1100 + VLAN id).
pub fn port(vid: u16) -> u32 {
    1100 + u32::from(vid)
}

/// The leg interface of VLAN `vid` on the trunk.
pub fn leg_if(vid: u16) -> String {
    format!("{TRUNK}.{vid}")
}

/// The management socket of VLAN `vid`'s server (answered by ramux-vpn-auth).
pub fn mgmt_socket(vid: u16) -> String {
    format!("{}/vlan{vid}.sock", ramux_contract::vpn::MGMT_DIR)
}

impl VpnSite {
    /// The server named `instance`, or an error naming the VPNSERVER lines.
    pub fn server(&self, file: &str, instance: &str) -> Result<&VpnServer, String> {
        if let Some(s) = self.servers.iter().find(|s| s.name == instance) {
            return Ok(s);
        }
        let Some(first) = self.servers.first() else {
            return Err(format!("{file}: no VPNSERVER line, so no instance {instance} (add `VPNSERVER {instance} <public name> <outside>/<len>`)"));
        };
        let names: Vec<&str> = self.servers.iter().map(|s| s.name.as_str()).collect();
        Err(format!(
            "{file}:{}: instance {instance} is not a VPNSERVER (the site has {}): pass one of them to --instance",
            first.line,
            names.join(" ")
        ))
    }
}

/// The site interface of VLAN `vid` (always there: the analysis checked it).
pub(crate) fn vlan_iface(site: &Site, vid: u16) -> Option<&Iface> {
    site.ifaces.iter().find(|i| i.vid == Some(vid))
}

/// The router of a VLAN for its VPN users: the DHCP line's ROUTER, else the VIP, else the
/// routers' address (what its DHCP clients get).
pub(crate) fn vlan_router(site: &Site, i: &Iface) -> Option<Ipv4Addr> {
    let dhcp = site.services.dhcp.iter().find(|d| Some(d.vlan) == i.vid);
    dhcp.and_then(|d| d.router).or(i.vip4).or(i.master4)
}

/// Every file of appliance `instance`, as (path relative to the output directory, content);
/// the same names under `/etc/ramux` in the image, `hosts` at `/etc/hosts`.
pub fn vpn_files(site: &Site, instance: &str) -> Result<Vec<(String, String)>, String> {
    let me = site.vpn.server(&site.file, instance)?;
    let mut out = Vec::new();
    for v in &site.vpn.vlans {
        out.push((
            format!("openvpn/vlan{}.conf", v.vlan),
            server_conf(site, me, v)?,
        ));
    }
    out.push(("tinyproxy.conf".into(), tinyproxy_conf(site, me)));
    out.push(("tinyproxy.filter".into(), tinyproxy_filter(me)));
    out.push(("network.ip".into(), network_ip(site, me)?));
    out.push(("sysctl.conf".into(), sysctl_conf(site, me)));
    out.push(("ruleset.nft".into(), ruleset(site, me)));
    out.push(("vpn-auth.toml".into(), vpn_auth(site, me)?));
    out.push(("hosts".into(), hosts(me)));
    Ok(out)
}
