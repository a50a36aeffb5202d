//! The pure core of `ramux keep`, the site's USB key: what a generation is called and how its
//! hash file reads ([`generation`]), which generation boot applies and which ones a commit prunes
//! ([`select`]), which files may be kept and how a tar member's path is checked ([`allow`]), the
//! byte-reproducible tar itself ([`archive`]), and how the key is found among the machine's
//! disks by its filesystem label ([`label`], [`find`]). No I/O here: the daemon side (mounts,
//! fsync, fsck.fat) reads and writes bytes and passes them in, and passes the time in.
//!
//! The design follows Alpine's `lbu` (explicit commit, kept generations, refusal to guess between
//! two candidates) with one change for FAT, which has neither journal nor atomic rename: a
//! generation is valid exactly when its `.sha256` file exists, names it and matches it, and
//! nothing is ever rewritten in place. A torn write only makes that one generation invalid.

pub mod allow;
pub mod archive;
pub mod find;
pub mod generation;
pub mod label;
pub mod select;
