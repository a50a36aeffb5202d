//! The pending-handshake bound (vswitch::daemon::fuzz::fuzz_pending; also run by tests/robust.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch::daemon::fuzz::fuzz_pending(data));
