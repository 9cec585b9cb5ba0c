//! Flag values shared by the subcommands, parsed once by the types' own `FromStr`
//! ([`FsyncPolicy`], [`Mode`]) behind clap's list of possible values, so `--help` lists each
//! value with its meaning and a wrong value is refused by clap (exit status 2) as before.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use forkless_aof::FsyncPolicy;
use forkless_snapshot::Mode;

/// `--appendfsync always|everysec|no` (Redis's names).
pub(crate) fn fsync_policy() -> impl TypedValueParser<Value = FsyncPolicy> {
    PossibleValuesParser::new([
        PossibleValue::new(FsyncPolicy::Always.name())
            .help("A reply is written only once the command's bytes are fsynced"),
        PossibleValue::new(FsyncPolicy::EverySec.name())
            .help("fsync about once a second in the background"),
        PossibleValue::new(FsyncPolicy::No.name()).help("Leave flushing to the OS"),
    ])
    .try_map(|s: String| s.parse::<FsyncPolicy>())
}

/// `--mode converging|pit` of `forkless run`.
pub(crate) fn snapshot_mode() -> impl TypedValueParser<Value = Mode> {
    PossibleValuesParser::new([
        PossibleValue::new(Mode::Converging.name())
            .help("RDB + RESP deltas: the keyspace when the snapshot ends"),
        PossibleValue::new(Mode::PointInTime.name())
            .help("Pure RDB: the keyspace when the snapshot starts"),
    ])
    .try_map(|s: String| s.parse::<Mode>())
}

/// The word of `forkless demo --mode` that selects both modes.
const BOTH: &str = "both";

/// The modes `forkless demo` measures, in order, as `--mode` selects them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DemoModes(pub(crate) Vec<Mode>);

impl std::fmt::Display for DemoModes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [m] => write!(f, "{m}"),
            _ => f.write_str(BOTH),
        }
    }
}

/// `--mode converging|pit|both` of `forkless demo` (both: converging first).
pub(crate) fn demo_modes() -> impl TypedValueParser<Value = DemoModes> {
    PossibleValuesParser::new([
        PossibleValue::new(Mode::Converging.name())
            .help("Converging (RDB + deltas, equal to the keyspace at the end)"),
        PossibleValue::new(Mode::PointInTime.name())
            .help("Point-in-time (pure RDB, equal to the keyspace at the start)"),
        PossibleValue::new(BOTH).help("Both, converging first"),
    ])
    .try_map(|s: String| match s.as_str() {
        BOTH => Ok(DemoModes(vec![Mode::Converging, Mode::PointInTime])),
        one => one.parse::<Mode>().map(|m| DemoModes(vec![m])),
    })
}

/// `forkless demo`'s default `--mode`.
pub(crate) fn demo_modes_default() -> DemoModes {
    DemoModes(vec![Mode::Converging, Mode::PointInTime])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every listed value parses through the type's own `FromStr`, and each type's `Display`
    /// gives back the listed word.
    #[test]
    fn listed_values_round_trip() {
        for p in [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No] {
            assert_eq!(p.to_string().parse::<FsyncPolicy>().unwrap(), p);
        }
        for m in [Mode::Converging, Mode::PointInTime] {
            assert_eq!(m.to_string().parse::<Mode>().unwrap(), m);
        }
        assert_eq!(demo_modes_default().to_string(), "both");
        assert_eq!(DemoModes(vec![Mode::PointInTime]).to_string(), "pit");
        assert!("fast".parse::<FsyncPolicy>().is_err());
        assert!("both".parse::<Mode>().is_err());
    }
}
