//! Port authentication: MAC Authentication Bypass against RADIUS ([`mab`]) and the RADIUS
//! wire format it needs ([`radius`]). Pure, like the forwarding core; the daemon owns the
//! UDP socket.

pub mod mab;
pub mod radius;
