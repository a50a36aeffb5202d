//! Stream (QEMU -netdev stream) reassembly (vswitch::daemon::fuzz::fuzz_stream; also run by tests/robust.rs).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch::daemon::fuzz::fuzz_stream(data));
