//! Streaming RDB reader (versions 1 to 11): turns any `io::Read` into a sequence of [`Item`]s —
//! aux fields, database switches, keys with their values — without holding the file in memory,
//! verifying the CRC-64, and reading nothing past the trailing checksum.
//!
//! File layout (Redis `src/rdb.c` `rdbLoadRioWithLoadingCtx`, 7.0.15; constants in
//! [`crate::constants`]):
//!
//! ```text
//! "REDIS" <4 ASCII digits: version>
//! ( AUX 0xFA <string key> <string value>
//! | SELECTDB 0xFE <length db>
//! | RESIZEDB 0xFB <length db size> <length expires size>
//! | EXPIRETIME 0xFD <i32 LE seconds>  | EXPIRETIME_MS 0xFC <i64 LE ms>     (apply to the next key)
//! | IDLE 0xF8 <length seconds>        | FREQ 0xF9 <u8 counter>             (apply to the next key)
//! | MODULE_AUX 0xF7 <module aux record>          (skipped, reported)
//! | FUNCTION2 0xF5 <string code>                 (reported)
//! | FUNCTION_PRE_GA 0xF6 <string name> <string engine> <length has_desc> [<string desc>] <string code>
//! | <value type> <string key> <value>            (see `reader/value.rs`)
//! )*
//! EOF 0xFF [version >= 5: <u64 LE CRC-64 of every byte from "REDIS" through 0xFF; 0 = disabled>]
//! ```
//!
//! Everything after the checksum belongs to the caller ([`RdbReader::into_inner`]).

mod skip;
mod source;
mod stream;
pub(crate) mod unlzf;
mod value;

use std::io::Read;

use crate::constants::*;
use crate::error::{RdbError, Result};
use crate::model::{Bytes, Entry, KeyAccess};
use source::Source;
use value::Decoded;

/// Options of [`RdbReader::with_options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Compute the CRC-64 and compare it with the stored one (default `true`).
    pub verify_checksum: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            verify_checksum: true,
        }
    }
}

/// What happened to the file's checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumStatus {
    /// The stored CRC-64 matched the computed one.
    Verified,
    /// Not verified: the stored checksum is 0 (saved with `rdbchecksum no`), or verification was
    /// turned off in [`ReadOptions`].
    Disabled,
    /// Version below 5: the format has no checksum.
    Absent,
}

/// One record of an RDB file.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// An auxiliary field (`redis-ver`, `ctime`, `lua`, ...).
    Aux {
        /// Field name.
        key: Bytes,
        /// Field value.
        value: Bytes,
    },
    /// The following keys belong to this database.
    SelectDb(u32),
    /// Size hints of the current database.
    ResizeDb {
        /// Number of keys.
        db_size: u64,
        /// Number of keys with an expiry.
        expires_size: u64,
    },
    /// A key with its value, database and expiry.
    Entry(Entry),
    /// A key whose value the model cannot hold, skipped byte-exactly.
    Skipped {
        /// Database of the key.
        db: u32,
        /// The key.
        key: Bytes,
        /// `"stream"` or `"module"`.
        kind: &'static str,
        /// The RDB value type byte.
        rdb_type: u8,
    },
    /// A function library (FUNCTION2, or the pre-GA format's code blob).
    Function {
        /// The library source code.
        code: Bytes,
    },
    /// Module auxiliary data, skipped.
    ModuleAux {
        /// The 64-bit module id (type name and encoding version).
        module_id: u64,
    },
    /// The EOF opcode (and checksum) was read: nothing follows.
    End {
        /// The checksum verdict.
        checksum: ChecksumStatus,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Done,
    Failed,
}

/// A streaming reader of one RDB file. See the module documentation.
pub struct RdbReader<R: Read> {
    src: Source<R>,
    version: u32,
    opts: ReadOptions,
    db: u32,
    expire: Option<i64>,
    /// IDLE/FREQ read since the last key (apply to the next one).
    access: KeyAccess,
    state: State,
    last_type: Option<u8>,
    last_access: KeyAccess,
}

