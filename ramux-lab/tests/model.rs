//! The resolution rules on small labs written inline: inheritance, ports picked, MACs derived,
//! ISO paths, start waves and cycles, and the site checks with hand-made facts.

mod common;

use std::path::Path;
use std::time::Duration;

use ramux_contract::mac::derived;
use ramux_lab::model::{Accel, Address, Boot, Firmware, Gateway, VlanMode};
use ramux_lab::{check_text, render_all, start_plan, Lab};

const SWITCH: &str =
    "[switch.sw0]\nports = 8\nvlans = { 10 = \"srv\", 20 = \"users\", 99 = \"ext\" }\n";

/// A lab that must be clean.
fn lab(text: &str) -> Lab {
    let c = check_text(text, "lab.toml", Path::new("/labs"), None);
    assert!(c.ok(), "{}", render_all(&c.diagnostics));
    c.lab.unwrap()
}

/// The diagnostics of a lab, rendered.
fn errors(text: &str) -> String {
    render_all(&check_text(text, "lab.toml", Path::new("/labs"), None).diagnostics)
}

fn client(name: &str, nic: &str, extra: &str) -> String {
    format!("[node.{name}]\nprofile = \"client\"\nnics = [ {nic} ]\n{extra}\n")
}

#[test]
fn node_settings_win_over_defaults_which_win_over_built_ins() {
    let text = format!(
        "name = \"inh\"\n[defaults]\nmemory = \"1G\"\naccel = \"tcg\"\nprofile = \"client\"\nmodel = \"e1000\"\n{SWITCH}\
         [node.A]\nmemory = \"512M\"\nboot = \"usb\"\nnics = [ {{ switch = \"sw0\", access = 10 }}, {{ switch = \"sw0\", access = 10, model = \"rtl8139\" }} ]\n\
         [node.B]\nprofile = \"router\"\nrole = \"BACKUP\"\nfirmware = \"uefi\"\nready_timeout = \"1m30s\"\ncpus = 2\nnics = []\n"
    );
    let lab = lab(&text);
    let (a, b) = (lab.node("A").unwrap(), lab.node("B").unwrap());
    assert_eq!(
        (a.memory_mib, a.accel, a.boot, a.firmware),
        (512, Accel::Tcg, Boot::Usb, Firmware::Bios)
    );
    assert_eq!(
        (a.cpus, a.ready_timeout, a.enabled),
        (1, Duration::from_secs(240), true)
    );
    assert_eq!(
        (a.nics[0].model.as_str(), a.nics[1].model.as_str()),
        ("e1000", "rtl8139")
    );
    assert_eq!(
        (b.memory_mib, b.firmware, b.cpus),
        (1024, Firmware::Uefi, 2)
    );
    assert_eq!(b.ready_timeout, Duration::from_secs(90));
    assert_eq!(
        b.profile.value, "router",
        "the node's profile wins over [defaults]"
    );
}

#[test]
fn built_in_defaults_and_iso_paths() {
    let text = format!(
        "name = \"iso\"\nimages = \"../images\"\n{SWITCH}{}{}[node.R]\nprofile = \"router\"\nrole = \"master\"\nnics = []\n",
        client("C", "", ""),
        client("D", "", "iso = \"own/d.iso\"\nenabled = false"),
    );
    let lab = lab(&text);
    let c = lab.node("C").unwrap();
    assert_eq!(
        (c.memory_mib, c.cpus, c.accel, c.boot, c.firmware),
        (256, 1, Accel::Auto, Boot::Cdrom, Firmware::Bios)
    );
    assert_eq!(c.address.value, Address::Unset);
    assert_eq!(c.iso, Path::new("/labs/../images/client.iso"));
    assert_eq!(
        lab.node("R").unwrap().iso,
        Path::new("/labs/../images/router-master.iso")
    );
    let d = lab.node("D").unwrap();
    assert_eq!(
        (d.iso.as_path(), d.iso_given, d.enabled),
        (Path::new("/labs/own/d.iso"), true, false)
    );
}

#[test]
fn ports_left_out_get_the_first_free_port_in_file_order() {
    let nic = |p: &str| format!("{{ switch = \"sw0\", access = 10{p} }}");
    let text = format!(
        "name = \"ports\"\n{SWITCH}[uplink.up]\nswitch = \"sw0\"\nport = 2\naccess = 99\nbridge = \"br0\"\n{}{}{}",
        client("A", &format!("{}, {}", nic(""), nic("")), ""),
        client("B", &nic(", port = 1"), ""),
        client("C", &format!("{}, {}", nic(""), nic(", port = 4")), ""),
    );
    let lab = lab(&text);
    let ports = |n: &str| {
        lab.node(n)
            .unwrap()
            .nics
            .iter()
            .map(|c| (c.port.value, c.port_auto))
            .collect::<Vec<_>>()
    };
    // 1 (B), 2 (the uplink) and 4 (C) are taken before any port is picked.
    assert_eq!(ports("A"), vec![(3, true), (5, true)]);
    assert_eq!(ports("B"), vec![(1, false)]);
    assert_eq!(ports("C"), vec![(6, true), (4, false)]);
}

