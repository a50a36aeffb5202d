//! The appliance description: `/etc/ramux/appliance.toml`, written by vbuild into every image and
//! read by ramux-init as PID 1. It says what the appliance is (profile, role, host name), which
//! kernel modules to load for the running kernel, and which services to supervise.
//!
//! ```toml
//! profile = "router"
//! role = "BACKUP"
//! hostname = "router-backup"
//! kernel_release = "6.1.0-56-amd64"
//! modules = ["kernel/drivers/net/virtio_net.ko"]
//! [[service]]
//! name = "vrrpd"
//! argv = ["/usr/sbin/vrrpd", "-f", "/etc/keepalived/keepalived.conf"]
//! restart_delay_ms = 1000     # optional, default 1000
//! env = { RUST_LOG = "info" } # optional
//! secrets = ["pki/radius.key"]  # optional: files of the secrets overlay it needs
//! ```
//!
//! ramux-init validates the values (`ramux-init check FILE`, which vbuild runs on every image it
//! builds) and warns about keys it does not know instead of refusing them, so an image written by
//! a newer vbuild still boots.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::files::APPLIANCE_TOML;

/// The first line vbuild writes, so whoever opens the file in an image knows where it came from.
pub const HEADER: &str =
    "# Written by vbuild: the appliance description read by ramux-init (ramux_contract::appliance).\n";

/// Default pause before restarting a service that exited.
pub const DEFAULT_RESTART_DELAY_MS: u64 = 1000;

/// Top-level keys of this version of the format.
pub const TOP_KEYS: &[&str] = &[
    "profile",
    "role",
    "hostname",
    "kernel_release",
    "modules",
    "service",
];
/// Keys of one `[[service]]`.
pub const SERVICE_KEYS: &[&str] = &["name", "argv", "env", "restart_delay_ms", "secrets"];

/// The whole appliance description.
///
/// `role` is kept as text rather than a [`crate::Role`]: ramux-init accepts any
/// `[A-Za-z0-9_-]` word there, so a role added later does not make older PID 1s refuse to boot.
/// An image of a role-less profile has [`crate::role::NO_ROLE`] (`role = "-"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appliance {
    pub profile: String,
    pub role: String,
    pub hostname: String,
    /// The `uname -r` the module paths are for.
    pub kernel_release: String,
    /// Module paths relative to `/lib/modules/<kernel_release>/`, in load order.
    #[serde(default)]
    pub modules: Vec<String>,
    #[serde(default, rename = "service")]
    pub services: Vec<Service>,
}

/// One supervised long-running process, started without a shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    /// `argv[0]` is an absolute path: no shell, no PATH search.
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default = "default_delay", skip_serializing_if = "is_default_delay")]
    pub restart_delay_ms: u64,
    /// Paths below [`crate::secrets::RUN_DIR`] the service cannot run without: ramux-init does
    /// not start it while one is missing or was packed readable by others. Names, never content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

fn default_delay() -> u64 {
    DEFAULT_RESTART_DELAY_MS
}

fn is_default_delay(ms: &u64) -> bool {
    *ms == DEFAULT_RESTART_DELAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_omits_defaults() {
        let a = Appliance {
            profile: "router".into(),
            role: "BACKUP".into(),
            hostname: "router-backup".into(),
            kernel_release: "6.1.0-56-amd64".into(),
            modules: vec!["kernel/drivers/net/virtio_net.ko".into()],
            services: vec![Service {
                name: "vrrpd".into(),
                argv: vec!["/usr/sbin/vrrpd".into()],
                env: BTreeMap::new(),
                restart_delay_ms: DEFAULT_RESTART_DELAY_MS,
                secrets: vec![],
            }],
        };
        let text = toml::to_string(&a).unwrap();
        assert!(text.contains("[[service]]"), "{text}");
        assert!(!text.contains("restart_delay_ms"), "{text}");
        assert!(!text.contains("env"), "{text}");
        assert!(!text.contains("secrets"), "{text}");
        assert_eq!(toml::from_str::<Appliance>(&text).unwrap(), a);
        let mut slow = a.clone();
        slow.services[0].restart_delay_ms = 250;
        assert!(toml::to_string(&slow)
            .unwrap()
            .contains("restart_delay_ms = 250"));
    }
}
