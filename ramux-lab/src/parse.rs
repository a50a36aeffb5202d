//! lab.toml -> [`LabFile`], the file as written (every value located, nothing defaulted yet).
//! Each wrong key or value is reported and skipped, so one run lists all of them.

use std::net::Ipv4Addr;

use ramux_contract::mac::Mac;
use ramux_contract::Role;

use crate::diag::{At, Pos};
use crate::model::{
    Accel, Address, Boot, Engine, Expect, Fault, Firmware, Gateway, LabTest, RadiusMethod, Switch,
    TestKind, Uplink, VlanMode, Vxlan,
};
use crate::raw::{Cx, Entries, Raw, Spanned, Table};
use crate::units::{parse_duration, parse_memory_mib};

const TOP_KEYS: &[&str] = &[
    "name", "site", "images", "secrets", "defaults", "switch", "uplink", "node", "test",
];
const DEFAULT_KEYS: &[&str] = &[
    "profile",
    "memory",
    "cpus",
    "accel",
    "boot",
    "firmware",
    "ready_timeout",
    "enabled",
    "qemu_args",
    "model",
];
const NODE_KEYS: &[&str] = &[
    "profile",
    "role",
    "iso",
    "memory",
    "cpus",
    "accel",
    "boot",
    "firmware",
    "ready_timeout",
    "after",
    "enabled",
    "qemu_args",
    "model",
    "address",
    "secrets",
    "key",
    "nics",
];
const NIC_KEYS: &[&str] = &[
    "switch", "port", "access", "trunk", "native", "mac", "model",
];
const SWITCH_KEYS: &[&str] = &["engine", "ports", "vlans", "vxlan"];
const UPLINK_KEYS: &[&str] = &["switch", "port", "access", "trunk", "native", "bridge"];
const TEST_KEYS: &[&str] = &[
    "name",
    "from",
    "expect",
    "listen",
    "ping",
    "tcp",
    "udp",
    "dhcp",
    "dns",
    "addresses",
    "failover",
    "fault",
    "probe",
    "max_outage",
    "matrix",
    "down",
    "radius",
    "server",
    "identity",
    "vlan",
    "vpn",
    "resolve",
];
/// The keys of `[[test]]` that say what it does; exactly one per test.
const TEST_KINDS: &[&str] = &[
    "ping", "tcp", "udp", "dhcp", "dns", "radius", "failover", "matrix", "vpn",
];

/// The settings `[defaults]` and a node share; a node's own value wins.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub profile: Option<At<String>>,
    pub memory_mib: Option<At<u64>>,
    pub cpus: Option<At<u32>>,
    pub accel: Option<At<Accel>>,
    pub boot: Option<At<Boot>>,
    pub firmware: Option<At<Firmware>>,
    pub ready_timeout: Option<At<std::time::Duration>>,
    pub enabled: Option<At<bool>>,
    pub qemu_args: Option<At<Vec<String>>>,
    /// The NICs' QEMU device model.
    pub model: Option<At<String>>,
}

impl Settings {
    /// `self` where set, else `base`.
    pub fn over(&self, base: &Settings) -> Settings {
        fn pick<T: Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
            a.clone().or_else(|| b.clone())
        }
        Settings {
            profile: pick(&self.profile, &base.profile),
            memory_mib: pick(&self.memory_mib, &base.memory_mib),
            cpus: pick(&self.cpus, &base.cpus),
            accel: pick(&self.accel, &base.accel),
            boot: pick(&self.boot, &base.boot),
            firmware: pick(&self.firmware, &base.firmware),
            ready_timeout: pick(&self.ready_timeout, &base.ready_timeout),
            enabled: pick(&self.enabled, &base.enabled),
            qemu_args: pick(&self.qemu_args, &base.qemu_args),
            model: pick(&self.model, &base.model),
        }
    }
}

/// A NIC as written.
#[derive(Debug, Clone)]
pub struct NicSpec {
    pub pos: Pos,
    pub switch: Option<At<String>>,
    pub port: Option<At<u16>>,
    pub vlan: Option<At<VlanMode>>,
    pub mac: Option<At<Mac>>,
    pub model: Option<At<String>>,
}

