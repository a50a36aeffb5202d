//! Console commands and the switching core: arbitrary command lines then arbitrary frames.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch::console::fuzz_console(data));
