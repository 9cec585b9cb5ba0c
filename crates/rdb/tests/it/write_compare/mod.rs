//! Shared by the byte-exactness tests: rewrite a Redis-written RDB with `RdbWriter` (same aux
//! values, databases and key order) and compare each key's bytes with Redis's.

use std::path::Path;

use forkless_rdb::{EncodingLimits, Item, RdbReader, RdbWriter, WriteOptions};

/// Per-key comparison of one fixture: (keys compared, keys identical, description of mismatches).
pub(crate) fn compare_rewrite(
    path: &Path,
    compression: bool,
    checksum: bool,
    limits: EncodingLimits,
) -> (usize, usize, Vec<String>) {
    let original = std::fs::read(path).unwrap();
    let mut rd = RdbReader::new(original.as_slice()).unwrap();
    let mut ctime = None;
    let mut used_mem = 0;
    let mut aof_base = false;
    let mut extra_aux = Vec::new();
    // (db select, key entry) events with their byte ranges in the original.
    let mut events = Vec::new();
    loop {
        let start = rd.offset();
        let Some(item) = rd.next_item().unwrap() else {
            break;
        };
        let end = rd.offset();
        match item {
            Item::Aux { key, value } => {
                let text = String::from_utf8_lossy(&value).into_owned();
                match key.as_slice() {
                    b"ctime" => ctime = Some(text.parse().unwrap()),
                    b"used-mem" => used_mem = text.parse().unwrap(),
                    b"aof-base" => aof_base = text == "1",
                    b"redis-ver" | b"redis-bits" => {}
                    _ => extra_aux.push((key, value)),
                }
            }
            other => events.push((other, start as usize, end as usize)),
        }
    }
    let opts = WriteOptions {
        compression,
        checksum,
        aof_base,
        ctime,
        used_mem,
        extra_aux,
        limits,
    };
    let mut w = RdbWriter::new(Vec::new(), opts).unwrap();
    let mut ranges = Vec::new();
    let mut pending_db = None;
    for (item, start, end) in &events {
        match item {
            Item::SelectDb(db) => pending_db = Some(*db),
            Item::ResizeDb {
                db_size,
                expires_size,
            } => {
                w.select_db(pending_db.take().unwrap_or(0), *db_size, *expires_size)
                    .unwrap();
            }
            Item::Entry(e) => {
                let before = w.bytes_written() as usize;
                w.write_entry(e).unwrap();
                ranges.push((
                    e.key.clone(),
                    e.value.type_name(),
                    *start,
                    *end,
                    before,
                    w.bytes_written() as usize,
                ));
            }
            _ => {}
        }
    }
    let ours = w.finish().unwrap();
    let mut same = 0;
    let mut diffs = Vec::new();
    for (key, ty, s, e, os, oe) in &ranges {
        if original[*s..*e] == ours[*os..*oe] {
            same += 1;
        } else {
            diffs.push(format!(
                "{}: {ty} key {:?}: redis {} bytes, ours {} bytes",
                path.file_name().unwrap().to_string_lossy(),
                String::from_utf8_lossy(&key[..key.len().min(40)]),
                e - s,
                oe - os
            ));
        }
    }
    if diffs.is_empty()
        && !events
            .iter()
            .any(|(i, _, _)| matches!(i, Item::Skipped { .. }))
    {
        assert_eq!(
            ours,
            original,
            "{}: whole file differs though every key matched",
            path.display()
        );
    }
    (ranges.len(), same, diffs)
}
