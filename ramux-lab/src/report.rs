//! The results of `vlaunch lab test`, rendered three ways: one text line per test for people,
//! a JSON document for scripts (schema below, versioned), JUnit XML for CI dashboards; and the
//! exit code rule. The runner fills [`TestResult`]s; nothing here measures anything.
//!
//! JSON schema (`schema_version` 1): `{"schema_version": 1, "lab": NAME, "passed": N,
//! "failed": N, "errors": N, "tests": [{"name", "kind", "result": "pass"|"fail"|"error",
//! "detail", "line"?, "elapsed_ms", "measured": {only the keys measured: "rtt_ms",
//! "outage_ms", "theory_ms", "lease", "addresses", "answered_by"}}]}`.
//!
//! The XML escaper is written here (a dozen lines, tested) rather than pulling in an XML crate:
//! the documents are flat and only attribute and text escaping is needed.

use std::fmt::Write;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Serialize;

use crate::failover::{FailoverMeasured, FailoverTheory, FailoverVerdict};
use crate::matrix::MatrixProbe;
use crate::model::{Expect, TestKind};
use crate::probe::{expect_name, ProbePlan, Proto};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    /// Ran, and the network did not do what the test expects.
    Fail,
    /// Could not run (no agent, no address, a guest command failed): says nothing of the network.
    Error,
}

impl Outcome {
    /// `PASS`, `FAIL`, `ERROR`: the text line's first word.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Error => "ERROR",
        }
    }
}

/// What a test measured; only the keys it measured appear in the JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Measured {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outage_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theory_ms: Option<u64>,
    /// A DHCP test's leased address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<Ipv4Addr>,
    /// A DNS test's answers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// The node whose listener answered (or the router holding the VIPs after a failover).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
}

/// One test's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    pub name: String,
    /// `ping`, `tcp`, `udp`, `dhcp`, `dns`, `failover`, `matrix` ([`kind_name`]).
    pub kind: String,
    pub result: Outcome,
    /// One line: what was measured.
    pub detail: String,
    /// The test's line in lab.toml.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(rename = "elapsed_ms", serialize_with = "ser_ms")]
    pub elapsed: Duration,
    pub measured: Measured,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis().min(u128::from(u64::MAX)) as u64)
}

/// The lab.toml key of a test kind.
pub fn kind_name(k: &TestKind) -> &'static str {
    match k {
        TestKind::Ping { .. } => "ping",
        TestKind::Tcp { .. } => "tcp",
        TestKind::Udp { .. } => "udp",
        TestKind::Dhcp => "dhcp",
        TestKind::Dns { .. } => "dns",
        TestKind::Radius { .. } => "radius",
        TestKind::Failover { .. } => "failover",
        TestKind::Matrix => "matrix",
        TestKind::Vpn { .. } => "vpn",
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub lab: String,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub tests: Vec<TestResult>,
}

impl Report {
    /// Counts from the results.
    pub fn new(lab: &str, tests: Vec<TestResult>) -> Report {
        let count = |o| tests.iter().filter(|t| t.result == o).count();
        Report {
            schema_version: SCHEMA_VERSION,
            lab: lab.to_string(),
            passed: count(Outcome::Pass),
            failed: count(Outcome::Fail),
            errors: count(Outcome::Error),
            tests,
        }
    }

    /// 0 only when every test passed (no tests: 0, nothing failed); 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.tests.iter().any(|t| t.result != Outcome::Pass))
    }

    /// `3 passed, 1 failed, 0 errors`: the last line of the text output.
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed, {} errors",
            self.passed, self.failed, self.errors
        )
    }

    /// The `--json` document (pretty, newline-terminated).
    pub fn json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plain data serialises");
        s.push('\n');
        s
    }

    fn total_time(&self) -> Duration {
        self.tests.iter().map(|t| t.elapsed).sum()
    }
}

