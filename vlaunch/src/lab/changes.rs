//! What changed in the lab file since `up` started the lab: each node's settings are recorded in
//! state.json as `key = value` lines, so `up` on a running lab (and `restart`) compare them with
//! the file and say what differs instead of silently running something else.

use super::state::LabState;
use ramux_lab::model::{Lab, Node};

/// The settings of `n` that a running VM embodies, one `key = value` line each.
pub fn node_config(n: &Node) -> Vec<String> {
    let mut v = vec![
        format!("iso = {}", same_path(&n.iso).display()),
        format!("memory = {} MiB", n.memory_mib),
        format!("cpus = {}", n.cpus),
        format!("accel = {:?}", n.accel).to_lowercase(),
        format!("boot = {:?}", n.boot).to_lowercase(),
        format!("firmware = {:?}", n.firmware).to_lowercase(),
    ];
    if let Some(s) = &n.secrets {
        v.push(format!("secrets = {}", same_path(s).display()));
    }
    if let Some(k) = &n.key {
        v.push(format!("key = {}", same_path(k).display()));
    }
    if !n.qemu_args.is_empty() {
        v.push(format!("qemu_args = {}", n.qemu_args.join(" ")));
    }
    for c in &n.nics {
        v.push(format!(
            "nic{} = {}:{} {} mac {} model {}",
            c.index,
            c.switch.value,
            c.port.value,
            c.vlan.value.describe(),
            c.mac.value,
            c.model
        ));
    }
    v
}

/// One spelling per file: `labs/../images/x.iso` from `up labs/seed.toml` and
/// `/work/labs/../images/x.iso` from the recorded absolute lab file are the same ISO.
fn same_path(p: &std::path::Path) -> std::path::PathBuf {
    std::fs::canonicalize(p)
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

/// The switch side of a NIC line (`nic0 = sw0:1 access 10`), without MAC and model: a change
/// there needs the switch reconfigured, not only the VM restarted.
fn switch_side(line: &str) -> Option<&str> {
    line.starts_with("nic")
        .then(|| line.split(" mac ").next())
        .flatten()
}

/// One difference between the running lab and the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub node: Option<String>,
    pub what: String,
    /// `restart` of the node applies it; false: only `down` and `up` do.
    pub restart_applies: bool,
}

/// The differences of one node's recorded settings and the file's.
pub fn node_changes(name: &str, recorded: &[String], now: &[String]) -> Vec<Change> {
    let key = |l: &str| l.split(" = ").next().unwrap_or("").to_string();
    let mut keys: Vec<String> = recorded.iter().chain(now).map(|l| key(l)).collect();
    keys.sort();
    keys.dedup();
    let find = |set: &[String], k: &str| set.iter().find(|l| key(l) == k).cloned();
    keys.iter()
        .filter_map(|k| {
            let (a, b) = (find(recorded, k), find(now, k));
            (a != b).then(|| {
                let sw = |l: &Option<String>| l.as_deref().and_then(switch_side).map(String::from);
                let switch_changed = (k.starts_with("nic")) && sw(&a) != sw(&b);
                Change {
                    node: Some(name.to_string()),
                    what: format!(
                        "{} -> {}",
                        a.unwrap_or_else(|| format!("no {k}")),
                        b.unwrap_or_else(|| format!("no {k}"))
                    ),
                    restart_applies: !switch_changed,
                }
            })
        })
        .collect()
}

/// Every difference between the running lab `st` and the file's `lab`: nodes added, removed,
/// enabled/disabled or changed; switches whose ports or VLANs changed.
pub fn lab_changes(st: &LabState, lab: &Lab) -> Vec<Change> {
    let mut out = Vec::new();
    for r in &st.nodes {
        match lab.node(&r.name) {
            None => out.push(whole(&r.name, "removed from the file")),
            Some(n) if n.enabled != r.enabled => out.push(whole(
                &r.name,
                &format!("enabled {} -> {}", r.enabled, n.enabled),
            )),
            Some(n) if !r.config.is_empty() => {
                out.extend(node_changes(&r.name, &r.config, &node_config(n)))
            }
            Some(_) => {}
        }
    }
    for n in &lab.nodes {
        if !st.nodes.iter().any(|r| r.name == n.name.value) {
            out.push(whole(&n.name.value, "new in the file"));
        }
    }
    out.extend(switch_changes(st, lab));
    out
}