#[test]
fn a_full_switch_is_reported_at_the_nic() {
    let nics = ["{ switch = \"sw0\", access = 10 }"; 9].join(", ");
    let out = errors(&format!(
        "name = \"full\"\n{SWITCH}{}",
        client("A", &nics, "")
    ));
    assert!(
        out.contains("switch sw0 has no free port left for this NIC (all 8 are taken)"),
        "{out}"
    );
    assert_eq!(out.matches("error").count(), 1, "{out}");
}

#[test]
fn macs_derive_from_lab_node_and_index_unless_given() {
    let text = format!(
        "name = \"macs\"\n{SWITCH}{}",
        client("MV1", "{ switch = \"sw0\", access = 10 }, { switch = \"sw0\", access = 20, mac = \"02:00:00:00:00:01\" }", "")
    );
    let lab = lab(&text);
    let nics = &lab.node("MV1").unwrap().nics;
    assert_eq!(nics[0].mac.value, derived("macs/MV1", 0));
    assert!(!nics[0].mac_given);
    assert_eq!(
        (nics[1].mac.value.to_string().as_str(), nics[1].mac_given),
        ("02:00:00:00:00:01", true)
    );
    // Same lab and node, same MAC; another lab, another MAC.
    let again = self::lab(&text);
    assert_eq!(again.node("MV1").unwrap().nics[0].mac, nics[0].mac);
    assert_ne!(derived("other/MV1", 0), nics[0].mac.value);
}

#[test]
fn vlan_modes_and_addresses() {
    let text = format!(
        "name = \"v\"\n{SWITCH}{}{}",
        client(
            "A",
            "{ switch = \"sw0\", trunk = [10, 20], native = 99 }",
            "address = \"172.16.10.5/24 via 172.16.10.1\""
        ),
        client(
            "B",
            "{ switch = \"sw0\", access = 20 }",
            "address = \"172.16.20.5/24 via vip\""
        ),
    );
    let lab = lab(&text);
    let a = lab.node("A").unwrap();
    assert_eq!(
        a.nics[0].vlan.value,
        VlanMode::Trunk {
            vids: vec![10, 20],
            native: Some(99)
        }
    );
    assert_eq!(a.nics[0].vlan.value.describe(), "trunk 10,20 native 99");
    let gw = |n: &str| match lab.node(n).unwrap().address.value {
        Address::Static {
            gateway, prefix, ..
        } => (gateway, prefix),
        other => panic!("{other:?}"),
    };
    assert_eq!(gw("A"), (Gateway::Addr("172.16.10.1".parse().unwrap()), 24));
    assert_eq!(gw("B"), (Gateway::Vip, 24));
}

#[test]
fn start_waves_follow_after() {
    let n = |name: &str, after: &str| client(name, "", &format!("after = [{after}]"));
    let text = format!(
        "name = \"w\"\n{SWITCH}{}{}{}{}{}",
        n("MV2", "\"RT1\", \"RT2\""),
        n("RT1", ""),
        n("DNS", "\"RT1\""),
        n("RT2", ""),
        n("VPN", "\"DNS\", \"MV2\""),
    );
    let plan = start_plan(&lab(&text)).unwrap();
    assert_eq!(
        plan.waves,
        vec![vec!["RT1", "RT2"], vec!["MV2", "DNS"], vec!["VPN"]]
    );
}

#[test]
fn disabled_nodes_are_not_planned_and_do_not_block() {
    let text = format!(
        "name = \"w\"\n{SWITCH}{}{}",
        client("A", "", "enabled = false"),
        client("B", "", "after = [\"A\"]"),
    );
    let c = check_text(&text, "lab.toml", Path::new("/labs"), None);
    assert!(c.ok(), "a warning only: {}", render_all(&c.diagnostics));
    assert_eq!(start_plan(&c.lab.unwrap()).unwrap().waves, vec![vec!["B"]]);
}

