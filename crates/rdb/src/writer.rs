//! Streaming RDB version 10 writer, byte-compatible with redis-server 7.0.15 (`rdb.c`:
//! `rdbSaveRio`, `rdbSaveInfoAuxFields`, `rdbSaveDb`, `rdbSaveKeyValuePair`, `rdbSaveObject`,
//! `rdbSaveRawString`), choosing each value's encoding the way Redis 7.0 holds it in memory
//! with its default configuration, so a server that loads the file keeps our blobs as they are.
//!
//! # File layout
//! ```text
//! "REDIS0010"
//! 0xFA "redis-ver" "7.0.15"  0xFA "redis-bits" "64"  0xFA "ctime" <secs>  0xFA "used-mem" <n>
//! 0xFA "aof-base" "0"|"1"    (0xFA <extra aux key> <value>)*
//! per non-empty database:
//!   0xFE <db: len>  0xFB <db size: len> <expires size: len>
//!   per key: [0xFC <expire ms: i64 LE>] [0xF8 <LRU idle seconds: len>] [0xF9 <LFU counter: u8>]
//!            <type: u8> <key: string> <value>
//! 0xFF <CRC-64/REDIS of every byte above: u64 LE, or 0 when checksums are off>
//! ```
//! `len` is the RDB length encoding (6/14-bit, or 0x80 + u32 BE, or 0x81 + u64 BE).
//! `string` is `rdbSaveRawString`: INT8/16/32 (0xC0/0xC1/0xC2 + LE) when the bytes are the
//! canonical decimal of an integer that fits (length <= 11), else LZF (0xC3 <clen> <len> <data>)
//! when compression is on, the length is over 20 and LZF saves at least 4 bytes, else
//! `<len> <bytes>`. Every blob below is itself stored as such a string.
//!
//! # Values (encodings as Redis 7.0 chooses them, [`EncodingLimits`])
//! | type | when | value |
//! |---|---|---|
//! | 0 STRING | always | string |
//! | 18 LIST_QUICKLIST_2 | always | `<nodes: len>` then per node `<container: len>` (2 packed, 1 plain) and a listpack string (plain: the element) |
//! | 11 SET_INTSET | all members canonical integers, count <= 512 | intset string |
//! | 2 SET | otherwise | `<count: len>` member strings |
//! | 17 ZSET_LISTPACK | count <= 128, members <= 64 bytes | listpack string: member, score, ... by (score, member) |
//! | 5 ZSET_2 | otherwise | `<count: len>` then member string + f64 LE per pair |
//! | 16 HASH_LISTPACK | count <= 512, fields and values <= 64 bytes | listpack string: field, value, ... |
//! | 4 HASH | otherwise | `<count: len>` then field and value strings |
//!
//! Quicklist nodes split as `quicklistPushTail` splits them (`_quicklistNodeAllowInsert`): a
//! node takes the next element while its listpack size + the element's length + 8 stays within
//! the size class of `list-max-listpack-size` (-2 = 8 KiB), or, for a positive fill, while its
//! count is below it and the estimate stays within 8 KiB; an element of 1 GiB or more gets a plain
//! node of its own. With `list-compress-depth 0` nodes are never compressed in memory, so they
//! are saved with `rdbSaveRawString`, which applies LZF as for any string.
//!
//! # Caller contract
//! The writer never checks for duplicate keys (Redis crashes loading a file that has one) nor
//! duplicate set members, hash fields or zset members (apart from integer set members): the
//! caller guarantees uniqueness. Empty collections and NaN scores are refused with
//! [`RdbError::InvalidInput`]. After any error the writer is failed and refuses further calls.

mod intset_builder;
mod listpack_builder;
mod lzf_compress;
mod number;
mod quicklist;
mod sink;
mod stream_writer;

pub use intset_builder::build_intset;
pub use listpack_builder::ListpackBuilder;
pub use lzf_compress::LzfCompressor;
pub use number::{d2string, double_to_i64, parse_canonical_i64};
pub use stream_writer::StreamMeta;

use std::io::Write;

