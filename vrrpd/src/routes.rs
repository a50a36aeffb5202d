//! The I/O side of `virtual_routes`/`virtual_rules` (with an instance's VIPs: added after
//! them on becoming MASTER, removed before them on leaving, as keepalived orders it) and of
//! `static_ipaddress`/`static_routes`/`static_rules` (added at startup, removed on a clean
//! exit, as keepalived does). The messages are built by [`crate::netlink`]'s pure
//! `route_msg`/`rule_msg`; this module resolves devices and logs failures without stopping.

use anyhow::{bail, Result};

use crate::config::{Config, RouteConfig, RuleConfig, Vip};
use crate::netlink::{AddrSpec, Link, Netlink};

/// A route with its output interface index, and its nexthops' (0: not given), resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub route: RouteConfig,
    pub oif: Option<u32>,
    pub nh_oifs: Vec<u32>,
}

/// Routes with their interface indexes resolved, and rules.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub routes: Vec<Resolved>,
    pub rules: Vec<RuleConfig>,
}

/// The index of device `dev`; a missing one is an error, as for a VIP: the route could never
/// be added.
fn index_of(cfg: &Config, r: &RouteConfig, dev: &str, links: &[Link]) -> Result<u32> {
    match links.iter().find(|l| l.name == dev) {
        Some(l) => Ok(l.index),
        None => bail!(
            "{}: route via device '{dev}', which does not exist",
            cfg.place(r.line)
        ),
    }
}

/// Resolve `dev` names (the route's and its nexthops') against the interfaces that exist.
pub fn resolve(
    cfg: &Config,
    routes: &[RouteConfig],
    rules: &[RuleConfig],
    links: &[Link],
) -> Result<Routes> {
    let mut out = Routes {
        routes: Vec::new(),
        rules: rules.to_vec(),
    };
    for r in routes {
        let oif = match &r.dev {
            None => None,
            Some(d) => Some(index_of(cfg, r, d, links)?),
        };
        let mut nh_oifs = Vec::new();
        for nh in &r.nexthops {
            nh_oifs.push(match &nh.dev {
                None => oif.unwrap_or(0),
                Some(d) => index_of(cfg, r, d, links)?,
            });
        }
        out.routes.push(Resolved {
            route: r.clone(),
            oif,
            nh_oifs,
        });
    }
    Ok(out)
}

impl Routes {
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.rules.is_empty()
    }

    /// Add (routes, then rules) or remove (rules, then routes); failures are logged.
    pub fn apply(&self, nl: &mut Netlink, add: bool, who: &str) {
        if add {
            self.routes_(nl, true, who);
            self.rules_(nl, true, who);
        } else {
            self.rules_(nl, false, who);
            self.routes_(nl, false, who);
        }
    }

    fn routes_(&self, nl: &mut Netlink, add: bool, who: &str) {
        for Resolved {
            route: r,
            oif,
            nh_oifs,
        } in &self.routes
        {
            let res = if add {
                nl.add_route(r, *oif, nh_oifs)
            } else {
                nl.del_route(r, *oif, nh_oifs).map(|_| ())
            };
            if let Err(e) = res {
                log(&format!(
                    "{who}: {} route {}/{} failed: {e}",
                    if add { "adding" } else { "removing" },
                    r.dest,
                    r.prefix
                ));
            }
        }
    }

    fn rules_(&self, nl: &mut Netlink, add: bool, who: &str) {
        for r in &self.rules {
            let res = if add { nl.add_rule(r) } else { nl.del_rule(r) };
            if let Err(e) = res {
                log(&format!(
                    "{who}: {} rule (table {}) failed: {e}",
                    if add { "adding" } else { "removing" },
                    r.table
                ));
            }
        }
    }
}

/// `static_*`: addresses, routes and rules that stay while vrrpd runs.
#[derive(Debug, Clone, Default)]
pub struct Statics {
    pub addrs: Vec<AddrSpec>,
    pub routes: Routes,
}

/// Resolve the static sections (a static address needs its `dev`).
pub fn statics(cfg: &Config, links: &[Link]) -> Result<Statics> {
    let mut addrs = Vec::new();
    for v in &cfg.static_addresses {
        addrs.push(static_addr(cfg, v, links)?);
    }
    let routes = resolve(cfg, &cfg.static_routes, &cfg.static_rules, links)?;
    Ok(Statics { addrs, routes })
}

fn static_addr(cfg: &Config, v: &Vip, links: &[Link]) -> Result<AddrSpec> {
    let Some(dev) = &v.dev else {
        bail!(
            "{}: static_ipaddress {} needs 'dev IF'",
            cfg.place(v.line),
            v.addr
        );
    };
    let Some(l) = links.iter().find(|l| &l.name == dev) else {
        bail!(
            "{}: static_ipaddress {} on device '{dev}', which does not exist",
            cfg.place(v.line),
            v.addr
        );
    };
    Ok(AddrSpec {
        index: l.index,
        addr: v.addr,
        prefix: v.prefix,
        brd: v.brd,
        label: v.label.clone(),
        scope: v.scope,
    })
}

impl Statics {
    /// What `self` has and `new` does not (line numbers aside): removed on reload.
    pub fn missing_from(&self, new: &Statics) -> Statics {
        let route_eq = |a: &RouteConfig, b: &RouteConfig| {
            RouteConfig {
                line: 0,
                ..a.clone()
            } == RouteConfig {
                line: 0,
                ..b.clone()
            }
        };
        let rule_eq = |a: &RuleConfig, b: &RuleConfig| {
            RuleConfig {
                line: 0,
                ..a.clone()
            } == RuleConfig {
                line: 0,
                ..b.clone()
            }
        };
        Statics {
            addrs: self
                .addrs
                .iter()
                .filter(|a| !new.addrs.contains(a))
                .cloned()
                .collect(),
            routes: Routes {
                routes: self
                    .routes
                    .routes
                    .iter()
                    .filter(|a| {
                        !new.routes.routes.iter().any(|b| {
                            (&a.oif, &a.nh_oifs) == (&b.oif, &b.nh_oifs)
                                && route_eq(&a.route, &b.route)
                        })
                    })
                    .cloned()
                    .collect(),
                rules: self
                    .routes
                    .rules
                    .iter()
                    .filter(|r| !new.routes.rules.iter().any(|n| rule_eq(r, n)))
                    .cloned()
                    .collect(),
            },
        }
    }

    /// Addresses first on the way up (routes may need them), last on the way down.
    pub fn apply(&self, nl: &mut Netlink, add: bool) {
        if !add {
            self.routes.apply(nl, false, "static");
        }
        for a in &self.addrs {
            let r = if add { nl.add_addr(a) } else { nl.del_addr(a) };
            if let Err(e) = r {
                log(&format!("static: {}/{}: {e}", a.addr, a.prefix));
            }
        }
        if add {
            self.routes.apply(nl, true, "static");
        }
    }
}

fn log(msg: &str) {
    crate::daemon::log(msg)
}
