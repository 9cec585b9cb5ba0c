//! The log's vocabulary for "where": which file, and where in it.
//!
//! The writer ([`crate::AofWriter`]) appends one stream of commands to a sequence of files. Two
//! layouts sit on it and speak of points of that stream with the types here:
//!
//! * the multi-part AOF (`appendonly.aof.<seq>.incr.aof`, [`crate::AofDir`]): a base records the
//!   position it covers up to ([`crate::BaseCut`]), a rewrite switches files at one
//!   ([`crate::Rotation`]);
//! * the segments directory (`segment.<seq>.aof`, crate `forkless-segments`): a snapshot records
//!   the position that splits the log into "in the snapshot" and "after it".
//!
//! ```text
//!   file seq 4                     file seq 5
//!   [ cmd | cmd | SELECT 2 | cmd ] [ cmd | cmd ...
//!                            ^           ^
//!                            |           LogPosition { seq: 5, offset: 24, db: None, .. }
//!                            LogPosition { seq: 4, offset: 31, db: Some(2), .. }
//! ```
//!
//! A position is taken with every shard lock held (a snapshot barrier), where it is an exact cut
//! of the write stream ([`crate::AofWriter::position`]).

/// The sequence number of a log file: an AOF base or incr file, a segment, a segments snapshot.
///
/// Signed because Redis's manifest stores `long long` (parsed with `atoll`, so a hand-edited
/// manifest may name a negative one and Redis loads it); every file forkless creates has a
/// positive number, and the segments manifest refuses any other.
pub type FileSeq = i64;

/// A point of the log: every write before it lies wholly in earlier bytes, every write from it
/// on wholly in later ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    /// The file holding the first write at or after this point.
    pub seq: FileSeq,
    /// Byte offset in that file (a command boundary).
    pub offset: u64,
    /// The database selected at that point of the file (`None`: none yet; replay starts in 0).
    pub db: Option<u32>,
    /// The writer clock's Unix second at that point.
    pub unix_secs: i64,
}

impl LogPosition {
    /// The start of file `seq`: offset 0, no database selected yet.
    pub fn start_of(seq: FileSeq, unix_secs: i64) -> LogPosition {
        LogPosition {
            seq,
            offset: 0,
            db: None,
            unix_secs,
        }
    }
}