/// A node as written.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: At<String>,
    pub settings: Settings,
    pub role: Option<At<Role>>,
    /// `role` was written (maybe unreadable, then already reported).
    pub role_given: bool,
    pub iso: Option<At<String>>,
    pub after: Vec<At<String>>,
    pub address: Option<At<Address>>,
    /// A packed site secrets overlay for this node (`vbuild secrets pack`), or `true`: the
    /// lab's secrets directory, packed at `up`.
    pub secrets: Option<At<NodeSecrets>>,
    /// The node's site key image (`vlaunch --key`), relative to the lab directory.
    pub key: Option<At<String>>,
    pub nics: Vec<NicSpec>,
}

/// A node's `secrets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeSecrets {
    File(String),
    Lab,
}

/// The lab file as written.
#[derive(Debug, Clone, Default)]
pub struct LabFile {
    pub name: Option<At<String>>,
    pub site: Option<At<String>>,
    pub images: Option<At<String>>,
    pub secrets: Option<At<String>>,
    pub defaults: Settings,
    pub switches: Vec<Switch>,
    pub uplinks: Vec<Uplink>,
    pub nodes: Vec<NodeSpec>,
    pub tests: Vec<LabTest>,
}

/// Read the top-level table.
pub fn lab_file(root: &Entries, cx: &mut Cx) -> LabFile {
    let mut t = Table::new(root, "the top level", TOP_KEYS);
    let mut lab = LabFile {
        name: t
            .take("name")
            .and_then(|v| cx.string(v, "name", "\"cenbg2009\"")),
        site: t
            .take("site")
            .and_then(|v| cx.string(v, "site", "\"../profiles/router/site.lw\"")),
        images: t
            .take("images")
            .and_then(|v| cx.string(v, "images", "\"../images\"")),
        secrets: t
            .take("secrets")
            .and_then(|v| cx.string(v, "secrets", "\"../secrets/seed\"")),
        ..LabFile::default()
    };
    if let Some(v) = t.take("defaults") {
        if let Some(d) = cx.table(v, "defaults", "{ memory = \"256M\" }") {
            let mut dt = Table::new(d, "[defaults]", DEFAULT_KEYS);
            lab.defaults = settings(&mut dt, cx);
            dt.finish(cx);
        }
    }
    lab.switches = named(&mut t, "switch", cx, switch);
    lab.uplinks = named(&mut t, "uplink", cx, uplink);
    lab.nodes = named(&mut t, "node", cx, node);
    lab.tests = tests(&mut t, cx);
    t.finish(cx);
    lab
}

/// `[KIND.NAME]` tables in file order, each read by `f`.
fn named<T>(
    t: &mut Table,
    kind: &str,
    cx: &mut Cx,
    f: fn(At<String>, &Entries, &mut Cx) -> Option<T>,
) -> Vec<T> {
    let Some(v) = t.take(kind) else {
        return Vec::new();
    };
    let example = format!("[{kind}.NAME]");
    let Some(items) = cx.table(v, kind, &example) else {
        return Vec::new();
    };
    let mut items: Vec<_> = items.iter().collect();
    items.sort_by_key(|(k, _)| k.start());
    let mut out = Vec::new();
    for (k, body) in items {
        let name = At::new(k.get_ref().clone(), cx.pos(k.start()));
        let example = format!("[{kind}.{}] with keys", name.value);
        if let Some(body) = cx.table(body, &format!("{kind}.{}", name.value), &example) {
            out.extend(f(name, body, cx));
        }
    }
    out
}

/// One of a few words, e.g. accel = auto|kvm|tcg.
fn choice<T: Copy>(cx: &mut Cx, v: &Spanned<Raw>, key: &str, words: &[(&str, T)]) -> Option<At<T>> {
    let list: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
    let example = format!("\"{}\"", list[0]);
    cx.parsed(v, key, &example, |s| {
        words
            .iter()
            .find(|(w, _)| *w == s)
            .map(|(_, x)| *x)
            .ok_or_else(|| format!("{s:?} is not one of {}", list.join(", ")))
    })
}