use crate::constants::{
    MAGIC, OPCODE_AUX, OPCODE_EOF, OPCODE_EXPIRETIME_MS, OPCODE_FREQ, OPCODE_IDLE, OPCODE_RESIZEDB,
    OPCODE_SELECTDB, QUICKLIST_NODE_PACKED, QUICKLIST_NODE_PLAIN, TYPE_HASH, TYPE_HASH_LISTPACK,
    TYPE_LIST_QUICKLIST_2, TYPE_SET, TYPE_SET_INTSET, TYPE_STRING, TYPE_ZSET_2, TYPE_ZSET_LISTPACK,
    WRITE_VERSION,
};
use crate::crc::Crc64;
use crate::error::{RdbError, Result};
use crate::model::{Bytes, Entry, KeyAccess, Value};
use quicklist::plan_quicklist;
use sink::{Lzf, Sink, BUF_CAP};

/// The `redis-ver` aux field we write.
pub const REDIS_VER: &str = "7.0.15";

/// Encoding thresholds, named after the Redis options; [`Default`] gives Redis 7.0's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodingLimits {
    /// `list-max-listpack-size`: negative = node size class (-1 4 KiB, -2 8 KiB, ... -5 64 KiB),
    /// positive = max entries per node. Default -2.
    pub list_max_listpack_size: i64,
    /// `set-max-intset-entries`. Default 512.
    pub set_max_intset_entries: usize,
    /// `zset-max-listpack-entries`. Default 128.
    pub zset_max_listpack_entries: usize,
    /// `zset-max-listpack-value` (bytes of a member). Default 64.
    pub zset_max_listpack_value: usize,
    /// `hash-max-listpack-entries`. Default 512: that is Redis 7.0's built-in default
    /// (`config.c`, and what redis-server 7.0.15 reports), not the 128 of `zset`.
    pub hash_max_listpack_entries: usize,
    /// `hash-max-listpack-value` (bytes of a field or value). Default 64.
    pub hash_max_listpack_value: usize,
}

impl Default for EncodingLimits {
    fn default() -> Self {
        EncodingLimits {
            list_max_listpack_size: -2,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
        }
    }
}

/// What to write besides the keys; [`Default`] matches `redis-server` 7.0 defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOptions {
    /// `rdbcompression`: LZF for strings and blobs over 20 bytes that shrink. Default true.
    pub compression: bool,
    /// `rdbchecksum`: false writes 8 zero bytes instead of the CRC-64. Default true.
    pub checksum: bool,
    /// Writes aux `aof-base` 1 (an AOF base or RDB preamble) instead of 0.
    pub aof_base: bool,
    /// The `ctime` aux field in seconds; `None` = now.
    pub ctime: Option<i64>,
    /// The `used-mem` aux field.
    pub used_mem: u64,
    /// Aux fields written after the standard ones (Redis ignores unknown ones).
    pub extra_aux: Vec<(Bytes, Bytes)>,
    /// Encoding thresholds.
    pub limits: EncodingLimits,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: true,
            checksum: true,
            aof_base: false,
            ctime: None,
            used_mem: 0,
            extra_aux: Vec::new(),
            limits: EncodingLimits::default(),
        }
    }
}

/// Sort zset pairs as a Redis listpack zset keeps them: by score (with -0 equal to 0), then
/// member bytes (`zzlInsert`, `sdscmp`).
fn sort_zset_pairs(pairs: &mut [(&[u8], f64)]) {
    pairs.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(b.0))
    });
}

fn key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// A streaming RDB v10 writer over any [`Write`]; see the module documentation for the layout.
///
/// Writes are buffered internally (64 KiB) and the CRC runs over every byte; [`finish`]
/// writes the EOF opcode and checksum, flushes and returns the inner writer (an RDB-preamble
/// AOF goes on with RESP after it).
///
/// [`finish`]: RdbWriter::finish
pub struct RdbWriter<W: Write> {
    sink: Sink<W>,
    lzf: Lzf,
    lp: ListpackBuilder,
    blob: Vec<u8>,
    compression: bool,
    limits: EncodingLimits,
    /// Database selected by the last `select_db` (Redis loads keys before any into db 0).
    db: u32,
    /// IDLE/FREQ for the next key ([`RdbWriter::set_next_access`]).
    access: KeyAccess,
    failed: bool,
}

