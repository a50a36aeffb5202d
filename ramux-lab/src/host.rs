//! The checks that ask the host: is each ISO there (unless `up --build` makes it), does each
//! uplink's bridge exist, would an uplink make the host a router between lab VLANs. The questions go through [`HostFacts`], so the core stays pure and
//! tests answer them from a table; `vlaunch lab` answers them from the file system and netlink.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::diag::{Diagnostic, Diags};
use crate::model::Lab;
use crate::site::SiteFacts;

/// One interface of the host as the forwarding check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIface {
    pub name: String,
    /// Its IPv4 addresses with their prefix lengths.
    pub addrs: Vec<(Ipv4Addr, u8)>,
    /// `net.ipv4.conf.NAME.forwarding`: packets arriving here are routed on.
    pub forwarding: bool,
}

/// What the host checks need to ask.
pub trait HostFacts {
    fn file_exists(&self, path: &Path) -> bool;
    fn bridge_exists(&self, name: &str) -> bool;
    /// The host's interfaces (default: none known, so no forwarding check).
    fn interfaces(&self) -> Vec<HostIface> {
        Vec::new()
    }
}

/// Missing ISOs of enabled nodes (not with `build`: `up --build` makes them) and missing
/// uplink bridges, in file order.
pub fn check_host(lab: &Lab, host: &dyn HostFacts, build: bool) -> Vec<Diagnostic> {
    let mut diags = Diags::new(&lab.file);
    for n in lab.nodes.iter().filter(|n| n.enabled && !build) {
        if !host.file_exists(&n.iso) {
            let fix = if n.iso_given {
                "build it (vbuild iso ...), correct `iso`, or run `vlaunch lab up --build`"
                    .to_string()
            } else {
                let role = n
                    .role
                    .as_ref()
                    .map_or(String::new(), |r| format!(" --role {}", r.value));
                format!(
                    "run `vlaunch lab up --build`, or vbuild iso {}{role} -o {}",
                    n.profile.value,
                    n.iso.display()
                )
            };
            diags.error(
                n.name.pos,
                format!(
                    "the ISO of {} is missing: {}",
                    n.name.value,
                    n.iso.display()
                ),
                fix,
            );
        }
    }
    for n in lab.nodes.iter().filter(|n| n.enabled) {
        if let Some(s) = n.secrets.as_ref().filter(|s| !host.file_exists(s)) {
            diags.error(
                n.name.pos,
                format!(
                    "the secrets overlay of {} is missing: {}",
                    n.name.value,
                    s.display()
                ),
                format!(
                    "pack the site secrets for it: vbuild secrets pack DIR -o {} (docs/secrets.md)",
                    s.display()
                ),
            );
        }
    }
    for u in &lab.uplinks {
        if !host.bridge_exists(&u.bridge.value) {
            diags.error(
                u.bridge.pos,
                format!(
                    "uplink {}: there is no bridge {} on this host",
                    u.name.value, u.bridge.value
                ),
                format!(
                    "create it (ip link add {} type bridge), or name an existing one",
                    u.bridge.value
                ),
            );
        }
    }
    diags.sorted()
}

/// `addr` is in `net/prefix`.
fn in_net(addr: Ipv4Addr, (net, prefix): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    u32::from(addr) & mask == u32::from(net) & mask
}

/// Per lab VLAN network the host has an address in: (interface, address, prefix, forwards).
pub fn host_vlans(
    ifaces: &[HostIface],
    nets: &BTreeMap<u16, (Ipv4Addr, u8)>,
) -> BTreeMap<u16, Vec<(String, Ipv4Addr, u8, bool)>> {
    let mut out: BTreeMap<u16, Vec<_>> = BTreeMap::new();
    for i in ifaces {
        for &(a, p) in &i.addrs {
            for (&vid, &net) in nets {
                if in_net(a, net) {
                    out.entry(vid)
                        .or_default()
                        .push((i.name.clone(), a, p, i.forwarding));
                }
            }
        }
    }
    out
}

