//! The keepalived.conf subset that VRRP sites use (docs/vrrp.md, Configuration: supported
//! keywords).
//!
//! Parsed in two steps: a tokenizer that knows keepalived's lexical rules (`#`/`!` comments,
//! double-quoted strings, braces) and keeps line numbers, then a block tree walked per keyword.
//! Unknown keywords are warnings (with `file:line`), because sites carry LVS, SMTP and other
//! sections this daemon has no use for; anything malformed in a keyword we do implement is an
//! error, so a typo never silently changes failover behaviour.
//!
//! One file per part: `lexer` (tokens and the block tree), `ctx` (diagnostics and shared value
//! readers), `globals` (`global_defs`), `instance` (`vrrp_instance`), `vip` (address lines),
//! `sync_group` (`vrrp_sync_group`) and `common` (keywords instances and groups share). This
//! file has the resulting types and `parse_str`/`load`, which run the sections in order and
//! check what spans them.

mod common;
mod conditional;
mod ctx;
mod globals;
mod include;
mod instance;
mod lexer;
mod route;
mod script;
mod sync_group;
mod vip;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::wire::{Family, Version};

pub use conditional::default_id;
pub use ctx::split_command;
use ctx::Ctx;
use globals::{parse_globals, Globals};
pub use include::{Expanded, FsSource, Source};
use instance::parse_instance;
use lexer::{build_tree, tokenize, Stmt};
pub use route::{Nexthop, RouteConfig, RouteKind, RuleConfig, RT_TABLE_MAIN};
use script::{check_tracked, parse_script};
use sync_group::{check_members, parse_group};

/// A diagnostic tied to a place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub file: PathBuf,
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.msg)
    }
}

/// Configuration errors (every one found, not just the first).
#[derive(Debug)]
pub struct ConfigError(pub Vec<Diag>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}: error: {}", d.file.display(), d.line, d.msg)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// One virtual address line (`virtual_ipaddress` / `virtual_ipaddress_excluded`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix: u8,
    pub brd: Option<Ipv4Addr>,
    /// Device the address goes on; `None` means the instance's interface.
    pub dev: Option<String>,
    pub label: Option<String>,
    /// rtnetlink scope (0 global, 253 link, 254 host).
    pub scope: u8,
    /// Do not fault the instance when this VIP's device goes down.
    pub no_track: bool,
    pub line: usize,
}

/// A command to run on a transition: argv, exec'd without a shell.
pub type Script = Vec<String>;

/// Notify scripts at instance or group level.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Notify {
    pub master: Option<Script>,
    pub backup: Option<Script>,
    pub fault: Option<Script>,
    pub stop: Option<Script>,
    /// Generic `notify`: run after the specific one with `TYPE NAME STATE PRIORITY` appended.
    pub generic: Option<Script>,
}

/// `track_interface` entry; weight 0 means FAULT when down.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrackIf {
    pub name: String,
    pub weight: i32,
}

/// One `vrrp_script`: a health check run every `interval` (docs/vrrp.md, Health checks).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScriptConfig {
    pub name: String,
    pub line: usize,
    /// Executed without a shell (PATH searched for a bare name, as keepalived).
    pub argv: Script,
    pub interval: Duration,
    /// `None`: the interval (keepalived's default).
    pub timeout: Option<Duration>,
    pub rise: u32,
    pub fall: u32,
    /// 0: a failing script faults the instance; else the priority moves (see `TrackScript`).
    pub weight: i32,
    pub reverse: bool,
    /// Start as failed instead of unknown.
    pub init_fail: bool,
    /// `user USERNAME [GROUPNAME]`: run as this user instead of vrrpd's.
    pub user: Option<(String, Option<String>)>,
}

impl ScriptConfig {
    /// How long one run may take before it is killed (and counted as a failure).
    pub fn effective_timeout(&self) -> Duration {
        self.timeout.unwrap_or(self.interval)
    }
}

/// A `track_script` entry; `weight` (with `reverse`) overrides the script's own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrackScript {
    pub name: String,
    pub line: usize,
    pub weight: Option<(i32, bool)>,
}