impl<W: Write> std::fmt::Debug for RdbWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdbWriter")
            .field("bytes_written", &self.sink.written)
            .field("db", &self.db)
            .field("compression", &self.compression)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<W: Write> RdbWriter<W> {
    /// Start a file: writes `REDIS0010` and the aux fields (`redis-ver`, `redis-bits`, `ctime`,
    /// `used-mem`, `aof-base`, then `extra_aux`).
    pub fn new(w: W, opts: WriteOptions) -> Result<Self> {
        let mut me = RdbWriter::bare(w, &opts, opts.checksum);
        let ctime = opts.ctime.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
        me.sink.put(MAGIC)?;
        me.sink.put(format!("{WRITE_VERSION:04}").as_bytes())?;
        me.aux(b"redis-ver", REDIS_VER.as_bytes())?;
        me.aux(b"redis-bits", b"64")?;
        me.aux(b"ctime", ctime.to_string().as_bytes())?;
        me.aux(b"used-mem", opts.used_mem.to_string().as_bytes())?;
        me.aux(b"aof-base", if opts.aof_base { b"1" } else { b"0" })?;
        for (k, v) in &opts.extra_aux {
            me.aux(k, v)?;
        }
        Ok(me)
    }

    /// A writer that has written nothing yet (no header).
    fn bare(w: W, opts: &WriteOptions, checksum: bool) -> Self {
        RdbWriter {
            sink: Sink {
                w,
                buf: Vec::with_capacity(BUF_CAP + 64),
                crc: Crc64::new(),
                checksum,
                written: 0,
            },
            lzf: Lzf {
                compressor: LzfCompressor::new(),
                out: Vec::new(),
            },
            lp: ListpackBuilder::new(),
            blob: Vec::new(),
            compression: opts.compression,
            limits: opts.limits,
            db: 0,
            access: KeyAccess::default(),
            failed: false,
        }
    }

    /// Append bytes a [`RdbWriter::fragment`] encoded (with the same options) here, as if this
    /// writer had written them itself: they pass through this writer's CRC-64 and byte count in
    /// order. Parallel serialization encodes entries into fragments on several threads and
    /// appends them in the file's order on one; the result is byte for byte the file one writer
    /// would have written (tested). The caller vouches that `bytes` are whole records (a
    /// SELECTDB, entries) and that the database they select is the one later entries belong to.
    pub fn append_encoded(&mut self, bytes: &[u8]) -> Result<()> {
        self.guard(|me| me.sink.put(bytes))
    }

    /// Write an aux field (`0xFA key value`) here. Redis's loader accepts aux fields anywhere
    /// before EOF (`rdbLoadRioWithLoadingCtx` handles the opcode in its main loop), so a field
    /// known only at the end (a snapshot's cut) can follow the keys.
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.sink.put_u8(OPCODE_AUX)?;
        self.sink.put_string(&mut self.lzf, self.compression, key)?;
        self.sink.put_string(&mut self.lzf, self.compression, value)
    }

    /// A function library (`0xF5 <string code>`, RDB_OPCODE_FUNCTION2). Redis's loader accepts
    /// it anywhere before EOF; Redis writes libraries before the databases.
    pub fn function(&mut self, code: &[u8]) -> Result<()> {
        self.guard(|me| {
            me.sink.put_u8(crate::constants::OPCODE_FUNCTION2)?;
            me.put_string(code)
        })
    }

    /// Run `f`, marking the writer failed if it errs.
    fn guard(&mut self, f: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        if self.failed {
            return Err(RdbError::InvalidInput(
                "the RDB writer failed earlier and cannot go on".into(),
            ));
        }
        let r = f(self);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Select a database: SELECTDB then RESIZEDB with the number of keys and of keys with an
    /// expiry that follow (hints for the loader's hash tables). Call it only for a non-empty
    /// database, as Redis does. Redis's default configuration has 16 databases (0..=15).
    pub fn select_db(&mut self, db: u32, db_size: u64, expires_size: u64) -> Result<()> {
        self.guard(|me| {
            me.sink.put_u8(OPCODE_SELECTDB)?;
            me.sink.put_len(u64::from(db))?;
            me.sink.put_u8(OPCODE_RESIZEDB)?;
            me.sink.put_len(db_size)?;
            me.sink.put_len(expires_size)?;
            me.db = db;
            Ok(())
        })
    }

    /// The access metadata of the next key written (and of that key only): `IDLE` (opcode 248,
    /// the LRU idle seconds) and/or `FREQ` (249, the LFU counter), written after its expiry and
    /// before its type, as `rdbSaveKeyValuePair` does under the LRU / LFU maxmemory policies.
    pub fn set_next_access(&mut self, access: KeyAccess) {
        self.access = access;
    }

    fn header(&mut self, ty: u8, key: &[u8], expire_at_ms: Option<i64>) -> Result<()> {
        if let Some(ms) = expire_at_ms {
            self.sink.put_u8(OPCODE_EXPIRETIME_MS)?;
            self.sink.put(&ms.to_le_bytes())?;
        }
        let access = std::mem::take(&mut self.access);
        if let Some(idle) = access.idle_secs {
            self.sink.put_u8(OPCODE_IDLE)?;
            self.sink.put_len(idle)?;
        }
        if let Some(freq) = access.freq {
            self.sink.put_u8(OPCODE_FREQ)?;
            self.sink.put_u8(freq)?;
        }
        self.sink.put_u8(ty)?;
        self.sink.put_string(&mut self.lzf, self.compression, key)
    }

    fn put_string(&mut self, s: &[u8]) -> Result<()> {
        self.sink.put_string(&mut self.lzf, self.compression, s)
    }

    /// A string key.
    pub fn write_string(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at_ms: Option<i64>,
    ) -> Result<()> {
        self.guard(|me| {
            me.header(TYPE_STRING, key, expire_at_ms)?;
            me.put_string(value)
        })
    }

    /// A list key (head first) as a QUICKLIST_2 of listpack nodes split as Redis splits them.
    pub fn write_list<'a, I>(
        &mut self,
        key: &[u8],
        items: I,
        expire_at_ms: Option<i64>,
    ) -> Result<()>
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: Clone,
    {
        let iter = items.into_iter();
        self.guard(|me| {
            let plan = plan_quicklist(iter.clone(), me.limits.list_max_listpack_size);
            if plan.is_empty() {
                return Err(RdbError::InvalidInput(format!(
                    "list {:?} is empty",
                    key_text(key)
                )));
            }
            me.header(TYPE_LIST_QUICKLIST_2, key, expire_at_ms)?;
            me.sink.put_len(plan.len() as u64)?;
            let mut it = iter;
            let short = || {
                RdbError::InvalidInput(format!(
                    "list {:?}: the iterator's second pass yielded fewer elements",
                    key_text(key)
                ))
            };
            let mut lp = std::mem::take(&mut me.lp);
            let r = (|| {
                for node in &plan {
                    if node.plain {
                        me.sink.put_len(QUICKLIST_NODE_PLAIN)?;
                        let ele = it.next().ok_or_else(short)?;
                        me.put_string(ele)?;
                    } else {
                        me.sink.put_len(QUICKLIST_NODE_PACKED)?;
                        lp.clear();
                        for _ in 0..node.count {
                            lp.push(it.next().ok_or_else(short)?);
                        }
                        let bytes = lp.finish()?;
                        me.sink.put_string(&mut me.lzf, me.compression, bytes)?;
                    }
                }
                Ok(())
            })();
            lp.clear();
            me.lp = lp;
            r
        })
    }

    /// A set key: an intset when every member is a canonical integer and there are at most
    /// `set_max_intset_entries`, else a plain SET.
    pub fn write_set<'a, I>(
        &mut self,
        key: &[u8],
        members: I,
        expire_at_ms: Option<i64>,
    ) -> Result<()>
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: Clone,
    {
        let iter = members.into_iter();
        self.guard(|me| {
            let mut count = 0usize;
            let mut ints: Option<Vec<i64>> = Some(Vec::new());
            for m in iter.clone() {
                count += 1;
                if let Some(v) = ints.as_mut() {
                    match parse_canonical_i64(m) {
                        Some(i) if count <= me.limits.set_max_intset_entries => v.push(i),
                        _ => ints = None,
                    }
                }
            }
            if count == 0 {
                return Err(RdbError::InvalidInput(format!(
                    "set {:?} is empty",
                    key_text(key)
                )));
            }
            match ints {
                Some(mut values) => {
                    let mut blob = std::mem::take(&mut me.blob);
                    blob.clear();
                    let r = build_intset(&mut values, &mut blob)
                        .map_err(|e| {
                            RdbError::InvalidInput(format!("set {:?}: {e}", key_text(key)))
                        })
                        .and_then(|()| {
                            me.header(TYPE_SET_INTSET, key, expire_at_ms)?;
                            me.put_string(&blob)
                        });
                    me.blob = blob;
                    r
                }
                None => {
                    me.header(TYPE_SET, key, expire_at_ms)?;
                    me.sink.put_len(count as u64)?;
                    let mut written = 0usize;
                    for m in iter.take(count) {
                        me.put_string(m)?;
                        written += 1;
                    }
                    if written != count {
                        return Err(RdbError::InvalidInput(format!(
                            "set {:?}: the iterator's second pass yielded fewer members",
                            key_text(key)
                        )));
                    }
                    Ok(())
                }
            }
        })
    }

    /// A sorted set key: a listpack (sorted by score, then member) when small, else ZSET_2.
    /// NaN scores are refused.
    pub fn write_zset<'a, I>(
        &mut self,
        key: &[u8],
        pairs: I,
        expire_at_ms: Option<i64>,
    ) -> Result<()>
    where
        I: IntoIterator<Item = (&'a [u8], f64)>,
        I::IntoIter: Clone,
    {
        let iter = pairs.into_iter();
        self.guard(|me| {
            let mut count = 0usize;
            let mut max_len = 0usize;
            for (m, s) in iter.clone() {
                if s.is_nan() {
                    return Err(RdbError::InvalidInput(format!(
                        "zset {:?}: member {:?} has a NaN score",
                        key_text(key),
                        key_text(m)
                    )));
                }
                count += 1;
                max_len = max_len.max(m.len());
            }
            if count == 0 {
                return Err(RdbError::InvalidInput(format!(
                    "zset {:?} is empty",
                    key_text(key)
                )));
            }
            if count <= me.limits.zset_max_listpack_entries
                && max_len <= me.limits.zset_max_listpack_value
            {
                let mut sorted: Vec<(&[u8], f64)> = iter.collect();
                sort_zset_pairs(&mut sorted);
                let mut lp = std::mem::take(&mut me.lp);
                lp.clear();
                let mut text = Vec::new();
                for (m, s) in &sorted {
                    lp.push(m);
                    match double_to_i64(*s) {
                        Some(i) => lp.push_int(i),
                        None => {
                            text.clear();
                            d2string(*s, &mut text);
                            lp.push(&text);
                        }
                    }
                }
                let r = lp.finish().map(<[u8]>::to_vec);
                lp.clear();
                me.lp = lp;
                let bytes = r?;
                me.header(TYPE_ZSET_LISTPACK, key, expire_at_ms)?;
                me.put_string(&bytes)
            } else {
                me.header(TYPE_ZSET_2, key, expire_at_ms)?;
                me.sink.put_len(count as u64)?;
                for (m, s) in iter.take(count) {
                    me.put_string(m)?;
                    me.sink.put(&s.to_le_bytes())?;
                }
                Ok(())
            }
        })
    }

    /// A hash key: a listpack (field, value, ... in the given order) when small, else HASH.
    pub fn write_hash<'a, I>(
        &mut self,
        key: &[u8],
        pairs: I,
        expire_at_ms: Option<i64>,
    ) -> Result<()>
    where
        I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
        I::IntoIter: Clone,
    {
        let iter = pairs.into_iter();
        self.guard(|me| {
            let mut count = 0usize;
            let mut max_len = 0usize;
            for (f, v) in iter.clone() {
                count += 1;
                max_len = max_len.max(f.len()).max(v.len());
            }
            if count == 0 {
                return Err(RdbError::InvalidInput(format!(
                    "hash {:?} is empty",
                    key_text(key)
                )));
            }
            if count <= me.limits.hash_max_listpack_entries
                && max_len <= me.limits.hash_max_listpack_value
            {
                let mut lp = std::mem::take(&mut me.lp);
                lp.clear();
                for (f, v) in iter.take(count) {
                    lp.push(f);
                    lp.push(v);
                }
                let r = if lp.len() as usize == 2 * count {
                    lp.finish().map(<[u8]>::to_vec)
                } else {
                    Err(RdbError::InvalidInput(format!(
                        "hash {:?}: the iterator's second pass yielded fewer fields",
                        key_text(key)
                    )))
                };
                lp.clear();
                me.lp = lp;
                let bytes = r?;
                me.header(TYPE_HASH_LISTPACK, key, expire_at_ms)?;
                me.put_string(&bytes)
            } else {
                me.header(TYPE_HASH, key, expire_at_ms)?;
                me.sink.put_len(count as u64)?;
                for (f, v) in iter.take(count) {
                    me.put_string(f)?;
                    me.put_string(v)?;
                }
                Ok(())
            }
        })
    }

    /// Write one [`Entry`] with the method for its type. Its `db` must be the database selected
    /// last (0 when none was), since SELECTDB needs the database's sizes: see [`write_all`].
    pub fn write_entry(&mut self, e: &Entry) -> Result<()> {
        if e.db != self.db {
            return Err(RdbError::InvalidInput(format!(
                "key {:?} belongs to db {} but db {} is selected",
                key_text(&e.key),
                e.db,
                self.db
            )));
        }
        let exp = e.expire_at_ms;
        match &e.value {
            Value::String(v) => self.write_string(&e.key, v, exp),
            Value::List(items) => self.write_list(&e.key, items.iter().map(Vec::as_slice), exp),
            Value::Set(members) => self.write_set(&e.key, members.iter().map(Vec::as_slice), exp),
            Value::ZSet(pairs) => {
                self.write_zset(&e.key, pairs.iter().map(|(m, s)| (m.as_slice(), *s)), exp)
            }
            Value::Hash(pairs) => self.write_hash(
                &e.key,
                pairs.iter().map(|(f, v)| (f.as_slice(), v.as_slice())),
                exp,
            ),
            Value::Stream(s) => self.write_stream(&e.key, s, exp),
        }
    }

    /// Bytes accepted so far (including bytes still in the internal buffer).
    pub fn bytes_written(&self) -> u64 {
        self.sink.written
    }

    /// End the file: EOF opcode, then the CRC-64 (little-endian; 0 when checksums are off).
    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> Result<W> {
        if self.failed {
            return Err(RdbError::InvalidInput(
                "the RDB writer failed earlier and cannot finish".into(),
            ));
        }
        self.sink.put_u8(OPCODE_EOF)?;
        self.sink.flush_buf()?;
        let crc = if self.sink.checksum {
            self.sink.crc.value()
        } else {
            0
        };
        self.sink.w.write_all(&crc.to_le_bytes())?;
        self.sink.written += 8;
        self.sink.w.flush()?;
        Ok(self.sink.w)
    }
}