fn settings(t: &mut Table, cx: &mut Cx) -> Settings {
    let accel = [
        ("auto", Accel::Auto),
        ("kvm", Accel::Kvm),
        ("tcg", Accel::Tcg),
    ];
    let boot = [("cdrom", Boot::Cdrom), ("usb", Boot::Usb)];
    let firmware = [
        ("bios", Firmware::Bios),
        ("uefi", Firmware::Uefi),
        ("secureboot", Firmware::SecureBoot),
    ];
    Settings {
        profile: t
            .take("profile")
            .and_then(|v| cx.string(v, "profile", "\"router\"")),
        memory_mib: t
            .take("memory")
            .and_then(|v| cx.parsed(v, "memory", "\"256M\"", parse_memory_mib)),
        cpus: t
            .take("cpus")
            .and_then(|v| cx.int(v, "cpus", 1, 64))
            .map(|n| At::new(n.value as u32, n.pos)),
        accel: t.take("accel").and_then(|v| choice(cx, v, "accel", &accel)),
        boot: t.take("boot").and_then(|v| choice(cx, v, "boot", &boot)),
        firmware: t
            .take("firmware")
            .and_then(|v| choice(cx, v, "firmware", &firmware)),
        ready_timeout: t
            .take("ready_timeout")
            .and_then(|v| cx.parsed(v, "ready_timeout", "\"240s\"", parse_duration)),
        enabled: t.take("enabled").and_then(|v| cx.boolean(v, "enabled")),
        qemu_args: t
            .take("qemu_args")
            .and_then(|v| strings(cx, v, "qemu_args", "[\"-rtc\", \"base=utc\"]")),
        model: t
            .take("model")
            .and_then(|v| cx.string(v, "model", "\"virtio-net-pci\"")),
    }
}

/// An array of strings.
fn strings(cx: &mut Cx, v: &Spanned<Raw>, key: &str, example: &str) -> Option<At<Vec<String>>> {
    let items = cx.array(v, key, example)?;
    let out: Vec<String> = items
        .iter()
        .filter_map(|x| cx.string(x, key, example).map(|s| s.value))
        .collect();
    (out.len() == items.len()).then(|| At::new(out, cx.at_of(v)))
}

fn node(name: At<String>, body: &Entries, cx: &mut Cx) -> Option<NodeSpec> {
    let mut t = Table::new(body, format!("[node.{}]", name.value), NODE_KEYS);
    let settings = settings(&mut t, cx);
    let role_v = t.take("role");
    let role_given = role_v.is_some();
    let role = role_v.and_then(|v| cx.parsed(v, "role", "\"MASTER\"", |s| s.parse::<Role>()));
    let iso = t
        .take("iso")
        .and_then(|v| cx.string(v, "iso", "\"images/router-master.iso\""));
    let after = t
        .take("after")
        .and_then(|v| cx.array(v, "after", "[\"RT1\"]"))
        .map(|a| {
            a.iter()
                .filter_map(|x| cx.string(x, "after", "[\"RT1\"]"))
                .collect()
        })
        .unwrap_or_default();
    let address = t.take("address").and_then(|v| {
        cx.parsed(
            v,
            "address",
            "\"dhcp\" or \"172.16.20.50/24 via vip\"",
            parse_address,
        )
    });
    let secrets = t.take("secrets").and_then(|v| node_secrets(cx, v));
    let key = t
        .take("key")
        .and_then(|v| cx.string(v, "key", "\"keys/rt1.img\""));
    let nics = t.take("nics").map(|v| nics(cx, v)).unwrap_or_default();
    t.finish(cx);
    Some(NodeSpec {
        name,
        settings,
        role,
        role_given,
        iso,
        after,
        address,
        secrets,
        key,
        nics,
    })
}

/// `secrets = "FILE"` (an overlay) or `secrets = true` (the lab's directory, packed at `up`).
fn node_secrets(cx: &mut Cx, v: &Spanned<Raw>) -> Option<At<NodeSecrets>> {
    let example = "true (the lab's secrets directory) or \"../secrets/dns1.cpio\"";
    match v.get_ref() {
        Raw::Bool(true) => Some(At::new(NodeSecrets::Lab, cx.at_of(v))),
        Raw::Str(s) => Some(At::new(NodeSecrets::File(s.clone()), cx.at_of(v))),
        _ => {
            cx.wrong_type(v, "secrets", "true or a file name", example);
            None
        }
    }
}

fn nics(cx: &mut Cx, v: &Spanned<Raw>) -> Vec<NicSpec> {
    let example = "[ { switch = \"sw0\", access = 10 } ]";
    let Some(items) = cx.array(v, "nics", example) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(body) = cx.table(item, "nics", example) else {
            continue;
        };
        let pos = cx.at_of(item);
        let mut t = Table::new(body, format!("NIC {i} (eth{i})"), NIC_KEYS);
        let mac_example = "\"00:16:3e:12:34:56\"";
        out.push(NicSpec {
            pos,
            switch: t
                .take("switch")
                .and_then(|v| cx.string(v, "switch", "\"sw0\"")),
            port: t.take("port").and_then(|v| port(cx, v)),
            vlan: vlan_mode(&mut t, cx, pos),
            mac: t
                .take("mac")
                .and_then(|v| cx.parsed(v, "mac", mac_example, |s| s.parse::<Mac>())),
            model: t
                .take("model")
                .and_then(|v| cx.string(v, "model", "\"virtio-net-pci\"")),
        });
        t.finish(cx);
    }
    out
}

