//! End-to-end tests that build and boot images live in tests/tests/.
