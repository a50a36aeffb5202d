//! What a probe test aims at: a test's target text (`172.16.10.21`, `web1`, `vip:20`,
//! `vip:uplink`, `MV1`) resolved to an address and the lab node that will answer there, so the
//! runner knows where to send and where to open the listener. Pure: addresses learnt only at run
//! time (DHCP leases) come in through [`Leases`].

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::model::{Address, Expect, Lab, LabTest, Node, TestKind};
use crate::site::SiteFacts;

/// Addresses known only at run time (a DHCP client's lease), by node name. Empty before `up`.
pub type Leases = BTreeMap<String, Ipv4Addr>;

/// Profiles whose images carry the QEMU guest agent: probes start there and listeners open
/// there. The appliances (router, dns, vpn) have none; their own services answer instead.
pub const AGENT_PROFILES: &[&str] = &["client", "nas"];

/// The node runs commands through the guest agent.
pub fn has_agent(n: &Node) -> bool {
    AGENT_PROFILES.contains(&n.profile.value.as_str())
}

/// The site addresses of the lab's appliances built as instances of the site (`up --build`
/// builds DNS1 as instance dns1): a role-less node without `address` whose name, in lower case,
/// is a HOST of the site holds that HOST's first IPv4 address. Merged into the [`Leases`].
pub fn instance_addresses(lab: &Lab, site: &SiteFacts) -> Leases {
    lab.nodes
        .iter()
        .filter(|n| n.enabled && n.role.is_none() && n.address.value == Address::Unset)
        .filter_map(|n| {
            let a = site.hosts.get(&n.instance())?.first()?;
            Some((n.name.value.clone(), *a))
        })
        .collect()
}

/// The spelling of the uplink's VIP as a target (`vip:VLAN` for the VLANs).
pub const UPLINK_VIP: &str = "vip:uplink";

/// Who answers at an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// This lab node holds the address (or answers for it: `listen`, a DNAT target).
    Node(String),
    /// A VIP: held by whichever router is MASTER at the time.
    Vip,
}

/// A resolved target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub addr: Ipv4Addr,
    /// None: no lab node holds it (outside the lab, or nobody was given it).
    pub holder: Option<Holder>,
}

/// What a probe sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    /// ICMP echo (`ping -c`): the kernel answers, no listener needed.
    Ping,
    Tcp(u16),
    Udp(u16),
}

impl Proto {
    /// `ping`, `tcp/443`, `udp/53`: how reports name it.
    pub fn label(self) -> String {
        match self {
            Proto::Ping => "ping".into(),
            Proto::Tcp(p) => format!("tcp/{p}"),
            Proto::Udp(p) => format!("udp/{p}"),
        }
    }

    pub fn port(self) -> Option<u16> {
        match self {
            Proto::Ping => None,
            Proto::Tcp(p) | Proto::Udp(p) => Some(p),
        }
    }
}

/// One probe, ready for the runner: send `proto` from `from` to `target`; for tcp/udp open a
/// listener on `listener` first (also when `expect` is blocked, so a refusal means the
/// firewall, not a missing server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbePlan {
    pub from: String,
    pub target: Endpoint,
    pub proto: Proto,
    pub listener: Option<String>,
    #[serde(serialize_with = "ser_expect")]
    pub expect: Expect,
}

/// `ok` or `blocked`, as lab.toml writes it.
pub fn expect_name(e: Expect) -> &'static str {
    match e {
        Expect::Ok => "ok",
        Expect::Blocked => "blocked",
    }
}

/// `Expect` lives in the model, which carries no serde: its lab.toml spelling.
pub fn ser_expect<S: serde::Serializer>(e: &Expect, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(expect_name(*e))
}

/// The address a node has, if known: static, or leased at run time.
pub fn node_addr(n: &Node, leases: &Leases) -> Option<Ipv4Addr> {
    match n.address.value {
        Address::Static { addr, .. } => Some(addr),
        _ => leases.get(&n.name.value).copied(),
    }
}

fn is_router(n: &Node) -> bool {
    n.profile.value == "router"
}

/// The lab node holding `addr`: a client with it (static or leased), a router with it among its
/// role's addresses; a VIP is held by the routers ([`Holder::Vip`]).
pub fn holder_of(lab: &Lab, site: &SiteFacts, addr: Ipv4Addr, leases: &Leases) -> Option<Holder> {
    if site
        .vips
        .values()
        .chain(&site.uplink_vip)
        .any(|v| *v == addr)
    {
        return Some(Holder::Vip);
    }
    let enabled = lab.nodes.iter().filter(|n| n.enabled);
    for n in enabled {
        let holds = if is_router(n) {
            n.role.as_ref().is_some_and(|r| {
                site.role_addresses
                    .get(&r.value)
                    .is_some_and(|a| a.contains(&addr))
            })
        } else {
            node_addr(n, leases) == Some(addr)
        };
        if holds {
            return Some(Holder::Node(n.name.value.clone()));
        }
    }
    None
}

