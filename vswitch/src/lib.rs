//! vswitch: a VDE2-compatible 802.1Q learning switch.
//!
//! Drop-in for Debian's `vde_switch` (same control protocol on `DIR/ctl`, same console, same
//! options) so `qemu -netdev vde,sock=DIR,port=N`, `vde_plug`, `unixterm` and `vdeterm` work
//! unchanged, while fixing what vde_switch gets wrong: refused clients get a clean close
//! instead of a hang, full-size tagged frames are kept intact, egress is queued instead of
//! dropped on the first full socket, VLAN 4094 works, and every drop is counted by reason.
//!
//! Layout: pure cores ([`wire`], [`core`], [`impair`], [`console`], [`pcap`]), the user and
//! group database ([`accounts`]), the switch directory's paths ([`layout`]) and the I/O
//! around them ([`daemon`], [`client`]).

pub mod accounts;
pub mod auth;
pub mod client;
pub mod console;
pub mod core;
pub mod daemon;
pub mod impair;
pub mod layout;
pub mod pcap;
pub mod stp;
pub mod wire;
