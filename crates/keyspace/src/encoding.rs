//! Object encodings: what OBJECT ENCODING and DEBUG OBJECT report (Redis 7.0 `object.c`,
//! `t_set.c`, `t_hash.c`, `t_zset.c`, `t_string.c`).
//!
//! Problem: Redis stores a value in a compact encoding (`int`/`embstr` strings, `intset` sets,
//! `listpack` hashes and sorted sets) until a write makes it too big or of the wrong kind, then
//! converts it to the general encoding (`raw`, `hashtable`, `skiplist`) **for good**: removing
//! the long member again does not convert back, and a string modified in place (APPEND,
//! SETRANGE, SETBIT, BITFIELD, BITOP's destination, a HyperLogLog) is `raw` whatever it holds.
//! forkless keeps one representation per type, so the encoding is derived from the content and
//! the configured thresholds, plus what the content cannot tell: the history.
//!
//! # Pins
//! The history is two bits, [`Pins`], kept in the top byte of the dict node's access metadata
//! word, which the 24-bit LRU clock / LFU counter leave free (`crate::memory`; Redis keeps
//! `robj.encoding` beside `robj.lru` the same way). So a pin costs no memory, moves with its
//! entry through rehashing, and is read under the shard lock like the clock.
//!
//! * Set by the commands that convert in Redis, after their write ([`crate::Ctx::pin`]):
//!   - strings: [`Pins::RAW`] by APPEND, SETRANGE, SETBIT, BITFIELD writes, BITOP and the
//!     HyperLogLog commands; [`Pins::NOT_INT`] by INCRBYFLOAT (`createStringObjectFromLongDouble`
//!     never tries the `int` encoding);
//!   - collections: [`Pins::RAW`] ("converted") by SADD / SMOVE, HSET / HMSET / HSETNX /
//!     HINCRBY / HINCRBYFLOAT and ZADD / ZINCRBY when the value passes a threshold of the moment
//!     ([`Collection::exceeds`], through [`crate::Ctx::pin_if_converted`]).
//! * Cleared when the value is replaced ([`crate::Ctx::insert_slot_in`] on an existing key:
//!   SET, INCR, a STORE destination...), as Redis's new object starts compact.
//! * Kept by RENAME, MOVE and COPY (Redis moves or duplicates the object with its encoding).
//! * Not saved: RDB, AOF and replication carry contents, and Redis itself re-derives encodings
//!   when it loads (DEBUG RELOAD, RESTORE, a replica's sync).
//!
//! Lists have one encoding in Redis 7.0 (`quicklist`) and streams one (`stream`).

use forkless_rdb::EncodingLimits;

use crate::convert::parse_i64;
use crate::value::Value;

/// The encoding history of one entry (see the module header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pins(u8);

impl Pins {
    /// No history: the encoding follows the content.
    pub const NONE: Pins = Pins(0);
    /// A string modified in place (`raw`); a collection converted to its general encoding.
    pub const RAW: Pins = Pins(1);
    /// A string stored without trying the `int` encoding (`embstr` or `raw` by length).
    pub const NOT_INT: Pins = Pins(2);

    /// Where the pins sit in the metadata word: above the 24 bits of the clock.
    const SHIFT: u32 = 24;

    /// The pins of a metadata word.
    pub fn of_meta(meta: u32) -> Pins {
        Pins((meta >> Self::SHIFT) as u8)
    }

    /// `meta` with these pins added.
    pub fn add_to(self, meta: u32) -> u32 {
        meta | (u32::from(self.0) << Self::SHIFT)
    }

    /// `meta` without any pin (the clock / counter bits only).
    pub fn cleared(meta: u32) -> u32 {
        meta & ((1 << Self::SHIFT) - 1)
    }

    /// True when every pin of `other` is set here.
    pub fn contains(self, other: Pins) -> bool {
        self.0 & other.0 == other.0
    }
}