/// A port number: its range against the switch is checked by `validate`.
fn port(cx: &mut Cx, v: &Spanned<Raw>) -> Option<At<u16>> {
    cx.int(v, "port", 1, 65535)
        .map(|n| At::new(n.value as u16, n.pos))
}

fn vid(cx: &mut Cx, v: &Spanned<Raw>, key: &str) -> Option<u16> {
    cx.int(v, key, 1, 4094).map(|n| n.value as u16)
}

/// `access = VID`, or `trunk = [VIDs]` with an optional `native = VID`.
fn vlan_mode(t: &mut Table, cx: &mut Cx, pos: Pos) -> Option<At<VlanMode>> {
    let access = t.take("access");
    let trunk = t.take("trunk");
    let native = t.take("native");
    let native_vid = native.and_then(|v| vid(cx, v, "native"));
    match (access, trunk) {
        (Some(a), None) => {
            if let Some(n) = native {
                let p = cx.at_of(n);
                cx.diags.error(
                    p,
                    "`native` is for trunks; an access port is untagged already",
                    "remove `native`, or write trunk = [...] instead of access",
                );
            }
            vid(cx, a, "access").map(|v| At::new(VlanMode::Access(v), cx.at_of(a)))
        }
        (None, Some(tr)) => {
            let items = cx.array(tr, "trunk", "[10, 20]")?;
            let vids: Vec<u16> = items.iter().filter_map(|x| vid(cx, x, "trunk")).collect();
            (vids.len() == items.len()).then(|| {
                At::new(
                    VlanMode::Trunk {
                        vids,
                        native: native_vid,
                    },
                    cx.at_of(tr),
                )
            })
        }
        (Some(a), Some(_)) => {
            let p = cx.at_of(a);
            let fix = "keep one: access = VID for one untagged VLAN, \
                       trunk = [VIDs] (+ native = VID) for tagged ones";
            cx.diags
                .error(p, "a port is either `access` or `trunk`, not both", fix);
            None
        }
        (None, None) => {
            cx.diags.error(
                pos,
                "no VLAN: a port needs `access` or `trunk`",
                "add access = VID (untagged) or trunk = [VIDs] (tagged)",
            );
            None
        }
    }
}

/// `dhcp`, `A.B.C.D/N`, `A.B.C.D/N via vip`, `A.B.C.D/N via A.B.C.D`.
pub fn parse_address(s: &str) -> Result<Address, String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    let (cidr, gateway) = match words.as_slice() {
        ["dhcp"] => return Ok(Address::Dhcp),
        [cidr] => (*cidr, Gateway::None),
        [cidr, "via", "vip"] => (*cidr, Gateway::Vip),
        [cidr, "via", gw] => {
            let gw = gw
                .parse::<Ipv4Addr>()
                .map_err(|_| format!("gateway {gw:?} is not an IPv4 address or `vip`"))?;
            (*cidr, Gateway::Addr(gw))
        }
        _ => return Err(format!("cannot read {s:?}")),
    };
    let (a, p) = cidr
        .split_once('/')
        .ok_or_else(|| format!("{cidr:?} has no /prefix"))?;
    let addr = a
        .parse::<Ipv4Addr>()
        .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
    let prefix = p.parse::<u8>().ok().filter(|p| (1..=32).contains(p));
    let prefix = prefix.ok_or_else(|| format!("prefix /{p} is not 1-32"))?;
    Ok(Address::Static {
        addr,
        prefix,
        gateway,
    })
}

