//! keepalived 2.2.7 (Debian) accepts both roles' output in a namespace that has the interfaces
//! (veth stand-ins), rejects it when an interface is missing, and MASTER/BACKUP agree on
//! everything except state, priority and router_id.

use labwall::backend::{add_standins, Netns};
use labwall::{compile_source, parse::FsLoader, Options};
use std::path::Path;

#[test]
fn keepalived_accepts_both_roles_and_they_agree() {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "needs root (network namespaces)"
    );
    assert!(
        std::process::Command::new("keepalived")
            .arg("--version")
            .output()
            .is_ok(),
        "keepalived missing: apt-get install keepalived"
    );
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sites/example/site.lw");
    let text = std::fs::read_to_string(&p).unwrap();
    let tmp = std::env::temp_dir().join(format!("labwall-ka-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let _guard = TmpGuard(tmp.clone());
    let mut confs = Vec::new();
    for (role, host) in [("MASTER", "fw-a"), ("BACKUP", "fw-b")] {
        let o = Options {
            role: role.into(),
            defines: vec![("HOSTNAME".into(), host.into())],
            ..Default::default()
        };
        let c = compile_source(&FsLoader, &p, &text, &o).unwrap();
        let f = tmp.join(format!("{role}.conf"));
        std::fs::write(&f, &c.outputs.keepalived_conf).unwrap();
        let ns = Netns::new(&format!("lw{}k{}", std::process::id(), &role[..1])).unwrap();
        // without the interfaces keepalived -t must refuse (proves the check can fail)
        assert!(
            ns.exec(&["keepalived", "-t", "-f", &f.to_string_lossy(), "-l", "-n"])
                .is_err(),
            "{role}: keepalived -t accepted a config whose interfaces do not exist"
        );
        add_standins(&ns, &labwall::backend::iface_names(&c.site)).unwrap();
        ns.exec(&["keepalived", "-t", "-f", &f.to_string_lossy(), "-l", "-n"])
            .unwrap_or_else(|e| panic!("{role}: {e}\n{}", c.outputs.keepalived_conf));
        let k = &c.outputs.keepalived_conf;
        let prio = if role == "MASTER" { 100 } else { 50 };
        assert_eq!(k.matches(&format!("state {role}")).count(), 2, "{k}");
        assert_eq!(k.matches(&format!("priority {prio}")).count(), 2, "{k}");
        assert!(k.contains(&format!("router_id {host}")));
        confs.push(k.clone());
    }
    let norm = |s: &str| -> String {
        s.lines()
            .filter(|l| {
                !l.contains("state ")
                    && !l.contains("priority ")
                    && !l.contains("router_id")
                    && !l.contains("notification_email_from")
                    && !l.starts_with('#')
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        norm(&confs[0]),
        norm(&confs[1]),
        "MASTER and BACKUP must agree on VRIDs, VIPs, auth and intervals"
    );
    for needle in [
        "virtual_router_id 100",
        "virtual_router_id 101",
        "auth_pass XYZ",
        "advert_int 5",
        "172.16.10.1/24",
        "172.16.20.1/24",
        "10.1.1.4/24",
        "vrrp_sync_group eth1-vlan10",
    ] {
        assert!(confs[0].contains(needle), "missing {needle}");
    }
}

/// Removes the temp dir also when an assertion fails.
struct TmpGuard(std::path::PathBuf);
impl Drop for TmpGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// vrrpd, wherever the workspace built it: `$RAMUX_BIN_DIR` (CI), else the release target dir.
fn vrrpd() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("RAMUX_BIN_DIR").filter(|d| !d.is_empty()) {
        let p = std::path::PathBuf::from(d).join("vrrpd");
        if p.is_file() {
            return p;
        }
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/vrrpd");
    assert!(
        p.is_file(),
        "{} missing: cargo build --release -p vrrpd (or set RAMUX_BIN_DIR)",
        p.display()
    );
    p
}

/// `--for vrrpd` (what vbuild compiles for router images) leaves out the mail lines with a
/// warning; VRRP CHECK and VRRP VMAC become vrrp_script/track_script and use_vmac, and vrrpd
/// reads the result without a single warning.
#[test]
fn for_vrrpd_no_mail_and_checks_vrrpd_understands() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sites/example/site.lw");
    let text = std::fs::read_to_string(&p).unwrap()
        + "VRRP VMAC\nVRRP CHECK uplink EVERY 2 FALL 3 RISE 2 WEIGHT -60 RUN /usr/bin/ping -c1 -W1 10.1.1.1\n";
    let compile = |d| {
        let o = Options {
            role: "MASTER".into(),
            defines: vec![("HOSTNAME".into(), "fw-a".into())],
            vrrp_daemon: d,
            ..Default::default()
        };
        compile_source(&FsLoader, &p, &text, &o).unwrap()
    };
    let ka = compile(labwall::emit::VrrpDaemon::Keepalived);
    assert!(ka
        .outputs
        .keepalived_conf
        .contains("smtp_server 172.16.10.12"));
    assert!(ka.outputs.keepalived_conf.contains("notification_email {"));
    let c = compile(labwall::emit::VrrpDaemon::Vrrpd);
    let k = &c.outputs.keepalived_conf;
    for gone in ["smtp_", "notification_email"] {
        assert!(!k.contains(gone), "{gone} left in:\n{k}");
    }
    assert!(
        c.warnings
            .iter()
            .any(|w| w.message.contains("vrrpd sends no mail")),
        "{:?}",
        c.warnings
    );
    for needle in [
        "vrrp_script uplink {",
        "script \"/usr/bin/ping -c1 -W1 10.1.1.1\"",
        "interval 2",
        "fall 3",
        "rise 2",
        "weight -60",
        "use_vmac",
        "        uplink\n",
        "172.16.10.1/24 brd 172.16.10.255\n",
    ] {
        assert!(k.contains(needle), "missing {needle:?} in:\n{k}");
    }
    assert_eq!(k.matches("track_script {").count(), 2, "{k}");
    assert!(c.outputs.sysctl_conf.contains("arp_announce = 2"));
    let dir = std::env::temp_dir().join(format!("labwall-vrrpd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _g = TmpGuard(dir.clone());
    let tmp = dir.join("keepalived.conf");
    std::fs::write(&tmp, k).unwrap();
    let o = std::process::Command::new(vrrpd())
        .args(["--check", "-f"])
        .arg(&tmp)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}\n{k}");
    assert!(!out.contains("warning"), "vrrpd warns:\n{out}\n{k}");
}
