//! Language features beyond the example: IF/ELSE/ENDIF, INCLUDE, ${X:-default}, continuation
//! lines, -D overriding file variables, SET ROLE conflicts, IPv6, DENY/REJECT rules.

use labwall::parse::MapLoader;
use labwall::{compile_source, Compiled, Options};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const BASE: &str = "NETINIT eth1 eth0
DEV net eth1 10.1.1.0 10.1.1.1 /24 10.1.1.2-10.1.1.3-10.1.1.4-1*
VLAN 10 eth0 172.16.10.0 172.16.10.2-172.16.10.3-172.16.10.1-2* /24 - lan
POLICY all all DROP
";

fn compile(
    text: &str,
    role: &str,
    defs: &[(&str, &str)],
    files: &[(&str, &str)],
) -> Result<Compiled, String> {
    let mut m: HashMap<PathBuf, String> = HashMap::new();
    for (p, t) in files {
        m.insert(PathBuf::from(p), t.to_string());
    }
    let o = Options {
        role: role.into(),
        defines: defs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        allow_exec: false,
        compat_vips_all: false,
        system_hostname: Some("h".into()),
        vrrp_daemon: Default::default(),
    };
    compile_source(&MapLoader(m), Path::new("/s/site.lw"), text, &o)
        .map_err(|d| labwall::diag::render_all(&d))
}

#[test]
fn if_else_on_role() {
    let t = format!("{BASE}IF $ROLE == MASTER\nHOST x 172.16.10.5\nELSE\nHOST y 172.16.10.6\nENDIF\nALLOW lan fw ssh\n");
    let m = compile(&t, "MASTER", &[], &[]).unwrap();
    assert_eq!(m.site.aliases[0].name, "x");
    let b = compile(&t, "BACKUP", &[], &[]).unwrap();
    assert_eq!(b.site.aliases[0].name, "y");
    let e = compile(&format!("{BASE}IF $ROLE == MASTER\n"), "MASTER", &[], &[]).unwrap_err();
    assert!(e.contains("IF without ENDIF"), "{e}");
    let e = compile(&format!("{BASE}ENDIF\n"), "MASTER", &[], &[]).unwrap_err();
    assert!(e.contains("site.lw:5:1: error: ENDIF without IF"), "{e}");
}

#[test]
fn include_defaults_continuation_and_overrides() {
    let t = format!(
        "SVC=${{SVC:-https}}\nDEV0=eth9\n{BASE}INCLUDE rules.lw\nALLOW net \\\n   lan:web $SVC\n"
    );
    let c = compile(
        &t.replace("eth1", "$DEV0"),
        "MASTER",
        &[("DEV0", "eth1")],
        &[("/s/rules.lw", "HOST web 172.16.10.9\n")],
    )
    .unwrap();
    assert_eq!(c.site.netinit[0], "eth1", "-D wins over the file");
    assert!(
        c.outputs
            .ruleset_nft
            .contains("ip daddr @web_v4 tcp dport 443 counter accept comment \"site.lw:"),
        "{}",
        c.outputs.ruleset_nft
    );
    let e = compile(&format!("{BASE}INCLUDE nope.lw\n"), "MASTER", &[], &[]).unwrap_err();
    assert!(
        e.contains("site.lw:5:9: error: cannot read /s/nope.lw"),
        "{e}"
    );
    let e = compile(
        &format!("{BASE}INCLUDE site.lw\n"),
        "MASTER",
        &[],
        &[("/s/site.lw", "INCLUDE site.lw\n")],
    )
    .unwrap_err();
    assert!(e.contains("INCLUDE loop"), "{e}");
}

#[test]
fn undefined_variable_is_an_error_not_empty() {
    let e = compile(&format!("{BASE}ALLOW net lan $NOPE\n"), "MASTER", &[], &[]).unwrap_err();
    assert!(
        e.contains("site.lw:5:15: error: undefined variable $NOPE"),
        "{e}"
    );
    assert!(e.contains("-D NOPE=<value>"), "{e}");
}