fn whole(node: &str, what: &str) -> Change {
    Change {
        node: Some(node.to_string()),
        what: what.to_string(),
        restart_applies: false,
    }
}

fn switch_changes(st: &LabState, lab: &Lab) -> Vec<Change> {
    let mut out = Vec::new();
    for s in &lab.switches {
        let vlans: Vec<u16> = s.vlans.keys().copied().collect();
        let what = match st.switches.iter().find(|r| r.name == s.name.value) {
            None => format!("switch {}: new in the file", s.name.value),
            Some(r) if r.vlans != vlans || r.ports != s.ports => format!(
                "switch {}: {} ports VLANs {:?} -> {} ports VLANs {:?}",
                s.name.value, r.ports, r.vlans, s.ports, vlans
            ),
            Some(_) => continue,
        };
        out.push(Change {
            node: None,
            what,
            restart_applies: false,
        });
    }
    out
}

/// The line `up` prints for a change, with how to apply it.
pub fn describe(lab: &str, c: &Change) -> String {
    match (&c.node, c.restart_applies) {
        (Some(n), true) => format!(
            "{n}: {} (`vlaunch lab restart {lab} {n}` applies it)",
            c.what
        ),
        (Some(n), false) => format!(
            "{n}: {} (the switch side changes: `vlaunch lab down {lab}` and `up` apply it)",
            c.what
        ),
        (None, _) => format!("{} (`vlaunch lab down {lab}` and `up` apply it)", c.what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn lab(mem: &str, access: u16, extra: &str) -> Lab {
        let text = format!(
            "name = \"t\"\n[switch.s]\nvlans = {{ 10 = \"a\", 20 = \"b\" }}\n\
             [node.a]\nprofile = \"client\"\nmemory = \"{mem}\"\n\
             nics = [ {{ switch = \"s\", access = {access} }} ]\n{extra}"
        );
        let c = ramux_lab::check_text(&text, "lab.toml", Path::new("/l"), None);
        assert!(c.ok(), "{}", ramux_lab::render_all(&c.diagnostics));
        c.lab.unwrap()
    }

    fn state_of(l: &Lab) -> LabState {
        let d = super::super::state::LabDir::new(Path::new("/tmp/labs"), "t");
        super::super::up::initial_state(l, Path::new("/l/lab.toml"), &d)
    }

    #[test]
    fn an_unchanged_file_has_no_changes() {
        let l = lab("256M", 10, "");
        assert!(lab_changes(&state_of(&l), &l).is_empty());
    }

    #[test]
    fn memory_is_a_restart_a_vlan_move_is_the_switch() {
        let st = state_of(&lab("256M", 10, ""));
        let c = lab_changes(&st, &lab("512M", 10, ""));
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].what, "memory = 256 MiB -> memory = 512 MiB");
        assert!(c[0].restart_applies);
        let c = lab_changes(&st, &lab("256M", 20, ""));
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].what.contains("access 10"), "{c:?}");
        assert!(!c[0].restart_applies);
        assert!(describe("t", &c[0]).contains("vlaunch lab down t"));
    }

    #[test]
    fn a_relative_and_an_absolute_lab_file_name_the_same_iso() {
        let text = "name = \"t\"\n[node.a]\nprofile = \"client\"\n";
        let at = |dir: &Path| {
            let c = ramux_lab::check_text(text, "lab.toml", dir, None);
            node_config(&c.lab.unwrap().nodes[0])
        };
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(at(Path::new("labs")), at(&cwd.join("labs")));
    }

    #[test]
    fn new_nodes_are_reported() {
        let st = state_of(&lab("256M", 10, ""));
        let c = lab_changes(&st, &lab("256M", 10, "[node.b]\nprofile = \"client\"\n"));
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].node.as_deref(), Some("b"));
        assert_eq!(c[0].what, "new in the file");
    }
}
