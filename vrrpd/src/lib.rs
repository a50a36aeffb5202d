//! vrrpd: a VRRP v2/v3 daemon that reads keepalived.conf and sits on the same wire as keepalived.
//!
//! The pure cores are separate from I/O so they can be tested without root or sleeping:
//! [`wire`] (packet views and builders), [`config`] (the keepalived.conf subset), [`validate`]
//! (receive checks in keepalived's order) and [`fsm`] (the RFC state machine with sync groups,
//! driven by an explicit `now`) with [`garp`] (when to re-announce the VIPs). [`daemon`] wires them to raw sockets, [`netlink`] and notify
//! scripts; [`status`] is the document `vrrpd status` prints.
pub mod config;
pub mod control;
pub mod daemon;
pub mod fsm;
pub mod garp;
pub mod health;
pub mod netlink;
pub mod pathcheck;
pub mod ratelimit;
pub mod routes;
pub mod status;
pub mod sys;
pub mod track;
pub mod validate;
pub mod vmac;
pub mod wire;
