//! The report documents against golden files: the `--json` schema and the JUnit XML, with
//! names and details that need escaping.

mod common;

use std::time::Duration;

use common::{crate_dir, golden, ip};
use ramux_lab::report::{junit, text_line, Measured, Outcome, Report, TestResult};

fn report() -> Report {
    let t = |name: &str, kind: &str, result, detail: &str, ms, measured| TestResult {
        name: name.into(),
        kind: kind.into(),
        result,
        detail: detail.into(),
        line: Some(40),
        elapsed: Duration::from_millis(ms),
        measured,
    };
    let tcp = Measured {
        rtt_ms: Some(12.0),
        answered_by: Some("MV1".into()),
        ..Measured::default()
    };
    let failover = Measured {
        outage_ms: Some(18_400),
        theory_ms: Some(15_804),
        answered_by: Some("RT2".into()),
        ..Measured::default()
    };
    let dhcp = Measured {
        lease: Some(ip("172.16.20.150")),
        ..Measured::default()
    };
    Report::new(
        "cenbg2009",
        vec![
            t(
                "users reach web1 on https only",
                "tcp",
                Outcome::Pass,
                "tcp 172.16.20.50 -> 172.16.10.21:443 answered by MV1 in 12 ms",
                40,
                tcp,
            ),
            t(
                "users survive the loss of RT1",
                "failover",
                Outcome::Fail,
                "outage 18.4 s > max_outage 17 s (theory 15.8 s = 3 × 5 s + skew 0.8 s)",
                31_250,
                failover,
            ),
            t(
                "MV2 gets a lease",
                "dhcp",
                Outcome::Pass,
                "lease 172.16.20.150",
                2_100,
                dhcp,
            ),
            t(
                "<dns> & \"quotes\" 'too'",
                "dns",
                Outcome::Error,
                "nslookup failed:\n\tno agent <MV9> & \u{1}",
                7,
                Measured::default(),
            ),
        ],
    )
}

#[test]
fn the_json_document() {
    let r = report();
    golden(&crate_dir().join("tests/golden/report.json"), &r.json());
    let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(v["tests"][1]["result"], "fail");
    assert_eq!(r.exit_code(), 1);
}

#[test]
fn the_junit_document() {
    golden(
        &crate_dir().join("tests/golden/report.xml"),
        &junit(&report()),
    );
}

#[test]
fn the_text_lines() {
    let r = report();
    let lines: Vec<String> = r.tests.iter().map(text_line).collect();
    assert_eq!(
        lines[0],
        "PASS  users reach web1 on https only: tcp 172.16.20.50 -> 172.16.10.21:443 answered by \
         MV1 in 12 ms"
    );
    assert!(lines[1].starts_with("FAIL  users survive"));
    assert!(lines[3].starts_with("ERROR <dns>"));
    assert_eq!(r.summary(), "2 passed, 1 failed, 1 errors");
}