/// `PASS  users reach web1 on https only: tcp 172.16.20.50 -> 172.16.10.21:443 answered by MV1
/// in 12 ms`: the word padded so the names line up.
pub fn text_line(t: &TestResult) -> String {
    format!("{:<5} {}: {}", t.result.word(), t.name, t.detail)
}

/// Escape for XML text and attribute values: the five specials, line breaks and tabs as
/// references (an attribute keeps them), other control characters (not allowed in XML 1.0)
/// as U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn secs3(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// JUnit XML: one `<testsuite>` named after the lab, a `<testcase>` per test (classname
/// `LAB.KIND`), `<failure>` or `<error>` with the detail as message and text.
pub fn junit(r: &Report) -> String {
    let lab = xml_escape(&r.lab);
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\"",
        r.tests.len(),
        r.failed,
        r.errors,
        secs3(r.total_time())
    );
    let _ = writeln!(s, "<testsuites name=\"{lab}\" {counts}>");
    let _ = writeln!(s, "  <testsuite name=\"{lab}\" {counts}>");
    for t in &r.tests {
        testcase(&mut s, &lab, t);
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

fn testcase(s: &mut String, lab: &str, t: &TestResult) {
    let head = format!(
        "    <testcase name=\"{}\" classname=\"{lab}.{}\" time=\"{}\"",
        xml_escape(&t.name),
        xml_escape(&t.kind),
        secs3(t.elapsed)
    );
    let tag = match t.result {
        Outcome::Pass => {
            let _ = writeln!(s, "{head}/>");
            return;
        }
        Outcome::Fail => "failure",
        Outcome::Error => "error",
    };
    let d = xml_escape(&t.detail);
    let _ = writeln!(s, "{head}>");
    let _ = writeln!(s, "      <{tag} message=\"{d}\">{d}</{tag}>");
    let _ = writeln!(s, "    </testcase>");
}

/// What one probe saw on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// Echo reply, or the listener got the connection/datagram (`by`: the node that logged it).
    Answered { by: Option<String>, rtt_ms: f64 },
    /// Nothing came back in the probe's time (a DROP).
    NoAnswer,
    /// Refused: a TCP RST or ICMP unreachable (a REJECT, or no listener).
    Refused,
}

/// `tcp 172.16.20.50 -> 172.16.10.21:443`.
fn flow(src: Ipv4Addr, p: &ProbePlan) -> String {
    let port = p.proto.port().map_or_else(String::new, |x| format!(":{x}"));
    let proto = match p.proto {
        Proto::Ping => "ping",
        Proto::Tcp(_) => "tcp",
        Proto::Udp(_) => "udp",
    };
    format!("{proto} {src} -> {}{port}", p.target.addr)
}

/// Pass when an answer came and `ok` was expected, or none came and `blocked` was; the detail
/// says what was seen (`... answered by MV1 in 12 ms`, `... no answer (expected blocked)`).
pub fn judge_probe(plan: &ProbePlan, src: Ipv4Addr, seen: &Seen) -> (Outcome, String, Measured) {
    let mut m = Measured::default();
    let what = match seen {
        Seen::Answered { by, rtt_ms } => {
            m.rtt_ms = Some(*rtt_ms);
            m.answered_by.clone_from(by);
            let by = by.as_ref().map_or_else(String::new, |b| format!(" by {b}"));
            format!("answered{by} in {} ms", rtt_ms.round())
        }
        Seen::NoAnswer => "no answer".to_string(),
        Seen::Refused => "refused".to_string(),
    };
    let answered = matches!(seen, Seen::Answered { .. });
    let pass = answered == (plan.expect == Expect::Ok);
    let tail = if pass && answered {
        String::new()
    } else {
        format!(" (expected {})", expect_name(plan.expect))
    };
    let outcome = if pass { Outcome::Pass } else { Outcome::Fail };
    (outcome, format!("{} {what}{tail}", flow(src, plan)), m)
}