impl RdbWriter<Vec<u8>> {
    /// An entry encoder into memory, for parallel serialization: writes no header, keeps no
    /// checksum (the writer that appends its output, [`RdbWriter::append_encoded`], checksums
    /// it), and is never finished. Use every method that writes records (`select_db`,
    /// `set_next_access`, `write_*`, `function`, `aux`), then [`RdbWriter::take_fragment`];
    /// reused for the next fragment, it keeps its LZF and listpack scratch space.
    pub fn fragment(opts: &WriteOptions) -> Self {
        RdbWriter::bare(Vec::new(), opts, false)
    }

    /// The bytes encoded since the last call (or since [`RdbWriter::fragment`]), leaving the
    /// encoder empty. Fails if a write failed since the fragment began (the encoder stays
    /// failed: make a new one).
    pub fn take_fragment(&mut self) -> Result<Vec<u8>> {
        if self.failed {
            return Err(RdbError::InvalidInput(
                "the RDB fragment encoder failed earlier".into(),
            ));
        }
        self.sink.flush_buf()?;
        Ok(std::mem::take(&mut self.sink.w))
    }
}

/// Write a whole keyspace: entries grouped by database (ascending; within one database in the
/// given order), SELECTDB/RESIZEDB computed, then EOF and checksum. Returns the inner writer.
pub fn write_all<W: Write>(w: W, entries: &[Entry], opts: WriteOptions) -> Result<W> {
    write_all_with_functions(w, entries, &[], opts)
}