impl<R: Read> std::fmt::Debug for RdbReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdbReader")
            .field("version", &self.version)
            .field("offset", &self.src.offset())
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl<R: Read> RdbReader<R> {
    /// Read and check the header (`REDIS` + version 1..=11), verifying the checksum at the end.
    pub fn new(r: R) -> Result<Self> {
        Self::with_options(r, ReadOptions::default())
    }

    /// Like [`RdbReader::new`] with explicit options.
    pub fn with_options(r: R, opts: ReadOptions) -> Result<Self> {
        let mut src = Source::new(r);
        src.enable_crc();
        let mut head = Vec::with_capacity(9);
        while head.len() < 9 {
            match src.read_u8("RDB header") {
                Ok(b) => head.push(b),
                Err(e @ RdbError::UnexpectedEof { .. }) => {
                    let n = head.len().min(MAGIC.len());
                    return Err(if head[..n] == MAGIC[..n] {
                        e
                    } else {
                        RdbError::BadMagic { found: head }
                    });
                }
                Err(e) => return Err(e),
            }
        }
        if &head[..5] != MAGIC || !head[5..].iter().all(u8::is_ascii_digit) {
            return Err(RdbError::BadMagic { found: head });
        }
        let version = head[5..]
            .iter()
            .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        if !(MIN_READ_VERSION..=MAX_READ_VERSION).contains(&version) {
            return Err(RdbError::UnsupportedVersion(version));
        }
        if version < 5 || !opts.verify_checksum {
            src.finish_crc();
        }
        Ok(RdbReader {
            src,
            version,
            opts,
            db: 0,
            expire: None,
            access: KeyAccess::default(),
            state: State::Running,
            last_type: None,
            last_access: KeyAccess::default(),
        })
    }

    /// The file's RDB version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Bytes consumed so far (header included).
    pub fn offset(&self) -> u64 {
        self.src.offset()
    }

    /// The database the next key belongs to.
    pub fn current_db(&self) -> u32 {
        self.db
    }

    /// The on-disk value type byte (`constants::TYPE_*`: the encoding, e.g. `TYPE_HASH_LISTPACK`)
    /// of the key most recently returned as [`Item::Entry`] or [`Item::Skipped`].
    pub fn last_value_type(&self) -> Option<u8> {
        self.last_type
    }

    /// The access metadata (`IDLE` / `FREQ` opcodes) that preceded the key most recently
    /// returned as [`Item::Entry`] or [`Item::Skipped`]; empty when none did. As in Redis, the
    /// opcodes apply to the next key only.
    pub fn last_access(&self) -> KeyAccess {
        self.last_access
    }

    /// The underlying reader. After [`Item::End`] it is positioned right after the checksum
    /// (nothing past it was read); an RDB-preamble AOF continues there with RESP.
    pub fn into_inner(self) -> R {
        self.src.into_inner()
    }

    /// The next item; `Ok(None)` after [`Item::End`]. After an error, every further call fails.
    pub fn next_item(&mut self) -> Result<Option<Item>> {
        match self.state {
            State::Done => return Ok(None),
            State::Failed => {
                return Err(RdbError::Corrupt {
                    offset: self.src.offset(),
                    key: None,
                    what: "the reader already failed on an earlier error".to_string(),
                })
            }
            State::Running => {}
        }
        match self.step() {
            Ok(item) => Ok(Some(item)),
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    fn corrupt(&self, offset: u64, what: String) -> RdbError {
        RdbError::Corrupt {
            offset,
            key: None,
            what,
        }
    }

    fn step(&mut self) -> Result<Item> {
        loop {
            let at = self.src.offset();
            let op = self.src.read_u8("an opcode or value type")?;
            match op {
                OPCODE_EXPIRETIME => {
                    let s = i32::from_le_bytes(self.src.read_array("EXPIRETIME seconds")?);
                    self.expire = Some(i64::from(s) * 1000);
                }
                OPCODE_EXPIRETIME_MS => {
                    self.expire = Some(i64::from_le_bytes(
                        self.src.read_array("EXPIRETIME_MS milliseconds")?,
                    ));
                }
                OPCODE_FREQ => {
                    self.access.freq = Some(self.src.read_u8("FREQ value")?);
                }
                OPCODE_IDLE => {
                    self.access.idle_secs = Some(self.src.read_len("IDLE value")?);
                }
                OPCODE_AUX => {
                    let key = self.src.read_string("AUX field name")?;
                    let value = self.src.read_string("AUX field value")?;
                    return Ok(Item::Aux { key, value });
                }
                OPCODE_SELECTDB => {
                    let db = self.src.read_len("SELECTDB database number")?;
                    self.db = u32::try_from(db)
                        .map_err(|_| self.corrupt(at, format!("database number {db} too large")))?;
                    return Ok(Item::SelectDb(self.db));
                }
                OPCODE_RESIZEDB => {
                    let db_size = self.src.read_len("RESIZEDB database size")?;
                    let expires_size = self.src.read_len("RESIZEDB expires size")?;
                    return Ok(Item::ResizeDb {
                        db_size,
                        expires_size,
                    });
                }
                OPCODE_MODULE_AUX => {
                    let module_id = skip::skip_module_aux(&mut self.src)?;
                    return Ok(Item::ModuleAux { module_id });
                }
                OPCODE_FUNCTION2 => {
                    let code = self.src.read_string("function library code")?;
                    return Ok(Item::Function { code });
                }
                OPCODE_FUNCTION_PRE_GA => {
                    self.src.skip_string("function library name")?;
                    self.src.skip_string("function engine name")?;
                    if self.src.read_len("function description flag")? != 0 {
                        self.src.skip_string("function description")?;
                    }
                    let code = self.src.read_string("function library code")?;
                    return Ok(Item::Function { code });
                }
                OPCODE_EOF => return self.finish(),
                t if is_value_type(t) => {
                    let key = self.src.read_string("key")?;
                    let expire_at_ms = self.expire.take();
                    self.last_type = Some(t);
                    self.last_access = std::mem::take(&mut self.access);
                    match value::read_value(&mut self.src, t, &key)? {
                        Decoded::Value(value) => {
                            return Ok(Item::Entry(Entry {
                                db: self.db,
                                key,
                                value,
                                expire_at_ms,
                            }));
                        }
                        // Redis 7.0 skips empty keys (with a notice) and goes on.
                        Decoded::Empty => {}
                        Decoded::Skipped(kind) => {
                            return Ok(Item::Skipped {
                                db: self.db,
                                key,
                                kind,
                                rdb_type: t,
                            });
                        }
                    }
                }
                t => return Err(self.corrupt(at, format!("unknown opcode or value type {t}"))),
            }
        }
    }

    fn finish(&mut self) -> Result<Item> {
        let computed = self.src.finish_crc();
        let checksum = if self.version >= 5 {
            let at = self.src.offset();
            let stored = u64::from_le_bytes(self.src.read_array("the 8-byte checksum")?);
            match computed {
                _ if !self.opts.verify_checksum || stored == 0 => ChecksumStatus::Disabled,
                Some(c) if c == stored => ChecksumStatus::Verified,
                Some(c) => {
                    return Err(RdbError::ChecksumMismatch {
                        offset: at,
                        stored,
                        computed: c,
                    })
                }
                None => ChecksumStatus::Disabled,
            }
        } else {
            ChecksumStatus::Absent
        };
        self.state = State::Done;
        Ok(Item::End { checksum })
    }
}

/// Whether `t` is a value type byte this reader knows (including the skipped ones).
fn is_value_type(t: u8) -> bool {
    matches!(
        t,
        TYPE_STRING
            | TYPE_LIST
            | TYPE_SET
            | TYPE_ZSET
            | TYPE_HASH
            | TYPE_ZSET_2
            | TYPE_MODULE_PRE_GA
            | TYPE_MODULE_2
            | TYPE_HASH_ZIPMAP
            | TYPE_LIST_ZIPLIST
            | TYPE_SET_INTSET
            | TYPE_ZSET_ZIPLIST
            | TYPE_HASH_ZIPLIST
            | TYPE_LIST_QUICKLIST
            | TYPE_STREAM_LISTPACKS
            | TYPE_HASH_LISTPACK
            | TYPE_ZSET_LISTPACK
            | TYPE_LIST_QUICKLIST_2
            | TYPE_STREAM_LISTPACKS_2
            | TYPE_SET_LISTPACK
            | TYPE_STREAM_LISTPACKS_3
    )
}

impl<R: Read> Iterator for RdbReader<R> {
    type Item = Result<Item>;

    /// The next item; `None` after [`Item::End`] or after the first error.
    fn next(&mut self) -> Option<Self::Item> {
        if self.state == State::Failed {
            return None;
        }
        self.next_item().transpose()
    }
}

/// Everything [`read_all`] found in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// Every key of the model, in file order.
    pub entries: Vec<Entry>,
    /// Keys skipped (streams, modules): (db, key, kind).
    pub skipped: Vec<(u32, Bytes, &'static str)>,
    /// Aux fields in file order.
    pub aux: Vec<(Bytes, Bytes)>,
    /// The file's RDB version.
    pub version: u32,
    /// The checksum verdict.
    pub checksum: ChecksumStatus,
}

/// Convenience: read a whole file — every key (entry) and every skipped key — verifying the
/// checksum.
pub fn read_all<R: Read>(r: R) -> Result<Loaded> {
    let mut rd = RdbReader::new(r)?;
    let mut out = Loaded {
        entries: Vec::new(),
        skipped: Vec::new(),
        aux: Vec::new(),
        version: rd.version(),
        checksum: ChecksumStatus::Absent,
    };
    while let Some(item) = rd.next_item()? {
        match item {
            Item::Entry(e) => out.entries.push(e),
            Item::Skipped { db, key, kind, .. } => out.skipped.push((db, key, kind)),
            Item::Aux { key, value } => out.aux.push((key, value)),
            Item::End { checksum } => out.checksum = checksum,
            Item::SelectDb(_)
            | Item::ResizeDb { .. }
            | Item::Function { .. }
            | Item::ModuleAux { .. } => {}
        }
    }
    Ok(out)
}