fn switch(name: At<String>, body: &Entries, cx: &mut Cx) -> Option<Switch> {
    let mut t = Table::new(body, format!("[switch.{}]", name.value), SWITCH_KEYS);
    let engines = [
        ("vswitch", Engine::Vswitch),
        ("vde_switch", Engine::VdeSwitch),
    ];
    let engine = t
        .take("engine")
        .and_then(|v| choice(cx, v, "engine", &engines));
    let ports = t.take("ports").and_then(|v| cx.int(v, "ports", 1, 4096));
    let vlans = t.take("vlans").map(|v| vlans(cx, v)).unwrap_or_default();
    let vxlan = t.take("vxlan").and_then(|v| vxlan(cx, v));
    t.finish(cx);
    Some(Switch {
        name,
        engine: engine.map_or(Engine::Vswitch, |e| e.value),
        ports: ports.map_or(32, |p| p.value as u16),
        vlans,
        vxlan,
    })
}

/// `vlans = { 10 = "srv", 20 = "users" }`.
fn vlans(cx: &mut Cx, v: &Spanned<Raw>) -> std::collections::BTreeMap<u16, At<String>> {
    let mut out = std::collections::BTreeMap::new();
    let Some(items) = cx.table(v, "vlans", "{ 10 = \"srv\" }") else {
        return out;
    };
    for (k, label) in items {
        let pos = cx.pos(k.start());
        match k
            .get_ref()
            .parse::<u16>()
            .ok()
            .filter(|n| (1..=4094).contains(n))
        {
            Some(vid) => {
                let label = cx
                    .string(label, "vlans", "{ 10 = \"srv\" }")
                    .map_or(String::new(), |s| s.value);
                out.insert(vid, At::new(label, pos));
            }
            None => cx.diags.error(
                pos,
                format!("VLAN id {:?} is not a number from 1 to 4094", k.get_ref()),
                "write vlans = { 10 = \"srv\", 20 = \"users\" }",
            ),
        }
    }
    out
}

fn vxlan(cx: &mut Cx, v: &Spanned<Raw>) -> Option<Vxlan> {
    let example = "{ remote = \"192.0.2.2\", vni = 42 }";
    let body = cx.table(v, "vxlan", example)?;
    let mut t = Table::new(body, "vxlan", &["remote", "vni"]);
    let remote = t
        .take("remote")
        .and_then(|v| cx.string(v, "remote", "\"192.0.2.2\""));
    let vni = t
        .take("vni")
        .and_then(|v| cx.int(v, "vni", 1, (1 << 24) - 1));
    t.finish(cx);
    if remote.is_none() || vni.is_none() {
        let p = cx.at_of(v);
        cx.diags.error(
            p,
            "vxlan needs `remote` and `vni`",
            format!("write vxlan = {example}"),
        );
    }
    Some(Vxlan {
        remote: remote?.value,
        vni: vni?.value as u32,
    })
}

fn uplink(name: At<String>, body: &Entries, cx: &mut Cx) -> Option<Uplink> {
    let mut t = Table::new(body, format!("[uplink.{}]", name.value), UPLINK_KEYS);
    let owner = At::new(format!("uplink {}", name.value), name.pos);
    let switch = required(&mut t, cx, &owner, "switch", "\"sw0\"");
    let port = t.take("port").and_then(|v| port(cx, v));
    let vlan = vlan_mode(&mut t, cx, name.pos);
    let bridge = required(&mut t, cx, &owner, "bridge", "\"br0\"");
    if port.is_none() {
        cx.diags.error(
            name.pos,
            format!("uplink {} has no `port`", name.value),
            "give the switch port the TAP plugs into: port = 32",
        );
    }
    t.finish(cx);
    Some(Uplink {
        name,
        switch: switch?,
        port: port?,
        vlan: vlan?,
        bridge: bridge?,
    })
}

/// A string key that must be present.
fn required(
    t: &mut Table,
    cx: &mut Cx,
    owner: &At<String>,
    key: &str,
    example: &str,
) -> Option<At<String>> {
    match t.take(key) {
        Some(v) => cx.string(v, key, example),
        None => {
            cx.diags.error(
                owner.pos,
                format!("{} has no `{key}`", owner.value),
                format!("add {key} = {example}"),
            );
            None
        }
    }
}

/// `[[test]]` entries.
fn tests(t: &mut Table, cx: &mut Cx) -> Vec<LabTest> {
    let Some(v) = t.take("test") else {
        return Vec::new();
    };
    let example = "[[test]] tables";
    let Some(items) = cx.array(v, "test", example) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        if let Some(body) = cx.table(item, "test", example) {
            out.extend(test(cx, body, cx.at_of(item)));
        }
    }
    out
}

