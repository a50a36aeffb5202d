//! The profile.toml fuzz target's body (`vbuild::profile::fuzz_profile`) under `cargo test`: its
//! committed seeds (the real profiles) and every truncation and single-byte change of them
//! at a fixed stride. Must never panic.

use std::path::Path;

#[test]
fn profile_seeds_and_their_mutations_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/profile");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let seed = std::fs::read(e.unwrap().path()).unwrap();
        vbuild::profile::fuzz_profile(&seed);
        for i in (0..seed.len()).step_by(7) {
            vbuild::profile::fuzz_profile(&seed[..i]);
            let mut m = seed.clone();
            m[i] = b"\"[]=\n\xff0"[i % 7];
            vbuild::profile::fuzz_profile(&m);
            n += 2;
        }
    }
    assert!(n > 100, "{n} inputs");
}
