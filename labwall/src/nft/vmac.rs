//! `VRRP VMAC`: the kernel hands a frame addressed to the virtual MAC to the macvlan
//! `vrrp.<VRID>`, not to its parent, so `iifname "vlan10"` no longer sees the clients that talk
//! to the VIP. Every rule and vmap entry naming a parent is given a twin naming its vmac, so the
//! vmac is in the parent's zone with the parent's rules (docs/labwall.md, VRRP VMAC).

use super::{Action, Chain, ChainRule};

/// (parent, vmac) pairs: each instance's interface and keepalived's vmac name for its VRID.
pub fn pairs(site: &crate::model::Site) -> Vec<(String, String)> {
    if !site.vmac {
        return Vec::new();
    }
    site.instances
        .iter()
        .map(|i| (i.ifname.clone(), format!("vrrp.{}", i.vrid)))
        .collect()
}

/// The vmacs of `name` (a parent may carry several instances, one vmac each).
fn twins<'a>(pairs: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    pairs
        .iter()
        .filter(move |(p, _)| p == name)
        .map(|(_, v)| v.as_str())
}

/// Adds the vmac twins to every chain (pure; nothing changes when `pairs` is empty).
pub fn alias(chains: &mut [Chain], pairs: &[(String, String)]) {
    if pairs.is_empty() {
        return;
    }
    for c in chains {
        let mut out = Vec::with_capacity(c.rules.len());
        for r in std::mem::take(&mut c.rules) {
            let extra = rule_twins(&r, pairs);
            out.push(widen_vmaps(r, pairs));
            out.extend(extra);
        }
        c.rules = out;
    }
}

/// Copies of a rule that matches a parent by iifname/oifname, naming its vmacs instead.
fn rule_twins(r: &ChainRule, pairs: &[(String, String)]) -> Vec<ChainRule> {
    let mut v = Vec::new();
    if let Some(i) = &r.matches.iif {
        for t in twins(pairs, i) {
            let mut x = r.clone();
            x.matches.iif = Some(t.to_string());
            x.why = format!("{} (vmac {t})", r.why);
            v.push(x);
        }
    }
    if let Some(o) = &r.matches.oif {
        for t in twins(pairs, o) {
            let mut x = r.clone();
            x.matches.oif = Some(t.to_string());
            x.why = format!("{} (vmac {t})", r.why);
            v.push(x);
        }
    }
    v
}

/// Interface vmaps get an entry per vmac with its parent's target.
fn widen_vmaps(mut r: ChainRule, pairs: &[(String, String)]) -> ChainRule {
    let one = |m: &mut Vec<(String, String)>| {
        let add: Vec<_> = m
            .iter()
            .flat_map(|(i, c)| twins(pairs, i).map(move |t| (t.to_string(), c.clone())))
            .collect();
        m.extend(add);
    };
    match &mut r.action {
        Action::VmapIif(m) | Action::VmapOif(m) => one(m),
        Action::VmapIifOif(m) => {
            let add: Vec<_> = m
                .iter()
                .flat_map(|(i, o, c)| {
                    let a = twins(pairs, i).map(move |t| (t.to_string(), o.clone(), c.clone()));
                    let b = twins(pairs, o).map(move |t| (i.clone(), t.to_string(), c.clone()));
                    a.chain(b)
                })
                .collect();
            m.extend(add);
        }
        _ => {}
    }
    r
}
