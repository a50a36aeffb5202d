//! Bytes from the QMP socket: classification must never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vlaunch::qmp::fuzz_qmp(data));
