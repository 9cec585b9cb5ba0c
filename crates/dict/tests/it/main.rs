//! Integration tests of the dict (one test binary, one module per area).

mod freeze;
mod model;
mod scan_random;
