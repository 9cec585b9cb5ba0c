//! Memory per key (issue 19, benches/README.md "Memory per key"): where the bytes of a key go.
//!
//! The binary's global allocator is jemalloc (as `forkless server`) wrapped in a counter of live
//! allocations per requested size. It builds an empty keyspace (default config), records the
//! live allocations, runs one command per key through `Keyspace::execute` (the shapes of
//! `rss_accounting`: `SET key:<i> <value-size bytes>`, or 4-element collections), and prints the
//! growth of RSS, of the bytes jemalloc hands out (requested sizes rounded to jemalloc's size
//! classes), and the live allocations per requested size class, per key. The remainder between
//! RSS and the rounded sum is the allocator's slab and page overhead and memory it kept.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicI64, Ordering};

use clap::Parser;
use forkless_harness::rss::rss_now;
use forkless_keyspace::{Config, Keyspace, Reply, Session};

/// Live allocations per requested size up to `SMALL` bytes; bigger ones are summed together.
const SMALL: usize = 4096;

struct Counting {
    live: [AtomicI64; SMALL + 1],
    big_bytes: AtomicI64,
}

// `AtomicI64::new` is const, so the array can be built in a const context.
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicI64 = AtomicI64::new(0);

static COUNT: Counting = Counting {
    live: [ZERO; SMALL + 1],
    big_bytes: AtomicI64::new(0),
};

struct Alloc;

impl Alloc {
    fn add(size: usize, d: i64) {
        if size <= SMALL {
            COUNT.live[size].fetch_add(d, Ordering::Relaxed);
        } else {
            COUNT
                .big_bytes
                .fetch_add(d * size as i64, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is forwarded unchanged to jemalloc, which upholds `GlobalAlloc`'s contract;
// the counters are atomics and never allocate.
unsafe impl GlobalAlloc for Alloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        Self::add(l.size(), 1);
        // SAFETY: forwarded with the caller's layout.
        unsafe { tikv_jemallocator::Jemalloc.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        Self::add(l.size(), 1);
        // SAFETY: forwarded with the caller's layout.
        unsafe { tikv_jemallocator::Jemalloc.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        Self::add(l.size(), -1);
        // SAFETY: `p` was allocated by this allocator (i.e. jemalloc) with `l`.
        unsafe { tikv_jemallocator::Jemalloc.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        Self::add(l.size(), -1);
        Self::add(new, 1);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { tikv_jemallocator::Jemalloc.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Alloc = Alloc;

/// jemalloc's size class of a small request (quantum 16; 4 classes per doubling above 128).
fn size_class(n: usize) -> usize {
    if n <= 8 {
        return 8;
    }
    if n <= 128 {
        return n.div_ceil(16) * 16;
    }
    let p = n.next_power_of_two() / 2; // n in (p, 2p]
    let step = p / 4;
    n.div_ceil(step) * step
}

/// Memory per key, by allocation size.
#[derive(Debug, Parser)]
#[command(
    name = "mem_breakdown",
    after_help = "Example:\n  target/release/mem_breakdown --keys 1000000 --type string"
)]
struct Args {
    /// Keys.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Bytes per string value (collections: per 4 elements).
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// string, int, list, set, zset, hash.
    #[arg(long, default_value = "string")]
    r#type: String,
}

fn command(ty: &str, i: u64, size: usize) -> Vec<Vec<u8>> {
    let key = format!("key:{i}").into_bytes();
    let fill = |tag: u64, len: usize| {
        let mut v = format!("value:{i}:{tag}").into_bytes();
        v.resize(len.max(v.len()), b'x');
        v
    };
    let el = (size / 4).max(1);
    let mut argv: Vec<Vec<u8>> = match ty {
        "string" => return vec![b"SET".to_vec(), key, fill(0, size)],
        "int" => return vec![b"SET".to_vec(), key, i.to_string().into_bytes()],
        "list" => vec![b"RPUSH".to_vec(), key],
        "set" => vec![b"SADD".to_vec(), key],
        "zset" => vec![b"ZADD".to_vec(), key],
        _ => vec![b"HSET".to_vec(), key],
    };
    for j in 1..=4u64 {
        match ty {
            "zset" => argv.push(j.to_string().into_bytes()),
            "hash" => argv.push(format!("f{j}").into_bytes()),
            _ => {}
        }
        argv.push(fill(j, el));
    }
    argv
}

fn snapshot() -> (Vec<i64>, i64) {
    (
        COUNT
            .live
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect(),
        COUNT.big_bytes.load(Ordering::Relaxed),
    )
}

fn main() {
    let a = Args::parse();
    let ks = Keyspace::new(Config::default());
    let mut s = Session::default();
    let (live0, big0) = snapshot();
    let rss0 = rss_now();
    for i in 0..a.keys {
        let argv = command(&a.r#type, i, a.value_size);
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        if let Reply::Error(e) = ks.execute(&mut s, &refs) {
            eprintln!("mem_breakdown: key {i}: {e}");
            std::process::exit(1);
        }
    }
    let rss1 = rss_now();
    let (live1, big1) = snapshot();
    let n = a.keys as f64;
    let mut rounded = 0i64;
    println!(
        "{} keys, type {}, value size {}",
        a.keys, a.r#type, a.value_size
    );
    println!("| requested size (B) | jemalloc class (B) | live per key | B per key |");
    println!("|---|---|---|---|");
    for (size, (c1, c0)) in live1.iter().zip(&live0).enumerate() {
        let d = c1 - c0;
        if d == 0 {
            continue;
        }
        let class = size_class(size.max(1)) as i64;
        rounded += d * class;
        if (d as f64) / n >= 0.01 {
            println!(
                "| {size} | {class} | {:.3} | {:.1} |",
                d as f64 / n,
                (d * class) as f64 / n
            );
        }
    }
    let big = big1 - big0;
    println!(
        "| > {SMALL} (tables, arena segments) | | | {:.1} |",
        big as f64 / n
    );
    let total = rounded + big;
    println!(
        "\nallocated (rounded to classes): {:.1} B/key; RSS growth {:.1} B/key ({:.1} MiB); used_memory {:.1} B/key",
        total as f64 / n,
        rss1.saturating_sub(rss0) as f64 / n,
        rss1.saturating_sub(rss0) as f64 / 1048576.0,
        ks.used_memory() as f64 / n
    );
}