/// GARP / unsolicited NA timing (keepalived names and defaults, docs/vrrp.md, GARP timing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Garp {
    pub master_delay: Duration,
    pub master_repeat: u32,
    pub master_refresh: Duration,
    pub master_refresh_repeat: u32,
    /// Spacing between packets of one burst.
    pub interval: Duration,
}

impl Default for Garp {
    fn default() -> Self {
        Garp {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
            interval: Duration::ZERO,
        }
    }
}

/// v3/IPv4 checksum form to send (both are accepted on receive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum V3Checksum {
    /// keepalived 2.2.7 default: with IPv4 pseudo-header.
    PseudoHeader,
    /// RFC 9568 / keepalived >= 2.2.8 `v3_checksum_as_v2`.
    MessageOnly,
}

/// One `vrrp_instance`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceConfig {
    pub name: String,
    pub line: usize,
    pub state_master: bool,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    pub version: Version,
    pub family: Family,
    /// Advertisement interval in centiseconds (v2 values are whole seconds x 100).
    pub advert_int_cs: u16,
    /// PASS password bytes (v2 only).
    pub auth_pass: Option<[u8; 8]>,
    pub vips: Vec<Vip>,
    pub excluded: Vec<Vip>,
    pub nopreempt: bool,
    pub preempt_delay: Duration,
    pub garp: Garp,
    pub notify: Notify,
    pub track_interfaces: Vec<TrackIf>,
    pub track_scripts: Vec<TrackScript>,
    /// `use_vmac [NAME]`: a macvlan with the VRRP virtual MAC carries the VIPs (and the
    /// adverts unless `vmac_xmit_base`); the name (default `vrrp.VRID`, as keepalived).
    pub vmac: Option<String>,
    pub vmac_xmit_base: bool,
    /// `virtual_routes` / `virtual_rules`: present while the instance is MASTER.
    pub routes: Vec<RouteConfig>,
    pub rules: Vec<RuleConfig>,
    pub dont_track_primary: bool,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    pub v3_checksum: V3Checksum,
    pub down_timer_adverts: u8,
}

impl InstanceConfig {
    /// Advertisement interval as a duration.
    pub fn advert_int(&self) -> Duration {
        Duration::from_millis(10 * u64::from(self.advert_int_cs))
    }
    /// Value of the interval field on the wire (seconds for v2, centiseconds for v3).
    pub fn wire_adver_int(&self) -> u16 {
        match self.version {
            Version::V2 => self.advert_int_cs / 100,
            Version::V3 => self.advert_int_cs,
        }
    }
    /// Where a VIP without `dev` goes: the vmac with `use_vmac`, else the interface.
    pub fn vip_dev(&self) -> &str {
        self.vmac.as_deref().unwrap_or(&self.interface)
    }
    /// Where adverts are sent and received: the vmac unless `vmac_xmit_base`.
    pub fn send_if(&self) -> &str {
        match &self.vmac {
            Some(v) if !self.vmac_xmit_base => v,
            _ => &self.interface,
        }
    }
    /// The RFC 5798 virtual MAC of this instance (00:00:5e:00:01:VRID for IPv4).
    pub fn virtual_mac(&self) -> [u8; 6] {
        let kind = if self.family == Family::V6 { 2 } else { 1 };
        [0, 0, 0x5e, 0, kind, self.vrid]
    }
    /// Every device a VIP of this instance lives on, the instance interface included.
    pub fn vip_devices(&self) -> Vec<String> {
        let mut v = vec![self.interface.clone()];
        if let Some(m) = &self.vmac {
            v.push(m.clone());
        }
        for vip in self.vips.iter().chain(&self.excluded) {
            let d = vip
                .dev
                .clone()
                .unwrap_or_else(|| self.vip_dev().to_string());
            if !v.contains(&d) {
                v.push(d);
            }
        }
        v
    }
}

