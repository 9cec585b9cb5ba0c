//! Integration tests of the snapshot (one test binary, one module per area).

mod common;

mod flush;
mod lifecycle;
mod oracle;
mod parallel;
mod protocol;
mod stress;