fn test(cx: &mut Cx, body: &Entries, pos: Pos) -> Option<LabTest> {
    let mut t = Table::new(body, "[[test]]", TEST_KEYS);
    let name = t
        .take("name")
        .and_then(|v| cx.string(v, "name", "\"users reach web1\""));
    let from = t.take("from").and_then(|v| cx.string(v, "from", "\"MV2\""));
    let listen = t
        .take("listen")
        .and_then(|v| cx.string(v, "listen", "\"RT1\""));
    let expects = [
        ("ok", Expect::Ok),
        ("blocked", Expect::Blocked),
        ("accept", Expect::Ok),
        ("reject", Expect::Blocked),
    ];
    let expect_v = t.take("expect");
    let expect = expect_v.and_then(|v| choice(cx, v, "expect", &expects));
    let down = t
        .take("down")
        .and_then(|v| cx.string(v, "down", "\"DNS1\""));
    let kind = test_kind(&mut t, cx, pos);
    t.finish(cx);
    if let (Some(v), Some(k)) = (expect_v, &kind) {
        expect_words(cx, v, k);
    }
    let Some(name) = name else {
        cx.diags
            .error(pos, "a test has no `name`", "add name = \"what it shows\"");
        return None;
    };
    Some(LabTest {
        name,
        pos,
        from,
        kind: kind?,
        expect: expect.map_or(Expect::Ok, |e| e.value),
        listen,
        down,
    })
}

/// `accept`/`reject` belong to radius tests, `ok`/`blocked` to the others.
fn expect_words(cx: &mut Cx, v: &Spanned<Raw>, kind: &TestKind) {
    let Raw::Str(word) = v.get_ref() else { return };
    let radius = matches!(kind, TestKind::Radius { .. });
    if radius != matches!(word.as_str(), "accept" | "reject") {
        let fix = if radius {
            "a radius test expects \"accept\" or \"reject\""
        } else {
            "this test expects \"ok\" or \"blocked\""
        };
        let pos = cx.at_of(v);
        cx.diags.error(
            pos,
            format!("`expect` = {word:?} does not fit this test"),
            fix,
        );
    }
}

/// The one kind key of a test and the keys that go with it.
fn test_kind(t: &mut Table, cx: &mut Cx, pos: Pos) -> Option<TestKind> {
    let present: Vec<&str> = TEST_KINDS
        .iter()
        .copied()
        .filter(|k| t.entries.iter().any(|(e, _)| e.get_ref() == k))
        .collect();
    if present.len() != 1 {
        for k in &present {
            let _ = t.take(k);
        }
        let what = if present.is_empty() {
            "says nothing to do".to_string()
        } else {
            format!("has several kinds ({})", present.join(", "))
        };
        cx.diags.error(
            pos,
            format!("this test {what}"),
            format!("give exactly one of {}", TEST_KINDS.join(", ")),
        );
        return None;
    }
    let v = t.take(present[0])?;
    let target = |cx: &mut Cx, key: &str| cx.string(v, key, "\"10.1.1.50\"");
    match present[0] {
        "ping" => Some(TestKind::Ping {
            target: target(cx, "ping")?,
        }),
        "tcp" => host_port(cx, v, "tcp").map(|(target, port)| TestKind::Tcp { target, port }),
        "udp" => host_port(cx, v, "udp").map(|(target, port)| TestKind::Udp { target, port }),
        "dhcp" => cx.boolean(v, "dhcp").map(|_| TestKind::Dhcp),
        "matrix" => cx.boolean(v, "matrix").map(|_| TestKind::Matrix),
        "dns" => {
            let name = cx.string(v, "dns", "\"web1.example\"")?;
            let addresses = t
                .take("addresses")
                .and_then(|a| strings(cx, a, "addresses", "[\"172.16.10.21\"]"));
            Some(TestKind::Dns {
                name,
                addresses: addresses.map_or_else(Vec::new, |a| a.value),
            })
        }
        "radius" => radius(t, cx, v, pos),
        "vpn" => vpn(t, cx, v),
        _ => failover(t, cx, v, pos),
    }
}

