//! What went wrong, counted: every malformed line, every bad RADIUS packet, every refusal, so
//! an operator sees an attack or a misconfiguration in `ramux-vpn-auth --status` without
//! reading logs. Plain atomics: the daemon is one thread, the status writer reads them.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident: $doc:literal),* $(,)?) => {
        /// The daemon's counters (all since start).
        #[derive(Debug, Default)]
        pub struct Counters { $(#[doc = $doc] pub $name: AtomicU64,)* }
        impl Counters {
            /// `name value` pairs, in declaration order.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

counters! {
    accepted: "clients given client-auth",
    denied: "clients given client-deny",
    mgmt_connects: "management sockets connected (first connection and reconnections)",
    mgmt_lost: "management sockets lost",
    mgmt_malformed: "management lines that did not parse or broke a block",
    mgmt_overlong: "management lines longer than the cap (dropped)",
    mgmt_errors: "ERROR: answers from OpenVPN to a command",
    env_truncated: "CLIENT blocks with more ENV lines than the cap",
    radius_bad_replies: "RADIUS replies failing a check (authenticators, format): refused",
    radius_unsigned: "replies without Message-Authenticator, accepted on their Response-Authenticator",
    radius_ignored: "datagrams with another identifier (late or foreign): skipped",
    radius_server_timeouts: "one server did not answer in tries x timeout",
    radius_no_answer: "no server answered: refused (fail closed)",
    kernel_errors: "route, proxy-ARP or gratuitous ARP changes that failed",
}

impl Counters {
    pub fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// One line: `accepted=3 denied=1 ...`.
    pub fn line(&self) -> String {
        let parts: Vec<String> = self
            .snapshot()
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        parts.join(" ")
    }
}