/// One `vrrp_sync_group`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyncGroupConfig {
    pub name: String,
    pub line: usize,
    pub members: Vec<String>,
    pub notify: Notify,
    pub track_interfaces: Vec<TrackIf>,
    pub track_scripts: Vec<TrackScript>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    pub router_id: Option<String>,
    pub instances: Vec<InstanceConfig>,
    pub sync_groups: Vec<SyncGroupConfig>,
    pub scripts: Vec<ScriptConfig>,
    /// `static_ipaddress` / `static_routes` / `static_rules`: present while vrrpd runs.
    pub static_addresses: Vec<Vip>,
    pub static_routes: Vec<RouteConfig>,
    pub static_rules: Vec<RuleConfig>,
    #[serde(skip)]
    pub warnings: Vec<Diag>,
    /// Where each line came from (includes), for `place`.
    #[serde(skip)]
    pub origins: Expanded,
}

impl Config {
    /// `file:line` of line `line` of the parsed (include-spliced) text, for messages about an
    /// instance or a VIP found after parsing.
    pub fn place(&self, line: usize) -> String {
        let (f, l) = self.origins.place(line);
        format!("{}:{l}", f.display())
    }
}

/// A source without files: `include` matches nothing (a warning), for text-only parsing.
struct NoFiles;

impl Source for NoFiles {
    fn glob(&mut self, _: &Path) -> Vec<PathBuf> {
        vec![]
    }
    fn read(&mut self, p: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            p.display().to_string(),
        ))
    }
}

/// How to read a configuration (keepalived's command-line options that change the text).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-i/--config-id`: which `@NAME` lines apply (the daemon defaults it to the host name's
    /// first label, as keepalived; `None` applies none of them).
    pub config_id: Option<String>,
}

/// Parse configuration text without a config id or include files; `file` is only used in
/// diagnostics.
pub fn parse_str(text: &str, file: &Path) -> Result<Config, ConfigError> {
    parse_with(text, file, &LoadOptions::default(), &mut NoFiles)
}

/// Parse configuration text with `opts`: includes spliced from `src`, then conditional lines
/// resolved, then the sections; every diagnostic names its own file and line.
pub fn parse_with(
    text: &str,
    file: &Path,
    opts: &LoadOptions,
    src: &mut dyn Source,
) -> Result<Config, ConfigError> {
    let mut ex = include::expand(text, file, src);
    let resolved = conditional::resolve(&ex.text, opts.config_id.as_deref()).into_owned();
    ex.text = String::new();
    let remap = |d: Diag| {
        let (file, line) = ex.place(d.line);
        Diag { file, line, ..d }
    };
    let mut cfg = parse_spliced(&resolved, file).map_err(|e| {
        let mut all = ex.errors.clone();
        all.extend(e.0.into_iter().map(remap));
        ConfigError(all)
    })?;
    if !ex.errors.is_empty() {
        return Err(ConfigError(ex.errors));
    }
    let mut warnings = ex.warnings.clone();
    warnings.extend(std::mem::take(&mut cfg.warnings).into_iter().map(remap));
    cfg.warnings = warnings;
    cfg.origins = ex;
    Ok(cfg)
}

