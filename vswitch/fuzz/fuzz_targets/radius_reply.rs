//! MAB: a RADIUS reply, raw and re-signed, to an outstanding Access-Request.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch::auth::mab::fuzz_reply(data));
