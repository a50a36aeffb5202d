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
