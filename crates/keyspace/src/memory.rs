//! maxmemory: accounting, access metadata, eviction (Redis 7.0 `evict.c`, `object.c`).
//!
//! Problem: a cache must stay within a memory bound. Redis measures the allocator's total and
//! evicts keys chosen by a policy before each command; forkless must do the same with its own
//! accounting, so that eviction never feeds itself (snapshot hand-offs, delta buffers and AOF
//! queues are reported apart and never counted).
//!
//! # Accounting
//! Every key costs [`crate::db::entry_cost`]: the key bytes, the dict node and the value
//! ([`crate::Obj::mem_usage`]: a string's block, or the `Arc` allocation and the value's own heap,
//! [`crate::Value::mem_usage`]; O(1) for every type because each type keeps a byte counter in its
//! mutators). The command context records a
//! key's cost before the command's first change to it and charges the difference after the
//! handler (`Ctx::settle_memory`), under the shard locks; loading, active expiry and FLUSHDB
//! charge their own changes. Each database keeps its sum (`Db::used`) and each shard an atomic
//! mirror, so [`crate::Keyspace::used_memory`] reads without locks.
//!
//! # Access metadata (4 bytes per key, at no cost)
//! The dict node has a `u32` beside its chain link that was padding before (the node stays 48
//! bytes). It holds, as Redis's 24-bit `robj.lru`:
//! * LRU policies: the LRU clock, Unix seconds modulo 2^24 ([`lru_clock`]);
//! * LFU policies: the last decrement time in minutes modulo 2^16 (high 16 bits of the 24) and a
//!   logarithmic 8-bit counter (low 8), incremented with probability `1/((c-5)*lfu-log-factor+1)`
//!   and decremented by one per `lfu-decay-time` minutes of idleness (`LFULogIncr`,
//!   `LFUDecrAndReturn`). New keys start at 5 (`LFU_INIT_VAL`).
//!
//! Every lookup of a live key touches it (`Ctx::live`), as `lookupKey` does. The word's top 8
//! bits are not the clock's: they hold the entry's encoding pins (`crate::encoding`), which a
//! touch keeps and every reader of the clock masks off.
//!
//! # Eviction
//! Before a write command, when `maxmemory` is set and exceeded, keys are evicted until the
//! keyspace is within it ([`crate::Keyspace::execute`]). Random policies pick a random key (of
//! those with a TTL for `volatile-random`). The others keep Redis's 16-entry pool: each round
//! samples `maxmemory-samples` keys of every database of one random shard, scores them (idle
//! time; 255 - frequency; the inverse of the expiry for `volatile-ttl`) and merges them into the
//! pool, whose best entry is evicted. **An eviction is a write**: it runs `DEL key` through the
//! command path, so it takes the shard lock, goes through the snapshot protocol (a visited bucket
//! gets the DEL as a delta, point-in-time hands the pre-image over first) and is propagated to the
//! AOF, the segments and replicas like any DEL. When nothing can be evicted (noeviction, or no
//! key with a TTL under a volatile policy) commands that may grow memory ([`may_grow`], Redis's
//! `denyoom` flag) get `-OOM command not allowed when used memory > 'maxmemory'.`; others run.
//! Nothing is evicted while loading.
//!
//! # Locks
//! The pool's mutex is a leaf taken only by the evicting thread while it holds no shard lock:
//! sampling locks one shard, releases it, then merges into the pool.

use std::fmt;
use std::str::FromStr;

use forkless_rdb::KeyAccess;
use forkless_sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use forkless_sync::Mutex;

/// Redis 7.0's `maxmemory-policy` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EvictionPolicy {
    /// Refuse commands that may grow memory (the default).
    #[default]
    NoEviction,
    /// Least recently used among all keys.
    AllkeysLru,
    /// Least frequently used among all keys.
    AllkeysLfu,
    /// Any key.
    AllkeysRandom,
    /// Least recently used among keys with a TTL.
    VolatileLru,
    /// Least frequently used among keys with a TTL.
    VolatileLfu,
    /// Any key with a TTL.
    VolatileRandom,
    /// The key with the nearest expiry.
    VolatileTtl,
}

const POLICIES: [(EvictionPolicy, &str); 8] = [
    (EvictionPolicy::NoEviction, "noeviction"),
    (EvictionPolicy::AllkeysLru, "allkeys-lru"),
    (EvictionPolicy::AllkeysLfu, "allkeys-lfu"),
    (EvictionPolicy::AllkeysRandom, "allkeys-random"),
    (EvictionPolicy::VolatileLru, "volatile-lru"),
    (EvictionPolicy::VolatileLfu, "volatile-lfu"),
    (EvictionPolicy::VolatileRandom, "volatile-random"),
    (EvictionPolicy::VolatileTtl, "volatile-ttl"),
];

