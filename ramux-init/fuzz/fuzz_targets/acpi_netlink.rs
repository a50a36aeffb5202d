//! Netlink datagrams (family reply, ACPI events) must never panic the decoders.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ramux_init::acpi::fuzz_decode(data));
