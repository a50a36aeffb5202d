//! Fuzz the keepalived.conf parser (tokenizer, block tree, every section); the body is
//! `vrrpd::config::fuzz_one`, also run on fixed-seed mutations by tests/robust.rs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vrrpd::config::fuzz_one(data);
});
