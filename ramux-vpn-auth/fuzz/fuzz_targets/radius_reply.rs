#![no_main]
//! Any datagram as a reply to a fixed request: decoded, and judged against VLAN 10; then the
//! shared wire format's own body (ramux-radius), which also re-signs the bytes so that mutations
//! reach the attribute walk past the authenticator checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ramux_vpn_auth::fuzzing::radius_reply(data);
    ramux_vpn_auth::radius::fuzz_reply(data);
});
