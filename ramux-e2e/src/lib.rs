//! End-to-end tests live in `tests/tests/` (they build images with the `vbuild` library and boot
//! them with the `vlaunch` library under QEMU); shared helpers are in `tests/tests/common/`.
//! `tests/examples/iso_boot_bench.rs` measures boot time to ready per boot mode.
