//! vlaunch: boot a ramux ISO under QEMU and manage the running VM.
//!
//! The pieces, each usable on its own (the end-to-end tests in `ramux-e2e/` drive them directly):
//! - [`accel`]: KVM or TCG, by the detection rule of docs/launcher.md, "KVM or TCG" (pure, over probed facts),
//!   with the functional probe in [`probe`];
//! - [`qemu`]: the QEMU command line as a pure function of a [`qemu::LaunchSpec`];
//! - [`net`]: NICs on VDE switch ports (deterministic MACs, finding or starting `vswitch`);
//! - [`vm`]: state directories, start, `--wait-ready`, stop (QMP power-down, then kill), `ps`;
//! - [`serial`]: the console scanner that finds the ready line (untrusted input, fuzzed);
//! - [`qmp`]: a minimal QMP client; [`console`]: the interactive serial console.

pub mod accel;
pub mod console;
pub mod key;
pub mod lab;
pub mod net;
pub mod probe;
pub mod qemu;
pub mod qga;
pub mod qmp;
pub mod serial;
pub mod vm;

pub use accel::{Accel, AccelRequest};
pub use net::Mac;
pub use qemu::{Firmware, LaunchSpec, Media};
pub use vm::{launch, LaunchOptions, NotReady, Ready, StopOutcome, Vm};
