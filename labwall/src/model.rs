//! The checked site model: what [`analyse`] makes of the statements for one role, and what the
//! generators (`emit`, `nft`) and `explain` read. Everything but `role`/`hostname` is the same
//! for both roles.

mod analyse;
mod services;

pub use analyse::analyse;
pub use services::{builtin_service, l4_of};

use crate::net::Net;
use crate::parse::{PolicyAction, Rate, RuleAction};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Clone, Debug, Serialize)]
pub struct V6Addr {
    pub prefix: Net,
    pub master: IpAddr,
    pub backup: IpAddr,
    pub vip: Option<IpAddr>,
    pub gw: Option<Ipv6Addr>,
    pub line: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Iface {
    /// DEV/VLAN name (`INTER`, `VLAN10`).
    pub name: String,
    /// Linux interface name (`eth1`, `vlan10`).
    pub ifname: String,
    /// Physical device (the VLAN's parent, or the DEV's device).
    pub dev: String,
    pub vid: Option<u16>,
    pub line: u32,
    pub net4: Net,
    pub gw4: Option<Ipv4Addr>,
    /// Real address by role; None when the line gives no address.
    pub master4: Option<Ipv4Addr>,
    pub backup4: Option<Ipv4Addr>,
    pub vip4: Option<Ipv4Addr>,
    pub vrid: Option<u32>,
    pub star: bool,
    pub bcast: Ipv4Addr,
    pub v6: Vec<V6Addr>,
    pub zone: String,
    pub uplink: bool,
}

impl Iface {
    pub fn nets(&self) -> Vec<Net> {
        let mut v = vec![self.net4.trunc()];
        v.extend(self.v6.iter().map(|a| a.prefix.trunc()));
        v
    }
    pub fn addr4(&self, master: bool) -> Option<Ipv4Addr> {
        if master {
            self.master4
        } else {
            self.backup4
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Zone {
    pub name: String,
    pub ifaces: Vec<String>,
    pub line: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Alias {
    pub name: String,
    pub nets: Vec<Net>,
    pub line: u32,
}

/// One protocol match of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub enum L4 {
    /// tcp and/or udp to port ranges
    Ports {
        tcp: bool,
        udp: bool,
        ports: Vec<(u16, u16)>,
    },
    Proto(u8),
    /// ICMP echo-request (v4) or ICMPv6 echo-request (v6)
    Echo {
        v6: bool,
    },
}

/// Address restriction of one side of a rule.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AddrSel {
    /// Named set base (`dns1` -> sets `dns1_v4`/`dns1_v6`), None for a literal.
    pub set: Option<String>,
    pub nets: Vec<Net>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rule {
    pub line: u32,
    pub action: RuleAction,
    pub src_zone: String,
    pub dst_zone: String,
    pub src: Option<AddrSel>,
    pub dst: Option<AddrSel>,
    pub l4: Vec<L4>,
    pub log: bool,
    pub limit: Option<Rate>,
    /// Accept only DNATed connections (`ct status dnat`), generated from NAT DNAT.
    pub dnat_only: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Policy {
    pub src: String,
    pub dst: String,
    pub action: PolicyAction,
    pub log: bool,
    pub line: u32,
    /// false for the built-in defaults used when the file has no POLICY.
    pub explicit: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Noroute {
    pub zones: Vec<String>,
    pub line: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Snat {
    pub ifname: String,
    /// None = masquerade
    pub to: Option<Ipv4Addr>,
    pub line: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Dnat {
    pub ifname: String,
    pub on: Ipv4Addr,
    pub l4: Vec<L4>,
    pub to: Ipv4Addr,
    pub port: Option<u16>,
    pub line: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct VrrpAuth {
    pub kind: String,
    pub secret: String,
    pub router_id: String,
    pub smtp: Option<IpAddr>,
    pub email: Option<String>,
    pub advert: u32,
    pub line: u32,
}

/// `VRRP CHECK`: a keepalived `vrrp_script` that every instance tracks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VrrpCheck {
    pub name: String,
    /// Program (absolute path) and arguments, run without a shell.
    pub command: Vec<String>,
    pub interval: u32,
    /// keepalived's default when None: the interval.
    pub timeout: Option<u32>,
    pub fall: u32,
    pub rise: u32,
    /// None: a failing check faults the instance (and its sync group), keepalived's weight 0.
    pub weight: Option<i32>,
    pub line: u32,
}

impl VrrpCheck {
    /// keepalived's defaults: every second, one failure, one success, fault on failure.
    pub fn new(name: &str, line: u32) -> VrrpCheck {
        VrrpCheck {
            name: name.to_string(),
            command: Vec::new(),
            interval: 1,
            timeout: None,
            fall: 1,
            rise: 1,
            weight: None,
            line,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Instance {
    pub name: String,
    pub vrid: u32,
    pub ifname: String,
    pub line: u32,
    /// (vip, prefix len, broadcast, ifname)
    pub vips4: Vec<(Ipv4Addr, u8, Ipv4Addr, String)>,
    /// (vip, prefix len, ifname)
    pub vips6: Vec<(IpAddr, u8, String)>,
    /// Real addresses of both routers on the advert interface (for the VRRP accept rule).
    pub peers: Vec<Ipv4Addr>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LogCfg {
    pub prefix: String,
    pub level: String,
    pub rate: Rate,
    pub nflog: Option<u16>,
    pub line: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Sync {
    pub ifname: String,
    pub master: IpAddr,
    pub backup: IpAddr,
    pub line: u32,
}

/// The checked site. Everything but `role`/`hostname` is identical for both roles.
#[derive(Clone, Debug, Serialize)]
pub struct Site {
    pub file: String,
    pub role: String,
    pub hostname: Option<String>,
    pub netinit: Vec<String>,
    pub netinit_line: u32,
    pub ifaces: Vec<Iface>,
    pub zones: Vec<Zone>,
    pub aliases: Vec<Alias>,
    pub rules: Vec<Rule>,
    pub policies: Vec<Policy>,
    pub noroutes: Vec<Noroute>,
    pub snats: Vec<Snat>,
    pub dnats: Vec<Dnat>,
    pub antispoof: String,
    pub antispoof_line: u32,
    pub log: LogCfg,
    pub counters: bool,
    pub auth: Option<VrrpAuth>,
    pub group: Option<String>,
    /// `VRRP CHECK` lines, in file order.
    pub checks: Vec<VrrpCheck>,
    /// `VRRP VMAC`: every instance uses keepalived's `use_vmac` (macvlan `vrrp.<VRID>`).
    pub vmac: bool,
    pub instances: Vec<Instance>,
    pub sync: Option<Sync>,
    /// The dns role's services (DOMAIN, SERVERS, DHCP, HOST ... MAC, NAS, MAB, DOT1X, VPNUSER);
    /// not in the JSON model dump.
    #[serde(skip)]
    pub services: crate::aaa::Services,
    /// The vpn role (VPN, VPNSERVER); not in the JSON model dump.
    #[serde(skip)]
    pub vpn: crate::vpn::VpnSite,
}

impl Site {
    pub fn is_master(&self) -> bool {
        self.role == "MASTER"
    }
    pub fn zone_of_iface(&self, ifname: &str) -> Option<&str> {
        self.ifaces
            .iter()
            .find(|i| i.ifname == ifname)
            .map(|i| i.zone.as_str())
    }
    pub fn zone(&self, name: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.name == name)
    }
    /// Most specific policy for a pair: (s,d) > (s,all) > (all,d) > (all,all).
    pub fn resolve_policy(&self, s: &str, d: &str) -> Option<&Policy> {
        most_specific_policy(&self.policies, s, d)
    }
    pub fn noroute_for(&self, s: &str, d: &str) -> Option<&Noroute> {
        if s == d {
            return None;
        }
        self.noroutes
            .iter()
            .find(|n| n.zones.iter().any(|z| z == s) && n.zones.iter().any(|z| z == d))
    }
    /// Every address of both routers (real addresses of both roles and VIPs).
    pub fn router_addrs(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = Vec::new();
        for i in &self.ifaces {
            for a in [i.master4, i.backup4, i.vip4].into_iter().flatten() {
                v.push(IpAddr::V4(a));
            }
            for a in &i.v6 {
                v.push(a.master);
                v.push(a.backup);
                v.extend(a.vip);
            }
        }
        v.sort();
        v.dedup();
        v
    }
}

/// The policy that applies to `s -> d`: (s,d) > (s,all) > (all,d) > (all,all).
fn most_specific_policy<'a>(policies: &'a [Policy], s: &str, d: &str) -> Option<&'a Policy> {
    for (a, b) in [(s, d), (s, "all"), ("all", d), ("all", "all")] {
        if let Some(p) = policies.iter().find(|p| p.src == a && p.dst == b) {
            return Some(p);
        }
    }
    None
}
