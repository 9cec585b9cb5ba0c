//! The owned data model the reader produces and the writer accepts.
//!
//! Values are the logical content of a key, independent of the encoding it had on disk. Element
//! order: lists head first; sets, zsets and hashes in whatever order the file (or the caller)
//! gives (the canonical JSONL dump sorts them; the writer does not need them sorted).

/// A binary-safe byte string (keys, values, members, fields).
pub type Bytes = Vec<u8>;

/// The logical value of a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string (integer-encoded strings are given as their decimal text).
    String(Bytes),
    /// A list, head first.
    List(Vec<Bytes>),
    /// A set's members.
    Set(Vec<Bytes>),
    /// A sorted set's `(member, score)` pairs.
    ZSet(Vec<(Bytes, f64)>),
    /// A hash's `(field, value)` pairs.
    Hash(Vec<(Bytes, Bytes)>),
    /// A stream: its listpack nodes as Redis laid them out, metadata and consumer groups.
    Stream(Box<crate::stream::Stream>),
}

impl Value {
    /// The Redis type name (`string`, `list`, `set`, `zset`, `hash`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Hash(_) => "hash",
            Value::Stream(_) => "stream",
        }
    }
}

/// One key with its database, value and optional absolute expiry (Unix ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Database index.
    pub db: u32,
    /// The key's bytes.
    pub key: Bytes,
    /// The value.
    pub value: Value,
    /// Absolute expiry in Unix milliseconds, if any.
    pub expire_at_ms: Option<i64>,
}

/// A key's access metadata as an RDB carries it before the key (Redis `rdbSaveKeyValuePair`):
/// `IDLE` (opcode 248, the LRU idle time in seconds, an rdb length) under the LRU policies,
/// `FREQ` (opcode 249, the LFU counter, one byte) under the LFU policies; neither otherwise.
/// Redis's loader accepts both before one key (`rdbLoadRioWithLoadingCtx`) and applies the one
/// its own policy uses (`objectSetLRUOrLFU`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyAccess {
    /// LRU idle time in seconds (`IDLE`).
    pub idle_secs: Option<u64>,
    /// LFU logarithmic counter (`FREQ`).
    pub freq: Option<u8>,
}

impl KeyAccess {
    /// True when neither field is present.
    pub fn is_empty(&self) -> bool {
        self.idle_secs.is_none() && self.freq.is_none()
    }
}

/// Put entries in canonical order (`docs/keyspace-jsonl.md`): by database, then key
/// bytes; set members and hash fields by bytes; zset pairs by score then member bytes; stream
/// nodes re-laid from the live entries ([`crate::stream::Stream::relay_nodes`]).
/// Two canonicalized keyspaces are equal exactly when their `Vec<Entry>` compare equal.
pub fn canonicalize(entries: &mut [Entry]) {
    for e in entries.iter_mut() {
        match &mut e.value {
            Value::String(_) | Value::List(_) => {}
            // Node layout is history, not content.
            Value::Stream(s) => s.relay_nodes(),
            Value::Set(m) => m.sort_unstable(),
            Value::Hash(p) => p.sort_unstable_by(|a, b| a.0.cmp(&b.0)),
            // Redis's order: scores numerically (-0.0 equals 0.0), then member bytes.
            Value::ZSet(p) => p.sort_unstable_by(|a, b| {
                a.1.partial_cmp(&b.1)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| a.0.cmp(&b.0))
            }),
        }
    }
    entries.sort_unstable_by(|a, b| a.db.cmp(&b.db).then_with(|| a.key.cmp(&b.key)));
}
