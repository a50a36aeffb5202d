//! Fuzz the control-socket command parser and its bounded line buffer; the body is
//! `vrrpd::control::fuzz_one`, also run on fixed-seed mutations by tests/robust.rs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vrrpd::control::fuzz_one(data);
});
