//! Integration tests of the `forkless` binary (one test binary, one module per command group).

mod aof_history;
mod demo;
mod rdb_cli;
mod run;
mod segments;
