//! Crafted files whose lengths claim far more than they hold (2^60 elements, 2^40-byte strings,
//! impossible LZF lengths, huge blob headers) fail fast and allocate only what the input
//! justifies. A counting global allocator measures the peak bytes live on the test's thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use forkless_rdb::crc::crc64;
use forkless_rdb::{read_all, RdbError};

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

/// Counts live bytes per thread (thread-local cells: no shared state between test threads).
struct Counting;

fn account(add: usize, sub: usize) {
    // `try_with`: during thread teardown the cells may be gone; then we simply do not count.
    let _ = LIVE.try_with(|l| {
        let v = l.get().saturating_add(add).saturating_sub(sub);
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

// SAFETY: every method forwards to the system allocator with the caller's arguments unchanged;
// the only extra work is bookkeeping in thread-local cells, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size(), 0);
        // SAFETY: same contract as our caller's (non-zero-size layout).
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        account(layout.size(), 0);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(0, layout.size());
        // SAFETY: `ptr` was allocated by `System` with this layout (all our allocations are).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size, layout.size());
        // SAFETY: `ptr`/`layout` come from `System` via us; the caller guarantees `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Build a version-10 file around `body` (items after the header), with EOF and a valid CRC.
fn rdb(body: &[u8]) -> Vec<u8> {
    let mut v = b"REDIS0010".to_vec();
    v.extend_from_slice(body);
    v.push(0xFF);
    let crc = crc64(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    v
}

fn len64(n: u64) -> Vec<u8> {
    let mut v = vec![0x81];
    v.extend_from_slice(&n.to_be_bytes());
    v
}

fn len32(n: u32) -> Vec<u8> {
    let mut v = vec![0x80];
    v.extend_from_slice(&n.to_be_bytes());
    v
}

/// Run `read_all` on `data`, asserting an error, a bounded peak allocation and a short time.
fn refused(name: &str, data: &[u8]) -> RdbError {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let t = Instant::now();
    let r = read_all(data);
    let took = t.elapsed();
    let peak = PEAK.with(Cell::get) - base;
    let err = match r {
        Err(e) => e,
        Ok(l) => panic!("{name}: crafted file was accepted: {l:?}"),
    };
    // Small fixed buffers plus a few times the input are fine; anything sized by the claims not.
    let bound = 512 * 1024 + 4 * data.len();
    assert!(
        peak <= bound,
        "{name}: peak allocation {peak} B > {bound} B"
    );
    assert!(took < Duration::from_secs(2), "{name}: took {took:?}");
    err
}

fn key(t: u8) -> Vec<u8> {
    vec![t, 1, b'k']
}

#[test]
fn huge_claims_fail_fast_with_bounded_memory() {
    let tail = [0x01, b'a', 0x01, b'b', 0x01, b'c'];
    // 2^60 elements for every plain collection type.
    for t in [1u8, 2, 3, 4, 5] {
        let mut b = key(t);
        b.extend(len64(1 << 60));
        b.extend_from_slice(&tail);
        refused(&format!("type {t} with 2^60 elements"), &rdb(&b));
    }
    // 2^60 quicklist nodes (both versions).
    for t in [14u8, 18] {
        let mut b = key(t);
        b.extend(len64(1 << 60));
        refused(&format!("quicklist type {t} with 2^60 nodes"), &rdb(&b));
    }
    // A 2^40-byte string, as a value, as a key, and as an aux field.
    let mut b = key(0);
    b.extend(len64(1 << 40));
    b.extend_from_slice(b"abc");
    assert!(matches!(
        refused("2^40-byte value", &rdb(&b)),
        RdbError::UnexpectedEof { .. }
    ));
    let mut b = vec![0u8];
    b.extend(len64(1 << 40));
    refused("2^40-byte key", &rdb(&b));
    let mut b = vec![0xFA];
    b.extend(len64(1 << 40));
    refused("2^40-byte aux", &rdb(&b));
    // A 3 MB string claim with 1 MB present: grows with the input, then EOF.
    let mut b = key(0);
    b.extend(len32(3 << 20));
    b.extend(vec![b'x'; 1 << 20]);
    refused("3 MB claim, 1 MB present", &rdb(&b));
    // LZF: impossible uncompressed length, and a huge compressed length.
    let mut b = key(0);
    b.push(0xC3);
    b.push(0x05);
    b.extend(len64(1 << 40));
    b.extend_from_slice(&[0, 1, 2, 3, 4]);
    assert!(matches!(
        refused("LZF 2^40 from 5 bytes", &rdb(&b)),
        RdbError::Corrupt { .. }
    ));
    let mut b = key(0);
    b.push(0xC3);
    b.extend(len64(1 << 40));
    b.extend(len64(1 << 44));
    refused("LZF with 2^40 compressed bytes", &rdb(&b));
    let mut b = key(0);
    b.push(0xC3);
    b.extend(len32(u32::MAX));
    b.extend(len64(u64::MAX));
    refused("LZF with u64::MAX uncompressed", &rdb(&b));
    // Blob headers claiming huge sizes/counts inside a small blob.
    let blobs: [(u8, Vec<u8>); 4] = [
        (
            16,
            [
                &0xFFFF_FFF0u32.to_le_bytes()[..],
                &[0xFE, 0xFF, 0x01, 0x01, 0xFF],
            ]
            .concat(),
        ),
        (
            13,
            [
                &u32::MAX.to_le_bytes()[..],
                &[10, 0, 0, 0, 0xFE, 0xFF, 0xFF],
            ]
            .concat(),
        ),
        (
            11,
            [
                &8u32.to_le_bytes()[..],
                &u32::MAX.to_le_bytes()[..],
                &[1, 2, 3],
            ]
            .concat(),
        ),
        (9, vec![200, 0xFE, 0xFF, 0xFF, 0xFF, 0x7F, b'a', 0xFF]),
    ];
    for (t, blob) in blobs {
        let mut b = key(t);
        b.push(blob.len() as u8);
        b.extend_from_slice(&blob);
        assert!(matches!(
            refused(&format!("blob type {t}"), &rdb(&b)),
            RdbError::Corrupt { .. }
        ));
    }
    // Streams: 2^60 listpacks, consumer groups, PEL entries.
    let mut b = key(19);
    b.extend(len64(1 << 60));
    refused("stream with 2^60 listpacks", &rdb(&b));
    let mut b = key(19);
    b.push(0); // no listpacks
    b.extend_from_slice(&[0; 8]); // length, last id, first id, max deleted, entries added
    b.extend(len64(1 << 60));
    refused("stream with 2^60 groups", &rdb(&b));
    let mut b = key(19);
    b.push(0);
    b.extend_from_slice(&[0; 8]);
    b.push(1); // one group
    b.extend_from_slice(&[0x01, b'g', 0, 0, 0]); // name, id, offset
    b.extend(len64(1 << 60));
    refused("stream group with 2^60 PEL entries", &rdb(&b));
    // Module value with an endless opcode stream cut by EOF, and an unknown opcode.
    let mut b = key(7);
    b.extend_from_slice(&[0x05, 0x02, 0x07, 0x02, 0x08]);
    refused("module opcodes without EOF", &rdb(&b));
    let mut b = key(7);
    b.extend_from_slice(&[0x05, 0x09]);
    assert!(matches!(
        refused("unknown module opcode", &rdb(&b)),
        RdbError::Corrupt { .. }
    ));
}
