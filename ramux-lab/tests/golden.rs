//! Golden files: every lab in tests/labs/bad/ with its complete diagnostics in
//! tests/golden/bad/NAME.txt, the example lab (no diagnostic) with its mermaid and dot graphs and
//! its status document. `RAMUX_LAB_BLESS=1 cargo test -p ramux-lab` rewrites them.

mod common;

use std::path::Path;

use common::{crate_dir, golden, seed_facts};
use ramux_lab::{check_text, render_all, Checked};

/// Check a lab under tests/labs/ as `labs/...` (a stable name in the messages), against the
/// seed site when it names one.
fn check(rel: &str) -> Checked {
    let path = crate_dir().join("tests").join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    let facts = seed_facts();
    let site = text.contains("\nsite = ").then_some(&facts);
    check_text(&text, rel, path.parent().unwrap(), site)
}

#[test]
fn every_bad_lab_has_its_golden_diagnostics() {
    let dir = crate_dir().join("tests/labs/bad");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 14, "{names:?}");
    std::fs::create_dir_all(crate_dir().join("tests/golden/bad")).unwrap();
    for name in names {
        let checked = check(&format!("labs/bad/{name}"));
        assert!(!checked.ok(), "{name} has no error");
        let out = render_all(&checked.diagnostics);
        for d in &checked.diagnostics {
            assert!(d.pos.is_some() && d.fix.is_some(), "{name}: {d}");
        }
        let stem = name.trim_end_matches(".toml");
        golden(
            &crate_dir().join(format!("tests/golden/bad/{stem}.txt")),
            &out,
        );
    }
}

#[test]
fn the_example_lab_is_clean_and_draws_the_same_graph() {
    let checked = check("labs/cenbg2009.toml");
    assert_eq!(render_all(&checked.diagnostics), "");
    let lab = checked.lab.unwrap();
    let g = crate_dir().join("tests/golden");
    golden(
        &g.join("cenbg2009.mermaid"),
        &ramux_lab::graph::mermaid(&lab),
    );
    golden(&g.join("cenbg2009.dot"), &ramux_lab::graph::dot(&lab));
    golden(
        &g.join("cenbg2009.status.json"),
        &ramux_lab::LabStatus::defined(&lab).to_json(),
    );
    let plan = ramux_lab::start_plan(&lab).unwrap();
    assert_eq!(plan.waves, vec![vec!["RT1", "RT2"], vec!["MV1", "MV2"]]);
}

#[test]
fn golden_files_have_no_stale_entries() {
    let labs = crate_dir().join("tests/labs/bad");
    for e in std::fs::read_dir(crate_dir().join("tests/golden/bad")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let lab = name.trim_end_matches(".txt").to_string() + ".toml";
        assert!(
            Path::new(&labs.join(&lab)).exists(),
            "tests/golden/bad/{name} has no lab {lab}"
        );
    }
}
