//! Guest console bytes (untrusted): the ready-line scanner must not panic, must stay bounded, and
//! must give the same answer however the bytes are chunked.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vlaunch::serial::fuzz_console(data));
