//! The labs shipped in the repository's `labs/` are clean: the lab checks and the site checks
//! (host checks such as built ISOs are left to `vlaunch lab validate` on the user's machine).

use std::path::Path;

#[test]
fn shipped_labs_check_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../labs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("labs/ exists") {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let c = ramux_lab::check_lab(&p);
            assert!(
                c.ok() && c.diagnostics.is_empty(),
                "{}:\n{}",
                p.display(),
                ramux_lab::render_all(&c.diagnostics)
            );
            n += 1;
        }
    }
    assert!(n >= 1, "no lab in {}", dir.display());
}
