#![no_main]
//! What an admin's PC (or a stranger) can put on a key: any bytes as a generation's tar, hash
//! file, keep.list and a device's first sectors.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ramux_keep::fuzz_key_files(data);
});
