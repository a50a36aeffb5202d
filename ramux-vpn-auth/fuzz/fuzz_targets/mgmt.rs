#![no_main]
//! Management lines, split at newlines, through the assembler and one VLAN's state machine.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ramux_vpn_auth::fuzzing::mgmt_stream(data);
});