#[test]
fn role_conflicts_and_vrrp_outputs() {
    let e = compile(&format!("SET ROLE=BACKUP\n{BASE}"), "MASTER", &[], &[]).unwrap_err();
    assert!(e.contains("contradicts the requested role MASTER"), "{e}");
    let c = compile(BASE, "BACKUP", &[], &[]).unwrap();
    assert!(c
        .outputs
        .network_ip
        .contains("address add 10.1.1.3/24 broadcast 10.1.1.255 dev eth1"));
    assert!(
        c.outputs.keepalived_conf.contains("state BACKUP")
            && c.outputs.keepalived_conf.contains("priority 50")
    );
    // two VRIDs on two * interfaces: two instances and an implicit sync group
    assert!(
        c.outputs
            .keepalived_conf
            .contains("vrrp_sync_group labwall"),
        "{}",
        c.outputs.keepalived_conf
    );
}

#[test]
fn deny_reject_and_log_rules() {
    let t = format!("{BASE}DENY net lan ssh LOG\nREJECT net lan dns\n");
    let c = compile(&t, "MASTER", &[], &[]).unwrap();
    let r = &c.outputs.ruleset_nft;
    assert!(
        r.contains("tcp dport 22 limit rate 5/minute counter log prefix \"lw net>lan DENY \""),
        "{r}"
    );
    assert!(
        r.contains("tcp dport 22 counter drop comment \"site.lw:5\""),
        "{r}"
    );
    assert!(
        r.contains("tcp dport 53 counter reject with tcp reset comment \"site.lw:6\""),
        "{r}"
    );
    assert!(
        r.contains("udp dport 53 counter reject with icmpx admin-prohibited comment \"site.lw:6\""),
        "{r}"
    );
}

#[test]
fn danger_checks() {
    let e = compile(
        &format!(
            "{BASE}VLAN 20 eth0 172.16.20.0 172.16.20.1 /24\nHOST vmhost 172.16.10.7 172.16.20.7\n"
        ),
        "MASTER",
        &[],
        &[],
    )
    .unwrap_err();
    assert!(
        e.contains("DANGER: host vmhost has addresses in zones VLAN20, lan"),
        "{e}"
    );
    let e = compile("NETINIT eth1 eth0\nDEV net eth1 10.1.1.0 - /24 10.1.1.2\nVLAN 10 eth0 172.16.10.0 172.16.10.2 /24\nDEV back eth0 192.168.0.0 192.168.0.254 /24 192.168.0.1\n", "MASTER", &[], &[]).unwrap_err();
    assert!(e.contains("DANGER: gateway 192.168.0.254 on back"), "{e}");
}

#[test]
fn chain_name_collisions_are_refused() {
    let t = "NETINIT eth1 eth0\nDEV a eth1 10.1.1.0 - /24 10.1.1.2\nVLAN 10 eth0 172.16.10.0 172.16.10.1 /24 - a_b\nVLAN 11 eth0 172.16.11.0 172.16.11.1 /24 - b_c\nVLAN 12 eth0 172.16.12.0 172.16.12.1 /24 - c\nPOLICY all all DROP\n";
    let e = compile(t, "MASTER", &[], &[]).unwrap_err();
    assert!(e.contains("would share the nftables chain a_b_c"), "{e}");
    let e = compile(
        "NETINIT eth1\nDEV input eth1 10.1.1.0 - /24 10.1.1.2\n",
        "MASTER",
        &[],
        &[],
    )
    .unwrap_err();
    assert!(e.contains("zone name input is reserved"), "{e}");
}

#[test]
fn compat_vips_all_lists_every_vip_in_every_instance() {
    let t = format!("{BASE}VLAN 20 eth0 172.16.20.0 172.16.20.2-172.16.20.3-172.16.20.1-2 /24\n");
    let by_vrid = compile(&t, "MASTER", &[], &[])
        .unwrap()
        .outputs
        .keepalived_conf;
    assert_eq!(by_vrid.matches("172.16.20.1/24").count(), 1, "{by_vrid}");
    let mut m: HashMap<PathBuf, String> = HashMap::new();
    m.insert(PathBuf::from("/x"), String::new());
    let o = Options {
        role: "MASTER".into(),
        compat_vips_all: true,
        ..Default::default()
    };
    let all = compile_source(&MapLoader(m), Path::new("/s/site.lw"), &t, &o)
        .unwrap()
        .outputs
        .keepalived_conf;
    assert_eq!(all.matches("172.16.20.1/24").count(), 2, "{all}");
    assert_eq!(all.matches("10.1.1.4/24").count(), 2, "{all}");
}