/// `radius = "mab"|"peap"|"tls"`, `server`, `identity`, optional `vlan`.
fn radius(t: &mut Table, cx: &mut Cx, v: &Spanned<Raw>, pos: Pos) -> Option<TestKind> {
    let methods = [
        ("mab", RadiusMethod::Mab),
        ("peap", RadiusMethod::Peap),
        ("tls", RadiusMethod::Tls),
    ];
    let method = choice(cx, v, "radius", &methods);
    let (server_v, id_v) = (t.take("server"), t.take("identity"));
    let examples = [
        ("server", "\"dns1\""),
        (
            "identity",
            "\"52:54:00:20:00:30\" (MAB), \"alice\" (PEAP, TLS)",
        ),
    ];
    for ((key, example), given) in examples.iter().zip([server_v.is_some(), id_v.is_some()]) {
        if !given {
            cx.diags.error(
                pos,
                format!("a radius test needs `{key}`"),
                format!("add {key} = {example}"),
            );
        }
    }
    let server = server_v.and_then(|s| cx.string(s, "server", "\"dns1\""));
    let identity = id_v.and_then(|s| cx.string(s, "identity", "\"alice\""));
    let vlan = t.take("vlan").and_then(|x| vid(cx, x, "vlan"));
    Some(TestKind::Radius {
        method: method?.value,
        server: server?,
        identity: identity?,
        vlan,
    })
}

/// The words of `fault`.
const FAULTS: [(&str, Fault); 3] = [
    ("crash", Fault::Crash),
    ("poweroff", Fault::Poweroff),
    ("unplug", Fault::Unplug),
];

/// `vpn = "alice"`, optional `resolve` (+ `addresses`), optional `fault` + `max_outage`.
fn vpn(t: &mut Table, cx: &mut Cx, v: &Spanned<Raw>) -> Option<TestKind> {
    let user = cx.string(v, "vpn", "\"alice\"");
    let resolve = t
        .take("resolve")
        .and_then(|r| cx.string(r, "resolve", "\"web1.lab.demo.fr\""));
    let addresses = t
        .take("addresses")
        .and_then(|a| strings(cx, a, "addresses", "[\"172.16.10.21\"]"));
    let fault_v = t.take("fault");
    let fault = fault_v.and_then(|f| choice(cx, f, "fault", &FAULTS));
    let max_v = t.take("max_outage");
    let max = max_v.and_then(|m| cx.parsed(m, "max_outage", "\"90s\"", parse_duration));
    if fault_v.is_some() != max_v.is_some() {
        let at = fault_v.or(max_v).map(|x| cx.at_of(x));
        cx.diags.error(
            at.unwrap_or_default(),
            "a vpn failover needs both `fault` and `max_outage`",
            "add fault = \"crash\" and max_outage = \"90s\", or neither",
        );
    }
    let failover = match (fault, max) {
        (Some(f), Some(m)) => Some((f.value, m.value)),
        _ => None,
    };
    Some(TestKind::Vpn {
        user: user?,
        resolve,
        addresses: addresses.map_or_else(Vec::new, |a| a.value),
        failover,
    })
}

/// `tcp = "web1:443"`.
fn host_port(cx: &mut Cx, v: &Spanned<Raw>, key: &str) -> Option<(At<String>, u16)> {
    let s = cx.string(v, key, "\"web1:443\"")?;
    let parsed = s
        .value
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok().filter(|p| *p > 0)?)));
    match parsed {
        Some((h, p)) if !h.is_empty() => Some((At::new(h.to_string(), s.pos), p)),
        _ => {
            cx.diags.error(
                s.pos,
                format!("`{key}` = {:?} is not HOST:PORT", s.value),
                format!("write it like {key} = \"web1:443\""),
            );
            None
        }
    }
}

fn failover(t: &mut Table, cx: &mut Cx, v: &Spanned<Raw>, pos: Pos) -> Option<TestKind> {
    let node = cx.string(v, "failover", "\"RT1\"");
    let fault = t
        .take("fault")
        .and_then(|f| choice(cx, f, "fault", &FAULTS));
    let (probe_v, max_v) = (t.take("probe"), t.take("max_outage"));
    for (missing, key, example) in [
        (probe_v.is_none(), "probe", "\"10.1.1.50\""),
        (max_v.is_none(), "max_outage", "\"17s\""),
    ] {
        if missing {
            cx.diags.error(
                pos,
                format!("a failover test needs `{key}`"),
                format!("add {key} = {example}"),
            );
        }
    }
    let probe = probe_v.and_then(|p| cx.string(p, "probe", "\"10.1.1.50\""));
    let max = max_v.and_then(|m| cx.parsed(m, "max_outage", "\"17s\"", parse_duration));
    Some(TestKind::Failover {
        node: node?,
        fault: fault.map_or(Fault::Crash, |f| f.value),
        probe: probe?,
        max_outage: max?.value,
    })
}
