//! Integration tests of segmented persistence (one test binary, one module per area).

mod common;

mod bad_input;
mod crash;
mod oracle;
mod recovery;