#[test]
fn every_cycle_is_named_once() {
    let n = |name: &str, after: &str| client(name, "", &format!("after = [{after}]"));
    let text = format!(
        "name = \"c\"\n{SWITCH}{}{}{}{}{}{}",
        n("A", "\"B\""),
        n("B", "\"A\""),
        n("C", "\"A\""),
        n("D", "\"E\""),
        n("E", "\"F\""),
        n("F", "\"D\""),
    );
    let c = check_text(&text, "lab.toml", Path::new("/labs"), None);
    let cycles = start_plan(c.lab.as_ref().unwrap()).unwrap_err();
    assert_eq!(cycles, vec![vec!["A", "B", "A"], vec!["D", "E", "F", "D"]]);
    let out = render_all(&c.diagnostics);
    assert!(out.contains("`after` makes a cycle: A -> B -> A"), "{out}");
    assert!(
        out.contains("`after` makes a cycle: D -> E -> F -> D"),
        "{out}"
    );
    assert_eq!(
        out.matches("makes a cycle").count(),
        2,
        "C only waits for a cycle: {out}"
    );
}

#[test]
fn a_missing_file_is_one_error() {
    let c = ramux_lab::check_file(Path::new("/nonexistent/lab.toml"), None);
    assert!(!c.ok());
    assert!(render_all(&c.diagnostics)
        .starts_with("/nonexistent/lab.toml: error: cannot read the lab file"));
}

#[test]
fn the_status_document_keeps_its_shape() {
    let c = check_text(
        &format!("name = \"s\"\n{SWITCH}{}", client("A", "", "")),
        "lab.toml",
        Path::new("/"),
        None,
    );
    let v: serde_json::Value =
        serde_json::from_str(&ramux_lab::LabStatus::defined(&c.lab.unwrap()).to_json()).unwrap();
    assert_eq!(v["schema_version"], 1);
    let keys = |o: &serde_json::Value| o.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&v), ["lab", "nodes", "schema_version", "switches"]);
    assert_eq!(
        keys(&v["nodes"][0]),
        [
            "enabled",
            "last_lines",
            "name",
            "pid",
            "profile",
            "ready_seconds",
            "state"
        ]
    );
    assert_eq!(
        keys(&v["switches"][0]),
        ["engine", "name", "pid", "ports", "state", "vlans"]
    );
    assert_eq!(v["nodes"][0]["state"], "defined");
    for s in ["defined", "starting", "ready", "failed", "stopped"] {
        let st: ramux_lab::status::NodeState =
            serde_json::from_value(serde_json::Value::from(s)).unwrap();
        assert_eq!(serde_json::to_value(st).unwrap(), s);
    }
}

struct Host(Vec<&'static str>);

impl ramux_lab::host::HostFacts for Host {
    fn file_exists(&self, path: &Path) -> bool {
        self.0.iter().any(|p| Path::new(p) == path)
    }
    fn bridge_exists(&self, name: &str) -> bool {
        self.0.contains(&name)
    }
}

#[test]
fn missing_isos_and_bridges_unless_built() {
    let text = format!(
        "name = \"h\"\n{SWITCH}[uplink.lan]\nswitch = \"sw0\"\nport = 8\naccess = 99\nbridge = \"br0\"\n\
         [node.RT1]\nprofile = \"router\"\nrole = \"MASTER\"\nnics = []\n{}{}",
        client("MV1", "", ""),
        client("MV2", "", "enabled = false"),
    );
    let lab = lab(&text);
    let host = Host(vec!["/labs/images/client.iso"]);
    let bridge = "lab.toml:9:10: error: uplink lan: there is no bridge br0 on this host\n  \
                  = fix: create it (ip link add br0 type bridge), or name an existing one\n";
    let iso = "lab.toml:10:7: error: the ISO of RT1 is missing: /labs/images/router-master.iso\n  \
               = fix: run `vlaunch lab up --build`, or vbuild iso router --role MASTER -o /labs/images/router-master.iso\n";
    let check = |build| render_all(&ramux_lab::host::check_host(&lab, &host, build));
    assert_eq!(
        check(false),
        format!("{bridge}{iso}"),
        "MV2 is disabled, MV1's ISO is there"
    );
    assert_eq!(check(true), bridge, "--build makes the ISOs");
}

#[test]
fn a_site_that_does_not_compile_is_reported_at_the_site_key() {
    let text = format!("name = \"s\"\nsite = \"site.lw\"\n{SWITCH}");
    let mut asked = Vec::new();
    let c = ramux_lab::check_text_with(&text, "lab.toml", Path::new("/labs"), &mut |p| {
        asked.push(p.to_path_buf());
        Err("site.lw:3:1: error: unknown statement `vlan`\n  = fix: write VLAN\n".into())
    });
    assert_eq!(asked, vec![Path::new("/labs/site.lw")]);
    assert_eq!(
        render_all(&c.diagnostics),
        "lab.toml:2:8: error: cannot read the site file /labs/site.lw:\n    \
         site.lw:3:1: error: unknown statement `vlan`\n      = fix: write VLAN\n  \
         = fix: correct the site file (labwall check SITE shows every problem), or the `site` path\n"
    );
}