/// One matrix probe as a result of its own, named after the flow and carrying the site line
/// that decided, so a failure points at the line to read.
pub fn judge_matrix(test: &str, p: &MatrixProbe, seen: &Seen, elapsed: Duration) -> TestResult {
    let (result, detail, measured) = judge_probe(&p.plan(), p.src, seen);
    let line = p
        .decided_by
        .map_or_else(String::new, |l| format!(", site line {l}"));
    TestResult {
        name: format!(
            "{test}: {} -> {} {} ({})",
            p.src_zone, p.dst_zone, p.service, p.from_node
        ),
        kind: "matrix".into(),
        result,
        detail: format!("{detail}; {}{line}", p.rule_text),
        line: None,
        elapsed,
        measured,
    }
}

/// A failover test's result from its verdict.
pub fn failover_outcome(
    v: &FailoverVerdict,
    m: &FailoverMeasured,
    t: Option<&FailoverTheory>,
) -> (Outcome, String, Measured) {
    let measured = Measured {
        outage_ms: m.longest_outage_ms,
        theory_ms: t.map(|t| u64::from(t.master_down_ms)),
        answered_by: m.vip_holder_after.clone(),
        ..Measured::default()
    };
    let outcome = if v.pass { Outcome::Pass } else { Outcome::Fail };
    (outcome, v.reason.clone(), measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            xml_escape("a<b>&\"c'\n\t\u{1}é"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;&#9;\u{FFFD}é"
        );
        assert_eq!(xml_escape("plain"), "plain");
    }

    fn t(name: &str, result: Outcome) -> TestResult {
        TestResult {
            name: name.into(),
            kind: "ping".into(),
            result,
            detail: "d".into(),
            line: None,
            elapsed: Duration::from_millis(5),
            measured: Measured::default(),
        }
    }

    #[test]
    fn exit_code_is_zero_only_when_all_passed() {
        assert_eq!(Report::new("l", vec![]).exit_code(), 0);
        assert_eq!(Report::new("l", vec![t("a", Outcome::Pass)]).exit_code(), 0);
        let r = Report::new("l", vec![t("a", Outcome::Pass), t("b", Outcome::Error)]);
        assert_eq!(
            (r.exit_code(), r.summary().as_str()),
            (1, "1 passed, 0 failed, 1 errors")
        );
        assert_eq!(Report::new("l", vec![t("b", Outcome::Fail)]).exit_code(), 1);
    }

    #[test]
    fn probes_are_judged_against_their_expectation() {
        let plan = |expect| ProbePlan {
            from: "MV2".into(),
            target: crate::probe::Endpoint {
                addr: "172.16.10.21".parse().unwrap(),
                holder: None,
            },
            proto: Proto::Tcp(443),
            listener: Some("MV1".into()),
            expect,
        };
        let src = "172.16.20.50".parse().unwrap();
        let seen = Seen::Answered {
            by: Some("MV1".into()),
            rtt_ms: 12.4,
        };
        let (o, d, m) = judge_probe(&plan(Expect::Ok), src, &seen);
        assert_eq!(o, Outcome::Pass);
        assert_eq!(
            d,
            "tcp 172.16.20.50 -> 172.16.10.21:443 answered by MV1 in 12 ms"
        );
        assert_eq!(m.answered_by.as_deref(), Some("MV1"));
        let (o, d, _) = judge_probe(&plan(Expect::Blocked), src, &seen);
        assert_eq!(o, Outcome::Fail);
        assert!(d.ends_with("(expected blocked)"), "{d}");
        let (o, d, _) = judge_probe(&plan(Expect::Blocked), src, &Seen::Refused);
        assert_eq!(
            (o, d.as_str()),
            (
                Outcome::Pass,
                "tcp 172.16.20.50 -> 172.16.10.21:443 refused (expected blocked)"
            )
        );
        let (o, _, _) = judge_probe(&plan(Expect::Ok), src, &Seen::NoAnswer);
        assert_eq!(o, Outcome::Fail);
    }

    #[test]
    fn text_lines_line_up() {
        assert_eq!(text_line(&t("a", Outcome::Pass)), "PASS  a: d");
        assert_eq!(text_line(&t("a", Outcome::Error)), "ERROR a: d");
    }
}
