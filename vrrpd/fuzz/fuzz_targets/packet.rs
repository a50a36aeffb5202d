//! Fuzz the VRRP packet parser, re-serialiser and receive validation (first byte picks the
//! address family); the body is `vrrpd::validate::fuzz_one`, also run by a unit test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vrrpd::validate::fuzz_one(data);
});