/// A router's address as seen from `from`: the one inside `from`'s static network, else its
/// first in site order (the uplink's in the seed site).
fn router_addr(site: &SiteFacts, router: &Node, from: Option<&Node>) -> Result<Ipv4Addr, String> {
    let name = &router.name.value;
    let role = router
        .role
        .as_ref()
        .ok_or_else(|| format!("router {name} has no role, so no site address"))?;
    let addrs = site
        .role_addresses
        .get(&role.value)
        .cloned()
        .unwrap_or_default();
    let near = from.and_then(|f| match f.address.value {
        Address::Static { addr, prefix, .. } => {
            addrs.iter().copied().find(|a| same_net(*a, addr, prefix))
        }
        _ => None,
    });
    near.or(addrs.first().copied())
        .ok_or_else(|| format!("{} gives {} no address", site.file, role.value))
}

/// Whether `a` and `b` are in one network of length `len`.
pub fn same_net(a: Ipv4Addr, b: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    u32::from(a) & mask == u32::from(b) & mask
}

/// A node name as a target: its address (see [`router_addr`] for routers).
fn node_target(
    lab: &Lab,
    site: &SiteFacts,
    n: &Node,
    from: Option<&str>,
    leases: &Leases,
) -> Result<Endpoint, String> {
    let addr = if is_router(n) {
        router_addr(site, n, from.and_then(|f| lab.node(f)))?
    } else {
        node_addr(n, leases).ok_or_else(|| {
            format!(
                "{}'s address is known only at run time (address = dhcp or unset): \
                 give it a static address, or target an address",
                n.name.value
            )
        })?
    };
    Ok(Endpoint {
        addr,
        holder: Some(Holder::Node(n.name.value.clone())),
    })
}

/// Resolve a target text. `from` (the probing node) picks which of a router's addresses.
pub fn resolve_target(
    lab: &Lab,
    site: &SiteFacts,
    text: &str,
    from: Option<&str>,
    leases: &Leases,
) -> Result<Endpoint, String> {
    let addr = if let Ok(a) = text.parse::<Ipv4Addr>() {
        a
    } else if let Some(n) = lab.node(text) {
        return node_target(lab, site, n, from, leases);
    } else if let Some(v) = text.strip_prefix("vip:") {
        vip(site, v)?
    } else if let Some(a) = site.hosts.get(text) {
        *a.first()
            .ok_or_else(|| format!("HOST {text} of {} has no IPv4 address", site.file))?
    } else {
        return Err(format!(
            "{text:?} is not an IPv4 address, a node of the lab, a HOST of {} or vip:VLAN",
            site.file
        ));
    };
    Ok(Endpoint {
        addr,
        holder: holder_of(lab, site, addr, leases),
    })
}

fn vip(site: &SiteFacts, v: &str) -> Result<Ipv4Addr, String> {
    let found = if v == "uplink" {
        site.uplink_vip
    } else {
        v.parse::<u16>()
            .ok()
            .and_then(|id| site.vips.get(&id).copied())
    };
    found.ok_or_else(|| format!("vip:{v} names no VIP of {}", site.file))
}

/// The probe a test runs: ping/tcp/udp, and a failover's `probe` (a ping during the fault).
/// `listen` replaces the holder (the node behind a DNAT answers for the VIP).
pub fn plan_test(
    lab: &Lab,
    site: &SiteFacts,
    t: &LabTest,
    leases: &Leases,
) -> Result<ProbePlan, String> {
    let (target, proto) = match &t.kind {
        TestKind::Ping { target } => (target, Proto::Ping),
        TestKind::Tcp { target, port } => (target, Proto::Tcp(*port)),
        TestKind::Udp { target, port } => (target, Proto::Udp(*port)),
        TestKind::Failover { probe, .. } => (probe, Proto::Ping),
        _ => return Err(format!("test {:?} sends no probe", t.name.value)),
    };
    let from = t
        .from
        .as_ref()
        .ok_or_else(|| format!("test {:?} has no `from`", t.name.value))?;
    let mut ep = resolve_target(lab, site, &target.value, Some(&from.value), leases)?;
    if let Some(l) = &t.listen {
        ep.holder = Some(Holder::Node(l.value.clone()));
    }
    // An appliance (no agent) answers with its own service: no listener there.
    let listener = match (proto, &ep.holder) {
        (Proto::Ping, _) | (_, Some(Holder::Vip)) | (_, None) => None,
        (_, Some(Holder::Node(n))) => lab.node(n).filter(|n| has_agent(n)).map(|_| n.clone()),
    };
    Ok(ProbePlan {
        from: from.value.clone(),
        target: ep,
        proto,
        listener,
        expect: t.expect,
    })
}