/// The sections of the spliced, resolved text (lines are those of the spliced text).
fn parse_spliced(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let toks = tokenize(text);
    let mut tree_errs = Vec::new();
    let mut pos = 0;
    let tree = build_tree(&toks, &mut pos, 0, &mut tree_errs);
    let mut ctx = Ctx {
        file,
        errors: vec![],
        warnings: vec![],
    };
    for (ln, m) in tree_errs {
        ctx.err(ln, m);
    }
    let mut g = Globals::default();
    for s in &tree {
        if s.key == "global_defs" {
            parse_globals(&mut ctx, s.block.as_deref().unwrap_or(&[]), &mut g);
        }
    }
    let mut instances: Vec<InstanceConfig> = Vec::new();
    let mut groups: Vec<SyncGroupConfig> = Vec::new();
    let mut scripts: Vec<ScriptConfig> = Vec::new();
    let mut empty_scripts: Vec<String> = Vec::new();
    let (mut st_addrs, mut st_routes, mut st_rules) = (Vec::new(), Vec::new(), Vec::new());
    // Indexes for the duplicate checks, so a long file stays linear.
    let mut names: HashSet<String> = HashSet::new();
    let mut vrids: HashMap<(u8, String, Family), usize> = HashMap::new();
    for s in &tree {
        match s.key.as_str() {
            "global_defs" => {}
            "vrrp_instance" => {
                if let Some(i) = parse_instance(&mut ctx, s, &g) {
                    let vkey = (i.vrid, i.interface.clone(), i.family);
                    if names.contains(&i.name) {
                        ctx.err(s.line, format!("duplicate vrrp_instance '{}'", i.name));
                    } else if let Some(o) = vrids.get(&vkey).map(|&k| &instances[k]) {
                        ctx.err(
                            s.line,
                            format!(
                                "virtual_router_id {} on {} is already used by instance '{}' (line {})",
                                i.vrid, i.interface, o.name, o.line
                            ),
                        );
                    } else {
                        names.insert(i.name.clone());
                        vrids.insert(vkey, instances.len());
                        instances.push(i);
                    }
                }
            }
            "vrrp_sync_group" => {
                if let Some(gr) = parse_group(&mut ctx, s) {
                    groups.push(gr);
                }
            }
            "vrrp_script" => {
                if let Some(sc) = parse_script(&mut ctx, s, &mut empty_scripts) {
                    if scripts.iter().any(|o| o.name == sc.name) {
                        ctx.err(s.line, format!("duplicate vrrp_script '{}'", sc.name));
                    } else {
                        scripts.push(sc);
                    }
                }
            }
            "static_ipaddress" => vip::parse_vip_block(&mut ctx, s, &mut st_addrs),
            "static_routes" => route::parse_routes(&mut ctx, s, &mut st_routes),
            "static_rules" => route::parse_rules(&mut ctx, s, &mut st_rules),
            _ => ctx.unknown(s, "the top level"),
        }
    }
    check_members(&mut ctx, &groups, &instances);
    for i in &mut instances {
        let owner = format!("vrrp_instance {}", i.name);
        script::drop_empty(&mut ctx, &owner, &mut i.track_scripts, &empty_scripts);
    }
    for g in &mut groups {
        let owner = format!("vrrp_sync_group {}", g.name);
        script::drop_empty(&mut ctx, &owner, &mut g.track_scripts, &empty_scripts);
    }
    let owners = instances
        .iter()
        .map(|i| (format!("vrrp_instance {}", i.name), &i.track_scripts))
        .chain(
            groups
                .iter()
                .map(|g| (format!("vrrp_sync_group {}", g.name), &g.track_scripts)),
        )
        .collect::<Vec<_>>();
    check_tracked(
        &mut ctx,
        &scripts,
        owners
            .iter()
            .flat_map(|(o, t)| t.iter().map(move |t| (o.as_str(), t))),
    );
    if instances.is_empty() && ctx.errors.is_empty() {
        no_instance(&mut ctx, &tree);
    }
    if !ctx.errors.is_empty() {
        ctx.errors.sort_by_key(|d| d.line);
        ctx.errors.dedup();
        return Err(ConfigError(ctx.errors));
    }
    Ok(Config {
        router_id: g.router_id,
        instances,
        sync_groups: groups,
        scripts,
        static_addresses: st_addrs,
        static_routes: st_routes,
        static_rules: st_rules,
        warnings: ctx.warnings,
        origins: Expanded::default(),
    })
}

/// A file without a `vrrp_instance`: one error, saying so plainly for an LVS-only file.
fn no_instance(ctx: &mut Ctx, tree: &[Stmt]) {
    match tree.iter().find(|s| ctx::is_lvs(&s.key)) {
        Some(s) => ctx.err(
            s.line,
            format!("this file configures only LVS ('{}' and no vrrp_instance): vrrpd does VRRP only; run keepalived for LVS", s.key),
        ),
        None => ctx.err(1, "no vrrp_instance in the configuration"),
    }
}

