//! sysctl.conf is generated from a site file; keys must never escape /proc/sys.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ramux_init::sysctl::fuzz_parse(data));
