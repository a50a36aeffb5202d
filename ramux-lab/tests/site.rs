//! The site facts read by labwall's library from profiles/router/site.lw are the facts the
//! golden tests assume (tests/common's hand-written copy), and the example lab is clean with them.

mod common;

use common::{crate_dir, seed_facts};

#[test]
fn labwall_reads_the_seed_site_as_the_tests_assume() {
    let site = crate_dir().join("../profiles/router/site.lw");
    let facts = ramux_lab::sitefile::site_facts(&site).unwrap();
    assert_eq!(facts, seed_facts());
}

#[test]
fn the_example_lab_is_clean_against_the_real_site_file() {
    let c = ramux_lab::check_lab(&crate_dir().join("tests/labs/cenbg2009.toml"));
    assert!(c.ok(), "{}", ramux_lab::render_all(&c.diagnostics));
}

#[test]
fn the_bad_labs_read_the_real_site_file_like_the_hand_copy() {
    for name in ["site_trunk", "site_order", "site_claims", "tests"] {
        let path = crate_dir().join(format!("tests/labs/bad/{name}.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let real = ramux_lab::check_text_with(
            &text,
            "x.toml",
            path.parent().unwrap(),
            &mut ramux_lab::sitefile::site_facts,
        );
        let hand =
            ramux_lab::check_text(&text, "x.toml", path.parent().unwrap(), Some(&seed_facts()));
        assert_eq!(
            ramux_lab::render_all(&real.diagnostics),
            ramux_lab::render_all(&hand.diagnostics),
            "{name}"
        );
    }
}

#[test]
fn a_missing_site_file_is_reported_at_the_site_key() {
    let text = "name = \"x\"\nsite = \"nowhere/site.lw\"\n";
    let c = ramux_lab::check_text_with(
        text,
        "lab.toml",
        std::path::Path::new("/nonexistent"),
        &mut ramux_lab::sitefile::site_facts,
    );
    let out = ramux_lab::render_all(&c.diagnostics);
    assert!(
        out.starts_with(
            "lab.toml:2:8: error: cannot read the site file /nonexistent/nowhere/site.lw:\n"
        ),
        "{out}"
    );
}