/// Read and parse a file without a config id.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, &LoadOptions::default())
}

/// Read and parse a file with `opts`.
pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(vec![Diag {
            file: path.to_path_buf(),
            line: 0,
            msg: format!("cannot read: {e}"),
        }])
    })?;
    parse_with(&text, path, opts, &mut FsSource)
}

/// The seed configuration, for other modules' tests.
#[cfg(test)]
pub fn tests_seed() -> &'static str {
    tests::SEED_R1
}

#[cfg(test)]
mod tests {
    use super::test_util::p;
    use super::*;

    /// The 2009 pair's configuration as reproduced in the lab (docs/vrrp.md, The 2009 pair and the
    /// interop lab), r1 side.
    pub const SEED_R1: &str = include_str!("../../tests/data/seed-r1.conf");

    #[test]
    fn seed_config_parses_unchanged() {
        let c = p(SEED_R1).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.router_id.as_deref(), Some("lab-r1"));
        assert_eq!(c.instances.len(), 2);
        let i = &c.instances[0];
        assert_eq!(i.name, "interne");
        assert_eq!((i.vrid, i.priority, i.version), (100, 150, Version::V2));
        assert_eq!(i.advert_int(), Duration::from_secs(5));
        assert_eq!(i.wire_adver_int(), 5);
        assert_eq!(i.auth_pass, Some(*b"s3cr3tpw"));
        assert_eq!(i.vips.len(), 2);
        assert_eq!(i.vips[1].dev.as_deref(), Some("vlan20"));
        assert_eq!(i.vips[1].brd, Some(Ipv4Addr::new(10, 20, 0, 255)));
        assert_eq!(i.vip_devices(), vec!["vlan10", "vlan20"]);
        assert_eq!(
            i.notify.generic,
            Some(vec!["/path/notify.sh".to_string(), "r1".to_string()])
        );
        assert_eq!(c.sync_groups[0].members, vec!["interne", "externe"]);
    }

    #[test]
    fn unknown_keywords_warn_with_line() {
        let c = p("global_defs {\n  smtp_server 1.2.3.4\n}\nvrrp_instance a {\n interface e\n virtual_router_id 1\n  foo bar\n}\n").unwrap();
        let w: Vec<String> = c.warnings.iter().map(|d| d.to_string()).collect();
        assert!(w[0].starts_with("k.conf:2: unknown"), "{w:?}");
        assert!(w[1].starts_with("k.conf:7: unknown"), "{w:?}");
    }

    #[test]
    fn errors_carry_file_and_line() {
        let e = p("vrrp_instance a {\n interface e\n virtual_router_id 300\n priority x\n}\n")
            .unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("k.conf:3: error: 'virtual_router_id' must be a number from 1 to 255"),
            "{s}"
        );
        assert!(s.contains("k.conf:4: error: 'priority'"), "{s}");
        let e = p("vrrp_instance a {\n interface e\n").unwrap_err();
        assert!(e.to_string().contains("missing '}'"));
        let e = p("vrrp_instance a {\n interface e\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.300/24\n }\n}\n").unwrap_err();
        assert!(e.to_string().starts_with("k.conf:5: error:"), "{e}");
        let e = p("vrrp_sync_group g {\n group {\n nope\n }\n}\nvrrp_instance a {\n interface e\n virtual_router_id 1\n}\n").unwrap_err();
        assert!(e.to_string().contains("no vrrp_instance named 'nope'"));
    }

    #[test]
    fn duplicate_vrid_rejected() {
        let e = p("vrrp_instance a {\n interface e\n virtual_router_id 1\n}\nvrrp_instance b {\n interface e\n virtual_router_id 1\n}\n").unwrap_err();
        assert!(e.to_string().contains("k.conf:5:"), "{e}");
    }
}