/// A collection type with a compact encoding, converted for good to its general encoding once
/// a write passes a threshold of [`EncodingLimits`] (read whole per command from
/// [`crate::Keyspace::encoding_limits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    /// `intset`, then `hashtable`: more than `set-max-intset-entries` members or a member that
    /// is not an integer (`setTypeAdd`).
    Set,
    /// `listpack`, then `hashtable`: more than `hash-max-listpack-entries` fields or a field or
    /// value longer than `hash-max-listpack-value` (`hashTypeTryConversion`, `hashTypeSet`).
    Hash,
    /// `listpack`, then `skiplist`: more than `zset-max-listpack-entries` members or a member
    /// longer than `zset-max-listpack-value` (`zsetAdd`).
    ZSet,
}

impl Collection {
    /// True when a collection of this type with `len` entries holding `strings` (members;
    /// fields and values) is past a threshold of `lim`. Given all its strings this tells the
    /// encoding of a value; given the strings a write stored, whether that write converted it.
    pub fn exceeds<'a>(
        self,
        lim: &EncodingLimits,
        len: usize,
        mut strings: impl Iterator<Item = &'a [u8]>,
    ) -> bool {
        match self {
            Collection::Set => {
                len > lim.set_max_intset_entries || strings.any(|m| parse_i64(m).is_none())
            }
            Collection::Hash => {
                len > lim.hash_max_listpack_entries
                    || strings.any(|s| s.len() > lim.hash_max_listpack_value)
            }
            Collection::ZSet => {
                len > lim.zset_max_listpack_entries
                    || strings.any(|m| m.len() > lim.zset_max_listpack_value)
            }
        }
    }
}

/// The encoding OBJECT ENCODING reports for `v` with history `pins` under thresholds `lim`.
pub fn object_encoding(v: &Value, pins: Pins, lim: &EncodingLimits) -> &'static str {
    let raw = pins.contains(Pins::RAW);
    match v {
        Value::String(s) => {
            if raw {
                "raw"
            } else if !pins.contains(Pins::NOT_INT) && s.len() <= 20 && parse_i64(s).is_some() {
                "int"
            } else if s.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        // Redis 7.0 lists are always quicklists (listpack lists came with 7.2).
        Value::List(_) => "quicklist",
        Value::Set(s) => {
            if !raw && !Collection::Set.exceeds(lim, s.len(), s.iter()) {
                "intset"
            } else {
                "hashtable"
            }
        }
        Value::ZSet(z) => {
            if !raw && !Collection::ZSet.exceeds(lim, z.len(), z.iter().map(|(m, _)| m)) {
                "listpack"
            } else {
                "skiplist"
            }
        }
        Value::Hash(h) => {
            let strings = h.iter().flat_map(|(f, v)| [f, v]);
            if !raw && !Collection::Hash.exceeds(lim, h.len(), strings) {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::Stream(_) => "stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_live_above_the_clock_and_survive_it() {
        let clock = 0x00ab_cdef;
        let m = Pins::RAW.add_to(clock);
        assert_eq!(Pins::of_meta(m), Pins::RAW);
        assert_eq!(Pins::cleared(m), clock);
        let m = Pins::NOT_INT.add_to(m);
        assert!(Pins::of_meta(m).contains(Pins::RAW));
        assert!(Pins::of_meta(m).contains(Pins::NOT_INT));
        assert_eq!(Pins::of_meta(clock), Pins::NONE);
    }

    #[test]
    fn set_converts_on_a_non_integer_or_past_the_limit() {
        let (t, lim) = (Collection::Set, EncodingLimits::default());
        let ints: [&[u8]; 2] = [b"1", b"-20"];
        assert!(!t.exceeds(&lim, 2, ints.into_iter()));
        assert!(t.exceeds(&lim, 2, [&b"a"[..]].into_iter()));
        assert!(t.exceeds(&lim, 513, std::iter::empty()));
        assert!(!t.exceeds(&lim, 512, std::iter::empty()));
    }

    #[test]
    fn a_raw_string_stays_raw_and_not_int_is_embstr() {
        let lim = EncodingLimits::default();
        let v = Value::String(b"1234".into());
        assert_eq!(object_encoding(&v, Pins::NONE, &lim), "int");
        assert_eq!(object_encoding(&v, Pins::RAW, &lim), "raw");
        assert_eq!(object_encoding(&v, Pins::NOT_INT, &lim), "embstr");
    }
}