/// [`write_all`] with function libraries (their codes, RDB_OPCODE_FUNCTION2 records written
/// before the databases, as Redis does).
pub fn write_all_with_functions<W: Write>(
    w: W,
    entries: &[Entry],
    functions: &[Vec<u8>],
    opts: WriteOptions,
) -> Result<W> {
    let mut order: Vec<&Entry> = entries.iter().collect();
    order.sort_by_key(|e| e.db);
    let mut wr = RdbWriter::new(w, opts)?;
    for code in functions {
        wr.function(code)?;
    }
    let mut i = 0;
    while i < order.len() {
        let db = order[i].db;
        let end = i + order[i..].iter().take_while(|e| e.db == db).count();
        let group = &order[i..end];
        let expires = group.iter().filter(|e| e.expire_at_ms.is_some()).count();
        wr.select_db(db, group.len() as u64, expires as u64)?;
        for e in group {
            wr.write_entry(e)?;
        }
        i = end;
    }
    wr.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> WriteOptions {
        WriteOptions {
            ctime: Some(1_700_000_000),
            ..WriteOptions::default()
        }
    }

    fn value_bytes(f: impl FnOnce(&mut RdbWriter<Vec<u8>>)) -> Vec<u8> {
        let mut base = RdbWriter::new(Vec::new(), opts()).unwrap();
        let start = base.bytes_written() as usize;
        f(&mut base);
        let out = base.finish().unwrap();
        out[start..out.len() - 9].to_vec()
    }

    #[test]
    fn access_opcodes_sit_between_expiry_and_type_for_one_key() {
        let bytes = value_bytes(|w| {
            w.set_next_access(KeyAccess {
                idle_secs: Some(300),
                freq: None,
            });
            w.write_string(b"k", b"v", Some(5)).unwrap();
            w.set_next_access(KeyAccess {
                idle_secs: None,
                freq: Some(7),
            });
            w.write_string(b"l", b"w", None).unwrap();
            w.write_string(b"m", b"x", None).unwrap();
        });
        let mut want = vec![OPCODE_EXPIRETIME_MS];
        want.extend_from_slice(&5i64.to_le_bytes());
        // 300 takes the 14-bit length form: 0x40 | high 6 bits, low 8 bits.
        want.extend_from_slice(&[OPCODE_IDLE, 0x41, 0x2C]);
        want.extend_from_slice(&[TYPE_STRING, 1, b'k', 1, b'v']);
        want.extend_from_slice(&[OPCODE_FREQ, 7, TYPE_STRING, 1, b'l', 1, b'w']);
        want.extend_from_slice(&[TYPE_STRING, 1, b'm', 1, b'x']);
        assert_eq!(bytes, want);

        let mut file = RdbWriter::new(Vec::new(), opts()).unwrap();
        file.set_next_access(KeyAccess {
            idle_secs: Some(3),
            freq: Some(200),
        });
        file.write_string(b"a", b"1", None).unwrap();
        file.write_string(b"b", b"2", None).unwrap();
        let out = file.finish().unwrap();
        let mut rd = crate::RdbReader::new(&out[..]).unwrap();
        let mut seen = Vec::new();
        while let Some(item) = rd.next_item().unwrap() {
            if let crate::Item::Entry(e) = item {
                seen.push((e.key, rd.last_access()));
            }
        }
        let both = KeyAccess {
            idle_secs: Some(3),
            freq: Some(200),
        };
        assert_eq!(
            seen,
            vec![(b"a".to_vec(), both), (b"b".to_vec(), KeyAccess::default())]
        );
    }

    #[test]
    fn header_and_trailer() {
        let out = write_all(Vec::new(), &[], opts()).unwrap();
        assert!(out.starts_with(b"REDIS0010\xFA\x09redis-ver\x067.0.15\xFA\x0aredis-bits\xC0\x40"));
        assert_eq!(out[out.len() - 9], 0xFF);
        let crc = crate::crc::crc64(&out[..out.len() - 8]);
        assert_eq!(out[out.len() - 8..], crc.to_le_bytes());
        let no = write_all(
            Vec::new(),
            &[],
            WriteOptions {
                checksum: false,
                ..opts()
            },
        )
        .unwrap();
        assert_eq!(no[no.len() - 8..], [0; 8]);
    }

    #[test]
    fn string_encodings() {
        let s = |v: &[u8]| value_bytes(|w| w.write_string(b"k", v, None).unwrap())[3..].to_vec();
        assert_eq!(s(b"127"), [0xC0, 127]);
        assert_eq!(s(b"128"), [0xC1, 128, 0]);
        assert_eq!(s(b"-32768"), [0xC1, 0x00, 0x80]);
        assert_eq!(s(b"2147483647"), [0xC2, 0xFF, 0xFF, 0xFF, 0x7F]);
        assert_eq!(
            s(b"2147483648"),
            [10, b'2', b'1', b'4', b'7', b'4', b'8', b'3', b'6', b'4', b'8']
        );
        assert_eq!(s(b"007"), [3, b'0', b'0', b'7']);
        assert_eq!(s(b"-0"), [2, b'-', b'0']);
        assert_eq!(s(b""), [0]);
        let long = vec![b'a'; 100];
        assert_eq!(s(&long)[0], 0xC3);
        let no = value_bytes(|w| {
            w.compression = false;
            w.write_string(b"k", &long, None).unwrap()
        });
        assert_eq!(no[3..5], [0x40, 100]);
    }

    #[test]
    fn expiry_and_key_encoding() {
        let b = value_bytes(|w| {
            w.write_string(b"12", b"v", Some(4_102_444_800_000))
                .unwrap()
        });
        let mut want = vec![0xFC];
        want.extend_from_slice(&4_102_444_800_000i64.to_le_bytes());
        want.extend_from_slice(&[0, 0xC0, 12, 1, b'v']);
        assert_eq!(b, want);
    }

    #[test]
    fn refuses_bad_input() {
        let mut w = RdbWriter::new(Vec::new(), opts()).unwrap();
        let e = w
            .write_zset(b"z", [(b"m".as_slice(), f64::NAN)], None)
            .unwrap_err();
        assert!(e.to_string().contains("NaN"), "{e}");
        assert!(
            w.write_string(b"k", b"v", None).is_err(),
            "failed writer goes on"
        );
        let mut w = RdbWriter::new(Vec::new(), opts()).unwrap();
        assert!(w
            .write_list(b"l", std::iter::empty::<&[u8]>(), None)
            .is_err());
        let mut w = RdbWriter::new(Vec::new(), opts()).unwrap();
        assert!(w.write_set(b"s", [b"1".as_slice(), b"1"], None).is_err());
        let mut w = RdbWriter::new(Vec::new(), opts()).unwrap();
        let e = Entry {
            db: 3,
            key: b"k".to_vec(),
            value: Value::String(b"v".to_vec()),
            expire_at_ms: None,
        };
        assert!(w.write_entry(&e).is_err());
    }

    /// A sink that accepts `room` bytes, then fails.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "disk full",
                ));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn io_errors_surface_and_stick() {
        let mut w = RdbWriter::new(
            Full { room: 10 },
            WriteOptions {
                compression: false,
                ..opts()
            },
        )
        .unwrap();
        // Small writes stay buffered; a 100 KB value goes straight through and hits the error.
        let big = vec![7u8; 100_000];
        let e = w.write_string(b"k", &big, None).unwrap_err();
        assert!(matches!(e, RdbError::Io(_)), "{e}");
        assert!(w.write_string(b"k2", b"v", None).is_err());
        assert!(w.finish().is_err());
        // Buffered bytes fail at finish.
        let w = RdbWriter::new(Full { room: 10 }, opts()).unwrap();
        assert!(matches!(w.finish(), Err(RdbError::Io(_))));
    }

    #[test]
    fn zset_listpack_order_and_scores() {
        let b = value_bytes(|w| {
            w.compression = false;
            w.write_zset(
                b"z",
                [
                    (b"b".as_slice(), 1.5),
                    (b"a".as_slice(), 1.5),
                    (b"c".as_slice(), -0.0),
                ],
                None,
            )
            .unwrap()
        });
        assert_eq!(b[0], TYPE_ZSET_LISTPACK);
        let lp = &b[3 + 1..];
        // c 0 a "1.5" b "1.5"
        assert_eq!(lp[0] as usize, lp.len());
        assert_eq!(&lp[6..9], &[0x81, b'c', 2]);
        assert_eq!(&lp[9..11], &[0, 1]);
        assert_eq!(&lp[11..14], &[0x81, b'a', 2]);
        assert_eq!(&lp[14..19], &[0x83, b'1', b'.', b'5', 4]);
    }
}