/// Fuzz body (fuzz/fuzz_targets/config.rs, tests/robust.rs): any bytes give a configuration
/// or `file:line` errors, never a panic.
pub fn fuzz_one(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match parse_str(&text, Path::new("fuzz.conf")) {
        Ok(c) => {
            for i in &c.instances {
                assert!(i.vips.len() <= 255 && i.vrid >= 1);
            }
        }
        Err(e) => {
            assert!(!e.0.is_empty());
            assert!(e.0.iter().all(|d| d.line >= 1));
        }
    }
}

/// Hostile inputs: nesting, size (docs/security-vrrpd.md, Configuration bounds).
#[cfg(test)]
mod bounds {
    use super::lexer::{tokenize, MAX_DEPTH, STEPS};
    use super::test_util::p;

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "a {\n".repeat(100_000);
        let e = p(&text).unwrap_err().to_string();
        let at = MAX_DEPTH + 1;
        assert!(
            e.contains(&format!(
                "k.conf:{at}: error: blocks nested deeper than {MAX_DEPTH} levels"
            )),
            "{}",
            &e[..e.len().min(500)]
        );
        // Inside an instance too, and the instance around it still parses.
        let mut t = String::from("vrrp_instance a {\n interface e1\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n }\n x ");
        t.push_str(&"{ ".repeat(100_000));
        t.push_str(&"} ".repeat(100_000));
        t.push_str("\n}\n");
        let e = p(&t).unwrap_err().to_string();
        assert!(e.contains("k.conf:7: error: blocks nested deeper"), "{e}");
    }

    /// A file of `n` instances separated by runs of blank lines (the old quadratic case).
    fn long_file(n: usize) -> String {
        let mut s = String::new();
        for k in 0..n {
            s.push_str(&format!(
                "vrrp_instance i{k} {{\n interface e{}\n virtual_router_id {}\n virtual_ipaddress {{\n 10.{}.{}.1/24\n }}\n}}\n",
                k / 200,
                k % 200 + 1,
                (k / 250) % 250,
                k % 250
            ));
            s.push_str(&"\n".repeat(30));
        }
        s
    }

    fn steps(text: &str) -> u64 {
        STEPS.with(|c| c.set(0));
        let cfg = p(text).unwrap();
        assert!(!cfg.instances.is_empty());
        STEPS.with(|c| c.get())
    }

    #[test]
    fn parsing_is_linear() {
        let one = long_file(8_000); // about 1 MB
        let four = long_file(32_000);
        assert!(
            one.len() > 900_000 && four.len() > 3_600_000,
            "{}",
            one.len()
        );
        let (s1, s4) = (steps(&one), steps(&four));
        assert!(s4 <= s1 * 9 / 2, "{s1} steps for 1 MB, {s4} for 4 MB");
        // Blank lines are one token per run, not one per line.
        let blank = format!("{}vrrp_instance a {{\n}}\n", "\n".repeat(1_000_000));
        assert!(tokenize(&blank).len() < 10);
    }

    #[test]
    fn ten_megabytes_parse() {
        let ten = long_file(80_000);
        assert!(ten.len() > 9_000_000);
        assert_eq!(p(&ten).unwrap().instances.len(), 80_000);
    }
}

/// Helpers the unit tests of every part share.
#[cfg(test)]
mod test_util {
    use std::path::Path;

    use super::ctx::Ctx;
    use super::lexer::{build_tree, tokenize, Stmt};
    use super::{parse_str, Config, ConfigError, Diag};

    pub(super) fn p(s: &str) -> Result<Config, ConfigError> {
        parse_str(s, Path::new("k.conf"))
    }

    /// The first statement of `text`, as the parser sees it.
    pub(super) fn stmt(text: &str) -> Stmt {
        let toks = tokenize(text);
        let mut errs = Vec::new();
        let tree = build_tree(&toks, &mut 0, 0, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        tree.into_iter().next().unwrap()
    }

    pub(super) fn ctx() -> Ctx<'static> {
        Ctx {
            file: Path::new("t.conf"),
            errors: vec![],
            warnings: vec![],
        }
    }

    pub(super) fn msgs(d: &[Diag]) -> Vec<String> {
        d.iter().map(|d| format!("{}: {}", d.line, d.msg)).collect()
    }
}
