//! appliance.toml comes from the image builder; PID 1 must never panic on it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ramux_init::config::fuzz_parse(data));
