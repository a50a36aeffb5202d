//! vswitch: see ../../shared/ARCHITECTURE.md (placeholder until its issue lands).
