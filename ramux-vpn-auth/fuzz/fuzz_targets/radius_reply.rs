#![no_main]
//! Any datagram as a reply to a fixed request: decoded, and judged against VLAN 10.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ramux_vpn_auth::fuzzing::radius_reply(data);
});
