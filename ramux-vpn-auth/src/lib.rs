//! ramux-vpn-auth: one small daemon that authorises the clients of every VLAN's OpenVPN server
//! on a VPN appliance, through each server's management interface (`management SOCK unix`,
//! `management-client-auth`, `management-hold`), asking RADIUS asynchronously, and keeps the
//! kernel's per-client route and proxy-ARP entries in step (docs/vpn-auth.md).
//!
//! Pure cores, tested without sockets: [`radius`] (encode, decode, authenticators), [`mgmt`]
//! (line parser and block assembler), [`state`] (one server's clients, time as an argument),
//! [`config`] (the contract file checked). I/O around them: [`radius_io`], [`kernel`], [`run`].

pub mod config;
pub mod counters;
pub mod fuzzing;
pub mod kernel;
pub mod mgmt;
pub mod radius;
pub mod radius_io;
pub mod run;
pub mod state;
