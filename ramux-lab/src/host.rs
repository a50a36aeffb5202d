//! The checks that ask the host: is each ISO there (unless `up --build` makes it), does each
//! uplink's bridge exist. The questions go through [`HostFacts`], so the core stays pure and
//! tests answer them from a table; `vlaunch lab` answers them from the file system and netlink.

use std::path::Path;

use crate::diag::{Diagnostic, Diags};
use crate::model::Lab;

/// What the host checks need to ask.
pub trait HostFacts {
    fn file_exists(&self, path: &Path) -> bool;
    fn bridge_exists(&self, name: &str) -> bool;
}

/// Missing ISOs of enabled nodes (not with `build`: `up --build` makes them) and missing
/// uplink bridges, in file order.
pub fn check_host(lab: &Lab, host: &dyn HostFacts, build: bool) -> Vec<Diagnostic> {
    let mut diags = Diags::new(&lab.file);
    for n in lab.nodes.iter().filter(|n| n.enabled && !build) {
        if !host.file_exists(&n.iso) {
            let fix = if n.iso_given {
                "build it (vbuild iso ...), correct `iso`, or run `vlaunch lab up --build`"
                    .to_string()
            } else {
                let role = n
                    .role
                    .as_ref()
                    .map_or(String::new(), |r| format!(" --role {}", r.value));
                format!(
                    "run `vlaunch lab up --build`, or vbuild iso {}{role} -o {}",
                    n.profile.value,
                    n.iso.display()
                )
            };
            diags.error(
                n.name.pos,
                format!(
                    "the ISO of {} is missing: {}",
                    n.name.value,
                    n.iso.display()
                ),
                fix,
            );
        }
    }
    for u in &lab.uplinks {
        if !host.bridge_exists(&u.bridge.value) {
            diags.error(
                u.bridge.pos,
                format!(
                    "uplink {}: there is no bridge {} on this host",
                    u.name.value, u.bridge.value
                ),
                format!(
                    "create it (ip link add {} type bridge), or name an existing one",
                    u.bridge.value
                ),
            );
        }
    }
    diags.sorted()
}