impl EvictionPolicy {
    /// The redis.conf name (`allkeys-lru`, ...).
    pub fn as_str(self) -> &'static str {
        POLICIES
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("noeviction", |(_, n)| n)
    }
    /// True for the LFU policies (the metadata word holds a frequency).
    pub fn is_lfu(self) -> bool {
        matches!(
            self,
            EvictionPolicy::AllkeysLfu | EvictionPolicy::VolatileLfu
        )
    }
    /// True for the LRU policies (Redis's `MAXMEMORY_FLAG_LRU`: RDB files carry `IDLE`).
    pub fn is_lru(self) -> bool {
        matches!(
            self,
            EvictionPolicy::AllkeysLru | EvictionPolicy::VolatileLru
        )
    }
    /// True for the policies that only consider keys with a TTL.
    pub fn is_volatile(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileLfu
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        )
    }
    fn index(self) -> u8 {
        POLICIES.iter().position(|(p, _)| *p == self).unwrap_or(0) as u8
    }
    fn from_index(i: u8) -> EvictionPolicy {
        POLICIES
            .get(i as usize)
            .map_or_else(Default::default, |p| p.0)
    }
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of parsing an [`EvictionPolicy`]: names the value and the accepted ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPolicy(pub String);

impl fmt::Display for BadPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = POLICIES.iter().map(|p| p.1).collect();
        write!(
            f,
            "invalid maxmemory-policy '{}' (expected one of: {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for BadPolicy {}

impl FromStr for EvictionPolicy {
    type Err = BadPolicy;
    fn from_str(s: &str) -> Result<EvictionPolicy, BadPolicy> {
        POLICIES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(s))
            .map(|p| p.0)
            .ok_or_else(|| BadPolicy(s.to_string()))
    }
}

/// The memory bound and its policy (redis.conf names in the field docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryConfig {
    /// `maxmemory` in bytes; 0 = no bound.
    pub maxmemory: u64,
    /// `maxmemory-policy`.
    pub policy: EvictionPolicy,
    /// `maxmemory-samples` (default 5).
    pub samples: u32,
    /// `lfu-log-factor` (default 10).
    pub lfu_log_factor: u32,
    /// `lfu-decay-time` in minutes (default 1).
    pub lfu_decay_time: u32,
}

impl Default for MemoryConfig {
    fn default() -> MemoryConfig {
        MemoryConfig {
            maxmemory: 0,
            policy: EvictionPolicy::NoEviction,
            samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
        }
    }
}

/// Counters of [`crate::Keyspace::memory_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes charged for the entries (`used_memory` of the keyspace).
    pub used: u64,
    /// The bound (0 = none).
    pub maxmemory: u64,
    /// Keys evicted since start (`evicted_keys`).
    pub evicted_keys: u64,
    /// Lookups of read commands that found the key (`keyspace_hits`).
    pub keyspace_hits: u64,
    /// Lookups of read commands that did not (`keyspace_misses`).
    pub keyspace_misses: u64,
}

/// The bytes the allocator really hands out for a request of `n` bytes: jemalloc's size
/// classes (the `forkless` binary's allocator): 8, then multiples of 16 up to 128, then four
/// classes per doubling (160, 192, 224, 256, 320, ...). Redis's `used_memory` and MEMORY USAGE
/// count these usable sizes (`zmalloc_size`), so charging them keeps the two comparable and the
/// bound honest (a 100-byte string costs 112). 0 for no allocation.
pub fn alloc_size(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => n.div_ceil(16) * 16,
        _ => {
            // Spacing of the classes in (2^k, 2^(k+1)]: 2^(k-2).
            let k = usize::BITS - 1 - (n - 1).leading_zeros();
            let spacing = 1usize << (k - 2);
            n.div_ceil(spacing) * spacing
        }
    }
}

/// The OOM error Redis 7.0 replies.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Redis's `EVPOOL_SIZE`.
pub const POOL_SIZE: usize = 16;
/// Redis's `LFU_INIT_VAL`.
pub const LFU_INIT_VAL: u8 = 5;
/// Redis's `LRU_CLOCK_MAX` (24 bits).
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;

