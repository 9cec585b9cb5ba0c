//! Every magic number of the RDB format (Redis `rdb.h`, 7.0/7.2), as named constants.
//!
//! Endianness, stated once: length prefixes use the 6/14/32/64-bit "rdb length" encoding whose
//! 32- and 64-bit forms are **big-endian**; INT8/16/32 string encodings, EXPIRETIME_MS, binary
//! doubles (ZSET_2), MODULE ids, and the trailing CRC-64 are **little-endian**.

/// File magic, followed by four ASCII digits of version.
pub const MAGIC: &[u8; 5] = b"REDIS";
/// The version this crate writes (Redis 7.0).
pub const WRITE_VERSION: u32 = 10;
/// Oldest version read.
pub const MIN_READ_VERSION: u32 = 1;
/// Newest version read (Redis 7.2).
pub const MAX_READ_VERSION: u32 = 11;

// ---- opcodes -------------------------------------------------------------------------------
/// Pre-GA function library (Redis 7.0 RC1).
pub const OPCODE_FUNCTION_PRE_GA: u8 = 246;
/// Module auxiliary data.
pub const OPCODE_MODULE_AUX: u8 = 247;
/// LRU idle time (rdb length, seconds).
pub const OPCODE_IDLE: u8 = 248;
/// LFU frequency (1 byte).
pub const OPCODE_FREQ: u8 = 249;
/// Auxiliary field: two rdb strings.
pub const OPCODE_AUX: u8 = 250;
/// Hash table size hints: two rdb lengths.
pub const OPCODE_RESIZEDB: u8 = 251;
/// Expiry of the next key, int64 milliseconds, little-endian.
pub const OPCODE_EXPIRETIME_MS: u8 = 252;
/// Expiry of the next key, int32 seconds, little-endian (signed).
pub const OPCODE_EXPIRETIME: u8 = 253;
/// Select database: one rdb length.
pub const OPCODE_SELECTDB: u8 = 254;
/// End of file; followed by an 8-byte CRC-64 from version 5 on.
pub const OPCODE_EOF: u8 = 255;
/// Function library (Redis 7.0 GA).
pub const OPCODE_FUNCTION2: u8 = 245;

// ---- value types ---------------------------------------------------------------------------
/// String.
pub const TYPE_STRING: u8 = 0;
/// Linked list of strings.
pub const TYPE_LIST: u8 = 1;
/// Set of strings.
pub const TYPE_SET: u8 = 2;
/// Sorted set, scores as ASCII doubles.
pub const TYPE_ZSET: u8 = 3;
/// Hash.
pub const TYPE_HASH: u8 = 4;
/// Sorted set, scores as binary little-endian doubles.
pub const TYPE_ZSET_2: u8 = 5;
/// Module value (v1 id only, pre-release).
pub const TYPE_MODULE_PRE_GA: u8 = 6;
/// Module value.
pub const TYPE_MODULE_2: u8 = 7;
/// Hash as zipmap blob.
pub const TYPE_HASH_ZIPMAP: u8 = 9;
/// List as ziplist blob.
pub const TYPE_LIST_ZIPLIST: u8 = 10;
/// Set as intset blob.
pub const TYPE_SET_INTSET: u8 = 11;
/// Sorted set as ziplist blob.
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
/// Hash as ziplist blob.
pub const TYPE_HASH_ZIPLIST: u8 = 13;
/// Quicklist of ziplist nodes.
pub const TYPE_LIST_QUICKLIST: u8 = 14;
/// Stream (listpacks + radix tree).
pub const TYPE_STREAM_LISTPACKS: u8 = 15;
/// Hash as listpack blob.
pub const TYPE_HASH_LISTPACK: u8 = 16;
/// Sorted set as listpack blob.
pub const TYPE_ZSET_LISTPACK: u8 = 17;
/// Quicklist of listpack (or plain) nodes.
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
/// Stream, version 2 (Redis 7.0).
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
/// Set as listpack blob (Redis 7.2).
pub const TYPE_SET_LISTPACK: u8 = 20;
/// Stream, version 3 (Redis 7.2).
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;

/// QUICKLIST_2 node container: plain (one element stored as a raw string).
pub const QUICKLIST_NODE_PLAIN: u64 = 1;
/// QUICKLIST_2 node container: packed (a listpack).
pub const QUICKLIST_NODE_PACKED: u64 = 2;

// ---- length encoding -----------------------------------------------------------------------
/// Top two bits 00: 6-bit length.
pub const LEN_6BIT: u8 = 0;
/// Top two bits 01: 14-bit length (big-endian across two bytes).
pub const LEN_14BIT: u8 = 1;
/// Byte 0x80: 32-bit big-endian length follows.
pub const LEN_32BIT: u8 = 0x80;
/// Byte 0x81: 64-bit big-endian length follows.
pub const LEN_64BIT: u8 = 0x81;
/// Top two bits 11: special encoding in the low 6 bits.
pub const LEN_ENCVAL: u8 = 3;
/// Special string encoding: 8-bit signed integer.
pub const ENC_INT8: u8 = 0;
/// Special string encoding: 16-bit signed integer, little-endian.
pub const ENC_INT16: u8 = 1;
/// Special string encoding: 32-bit signed integer, little-endian.
pub const ENC_INT32: u8 = 2;
/// Special string encoding: LZF (compressed length, uncompressed length, data).
pub const ENC_LZF: u8 = 3;

/// Module id of a module value's opcode-2 (typed) serialization: EOF marker.
pub const MODULE_OPCODE_EOF: u64 = 0;
/// Module serialization: signed integer.
pub const MODULE_OPCODE_SINT: u64 = 1;
/// Module serialization: unsigned integer.
pub const MODULE_OPCODE_UINT: u64 = 2;
/// Module serialization: float.
pub const MODULE_OPCODE_FLOAT: u64 = 3;
/// Module serialization: double.
pub const MODULE_OPCODE_DOUBLE: u64 = 4;
/// Module serialization: string.
pub const MODULE_OPCODE_STRING: u64 = 5;

/// A short name for an on-disk value type byte (its encoding), as `rdb check` reports it.
pub fn type_encoding_name(t: u8) -> &'static str {
    match t {
        TYPE_STRING => "string",
        TYPE_LIST => "list-linked",
        TYPE_SET => "set-hashtable",
        TYPE_ZSET => "zset-skiplist-ascii",
        TYPE_HASH => "hash-hashtable",
        TYPE_ZSET_2 => "zset-skiplist",
        TYPE_MODULE_PRE_GA | TYPE_MODULE_2 => "module",
        TYPE_HASH_ZIPMAP => "hash-zipmap",
        TYPE_LIST_ZIPLIST => "list-ziplist",
        TYPE_SET_INTSET => "set-intset",
        TYPE_ZSET_ZIPLIST => "zset-ziplist",
        TYPE_HASH_ZIPLIST => "hash-ziplist",
        TYPE_LIST_QUICKLIST => "list-quicklist",
        TYPE_STREAM_LISTPACKS | TYPE_STREAM_LISTPACKS_2 | TYPE_STREAM_LISTPACKS_3 => "stream",
        TYPE_HASH_LISTPACK => "hash-listpack",
        TYPE_ZSET_LISTPACK => "zset-listpack",
        TYPE_LIST_QUICKLIST_2 => "list-quicklist2",
        TYPE_SET_LISTPACK => "set-listpack",
        _ => "unknown",
    }
}
