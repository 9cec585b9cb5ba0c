//! Command handlers, one module per family; each exports `COMMANDS`.

pub(crate) mod bits;
pub(crate) mod dump;
pub(crate) mod geo;
pub(crate) mod hashes;
pub(crate) mod hll;
pub(crate) mod keys;
pub(crate) mod lcs;
pub(crate) mod lists;
pub(crate) mod mpop;
pub(crate) mod randfield;
pub(crate) mod scans;
pub(crate) mod server;
pub(crate) mod sets;
pub(crate) mod sort;
pub(crate) mod stream_groups;
pub(crate) mod streams;
pub(crate) mod strings;
pub(crate) mod zsetops;
pub(crate) mod zsets;

use crate::command::CommandSpec;

/// Every command module's table.
pub(crate) const ALL: &[&[CommandSpec]] = &[
    strings::COMMANDS,
    keys::COMMANDS,
    server::COMMANDS,
    lists::COMMANDS,
    mpop::COMMANDS,
    sets::COMMANDS,
    zsets::COMMANDS,
    zsetops::COMMANDS,
    sort::COMMANDS,
    hashes::COMMANDS,
    hll::COMMANDS,
    geo::COMMANDS,
    randfield::COMMANDS,
    scans::COMMANDS,
    dump::COMMANDS,
    bits::COMMANDS,
    lcs::COMMANDS,
    streams::COMMANDS,
    stream_groups::COMMANDS,
];
