//! Integration tests of the AOF (one test binary, one module per area).

mod crash;
mod dir;
mod fixtures;
mod history;
mod rewrite;
mod robustness;
mod stream_rewrite;
mod writer;
