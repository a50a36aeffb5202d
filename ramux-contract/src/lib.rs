//! The contracts between the ramux tools, defined once.
//!
//! Each tool of ramux is a separate program, and they agree on a handful of facts: which roles an
//! appliance can have, what vbuild writes into an image for PID 1 to read, which files under
//! `/etc/ramux` configure the network, the lines the console prints when an appliance is up or
//! something failed, where a switch keeps its sockets and a VM its state, and how a NIC's MAC
//! address is written and derived. This crate is the reference for all of them: it has no I/O
//! and no ramux dependencies, so every tool builds on it, the static PID 1 included.
//!
//! | contract | module | written by | read by |
//! |---|---|---|---|
//! | roles | [`role`] | vbuild (`--role`) | ramux-init, vlaunch, labwall |
//! | the appliance description | [`appliance`] | vbuild | ramux-init |
//! | the `/etc/ramux` file set | [`files`] | vbuild (from labwall) | ramux-init |
//! | ready and failed lines | [`console`] | ramux-init | vlaunch, tests |
//! | switch directory layout | [`switch_dir`] | vswitch, vde_switch | vlaunch, `vswitch ctl` |
//! | VM state layout | [`vm_state`] | vlaunch | vlaunch (`ps`, `console`, `stop`) |
//! | MAC addresses | [`mac`] | vlaunch | vswitch (learned), guests |
//! | the site secrets overlay | [`secrets`] | vbuild (`secrets pack`) | vlaunch (fw_cfg), ramux-init |
//! | VPN authorisation setup | [`vpn`] | labwall (`vpn`) | ramux-vpn-auth |
//!
//! The boot sequence that uses these files is described in `docs/init.md`; the layouts from the
//! user's side in `docs/launcher.md` and `docs/switch.md`.

pub mod appliance;
pub mod console;
pub mod files;
pub mod mac;
pub mod role;
pub mod secrets;
pub mod switch_dir;
pub mod vm_state;
pub mod vpn;

pub use appliance::{Appliance, Service};
pub use mac::Mac;
pub use role::Role;
pub use switch_dir::SwitchDir;
pub use vm_state::VmDir;
