//! Fuzz profile.toml: `vbuild::profile::fuzz_profile` loads the input as a profile over an
//! empty `common` (parse, inheritance, merge and every check); also run on fixed-seed mutations
//! by tests/profile_robust.rs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vbuild::profile::fuzz_profile(data);
});
