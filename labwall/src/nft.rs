//! The nftables ruleset as a small IR: chains of [`ChainRule`]s, each a structured [`Match`] and
//! an [`Action`]. The same IR is printed as `ruleset.nft` ([`render`]) and walked by `explain`,
//! so the simulation and the kernel see the same rules. The ruleset never depends on the role:
//! both routers' addresses and the VIPs are all known, so failover never reloads the firewall
//! (docs/labwall.md, "The generated ruleset").

mod build;
mod render;
mod vmac;

pub use build::build;
pub use render::{l4_txt, match_txt, render, rule_txt};

use crate::model::L4;
use crate::net::Net;
use crate::parse::Rate;
use serde::Serialize;
use std::net::Ipv4Addr;

/// The table that labwall owns; loading replaces only this table.
pub const TABLE: &str = "ramux";

/// IP version of an address match, a set or `meta nfproto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

/// `ip saddr ...` / `ip6 daddr != @set`: one address match of a rule.
#[derive(Clone, Debug, Serialize)]
pub struct AddrMatch {
    pub fam: Family,
    pub neg: bool,
    /// named set (`@dns1_v4`) or None for a literal
    pub set: Option<String>,
    pub nets: Vec<Net>,
}

/// Everything a rule matches on; the default (all None/false) matches every packet.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Match {
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub nfproto: Option<Family>,
    pub saddr: Option<AddrMatch>,
    pub daddr: Option<AddrMatch>,
    pub l4: Option<L4>,
    /// `ct state established,related` (true) — never matches a new connection
    pub ct_established: bool,
    pub ct_invalid: bool,
    pub ct_dnat: bool,
    /// ICMPv6 neighbour discovery types
    pub nd: bool,
    pub limit: Option<Rate>,
}

/// What a rule does: a verdict, a jump (goto, interface vmaps), log or NAT.
#[derive(Clone, Debug, Serialize)]
pub enum Action {
    Accept,
    Drop,
    RejectTcp,
    RejectIcmpx,
    Goto(String),
    VmapIif(Vec<(String, String)>),
    VmapOif(Vec<(String, String)>),
    VmapIifOif(Vec<(String, String, String)>),
    Log(String),
    Snat(Ipv4Addr),
    Masquerade,
    Dnat(Ipv4Addr, Option<u16>),
}

/// One rule of a chain, with the site line it comes from (its `comment "site.lw:<line>"`).
#[derive(Clone, Debug, Serialize)]
pub struct ChainRule {
    /// What the rule matches (empty: every packet).
    #[serde(rename = "m")]
    pub matches: Match,
    /// What it does with a matching packet.
    #[serde(rename = "act")]
    pub action: Action,
    pub line: u32,
    /// what the rule is for, shown by explain
    pub why: String,
}

/// The hook of a base chain: `type <kind> hook <hook> priority <prio>; policy <policy>;`.
#[derive(Clone, Debug, Serialize)]
pub struct BaseChain {
    pub kind: &'static str,
    pub hook: &'static str,
    pub prio: &'static str,
    pub policy: &'static str,
}

/// A chain; `base` is None for a regular chain (reached by goto).
#[derive(Clone, Debug, Serialize)]
pub struct Chain {
    pub name: String,
    pub base: Option<BaseChain>,
    pub rules: Vec<ChainRule>,
}

/// A named set of prefixes (`set web1_v4 { type ipv4_addr; flags interval; ... }`).
#[derive(Clone, Debug, Serialize)]
pub struct NamedSet {
    pub name: String,
    pub fam: Family,
    pub elems: Vec<Net>,
}

/// The whole `table inet ramux`.
#[derive(Clone, Debug, Serialize)]
pub struct Ruleset {
    pub file: String,
    pub counters: bool,
    pub sets: Vec<NamedSet>,
    pub chains: Vec<Chain>,
}

impl Ruleset {
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }
}
