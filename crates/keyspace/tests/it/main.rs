//! Integration tests of the keyspace (one test binary, one module per area).

mod session;
mod support;

mod bits;
mod differential;
mod differential_types;
mod dump_restore;
mod hashes;
mod keys;
mod keys_multithread;
mod lcs;
mod lists;
mod memory;
mod randfield;
mod replay;
mod replay_propagation;
mod sets;
mod streams;
mod strings;
mod zsets;
