//! VRRP: one keepalived instance per VRID, advertised on the one interface marked `*`, and the
//! checks on VIPs (docs/labwall.md, "Decisions where the spec is silent": VRRP instances).

use super::Analysis;
use crate::line::{Line, Token};
use crate::model::{Iface, Instance};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The token of an interface's VRRP spec: the address column (VLAN 4, DEV 6).
fn vspec_tok(i: &Iface, l: &Line) -> Token {
    if i.vid.is_some() {
        l.toks[4].clone()
    } else {
        l.toks[6].clone()
    }
}

impl Analysis<'_> {
    /// After pass 2 (IPv6 VIPs are known): group the interfaces by VRID; each VRID needs
    /// exactly one `*` interface, which sends the adverts and names the instance (`externe` on
    /// the uplink device, `interne` on the second NETINIT device, else `vrid<N>`).
    pub(super) fn build_vrrp_instances(&mut self) {
        let mut by_vrid: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (ix, (i, l)) in self.ifaces.iter().zip(&self.iface_lines).enumerate() {
            let Some(v) = i.vrid else { continue };
            if !(1..=255).contains(&v) {
                self.out.err(
                    l,
                    &vspec_tok(i, l),
                    format!("VRID {v} is outside 1-255"),
                    "use a VRID between 1 and 255",
                );
            }
            by_vrid.entry(v).or_default().push(ix);
        }
        for (vrid, members) in &by_vrid {
            if let Some(inst) = self.instance(*vrid, members) {
                self.instances.push(inst);
            }
        }
    }

    /// The instance of one VRID (None if its `*` is missing or doubled, reported).
    fn instance(&mut self, vrid: u32, members: &[usize]) -> Option<Instance> {
        let stars: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| self.ifaces[i].star)
            .collect();
        if stars.len() != 1 {
            let ix = members[0];
            let l = &self.iface_lines[ix];
            if stars.is_empty() {
                let t = vspec_tok(&self.ifaces[ix], l);
                self.out.err(l, &t, format!("VRID {vrid} has no interface marked * (which interface sends its adverts?)"), "append * to exactly one vspec of this VRID");
            } else {
                let l2 = &self.iface_lines[stars[1]];
                let t2 = vspec_tok(&self.ifaces[stars[1]], l2);
                self.out.err(l2, &t2, format!("VRID {vrid} is marked * on {} and {} (duplicate VRID on two advert interfaces)", self.ifaces[stars[0]].ifname, self.ifaces[stars[1]].ifname), "use a different VRID per * interface, or remove one *");
            }
            return None;
        }
        let s = &self.ifaces[stars[0]];
        let mut name = if s.dev == self.netinit[0] {
            "externe".to_string()
        } else if Some(&s.dev) == self.netinit.get(1) {
            "interne".to_string()
        } else {
            format!("vrid{vrid}")
        };
        if self.instances.iter().any(|i| i.name == name) {
            name = format!("vrid{vrid}");
        }
        let mut inst = Instance {
            name,
            vrid,
            ifname: s.ifname.clone(),
            line: s.line,
            vips4: Vec::new(),
            vips6: Vec::new(),
            peers: [s.master4, s.backup4].into_iter().flatten().collect(),
        };
        for &m in members {
            let i = &self.ifaces[m];
            if let Some(v) = i.vip4 {
                inst.vips4.push((v, i.net4.len, i.bcast, i.ifname.clone()));
            }
            for a in &i.v6 {
                if let Some(v) = a.vip {
                    inst.vips6.push((v, a.prefix.len, i.ifname.clone()));
                }
            }
        }
        Some(inst)
    }

    /// A VIP must not be a real address of either router anywhere, and the master and the
    /// backup of a VRRP spec need addresses of their own.
    pub(super) fn check_vips(&mut self) {
        let mut reals: Vec<(IpAddr, String)> = Vec::new();
        for i in &self.ifaces {
            for a in [i.master4, i.backup4].into_iter().flatten() {
                reals.push((IpAddr::V4(a), i.name.clone()));
            }
            for a in &i.v6 {
                reals.push((a.master, i.name.clone()));
                reals.push((a.backup, i.name.clone()));
            }
        }
        for (i, l) in self.ifaces.iter().zip(&self.iface_lines) {
            let Some(v) = i.vip4 else { continue };
            if let Some((_, n)) = reals.iter().find(|r| r.0 == IpAddr::V4(v)) {
                self.out.err(
                    l,
                    &vspec_tok(i, l),
                    format!("VIP {v} is also a real address of {n}"),
                    "the VIP must differ from both routers' own addresses",
                );
            }
            if let (Some(m), Some(b)) = (i.master4, i.backup4) {
                if m == b {
                    self.out.err(
                        l,
                        &vspec_tok(i, l),
                        format!("master and backup share the address {m}"),
                        "give each router its own address",
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{analyse_text, messages, BASE};

    #[test]
    fn one_instance_per_vrid_with_its_vips() {
        let src =
            format!("{BASE}VLAN 30 eth0 172.16.30.0 172.16.30.2-172.16.30.3-172.16.30.1-7* /24\n");
        let s = analyse_text(&src, "MASTER").0.unwrap();
        let i: Vec<(&str, u32, &str, usize)> = s
            .instances
            .iter()
            .map(|i| (i.name.as_str(), i.vrid, i.ifname.as_str(), i.vips4.len()))
            .collect();
        // sorted by VRID; VLAN10 (101 without *) joins the uplink's instance
        assert_eq!(
            i,
            [("interne", 7, "vlan30", 1), ("externe", 101, "eth1", 2)]
        );
        assert_eq!(
            s.instances[1].peers,
            [
                "10.1.1.2".parse::<std::net::Ipv4Addr>().unwrap(),
                "10.1.1.3".parse().unwrap()
            ]
        );
    }

    #[test]
    fn star_and_vip_errors() {
        let src = "NETINIT eth1 eth0
DEV INTER eth1 10.1.1.0 10.1.1.254 /24 10.1.1.2-10.1.1.3-10.1.1.4-300*
VLAN 10 eth0 172.16.10.0 172.16.10.2-172.16.10.3-172.16.10.1-5 /24
VLAN 20 eth0 172.16.20.0 172.16.20.2-172.16.20.3-172.16.20.1-6* /24
VLAN 30 eth0 172.16.30.0 172.16.30.2-172.16.30.3-172.16.30.1-6* /24
VLAN 40 eth0 172.16.40.0 172.16.40.2-172.16.40.2-172.16.10.2-8* /24
POLICY all all DROP
";
        assert_eq!(
            messages(src),
            [
                "172.16.10.2 is outside 172.16.40.0/24",
                "VRID 300 is outside 1-255",
                "VRID 5 has no interface marked * (which interface sends its adverts?)",
                "VRID 6 is marked * on vlan20 and vlan30 (duplicate VRID on two advert interfaces)",
                "VIP 172.16.10.2 is also a real address of VLAN10",
                "master and backup share the address 172.16.40.2",
            ]
        );
    }
}
