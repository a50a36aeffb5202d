//! `[uplink.NAME]`: a persistent TAP per uplink, enslaved to the host bridge the file names,
//! then handed to the switch (`vswitch -t TAP`). The TAP is persistent so it exists (and is
//! in the bridge) before the switch opens it, and so `down` can find and delete it from
//! `state.json` after any crash; deleting it also ends its bridge membership.

use super::state::{self, LabDir, LabState, TapRecord};
use super::switch::{self, Extras};
use anyhow::{bail, Context, Result};
use ramux_lab::model::{Engine, Lab, Switch};
use std::path::Path;
use std::process::Command;

/// The TAP of `uplink` in `lab`: up to 6 characters of the lab's name, `-`, and 8 hex digits
/// of a hash of `lab/uplink` (at most 15 bytes, IFNAMSIZ). The same on every run and host,
/// and different for two labs or two uplinks (unless the hash collides).
pub fn tap_name(lab: &str, uplink: &str) -> String {
    let head: String = lab.chars().take(6).collect();
    format!("{head}-{:08x}", fnv1a(format!("{lab}/{uplink}").as_bytes()))
}

fn fnv1a(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, &c| {
        (h ^ u32::from(c)).wrapping_mul(0x0100_0193)
    })
}

/// The records of every uplink of `lab` (what `up` saves before creating any TAP).
pub fn records(lab: &Lab) -> Vec<TapRecord> {
    lab.uplinks
        .iter()
        .map(|u| TapRecord {
            uplink: u.name.value.clone(),
            name: tap_name(&lab.name.value, &u.name.value),
            bridge: u.bridge.value.clone(),
            switch: u.switch.value.clone(),
            port: u.port.value,
            enslaved: false,
        })
        .collect()
}

fn exists(dev: &str) -> bool {
    Path::new("/sys/class/net").join(dev).exists()
}

/// True when `dev` is a TUN/TAP device (what `down` is allowed to delete).
fn is_tap(dev: &str) -> bool {
    Path::new("/sys/class/net")
        .join(dev)
        .join("tun_flags")
        .exists()
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (apt-get install iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Creates the persistent TAP of `t` (refusing a device of that name that already exists:
/// it is not ours to take over).
pub fn create(t: &TapRecord) -> Result<()> {
    if exists(&t.name) {
        bail!(
            "uplink {}: the device {} exists already (a lab not brought down?): \
             `vlaunch lab down` that lab, or `ip link del {}`",
            t.uplink,
            t.name,
            t.name
        );
    }
    ip(&["tuntap", "add", "dev", &t.name, "mode", "tap"])
        .with_context(|| format!("uplink {}: creating its TAP (root needed)", t.uplink))
}

/// `ip link set TAP master BRIDGE up`.
pub fn enslave(t: &TapRecord) -> Result<()> {
    ip(&["link", "set", &t.name, "master", &t.bridge, "up"]).with_context(|| {
        format!(
            "uplink {}: adding {} to bridge {}",
            t.uplink, t.name, t.bridge
        )
    })
}

/// Deletes the TAP of `t` when it is still there and still a TAP; the line `down` prints.
pub fn remove(t: &TapRecord) -> Result<String> {
    if !exists(&t.name) {
        return Ok(format!("uplink {}: TAP {} not present", t.uplink, t.name));
    }
    if !is_tap(&t.name) {
        bail!(
            "uplink {}: {} is no longer a TAP: not deleting it (`ip link del {}` if it is stale)",
            t.uplink,
            t.name,
            t.name
        );
    }
    ip(&["link", "del", &t.name])?;
    Ok(format!(
        "uplink {}: deleted TAP {} (out of bridge {})",
        t.uplink, t.name, t.bridge
    ))
}

/// Everything `sw` starts with beyond its directory, made ready: its uplinks' TAPs created
/// and enslaved (each step recorded in `st` and saved first), the rc file that puts each TAP
/// on its port, the VXLAN trunk's `--vxlan` (the ends picked with this host's addresses).
pub fn prepare(lab: &Lab, sw: &Switch, dir: &LabDir, st: &mut LabState) -> Result<Extras> {
    let name = &sw.name.value;
    let mut taps: Vec<TapRecord> = st
        .taps
        .iter()
        .filter(|t| &t.switch == name)
        .cloned()
        .collect();
    if sw.engine == Engine::VdeSwitch && (!taps.is_empty() || sw.vxlan.is_some()) {
        bail!("switch {name}: uplinks and vxlan need engine = \"vswitch\"");
    }
    taps.sort_by_key(|t| t.port);
    let mut x = Extras::default();
    for t in &taps {
        create(t)?;
        st.tap_mut(&t.name).expect("recorded").enslaved = true;
        state::save(&dir.state_json(), st)?;
        enslave(t)?;
        x.taps.push(t.name.clone());
    }
    let rc = switch::reserve_commands(lab, sw);
    if !rc.is_empty() {
        let path = dir.switch_rc(name);
        std::fs::create_dir_all(dir.0.join("sw"))?;
        std::fs::write(&path, rc.join("\n") + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        x.rc = Some(path);
    }
    if let Some(v) = &sw.vxlan {
        let local = super::check::local_ipv4s();
        let ends = switch::vxlan_ends(&v.remote, &|a| local.contains(&a))
            .with_context(|| format!("switch {name} ({})", lab.file))?;
        x.vxlan = Some(switch::vxlan_arg(sw, v.vni, ends));
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_names_fit_ifnamsiz_and_are_stable() {
        let a = tap_name("cenbg2009", "lan");
        assert_eq!(a, tap_name("cenbg2009", "lan"));
        assert!(a.starts_with("cenbg2-"), "{a}");
        assert_eq!(a.len(), 15);
        assert_ne!(a, tap_name("cenbg2009", "lan2"));
        assert_ne!(a, tap_name("cenbg2010", "lan"));
        let long = tap_name("abcdefghijklmnop", &"u".repeat(32));
        assert!(long.len() <= 15, "{long}");
        assert_eq!(tap_name("t", "x").len(), 10);
    }

    #[test]
    fn records_follow_the_file() {
        let text = "name = \"t\"\n[switch.s]\nports = 8\nvlans = { 10 = \"a\" }\n\
                    [uplink.lan]\nswitch = \"s\"\nport = 8\naccess = 10\nbridge = \"br0\"\n";
        let c = ramux_lab::check_text(text, "lab.toml", Path::new("/l"), None);
        assert!(c.ok(), "{}", ramux_lab::render_all(&c.diagnostics));
        let r = records(&c.lab.unwrap());
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].name, tap_name("t", "lan"));
        assert_eq!((r[0].bridge.as_str(), r[0].port), ("br0", 8));
        assert!(!r[0].enslaved);
        assert!(!is_tap("no-such-dev0"));
        assert!(remove(&r[0]).unwrap().contains("not present"));
    }
}