/// The LRU clock at `now_ms`: Unix seconds modulo 2^24 (`LRU_CLOCK`).
pub fn lru_clock(now_ms: i64) -> u32 {
    ((now_ms / 1000) as u64 & LRU_CLOCK_MAX as u64) as u32
}

/// Idle milliseconds of an entry whose metadata holds LRU clock `lru` (`estimateObjectIdleTime`).
pub fn idle_ms(now_ms: i64, lru: u32) -> u64 {
    let now = lru_clock(now_ms);
    let lru = lru & LRU_CLOCK_MAX;
    let secs = if now >= lru {
        now - lru
    } else {
        now + (LRU_CLOCK_MAX - lru)
    };
    secs as u64 * 1000
}

/// Minutes since the epoch modulo 2^16: the LFU decay clock (`LFUGetTimeInMinutes`).
pub(crate) fn minutes(now_ms: i64) -> u32 {
    ((now_ms / 60_000) as u64 & 0xffff) as u32
}

/// The LFU counter after decay (`LFUDecrAndReturn`).
pub fn lfu_decayed(meta: u32, now_ms: i64, decay_time: u32) -> u8 {
    let ldt = (meta >> 8) & 0xffff;
    let counter = (meta & 0xff) as u8;
    let now = minutes(now_ms);
    let elapsed = if now >= ldt {
        now - ldt
    } else {
        65535 - ldt + now
    };
    let periods = elapsed.checked_div(decay_time).unwrap_or(0);
    if periods > counter as u32 {
        0
    } else {
        counter - periods as u8
    }
}

/// What an RDB records of a key whose access metadata word is `meta` under `cfg`'s policy at
/// `now_ms` (`rdbSaveKeyValuePair`): `IDLE` = the idle seconds (`estimateObjectIdleTime / 1000`)
/// under the LRU policies, `FREQ` = the decayed counter (`LFUDecrAndReturn`) under the LFU ones,
/// nothing under the others.
pub fn rdb_access(cfg: &MemoryConfig, meta: u32, now_ms: i64) -> KeyAccess {
    if cfg.policy.is_lru() {
        KeyAccess {
            idle_secs: Some(idle_ms(now_ms, meta) / 1000),
            freq: None,
        }
    } else if cfg.policy.is_lfu() {
        KeyAccess {
            idle_secs: None,
            freq: Some(lfu_decayed(meta, now_ms, cfg.lfu_decay_time)),
        }
    } else {
        KeyAccess::default()
    }
}

