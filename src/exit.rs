//! Process exit codes: the contract scripts and CI gates rely on. Documented in README.

/// Every check passed (warnings allowed unless `--strict`).
pub const SUCCESS: u8 = 0;
/// A MUST check failed, a SHOULD check failed under `--strict`, or a load threshold was crossed.
pub const CHECK_FAILED: u8 = 1;
/// Our input is wrong: scenario or target YAML, key files, CLI usage, a filter selecting nothing.
pub const INVALID_INPUT: u8 = 2;
/// The run could not complete: target unreachable, timeout, TLS failure, I/O error.
pub const RUNTIME_ERROR: u8 = 3;
