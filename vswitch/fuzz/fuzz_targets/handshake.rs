//! The ctl handshake reassembly (vswitch::daemon::fuzz::fuzz_handshake; also run by tests/robust.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch::daemon::fuzz::fuzz_handshake(data));
