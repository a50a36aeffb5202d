//! ramux-burn: write a ramux ISO to a USB stick, an SD card or a CD, safely (docs/burn.md).
//!
//! - [`detect`] reads sysfs, mountinfo and swaps under a [`detect::Root`] (fixtures in tests);
//! - [`policy`] decides, purely, whether a disk is a candidate or why not;
//! - [`io`] writes with `O_DIRECT` and verifies through a fresh `O_DIRECT` descriptor;
//! - [`cd`] burns and checks optical media through xorriso;
//! - [`cli`] is `vlaunch burn` (arguments, confirmation, progress, SIGINT, exit codes).

pub mod cd;
pub mod cli;
pub mod detect;
pub mod io;
pub mod policy;

pub use detect::{Disk, Root};
pub use io::{BurnError, Progress};
pub use policy::{decide, Policy, Refusal};
