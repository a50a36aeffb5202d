//! VDE handshake request, sockaddr reply, Ethernet/802.1Q, stream framing and VXLAN parsers.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch::wire::fuzz_parsers(data));
