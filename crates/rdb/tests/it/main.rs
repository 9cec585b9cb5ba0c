//! Integration tests of the RDB reader and writer (one test binary, one module per area).

mod write_compare;

mod oracle_bytes;
mod oracle_writer;
mod read_crafted;
mod read_fixtures;
mod read_speed;
mod robust;
mod robust_memory;
mod write_fixtures;
mod write_fragments;
mod write_roundtrip;
