//! Conditional configuration (`@NAME`, `@^NAME`, `-i/--config-id`, docs/vrrp.md): one file for
//! both routers, each started with its own config id, against keepalived reading the same
//! file with `keepalived -i`. Needs root, keepalived and iproute2.
mod lab;

use std::time::Duration;

use lab::{Impl, Lab};

fn vrrpd() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_vrrpd"))
}

/// The one file both routers read: `high` gets 170, `low` 85 (from `@^high`), and only `high`
/// has `state MASTER`-free preemption details that would differ if the lines were mixed up.
fn shared(lab: &Lab) -> String {
    format!(
        "global_defs {{
    @high router_id lab-high
    @low  router_id lab-low
}}
vrrp_instance interne {{
    state BACKUP
    interface vlan10
    virtual_router_id 100
    @high priority 170
    @^high priority 85
    advert_int 1
    @nobody priority 250
    authentication {{
        auth_type PASS
        auth_pass s3cr3tpw
    }}
    virtual_ipaddress {{
        {}/24 dev vlan10
    }}
}}
",
        lab.vip(0)
    )
}

/// r1 and r2 run `imps` on the same file with `-i high` / `-i low`; r1 must win with 170.
fn pair(imps: [Impl; 2]) {
    let mut lab = Lab::new(&["vlan10"], vrrpd());
    let text = shared(&lab);
    lab.start_args(1, imps[1], &text, &["-i", "low"]);
    lab.start_args(0, imps[0], &text, &["-i", "high"]);
    let vip = [lab.vip(0)];
    lab.wait_holder(&vip, 0, Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lab.holders(vip[0]), vec![0], "{}", lab.all_logs());
    for (ri, prio, id) in [(0, 170, "lab-high"), (1, 85, "lab-low")] {
        if imps[ri] == Impl::Vrrpd {
            let st = lab.status(ri);
            assert_eq!(st["instances"][0]["priority"], prio, "{st}");
            assert_eq!(st["router_id"], id, "{st}");
            if ri == 1 {
                assert_eq!(st["instances"][0]["master_priority"], 170, "{st}");
            }
        }
    }
}

#[test]
fn conditional_file_vrrpd_high_keepalived_low() {
    pair([Impl::Vrrpd, Impl::Keepalived]);
}

#[test]
fn conditional_file_keepalived_high_vrrpd_low() {
    pair([Impl::Keepalived, Impl::Vrrpd]);
}

#[test]
fn conditional_file_vrrpd_pair() {
    pair([Impl::Vrrpd, Impl::Vrrpd]);
}

/// Without `-i` the id is the host name's first label: in a lab namespace that is this host's,
/// which matches neither `high` nor `low`, so `@^high` applies: priority 85.
#[test]
fn default_config_id_is_the_host_name() {
    let out = std::process::Command::new(vrrpd())
        .args(["--check", "-f"])
        .arg(write_tmp("cond-default.conf", &shared_plain()))
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let first = host.trim().split('.').next().unwrap().to_string();
    assert!(s.contains(&format!("config id {first}\n")), "{s}");
    assert!(s.contains("priority 85"), "{s}");
    let out = std::process::Command::new(vrrpd())
        .args(["--check", "--config-id", "high", "-f"])
        .arg(write_tmp("cond-high.conf", &shared_plain()))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("priority 170"));
}

fn shared_plain() -> String {
    "vrrp_instance interne {\n    interface lo\n    virtual_router_id 100\n    @high priority 170\n    @^high priority 85\n    virtual_ipaddress {\n        10.9.9.9/24\n    }\n}\n".into()
}

fn write_tmp(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("vrrpd-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

/// The same instance split over an include tree (a glob relative to the main file, a nested
/// include relative to the included file, inside a block), read by both daemons with
/// `-i high` / `-i low`: the file resolution must agree, or one side has no instance.
fn include_tree(imps: [Impl; 2]) {
    let mut lab = Lab::new(&["vlan10"], vrrpd());
    std::fs::create_dir_all(lab.dir.join("conf.d")).unwrap();
    std::fs::create_dir_all(lab.dir.join("vips")).unwrap();
    let inst = shared(&lab).replace(
        &format!("        {}/24 dev vlan10\n", lab.vip(0)),
        "        include ../vips/*.list\n",
    );
    let (globals, inst) = inst.split_at(inst.find("vrrp_instance").unwrap());
    lab.write("conf.d/50-interne.conf", inst);
    lab.write(
        "vips/vlan10.list",
        &format!("{}/24 dev vlan10\n", lab.vip(0)),
    );
    let main = format!("{globals}include conf.d/*.conf\n");
    lab.start_args(1, imps[1], &main, &["-i", "low"]);
    lab.start_args(0, imps[0], &main, &["-i", "high"]);
    let vip = [lab.vip(0)];
    lab.wait_holder(&vip, 0, Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lab.holders(vip[0]), vec![0], "{}", lab.all_logs());
    let ri = if imps[0] == Impl::Vrrpd { 0 } else { 1 };
    let st = lab.status(ri);
    assert_eq!(
        st["instances"][0]["vips"][0],
        format!("{}/24", lab.vip(0)),
        "{st}"
    );
    if ri == 1 {
        // keepalived read the tree too: it is the master vrrpd hears, at 170.
        assert_eq!(st["instances"][0]["master_priority"], 170, "{st}");
    } else {
        assert!(
            lab.log(1).contains("(interne) Entering BACKUP STATE"),
            "{}",
            lab.log(1)
        );
    }
}

#[test]
fn include_tree_vrrpd_high_keepalived_low() {
    include_tree([Impl::Vrrpd, Impl::Keepalived]);
}

#[test]
fn include_tree_keepalived_high_vrrpd_low() {
    include_tree([Impl::Keepalived, Impl::Vrrpd]);
}