/// One logarithmic increment (`LFULogIncr`), `r` uniform in [0, 1).
pub fn lfu_log_incr(counter: u8, log_factor: u32, r: f64) -> u8 {
    if counter == 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// Redis's `denyoom` flag: commands refused with OOM when nothing can be evicted (they may grow
/// memory). Deletions, pops, expiry changes and reads run regardless.
pub fn may_grow(name: &str) -> bool {
    matches!(
        name,
        "append"
            | "blmove"
            | "brpoplpush"
            | "copy"
            | "decr"
            | "decrby"
            | "getset"
            | "hincrby"
            | "hincrbyfloat"
            | "hmset"
            | "hset"
            | "hsetnx"
            | "incr"
            | "incrby"
            | "incrbyfloat"
            | "linsert"
            | "lmove"
            | "lpush"
            | "lpushx"
            | "lset"
            | "mset"
            | "msetnx"
            | "psetex"
            | "restore"
            | "rpoplpush"
            | "rpush"
            | "rpushx"
            | "sadd"
            | "sdiffstore"
            | "set"
            | "setex"
            | "setnx"
            | "setrange"
            | "sinterstore"
            | "smove"
            | "sort"
            | "sunionstore"
            | "zadd"
            | "zdiffstore"
            | "zincrby"
            | "zinterstore"
            | "zrangestore"
            | "zunionstore"
            | "setbit"
            | "bitfield"
            | "bitop"
            | "pfadd"
            | "pfdebug"
            | "pfmerge"
            | "xadd"
            | "xgroup"
            | "xsetid"
            | "geoadd"
            | "georadius"
            | "georadiusbymember"
            | "geosearchstore"
    )
}

/// A candidate in the eviction pool: higher `score` = better to evict.
#[derive(Clone, Debug)]
pub(crate) struct PoolEntry {
    pub(crate) score: u64,
    pub(crate) db: u32,
    pub(crate) key: Vec<u8>,
}

/// Insert `e` into `pool` (ascending by score, at most [`POOL_SIZE`]): when full, an entry
/// worse than every held one is dropped, else the worst held one makes room
/// (`evictionPoolPopulate`). A key already in the pool has its score updated.
pub(crate) fn pool_insert(pool: &mut Vec<PoolEntry>, e: PoolEntry) {
    if let Some(i) = pool.iter().position(|p| p.db == e.db && p.key == e.key) {
        pool.remove(i);
    }
    let pos = pool.partition_point(|p| p.score < e.score);
    if pool.len() >= POOL_SIZE {
        if pos == 0 {
            return;
        }
        pool.remove(0);
        pool.insert(pos - 1, e);
    } else {
        pool.insert(pos, e);
    }
}

/// The keyspace's memory state: the bound, the policy, counters and the eviction pool.
pub(crate) struct MemoryState {
    maxmemory: AtomicU64,
    policy: AtomicU8,
    samples: AtomicU32,
    lfu_log_factor: AtomicU32,
    lfu_decay_time: AtomicU32,
    pub(crate) evicted: AtomicU64,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    /// Bytes held outside the keys that count against `maxmemory` as Redis's `used_memory`
    /// counts them: the scripting VMs (set by their owner, see `Keyspace::set_extra_memory`).
    pub(crate) extra: AtomicU64,
    /// The eviction pool (a leaf lock; see the module docs).
    pub(crate) pool: Mutex<Vec<PoolEntry>>,
}

impl MemoryState {
    pub(crate) fn new(cfg: MemoryConfig) -> MemoryState {
        let s = MemoryState {
            maxmemory: AtomicU64::new(0),
            policy: AtomicU8::new(0),
            samples: AtomicU32::new(5),
            lfu_log_factor: AtomicU32::new(10),
            lfu_decay_time: AtomicU32::new(1),
            evicted: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            extra: AtomicU64::new(0),
            pool: Mutex::new(Vec::new()),
        };
        s.set(cfg);
        s
    }
    pub(crate) fn set(&self, cfg: MemoryConfig) {
        let old = self.policy();
        self.maxmemory.store(cfg.maxmemory, Ordering::Relaxed);
        self.policy.store(cfg.policy.index(), Ordering::Relaxed);
        self.samples.store(cfg.samples.max(1), Ordering::Relaxed);
        self.lfu_log_factor
            .store(cfg.lfu_log_factor, Ordering::Relaxed);
        self.lfu_decay_time
            .store(cfg.lfu_decay_time, Ordering::Relaxed);
        if old != cfg.policy {
            self.pool.lock().clear();
        }
    }
    pub(crate) fn get(&self) -> MemoryConfig {
        MemoryConfig {
            maxmemory: self.maxmemory(),
            policy: self.policy(),
            samples: self.samples.load(Ordering::Relaxed),
            lfu_log_factor: self.lfu_log_factor.load(Ordering::Relaxed),
            lfu_decay_time: self.lfu_decay_time.load(Ordering::Relaxed),
        }
    }
    pub(crate) fn maxmemory(&self) -> u64 {
        self.maxmemory.load(Ordering::Relaxed)
    }
    pub(crate) fn policy(&self) -> EvictionPolicy {
        EvictionPolicy::from_index(self.policy.load(Ordering::Relaxed))
    }
    pub(crate) fn samples(&self) -> usize {
        self.samples.load(Ordering::Relaxed) as usize
    }
    /// The metadata word a new key starts with.
    pub(crate) fn initial_meta(&self, now_ms: i64) -> u32 {
        if self.policy().is_lfu() {
            (minutes(now_ms) << 8) | LFU_INIT_VAL as u32
        } else {
            lru_clock(now_ms)
        }
    }
    /// The metadata word of a key loaded with RDB access fields `acc` (`objectSetLRUOrLFU`
    /// with Redis's LRU resolution of 1000 ms: idle seconds map to clock units one to one).
    pub(crate) fn loaded_meta(&self, acc: KeyAccess, now_ms: i64) -> u32 {
        if self.policy().is_lfu() {
            if let Some(f) = acc.freq {
                return (minutes(now_ms) << 8) | f as u32;
            }
        } else if let Some(idle) = acc.idle_secs {
            // `lru_abs = lru_clock - idle; if (lru_abs < 0) lru_abs += LRU_CLOCK_MAX`, kept in
            // the 24-bit field (an idle time beyond the clock's range wraps as in Redis).
            let idle = i64::try_from(idle).unwrap_or(i64::MAX);
            let mut abs = (lru_clock(now_ms) as i64).saturating_sub(idle);
            if abs < 0 {
                abs += LRU_CLOCK_MAX as i64;
            }
            return (abs as u64 & LRU_CLOCK_MAX as u64) as u32;
        }
        self.initial_meta(now_ms)
    }
    /// Update the metadata word of a key being accessed (`updateLFU` / LRU clock).
    /// The encoding pins in the word's top byte are kept (`crate::encoding`).
    pub(crate) fn touch(&self, meta: &mut u32, now_ms: i64) {
        let word = if self.policy().is_lfu() {
            let decay = self.lfu_decay_time.load(Ordering::Relaxed);
            let factor = self.lfu_log_factor.load(Ordering::Relaxed);
            let c = lfu_decayed(*meta, now_ms, decay);
            let c = lfu_log_incr(c, factor, rand::random::<f64>());
            (minutes(now_ms) << 8) | c as u32
        } else {
            lru_clock(now_ms)
        };
        *meta = crate::encoding::Pins::of_meta(*meta).add_to(word);
    }
    /// The eviction score of a key (higher = evict first), `None` when the policy does not
    /// consider it (no TTL under a volatile policy).
    pub(crate) fn score(&self, meta: u32, expire_at: Option<i64>, now_ms: i64) -> Option<u64> {
        let p = self.policy();
        if p.is_volatile() && expire_at.is_none() {
            return None;
        }
        Some(match p {
            EvictionPolicy::VolatileTtl => {
                // Nearest expiry first: invert the (offset) expiry time.
                u64::MAX - (expire_at.unwrap_or(i64::MAX) as u64 ^ (1 << 63))
            }
            p if p.is_lfu() => {
                let decay = self.lfu_decay_time.load(Ordering::Relaxed);
                255 - lfu_decayed(meta, now_ms, decay) as u64
            }
            _ => idle_ms(now_ms, meta),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_sizes_are_jemallocs_classes() {
        let cases = [
            (0, 0),
            (1, 8),
            (8, 8),
            (9, 16),
            (100, 112),
            (128, 128),
            (129, 160),
            (256, 256),
            (257, 320),
            (33_000, 40_960),
        ];
        for (n, want) in cases {
            assert_eq!(alloc_size(n), want, "{n}");
        }
    }

    #[test]
    fn policy_names_round_trip() {
        for (p, n) in POLICIES {
            assert_eq!(n.parse::<EvictionPolicy>().unwrap(), p);
            assert_eq!(p.to_string(), n);
            assert_eq!(EvictionPolicy::from_index(p.index()), p);
        }
        let e = "lru".parse::<EvictionPolicy>().unwrap_err().to_string();
        assert!(e.contains("'lru'") && e.contains("allkeys-lfu"), "{e}");
    }

    #[test]
    fn lru_idle_wraps_like_redis() {
        let now = 1_700_000_000_000i64;
        assert_eq!(idle_ms(now, lru_clock(now - 10_000)), 10_000);
        // A clock that wrapped past 2^24 seconds.
        let lru = LRU_CLOCK_MAX - 1;
        let now2 = ((LRU_CLOCK_MAX as i64 + 1) * 1000) + 3000; // clock 3
        assert_eq!(idle_ms(now2, lru), (3 + 1) * 1000);
    }

    #[test]
    fn lfu_counter_is_logarithmic_and_decays() {
        // redis.conf's table for lfu-log-factor 10: 100K hits give a counter of about 142.
        let mut c = LFU_INIT_VAL;
        let mut x = 0x1234_5678u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c = lfu_log_incr(c, 10, (x >> 11) as f64 / (1u64 << 53) as f64);
        }
        assert!((125..=160).contains(&c), "counter {c}");
        // Decay: one per minute of idleness with lfu-decay-time 1.
        let now = 600_000_000i64;
        let meta = ((minutes(now - 3 * 60_000)) << 8) | 10;
        assert_eq!(lfu_decayed(meta, now, 1), 7);
        assert_eq!(lfu_decayed(meta, now, 0), 10, "decay time 0 never decays");
        assert_eq!(
            lfu_decayed((minutes(now) << 8) | 2, now + 10 * 60_000, 1),
            0
        );
    }

    #[test]
    fn pool_keeps_the_sixteen_best() {
        let mut pool = Vec::new();
        for i in 0..40u64 {
            pool_insert(
                &mut pool,
                PoolEntry {
                    score: (i * 7) % 40,
                    db: 0,
                    key: i.to_string().into_bytes(),
                },
            );
        }
        assert_eq!(pool.len(), POOL_SIZE);
        let scores: Vec<u64> = pool.iter().map(|p| p.score).collect();
        assert_eq!(scores, (24..40).collect::<Vec<u64>>());
    }
}
