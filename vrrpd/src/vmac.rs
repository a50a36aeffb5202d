//! `use_vmac`: one macvlan per instance carrying the RFC 5798 virtual MAC
//! (00:00:5e:00:01:VRID), so a client's ARP entry for a VIP keeps the same MAC whichever
//! router is master. Created at startup (an interface of that name left by a killed run is
//! deleted first), removed on a clean exit. The sysctls are keepalived's
//! (vrrp_if_config.c): on the vmac `arp_ignore=1` (no answers for the parent's addresses),
//! `accept_local=1` (hear a peer using the same MAC) and `rp_filter=0` (receive without an
//! address), IPv6 disabled on it; on the parent `arp_ignore=1` and `arp_filter=1` (no answers
//! for the VIPs with the parent's own MAC), restored on exit.

use anyhow::{Context, Result};

use crate::config::Config;
use crate::netlink::Netlink;

/// A vmac we created, and the parent's sysctls to put back.
#[derive(Debug, Clone)]
pub struct Vmac {
    pub name: String,
    pub parent: String,
    /// (sysctl, old value) on the parent, when we were the first to change them.
    restore: Vec<(String, String)>,
}

fn sysctl_path(ifname: &str, key: &str) -> String {
    format!("/proc/sys/net/ipv4/conf/{ifname}/{key}")
}

fn set_sysctl(ifname: &str, key: &str, value: &str) -> Result<String> {
    let p = sysctl_path(ifname, key);
    let old = std::fs::read_to_string(&p).with_context(|| format!("reading {p}"))?;
    std::fs::write(&p, value).with_context(|| format!("writing {p}"))?;
    Ok(old.trim().to_string())
}

/// Create every configured vmac not in `have` (by name), keeping those already made.
pub fn ensure(cfg: &Config, nl: &mut Netlink, have: &mut Vec<Vmac>) -> Result<()> {
    for c in &cfg.instances {
        let Some(name) = &c.vmac else { continue };
        if have.iter().any(|v| &v.name == name) {
            continue;
        }
        let links = nl.links()?;
        let base = links
            .iter()
            .find(|l| l.name == c.interface)
            .with_context(|| {
                format!(
                    "instance {}: interface '{}' does not exist",
                    c.name, c.interface
                )
            })?
            .index;
        if let Some(old) = links.iter().find(|l| &l.name == name) {
            log(&format!(
                "instance {}: removing {name} left by an earlier run",
                c.name
            ));
            nl.del_link(old.index)?;
        }
        nl.add_macvlan(name, base, c.virtual_mac())
            .with_context(|| {
                format!(
                    "instance {}: creating macvlan {name} on {}",
                    c.name, c.interface
                )
            })?;
        for (k, v) in [
            ("arp_ignore", "1"),
            ("accept_local", "1"),
            ("rp_filter", "0"),
        ] {
            set_sysctl(name, k, v)?;
        }
        // As keepalived for an IPv4 vmac: no IPv6 on it, or its link-local DAD and MLD frames
        // (source: the shared virtual MAC) would teach the switch the backup's port.
        let v6 = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
        if std::path::Path::new(&v6).exists() {
            std::fs::write(&v6, "1").with_context(|| format!("writing {v6}"))?;
        }
        let index = nl
            .links()?
            .into_iter()
            .find(|l| &l.name == name)
            .with_context(|| format!("{name} vanished after its creation"))?
            .index;
        nl.set_up(index)?;
        let first = !have.iter().any(|v| v.parent == c.interface);
        let mut restore = Vec::new();
        for (k, v) in [("arp_ignore", "1"), ("arp_filter", "1")] {
            let old = set_sysctl(&c.interface, k, v)?;
            if first {
                restore.push((k.to_string(), old));
            }
        }
        log(&format!(
            "instance {}: created {name} on {} with MAC {}",
            c.name,
            c.interface,
            c.virtual_mac().map(|b| format!("{b:02x}")).join(":")
        ));
        have.push(Vmac {
            name: name.clone(),
            parent: c.interface.clone(),
            restore,
        });
    }
    Ok(())
}

/// Delete the vmacs in `gone` and put their parents' sysctls back.
pub fn remove(nl: &mut Netlink, gone: &[Vmac]) {
    let links = nl.links().unwrap_or_default();
    for v in gone {
        if let Some(l) = links.iter().find(|l| l.name == v.name) {
            if let Err(e) = nl.del_link(l.index) {
                log(&format!("removing {}: {e}", v.name));
            }
        }
        for (k, old) in &v.restore {
            let _ = std::fs::write(sysctl_path(&v.parent, k), old);
        }
    }
}

fn log(msg: &str) {
    crate::daemon::log(msg)
}
