//! Golden tests: the seed lines, the example site (both roles) and a file full of mistakes.
//! Regenerate with LABWALL_BLESS=1 cargo test -p labwall --test golden.

use labwall::{compile_source, parse::FsLoader, Options};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn check(name: &str, got: &str) {
    let p = dir().join("golden").join(name);
    if std::env::var("LABWALL_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run with LABWALL_BLESS=1 to create)", p.display()));
    if want != got {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n- {a}\n+ {b}", i + 1))
            .collect();
        panic!("{} differs from the golden file (LABWALL_BLESS=1 to regenerate if intended):\n{}\n(lengths {} vs {})", p.display(), diff.join("\n"), want.len(), got.len());
    }
}

fn opts(role: &str) -> Options {
    let host = if role == "MASTER" { "fw-a" } else { "fw-b" };
    Options {
        role: role.into(),
        defines: vec![("HOSTNAME".into(), host.into())],
        allow_exec: false,
        compat_vips_all: false,
        system_hostname: None,
        vrrp_daemon: Default::default(),
    }
}

fn site(name: &str) -> (PathBuf, String) {
    let p = dir().join("sites").join(name).join("site.lw");
    let t = std::fs::read_to_string(&p).unwrap();
    (p, t)
}

fn golden_site(name: &str) -> Vec<String> {
    let (p, t) = site(name);
    let mut rulesets = Vec::new();
    let mut warnings = Vec::new();
    for role in ["MASTER", "BACKUP"] {
        let c = compile_source(&FsLoader, &p, &t, &opts(role))
            .unwrap_or_else(|d| panic!("{}", labwall::diag::render_all(&d)));
        let o = &c.outputs;
        check(&format!("{name}/{role}/network.ip"), &o.network_ip);
        check(&format!("{name}/{role}/sysctl.conf"), &o.sysctl_conf);
        check(&format!("{name}/{role}/ruleset.nft"), &o.ruleset_nft);
        check(
            &format!("{name}/{role}/keepalived.conf"),
            &o.keepalived_conf,
        );
        // every rule has a counter and a site.lw:<line> comment
        let mut in_chain = false;
        for l in o.ruleset_nft.lines() {
            let t = l.trim();
            if t.starts_with("chain ") {
                in_chain = true;
                continue;
            }
            if t == "}" {
                in_chain = false;
                continue;
            }
            if in_chain && !t.starts_with("type ") && !t.is_empty() {
                assert!(
                    t.contains(" counter ") || t.starts_with("counter "),
                    "rule without counter: {t}"
                );
                let c = t
                    .rsplit_once("comment \"site.lw:")
                    .unwrap_or_else(|| panic!("rule without site.lw comment: {t}"))
                    .1;
                let n: u32 = c
                    .trim_end_matches('"')
                    .parse()
                    .unwrap_or_else(|_| panic!("bad comment in {t}"));
                assert!(
                    n >= 1 && n as usize <= site(name).1.lines().count(),
                    "line {n} outside the file: {t}"
                );
            }
        }
        rulesets.push(o.ruleset_nft.clone());
        warnings = c.warnings.iter().map(|d| d.render()).collect();
    }
    assert_eq!(
        rulesets[0], rulesets[1],
        "ruleset.nft must be identical for both roles"
    );
    warnings
}

#[test]
fn example_site_both_roles() {
    let w = golden_site("example");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("site.lw:36:6: warning: alias mailhub is never used"),
        "{}",
        w[0]
    );
}

#[test]
fn seed_lines_both_roles() {
    let w = golden_site("seed");
    let all = w.join("");
    assert!(
        all.contains("site.lw:8:"),
        "broadcast warning expected: {all}"
    );
    assert!(all.contains("no POLICY line"), "{all}");
}

#[test]
fn all_diagnostics_at_once() {
    let (p, t) = site("bad");
    let d = compile_source(&FsLoader, &p, &t, &opts("MASTER")).expect_err("must fail");
    let text = labwall::diag::render_all(&d);
    check("bad/diagnostics.txt", &text);
    for needle in [
        "site.lw:3:22: error: undefined variable $INTERNALDEV",
        "backtick command `uname -n` is not allowed",
        "unknown statement `vlan`",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    // every diagnostic names file:line:col and says how to fix it
    for x in &d {
        assert!(x.loc.line > 0 && x.loc.col > 0, "{x:?}");
        assert!(
            x.fix.is_some() || x.expected.is_some(),
            "no fix/expected: {}",
            x.render()
        );
    }
}

#[test]
fn semantic_checks_report_everything() {
    // the same file with the preprocessor/parse errors removed reaches the semantic checks
    let (p, t) = site("bad");
    let t = t
        .replace("$INTERNALDEV", "eth0")
        .replace("`uname -n`", "fw")
        .replace("\nvlan 40", "\n#vlan 40");
    let d = compile_source(&FsLoader, &p, &t, &opts("MASTER")).expect_err("must fail");
    let text = labwall::diag::render_all(&d);
    check("bad/semantic.txt", &text);
    for needle in [
        "PASS secret is 13 characters",
        "VIP 10.1.1.2 is also a real address",
        "172.16.11.1 is outside 172.16.10.0/24",
        "VRID 100 is marked * on",
        "overlaps",
        "DANGER: host twohomed has addresses in zones VLAN10, VLAN20",
        "undefined zone VLAN99",
        "unknown service telnet",
        "alias lonely is never used",
        "POLICY VLAN10 VLAN20 ACCEPT is overridden by NOROUTE",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

#[test]
fn undefined_role_and_exec() {
    let (p, t) = site("example");
    let mut o = opts("MASTER");
    o.role = "PRIMARY".into();
    let d = compile_source(&FsLoader, &p, &t, &o).err().unwrap();
    assert!(labwall::diag::render_all(&d).contains("SET ROLE=PRIMARY: invalid role"));
    // --allow-exec runs other backticks
    let t2 = t.replace("`hostname`", "`echo fw-x`");
    let d = compile_source(&FsLoader, &p, &t2, &opts("MASTER"))
        .err()
        .unwrap();
    assert!(labwall::diag::render_all(&d).contains("--allow-exec"));
    let mut o = opts("MASTER");
    o.allow_exec = true;
    let c = compile_source(&FsLoader, &p, &t2, &o).unwrap();
    assert!(c.outputs.keepalived_conf.contains("router_id fw-x"));
}

#[test]
fn fuzz_body_survives_samples() {
    let (_, t) = site("example");
    let mut samples: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"NETINIT".to_vec(),
        b"VLAN 1 eth0 1.2.3.0 1.2.3.4-1.2.3.5-1.2.3.6-0* /0".to_vec(),
        b"${".to_vec(),
        b"IF\nELSE\nELSE\nENDIF\nENDIF".to_vec(),
        vec![0xff, 0xfe],
    ];
    for cut in (0..t.len()).step_by(97) {
        samples.push(t.as_bytes()[..cut].to_vec());
        samples.push(t.as_bytes()[cut..].to_vec());
    }
    for s in samples {
        labwall::fuzz_compile(&s);
    }
}
