//! The writer's vocabulary: its options (fsync policy, full queue, errors, rolling, file names,
//! I/O wrapping), its counters and the file switch it reports ([`Rotation`], a
//! [`LogPosition`]). Plain data; the protocol lives in `state`, `thread` and `syncer`.

use std::time::Duration;

use forkless_sync::Arc;

use crate::io::{AofIo, AofStorage};
use crate::position::{FileSeq, LogPosition};

/// `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// A write is acknowledged once fsynced.
    Always,
    /// fsync in the background about once a second.
    EverySec,
    /// Leave flushing to the OS.
    No,
}

impl FsyncPolicy {
    pub(super) fn to_u8(self) -> u8 {
        match self {
            FsyncPolicy::Always => 0,
            FsyncPolicy::EverySec => 1,
            FsyncPolicy::No => 2,
        }
    }

    pub(super) fn from_u8(v: u8) -> FsyncPolicy {
        match v {
            0 => FsyncPolicy::Always,
            1 => FsyncPolicy::EverySec,
            _ => FsyncPolicy::No,
        }
    }

    /// The `appendfsync` value: `always`, `everysec` or `no`.
    pub fn name(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A text that names no [`FsyncPolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFsyncError(pub String);

impl std::fmt::Display for ParseFsyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown appendfsync policy {:?} (expected always, everysec or no)",
            self.0
        )
    }
}

impl std::error::Error for ParseFsyncError {}

impl std::str::FromStr for FsyncPolicy {
    type Err = ParseFsyncError;
    /// The inverse of [`FsyncPolicy::name`], ignoring ASCII case as Redis's enum configs do.
    fn from_str(s: &str) -> Result<FsyncPolicy, ParseFsyncError> {
        [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseFsyncError(s.to_string()))
    }
}

/// What a caller meets when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room (backpressure).
    Block,
    /// Fail at once with [`AofError::QueueFull`].
    Fail,
}

/// What happens after a write or fsync error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Refuse new writes until a retry succeeds (Redis MISCONF).
    Refuse,
    /// Count the error, keep accepting writes (cache mode).
    Continue,
}

/// A clock in Unix seconds (for `#TS:` annotations).
pub type SecondsClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Names the file of a sequence number (default: the incr name `<filename>.<seq>.incr.aof`).
pub type FileNamer = Arc<dyn Fn(FileSeq) -> String + Send + Sync>;

/// Wraps every file the writer appends to (the first and those of later rotations): fault
/// injection for tests of the layers above, e.g. the engine's MISCONF test.
pub type IoWrapper = Arc<dyn Fn(Box<dyn AofIo>) -> Box<dyn AofIo> + Send + Sync>;

/// Writer configuration.
#[derive(Clone)]
pub struct WriterOptions {
    /// The fsync policy (default `everysec`, as Redis).
    pub fsync: FsyncPolicy,
    /// Queue capacity in bytes (default 64 MiB). One write larger than this is accepted alone.
    pub queue_capacity: usize,
    /// Full queue behaviour (default block).
    pub when_full: WhenFull,
    /// Error behaviour (default refuse).
    pub on_error: OnError,
    /// Write `#TS:<secs>` before a write when the second changed (`aof-timestamp-enabled`).
    pub timestamps: bool,
    /// Accept per-write source tags (written as `#<tag>` lines; off by default).
    pub source_tags: bool,
    /// The clock for annotations; `None` = system time.
    pub clock: Option<SecondsClock>,
    /// `everysec` interval (default 1 s).
    pub fsync_interval: Duration,
    /// Longest postponement of writes behind a running fsync (default 2 s).
    pub max_postpone: Duration,
    /// Delay between retries after an error (default 1 s, Redis's serverCron period).
    pub retry_interval: Duration,
    /// Roll to a new file once the current one holds at least this many bytes (decided in the
    /// stream when a write is enqueued, so every write lies wholly in one file). `None`: never.
    pub roll_bytes: Option<u64>,
    /// Roll before a write when the current file holds data and was opened this long ago.
    pub roll_age: Option<Duration>,
    /// File names by sequence number; `None` = `<filename>.<seq>.incr.aof`.
    pub file_namer: Option<FileNamer>,
    /// Wraps the files appended to (tests); `None` = as opened.
    pub io_wrapper: Option<IoWrapper>,
    /// Under `everysec` and `no`: how long the writer thread lets appends gather before it
    /// writes them (one `write` per turn instead of one wake-up and `write` per command, as
    /// Redis writes its AOF buffer once per event-loop turn). An append is acknowledged without
    /// waiting for its write under these policies either way. `always`, flushes, rotations and
    /// shutdown never wait for it; zero turns it off.
    pub linger: Duration,
}

impl WriterOptions {
    /// The writer clock's Unix second: [`WriterOptions::clock`], else system time.
    pub fn clock_secs(&self) -> i64 {
        self.clock
            .as_ref()
            .map_or_else(|| super::state::now_unix_ms() / 1000, |c| c())
    }
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            fsync: FsyncPolicy::EverySec,
            queue_capacity: 64 << 20,
            when_full: WhenFull::Block,
            on_error: OnError::Refuse,
            timestamps: false,
            source_tags: false,
            clock: None,
            fsync_interval: Duration::from_secs(1),
            max_postpone: Duration::from_secs(2),
            retry_interval: Duration::from_secs(1),
            roll_bytes: None,
            roll_age: None,
            file_namer: None,
            io_wrapper: None,
            linger: Duration::from_micros(500),
        }
    }
}

/// Storage whose files go through [`WriterOptions::io_wrapper`].
pub(super) struct WrappedStorage {
    pub(super) inner: Box<dyn AofStorage>,
    pub(super) wrap: IoWrapper,
}

impl AofStorage for WrappedStorage {
    fn open_incr(&mut self, name: &str, seq: FileSeq) -> std::io::Result<Box<dyn AofIo>> {
        self.inner.open_incr(name, seq).map(|io| (self.wrap)(io))
    }
    fn closing(&mut self, seq: FileSeq, len: u64, crc: Option<u64>) {
        self.inner.closing(seq, len, crc);
    }
}

impl std::fmt::Debug for WriterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterOptions")
            .field("fsync", &self.fsync)
            .field("queue_capacity", &self.queue_capacity)
            .field("when_full", &self.when_full)
            .field("on_error", &self.on_error)
            .field("timestamps", &self.timestamps)
            .field("source_tags", &self.source_tags)
            .field("roll_bytes", &self.roll_bytes)
            .field("roll_age", &self.roll_age)
            .finish_non_exhaustive()
    }
}

/// A snapshot of the writer's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AofMetrics {
    /// Bytes accepted but not yet written.
    pub queue_bytes: usize,
    /// Bytes written to files.
    pub bytes_written: u64,
    /// Completed fsyncs.
    pub fsyncs: u64,
    /// When the last fsync completed (Unix ms).
    pub last_fsync_unix_ms: Option<i64>,
    /// Writes that went ahead after being postponed `max_postpone` behind a slow fsync.
    pub delayed_fsyncs: u64,
    /// Write and fsync errors.
    pub errors: u64,
    /// The current error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Logical offset of everything accepted.
    pub enqueued_offset: u64,
    /// Logical offset written.
    pub written_offset: u64,
    /// Logical offset durable.
    pub durable_offset: u64,
    /// The incr file being appended to.
    pub current_file: String,
    /// Files closed by [`WriterOptions::roll_bytes`] / [`WriterOptions::roll_age`].
    pub rolls: u64,
}

/// Where [`AofWriter::rotate`] switched files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new incr file's name.
    pub name: String,
    /// The switch: the start of the new file, at the writer clock's second.
    pub at: LogPosition,
    /// Logical stream offset of the switch (bytes enqueued since the writer started): bytes
    /// before it go to the old file.
    pub logical: u64,
}
