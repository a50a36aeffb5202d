//! STP/RSTP BPDU decoder (frame and body) and the re-encode round trip.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch::stp::bpdu::fuzz_bpdu(data));
