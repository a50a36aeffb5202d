#![no_main]
// The site secrets overlay ramux-init reads from fw_cfg: untrusted bytes (docs/secrets.md).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ramux_contract::secrets::fuzz_secrets(data);
});