/// The 2009 warning: a host on several lab VLANs that forwards between them lets a VM bypass
/// the routers' filtering. With an uplink, addresses of the host in more than one of the
/// site's VLAN networks, and forwarding on on any of those interfaces: one error at the
/// first uplink's bridge, naming the interfaces and the fix.
pub fn check_forwarding(lab: &Lab, site: &SiteFacts, host: &dyn HostFacts) -> Vec<Diagnostic> {
    let mut diags = Diags::new(&lab.file);
    let Some(u) = lab.uplinks.first() else {
        return diags.sorted();
    };
    let vlans = host_vlans(&host.interfaces(), &site.vlan_networks);
    let all: Vec<&(String, Ipv4Addr, u8, bool)> = vlans.values().flatten().collect();
    let fwd: Vec<&str> = all.iter().filter(|x| x.3).map(|x| x.0.as_str()).collect();
    if vlans.len() < 2 || fwd.is_empty() {
        return diags.sorted();
    }
    let (message, fix) = forwarding_words(&u.name.value, &vlans, fwd);
    diags.error(u.bridge.pos, message, fix);
    diags.sorted()
}

/// The forwarding error's message and fix.
fn forwarding_words(
    uplink: &str,
    vlans: &BTreeMap<u16, Vec<(String, Ipv4Addr, u8, bool)>>,
    fwd: Vec<&str>,
) -> (String, String) {
    let on: Vec<String> = vlans
        .iter()
        .map(|(vid, xs)| {
            let l: Vec<String> = xs
                .iter()
                .map(|x| format!("{} {}/{}", x.0, x.1, x.2))
                .collect();
            format!("VLAN {vid} ({})", l.join(", "))
        })
        .collect();
    let mut fwd_names = fwd;
    fwd_names.sort_unstable();
    fwd_names.dedup();
    let sysctls: Vec<String> = fwd_names
        .iter()
        .map(|n| format!("net.ipv4.conf.{n}.forwarding=0"))
        .collect();
    let dels: Vec<String> = vlans
        .values()
        .skip(1)
        .flatten()
        .map(|x| format!("ip addr del {}/{} dev {}", x.1, x.2, x.0))
        .collect();
    let message = format!(
        "uplink {uplink} would make this host a router between lab VLANs: it has addresses in {} \
         and forwards IPv4 on {}, so a VM could reach another VLAN through the host, \
         bypassing the routers' filtering",
        on.join(" and "),
        fwd_names.join(", ")
    );
    let fix = format!(
        "turn forwarding off (sysctl -w {}; or net.ipv4.ip_forward=0), or keep the host's \
         addresses in one lab VLAN ({})",
        sysctls.join(" "),
        dels.join("; ")
    );
    (message, fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Host(Vec<HostIface>);
    impl HostFacts for Host {
        fn file_exists(&self, _: &Path) -> bool {
            true
        }
        fn bridge_exists(&self, _: &str) -> bool {
            true
        }
        fn interfaces(&self) -> Vec<HostIface> {
            self.0.clone()
        }
    }

    fn iface(name: &str, addrs: &[&str], forwarding: bool) -> HostIface {
        let addrs = addrs
            .iter()
            .map(|a| {
                let (ip, p) = a.split_once('/').unwrap();
                (ip.parse().unwrap(), p.parse().unwrap())
            })
            .collect();
        HostIface {
            name: name.into(),
            addrs,
            forwarding,
        }
    }

    fn lab(uplink: bool) -> Lab {
        let mut text =
            String::from("name = \"t\"\n[switch.s]\nvlans = { 10 = \"a\", 20 = \"b\" }\n");
        if uplink {
            text.push_str(
                "[uplink.lan]\nswitch = \"s\"\nport = 1\naccess = 10\nbridge = \"br0\"\n",
            );
        }
        let c = crate::check_text(&text, "lab.toml", Path::new("/l"), None);
        assert!(c.ok(), "{}", crate::render_all(&c.diagnostics));
        c.lab.unwrap()
    }

    fn site() -> SiteFacts {
        let mut s = SiteFacts::default();
        s.vlan_networks
            .insert(10, ("172.16.10.0".parse().unwrap(), 24));
        s.vlan_networks
            .insert(20, ("172.16.20.0".parse().unwrap(), 24));
        s
    }

    #[test]
    fn a_missing_secrets_overlay_is_named_with_the_pack_command() {
        struct Only(&'static str);
        impl HostFacts for Only {
            fn file_exists(&self, p: &Path) -> bool {
                p.ends_with(self.0)
            }
            fn bridge_exists(&self, _: &str) -> bool {
                true
            }
        }
        let text = "name = \"t\"\n[node.dns1]\nprofile = \"dns\"\niso = \"d.iso\"\nsecrets = \"s/dns1.cpio\"\n";
        let c = crate::check_text(text, "lab.toml", Path::new("/l"), None);
        let lab = c.lab.unwrap();
        assert_eq!(
            lab.nodes[0].secrets.as_deref(),
            Some(Path::new("/l/s/dns1.cpio"))
        );
        let d = check_host(&lab, &Only("d.iso"), false);
        assert_eq!(d.len(), 1, "{d:?}");
        let text = crate::render_all(&d);
        assert!(
            text.contains("secrets overlay of dns1 is missing: /l/s/dns1.cpio"),
            "{text}"
        );
        assert!(
            text.contains("vbuild secrets pack DIR -o /l/s/dns1.cpio"),
            "{text}"
        );
    }

    #[test]
    fn forwarding_host_table() {
        let lo = || iface("lo", &["127.0.0.1/8"], false);
        // (uplink, interfaces, error expected)
        let cases: Vec<(bool, Vec<HostIface>, bool)> = vec![
            (true, vec![], false),
            (
                true,
                vec![lo(), iface("br0", &["172.16.10.5/24"], true)],
                false,
            ),
            (
                true,
                vec![
                    iface("br0", &["172.16.10.5/24"], false),
                    iface("eth1", &["172.16.20.5/24"], false),
                ],
                false,
            ),
            (
                true,
                vec![
                    iface("br0", &["172.16.10.5/24"], true),
                    iface("eth1", &["172.16.20.5/24"], false),
                ],
                true,
            ),
            (
                true,
                vec![iface("br0", &["172.16.10.5/24", "172.16.20.5/24"], true)],
                true,
            ),
            (
                true,
                vec![
                    iface("br0", &["172.16.10.5/24"], true),
                    iface("eth0", &["192.168.1.2/24"], true),
                ],
                false,
            ),
            (
                false,
                vec![
                    iface("br0", &["172.16.10.5/24"], true),
                    iface("eth1", &["172.16.20.5/24"], true),
                ],
                false,
            ),
        ];
        for (i, (up, ifaces, want)) in cases.into_iter().enumerate() {
            let d = check_forwarding(&lab(up), &site(), &Host(ifaces));
            assert_eq!(d.iter().any(|d| d.is_error()), want, "case {i}: {d:?}");
        }
    }

    #[test]
    fn the_error_names_interfaces_and_the_fix() {
        let h = Host(vec![
            iface("br0", &["172.16.10.5/24"], true),
            iface("eth1", &["172.16.20.5/24"], true),
        ]);
        let text = crate::render_all(&check_forwarding(&lab(true), &site(), &h));
        assert!(
            text.contains("lab.toml:8:10: error: uplink lan would make this host a router"),
            "{text}"
        );
        assert!(
            text.contains("VLAN 10 (br0 172.16.10.5/24) and VLAN 20 (eth1 172.16.20.5/24)"),
            "{text}"
        );
        assert!(
            text.contains(
                "sysctl -w net.ipv4.conf.br0.forwarding=0 net.ipv4.conf.eth1.forwarding=0"
            ),
            "{text}"
        );
        assert!(
            text.contains("ip addr del 172.16.20.5/24 dev eth1"),
            "{text}"
        );
    }

    #[test]
    fn networks() {
        let n = ("10.0.0.0".parse().unwrap(), 8);
        assert!(in_net("10.9.9.9".parse().unwrap(), n));
        assert!(!in_net("11.0.0.1".parse().unwrap(), n));
        assert!(in_net(
            "1.2.3.4".parse().unwrap(),
            ("0.0.0.0".parse().unwrap(), 0)
        ));
    }
}
