//! Shared by the integration tests: the seed site's facts written by hand (what
//! profiles/router/site.lw says), the golden-file comparison and its bless switch.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ramux_contract::Role;
use ramux_lab::{SiteDev, SiteFacts};

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// profiles/router/site.lw as the lab checks see it.
pub fn seed_facts() -> SiteFacts {
    let hosts = [
        ("dhcp1", "172.16.10.11"),
        ("dns1", "172.16.10.10"),
        ("dns2", "172.16.10.14"),
        ("mailhub", "172.16.10.12"),
        ("pc10", "172.16.10.30"),
        ("pc20", "172.16.20.30"),
        ("printer", "172.16.20.31"),
        ("radius1", "172.16.10.13"),
        ("vpn1", "172.16.10.20"),
        ("vpn2", "172.16.10.22"),
        ("web1", "172.16.10.21"),
    ];
    SiteFacts {
        file: "site.lw".into(),
        vlans: BTreeSet::from([10, 20]),
        internal_dev: Some(SiteDev::new("eth0")),
        external_dev: Some(SiteDev::new("eth1")),
        role_addresses: BTreeMap::from([
            (
                Role::Master,
                vec![ip("10.1.1.2"), ip("172.16.10.100"), ip("172.16.20.100")],
            ),
            (
                Role::Backup,
                vec![ip("10.1.1.3"), ip("172.16.10.200"), ip("172.16.20.200")],
            ),
        ]),
        vips: BTreeMap::from([(10, ip("172.16.10.1")), (20, ip("172.16.20.1"))]),
        uplink_vip: Some(ip("10.1.1.4")),
        vlan_networks: BTreeMap::from([
            (10, (ip("172.16.10.0"), 24)),
            (20, (ip("172.16.20.0"), 24)),
        ]),
        hosts: hosts
            .iter()
            .map(|(h, a)| (h.to_string(), vec![ip(a)]))
            .collect(),
    }
}

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compare `actual` with the golden file, or rewrite it when RAMUX_LAB_BLESS=1.
pub fn golden(path: &Path, actual: &str) {
    if std::env::var_os("RAMUX_LAB_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (RAMUX_LAB_BLESS=1 cargo test -p ramux-lab writes it)",
            path.display()
        )
    });
    assert_eq!(
        actual,
        want,
        "{} differs (RAMUX_LAB_BLESS=1 to accept the new output)",
        path.display()
    );
}
