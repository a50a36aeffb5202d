//! The `vrrpd status` document: what the daemon answers on its unix socket (JSON), and the
//! human rendering the client prints.

use serde::{Deserialize, Serialize};

use crate::fsm::State;

/// Per-instance counters. Every dropped packet lands in exactly one of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counters {
    pub adverts_in: u64,
    pub adverts_out: u64,
    pub priority_zero_in: u64,
    pub priority_zero_out: u64,
    pub bad_checksum: u64,
    pub bad_auth: u64,
    pub bad_auth_type: u64,
    pub bad_ttl: u64,
    pub interval_mismatch: u64,
    pub bad_length: u64,
    pub wrong_version: u64,
    pub vip_count_mismatch: u64,
    pub vip_mismatch: u64,
    pub not_peer: u64,
    pub own_packets: u64,
    pub v3_csum_pseudo_header: u64,
    pub v3_csum_message_only: u64,
    pub v3_csum_old_unicast: u64,
    pub garp_sent: u64,
    pub send_errors: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TransitionStatus {
    pub ago_s: f64,
    pub from: State,
    pub to: State,
    pub reason: String,
}

/// The last configuration mismatch seen from a peer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Mismatch {
    pub peer: String,
    pub detail: String,
    pub ago_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InstanceStatus {
    pub name: String,
    pub state: State,
    pub priority: u8,
    pub base_priority: u8,
    pub vrid: u8,
    pub version: u8,
    pub interface: String,
    pub source: String,
    pub advert_int_ms: u64,
    pub master_down_interval_ms: f64,
    pub master: Option<String>,
    pub master_priority: Option<u8>,
    pub vips: Vec<String>,
    pub counters: Counters,
    pub last_transition: Option<TransitionStatus>,
    pub last_mismatch: Option<Mismatch>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupStatus {
    pub name: String,
    pub state: State,
    pub members: Vec<String>,
    /// Members that hear no master while another member does: a broken path to the peer.
    #[serde(default)]
    pub broken_paths: Vec<String>,
}

/// One `vrrp_script` health check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScriptStatus {
    pub name: String,
    pub command: String,
    /// `INIT` (no result yet), `GOOD` or `BAD`, after rise/fall.
    pub state: String,
    pub running: bool,
    /// `exit 0`, `exit N`, `signal N`, `timed out`, `cannot start: ...`.
    pub last_result: Option<String>,
    pub last_run_ago_s: Option<f64>,
    pub last_duration_ms: Option<u64>,
    pub runs: u64,
    pub failures: u64,
    pub timeouts: u64,
    /// Runs not started because the previous one was still going.
    pub skipped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub router_id: Option<String>,
    pub pid: u32,
    pub uptime_s: f64,
    pub unknown_vrid: u64,
    pub malformed: u64,
    pub instances: Vec<InstanceStatus>,
    pub groups: Vec<GroupStatus>,
    /// Tracked health checks (docs/vrrp.md, Health checks).
    #[serde(default)]
    pub scripts: Vec<ScriptStatus>,
    /// Control socket connections (docs/security-vrrpd.md).
    #[serde(default)]
    pub control: crate::control::ControlStats,
    /// Drop log lines not written because of the rate limits (docs/security-vrrpd.md).
    #[serde(default)]
    pub log_suppressed: u64,
}

impl Status {
    /// Human-readable rendering.
    pub fn render(&self) -> String {
        let mut s = format!(
            "vrrpd pid {} up {:.1}s{}\n",
            self.pid,
            self.uptime_s,
            self.router_id
                .as_ref()
                .map(|r| format!(" router_id {r}"))
                .unwrap_or_default()
        );
        let c = &self.control;
        if c.rejected_busy + c.timed_out + c.oversized + self.log_suppressed > 0 {
            s.push_str(&format!(
                "bounds: control rejected_busy {} timed_out {} oversized {}, drop log lines suppressed {}\n",
                c.rejected_busy, c.timed_out, c.oversized, self.log_suppressed
            ));
        }
        for i in &self.instances {
            let c = &i.counters;
            s.push_str(&format!(
                "instance {} [{}] prio {} (base {}) vrid {} v{} on {} from {} interval {}ms\n",
                i.name,
                i.state.name(),
                i.priority,
                i.base_priority,
                i.vrid,
                i.version,
                i.interface,
                i.source,
                i.advert_int_ms
            ));
            s.push_str(&format!(
                "  master {} (prio {})  vips {}\n",
                i.master.as_deref().unwrap_or("-"),
                i.master_priority
                    .map(|p| p.to_string())
                    .unwrap_or("-".into()),
                i.vips.join(" ")
            ));
            s.push_str(&format!(
                "  adverts in {} out {}  bad checksum {} bad auth {} (type {}) bad ttl {} interval mismatch {} vip mismatch {} (count {}) wrong version {} bad length {}\n",
                c.adverts_in, c.adverts_out, c.bad_checksum, c.bad_auth, c.bad_auth_type, c.bad_ttl,
                c.interval_mismatch, c.vip_mismatch, c.vip_count_mismatch, c.wrong_version, c.bad_length
            ));
            if let Some(t) = &i.last_transition {
                s.push_str(&format!(
                    "  last transition {:.1}s ago: {} -> {} ({})\n",
                    t.ago_s,
                    t.from.name(),
                    t.to.name(),
                    t.reason
                ));
            }
            if let Some(m) = &i.last_mismatch {
                s.push_str(&format!(
                    "  CONFIG MISMATCH with {} {:.1}s ago: {}\n",
                    m.peer, m.ago_s, m.detail
                ));
            }
        }
        for sc in &self.scripts {
            s.push_str(&sc.render());
        }
        for g in &self.groups {
            s.push_str(&format!(
                "sync group {} [{}]: {}\n",
                g.name,
                g.state.name(),
                g.members.join(" ")
            ));
            if !g.broken_paths.is_empty() {
                s.push_str(&format!(
                    "  BROKEN PATH to the peer: {} hear(s) no master while the other members do\n",
                    g.broken_paths.join(" ")
                ));
            }
        }
        s
    }
}

impl ScriptStatus {
    /// One line per script: state, last result and counters.
    fn render(&self) -> String {
        format!(
            "script {} [{}]{} last {} ({} ago, took {}) runs {} failures {} timeouts {} skipped {}: {}\n",
            self.name,
            self.state,
            if self.running { " running" } else { "" },
            self.last_result.as_deref().unwrap_or("-"),
            self.last_run_ago_s
                .map(|a| format!("{a:.1}s"))
                .unwrap_or("-".into()),
            self.last_duration_ms
                .map(|d| format!("{d}ms"))
                .unwrap_or("-".into()),
            self.runs,
            self.failures,
            self.timeouts,
            self.skipped,
            self.command
        )
    }
}
