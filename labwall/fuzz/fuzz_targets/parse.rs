//! Whole front end + checks + explain on arbitrary text: must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    labwall::fuzz_compile(data);
});
