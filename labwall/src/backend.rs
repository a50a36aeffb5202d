//! Backend checks: `nft -c -f` and `keepalived -t` on the real tools, inside a throwaway network
//! namespace that has the site's interfaces. The host kernel may lack 8021q and dummy, so every
//! interface (VLAN ones included) is stood in for by one end of a veth pair with the same name.

use crate::model::Site;
use crate::RoleOutputs;
use std::path::Path;
use std::process::Command;

/// A network namespace deleted on drop (also on panic).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Result<Netns, String> {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        run("ip", &["netns", "add", name])?;
        Ok(Netns {
            name: name.to_string(),
        })
    }
    /// Run a command inside the namespace; Err carries its stderr.
    pub fn exec(&self, argv: &[&str]) -> Result<String, String> {
        let mut a = vec!["netns", "exec", &self.name];
        a.extend_from_slice(argv);
        run("ip", &a)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

pub fn run(prog: &str, args: &[&str]) -> Result<String, String> {
    let o = Command::new(prog).args(args).output().map_err(|e| {
        let pkg = match prog {
            "nft" => " (Debian package nftables)",
            "keepalived" => " (Debian package keepalived)",
            "ip" => " (Debian package iproute2)",
            _ => "",
        };
        format!("cannot run {prog}{pkg}: {e}")
    })?;
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(format!(
            "{prog} {} failed ({}): {}{}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim(),
            String::from_utf8_lossy(&o.stdout).trim()
        ))
    }
}

/// Every interface name the outputs refer to: NETINIT devices and DEV/VLAN interfaces.
pub fn iface_names(site: &Site) -> Vec<String> {
    let mut v: Vec<String> = site.netinit.clone();
    for i in &site.ifaces {
        if !v.contains(&i.ifname) {
            v.push(i.ifname.clone());
        }
    }
    v
}

/// Create veth stand-ins named like the site's interfaces (peers `lwp<n>`) in `ns`, up.
pub fn add_standins(ns: &Netns, names: &[String]) -> Result<(), String> {
    for (n, name) in names.iter().enumerate() {
        let peer = format!("lwp{n}");
        run(
            "ip",
            &[
                "-n", &ns.name, "link", "add", name, "type", "veth", "peer", "name", &peer,
            ],
        )?;
        run("ip", &["-n", &ns.name, "link", "set", name, "up"])?;
        run("ip", &["-n", &ns.name, "link", "set", &peer, "up"])?;
    }
    Ok(())
}

/// A new file, mode 0600 (keepalived.conf holds auth_pass), never through an existing path.
fn write_new(p: &Path, text: &str) -> Result<(), String> {
    crate::write_new(p, text, 0o600).map_err(|e| format!("{}: {e}", p.display()))
}

/// `nft -c -f` and `keepalived -t -f` of one role's outputs in a fresh namespace.
pub fn check_role(site: &Site, out: &RoleOutputs, tmpdir: &Path, tag: &str) -> Result<(), String> {
    let ns = Netns::new(&format!("lw-{}-{tag}", std::process::id()))?;
    add_standins(&ns, &iface_names(site))?;
    let nft = tmpdir.join(format!("ruleset-{tag}.nft"));
    let ka = tmpdir.join(format!("keepalived-{tag}.conf"));
    write_new(&nft, &out.ruleset_nft)?;
    write_new(&ka, &out.keepalived_conf)?;
    ns.exec(&["nft", "-c", "-f", &nft.to_string_lossy()])
        .map_err(|e| format!("{tag}: ruleset.nft rejected by the kernel: {e}"))?;
    ns.exec(&["keepalived", "-t", "-f", &ka.to_string_lossy(), "-l", "-n"])
        .map_err(|e| format!("{tag}: keepalived.conf rejected: {e}"))?;
    Ok(())
}

/// Apply a `key = value` sysctl file inside `ns` by writing /proc/sys, as ramux-init does
/// (no dependency on procps' sysctl).
pub fn apply_sysctl(ns: &Netns, text: &str) -> Result<(), String> {
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            return Err(format!("bad sysctl line: {l}"));
        };
        let path = format!("/proc/sys/{}", k.trim().replace('.', "/"));
        ns.exec(&["sh", "-c", &format!("echo '{}' > {path}", v.trim())])?;
    }
    Ok(())
}
