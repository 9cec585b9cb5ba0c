//! Writing the canonical dump: one JSON object per key, keys and elements in canonical order.
//!
//! Scores are written as JSON numbers in shortest round-trip form (serde_json's `ryu`
//! formatting: `1.0`, `0.1`, `-0.0`, `5e-324`, `1.7976931348623157e+308`), infinities as the
//! strings `"inf"` / `"-inf"`. That is the spelling of the fixtures written by the Python oracle
//! (`repr` of a float), except `-0.0`, which the oracle prints as `0.0` (dumps compare parsed
//! values, and `-0.0 == 0.0`).

use std::io::{self, Write};

use base64::Engine as _;
use forkless_rdb::model::{Entry, Value};

use crate::show_bytes;

/// Write `entries` as canonical JSON Lines: sorted by database then key bytes, set members and
/// hash fields by bytes, zset pairs by score then member, whatever order they come in (a view of
/// references is sorted; nothing is copied). Each line goes out in one `write_all`.
///
/// Scores are ordered as Redis orders them: numerically, so `-0.0` and `0.0` tie and the member
/// decides (`forkless_rdb::model::canonicalize` uses `total_cmp`, which puts `-0.0` first; the
/// parsed values compare equal either way).
///
/// Fails with `InvalidData` on a NaN score (no Redis zset can hold one).
pub fn write_jsonl<W: Write>(mut w: W, entries: &[Entry]) -> io::Result<()> {
    let mut order: Vec<&Entry> = entries.iter().collect();
    order.sort_unstable_by(|a, b| a.db.cmp(&b.db).then_with(|| a.key.cmp(&b.key)));
    let mut line = Vec::new();
    for e in order {
        line.clear();
        write_entry_line(&mut line, e)?;
        w.write_all(&line)?;
    }
    w.flush()
}

/// Append the line of one entry, `\n` included, with its elements in canonical order.
pub fn write_entry_line(out: &mut Vec<u8>, e: &Entry) -> io::Result<()> {
    out.extend_from_slice(b"{\"db\":");
    out.extend_from_slice(e.db.to_string().as_bytes());
    out.extend_from_slice(b",\"key\":");
    put_bytes(out, &e.key)?;
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(e.value.type_name().as_bytes());
    out.extend_from_slice(b"\",\"value\":");
    match &e.value {
        Value::String(s) => put_bytes(out, s)?,
        Value::List(items) => put_array(out, items.iter(), |out, b| put_bytes(out, b))?,
        Value::Set(members) => {
            let mut v: Vec<&[u8]> = members.iter().map(Vec::as_slice).collect();
            v.sort_unstable();
            put_array(out, v.into_iter(), put_bytes)?;
        }
        Value::Hash(pairs) => {
            let mut v: Vec<&(Vec<u8>, Vec<u8>)> = pairs.iter().collect();
            v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            put_array(out, v.into_iter(), |out, (f, val)| {
                out.push(b'[');
                put_bytes(out, f)?;
                out.push(b',');
                put_bytes(out, val)?;
                out.push(b']');
                Ok(())
            })?;
        }
        Value::Stream(st) => {
            serde_json::to_writer(&mut *out, &crate::stream::to_json(st))
                .map_err(io::Error::other)?;
        }
        Value::ZSet(pairs) => {
            if let Some((m, _)) = pairs.iter().find(|p| p.1.is_nan()) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "key {} (db {}): member {} has a NaN score",
                        show_bytes(&e.key),
                        e.db,
                        show_bytes(m)
                    ),
                ));
            }
            let mut v: Vec<&(Vec<u8>, f64)> = pairs.iter().collect();
            v.sort_unstable_by(|a, b| redis_score_cmp(a.1, b.1).then_with(|| a.0.cmp(&b.0)));
            put_array(out, v.into_iter(), |out, (m, s)| {
                out.push(b'[');
                put_bytes(out, m)?;
                out.push(b',');
                put_score(out, *s)?;
                out.push(b']');
                Ok(())
            })?;
        }
    }
    out.extend_from_slice(b",\"expire_at_ms\":");
    match e.expire_at_ms {
        Some(t) => out.extend_from_slice(t.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// Redis's zset order of scores: numeric, so `-0.0` and `0.0` tie (and fall back to member
/// order). NaN is refused before sorting.
fn redis_score_cmp(a: f64, b: f64) -> std::cmp::Ordering {
    a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal)
}

fn put_array<T>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = T>,
    mut put: impl FnMut(&mut Vec<u8>, T) -> io::Result<()>,
) -> io::Result<()> {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put(out, item)?;
    }
    out.push(b']');
    Ok(())
}

/// A bytes value: a JSON string when valid UTF-8, else `{"base64":"..."}` (standard alphabet,
/// padded).
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) -> io::Result<()> {
    match std::str::from_utf8(b) {
        Ok(s) => serde_json::to_writer(&mut *out, s).map_err(io::Error::other),
        Err(_) => {
            out.extend_from_slice(b"{\"base64\":\"");
            let mut text = String::new();
            base64::engine::general_purpose::STANDARD.encode_string(b, &mut text);
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\"}");
            Ok(())
        }
    }
}

fn put_score(out: &mut Vec<u8>, s: f64) -> io::Result<()> {
    if s == f64::INFINITY {
        out.extend_from_slice(b"\"inf\"");
    } else if s == f64::NEG_INFINITY {
        out.extend_from_slice(b"\"-inf\"");
    } else {
        serde_json::to_writer(&mut *out, &s).map_err(io::Error::other)?;
    }
    Ok(())
}
