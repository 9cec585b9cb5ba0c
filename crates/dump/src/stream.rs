//! The stream record of the dump (`docs/keyspace-jsonl.md`, "Streams"): live entries, the
//! stream's IDs and counters, and its consumer groups with their PELs and consumers. The node
//! layout (which entries share a listpack, tombstones) is not content and is not dumped; reading
//! a record lays the entries out as appending them in order would.
//!
//! ```text
//! {"entries":[["1-1",["f","v"]],...],"last_id":"5-0","first_id":"1-1","max_deleted_id":"0-0",
//!  "entries_added":5,"groups":[{"name":"g","last_id":"1-1","entries_read":1,
//!  "consumers":[{"name":"alice","seen_time":1700000000000}],
//!  "pending":[["1-1","alice",1700000000000,1]]}]}
//! ```

use base64::Engine as _;
use forkless_rdb::stream::{
    build_nodes, PendingEntry, Stream, StreamConsumer, StreamGroup, StreamId,
    DEFAULT_NODE_MAX_BYTES, DEFAULT_NODE_MAX_ENTRIES,
};
use serde_json::{json, Map, Value as Json};

fn bytes(b: &[u8]) -> Json {
    match std::str::from_utf8(b) {
        Ok(s) => Json::String(s.to_string()),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
    }
}

fn id(i: StreamId) -> Json {
    Json::String(i.to_string())
}

/// The JSON value of a stream record.
pub(crate) fn to_json(s: &Stream) -> Json {
    let entries: Vec<Json> = s
        .live_entries()
        .map(|(i, f, v)| {
            let fv: Vec<Json> = f
                .iter()
                .zip(v.iter())
                .flat_map(|(f, v)| [bytes(f), bytes(v)])
                .collect();
            json!([id(i), fv])
        })
        .collect();
    let mut groups: Vec<&StreamGroup> = s.groups.iter().collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let groups: Vec<Json> = groups
        .into_iter()
        .map(|g| {
            let mut owner = std::collections::HashMap::new();
            let mut consumers: Vec<&StreamConsumer> = g.consumers.iter().collect();
            consumers.sort_by(|a, b| a.name.cmp(&b.name));
            for c in &consumers {
                for p in &c.pending {
                    owner.insert(*p, c.name.as_slice());
                }
            }
            let mut pending: Vec<&PendingEntry> = g.pending.iter().collect();
            pending.sort_by_key(|p| p.id);
            json!({
                "name": bytes(&g.name),
                "last_id": id(g.last_id),
                "entries_read": g.entries_read,
                "consumers": consumers.iter().map(|c| json!({
                    "name": bytes(&c.name),
                    "seen_time": c.seen_time,
                })).collect::<Vec<_>>(),
                "pending": pending.iter().map(|p| json!([
                    id(p.id),
                    bytes(owner.get(&p.id).copied().unwrap_or_default()),
                    p.delivery_time,
                    p.delivery_count,
                ])).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "entries": entries,
        "last_id": id(s.last_id),
        "first_id": id(s.first_id),
        "max_deleted_id": id(s.max_deleted_id),
        "entries_added": s.entries_added,
        "groups": groups,
    })
}

/// Parse a stream ID `ms-seq` (both parts required).
pub(crate) fn parse_id(t: &str) -> Option<StreamId> {
    let (a, b) = t.split_once('-')?;
    let ok = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
    if !ok(a) || !ok(b) {
        return None;
    }
    Some(StreamId::new(a.parse().ok()?, b.parse().ok()?))
}

/// A parse error: (path, what).
pub(crate) type Err = (String, String);

fn e(path: &str, what: &str) -> Err {
    (path.to_string(), what.to_string())
}

fn obj<'a>(v: &'a Json, path: &str, keys: &[&str]) -> Result<&'a Map<String, Json>, Err> {
    let Json::Object(o) = v else {
        return Err(e(path, "expected an object"));
    };
    for k in o.keys() {
        if !keys.contains(&k.as_str()) {
            return Err(e(&format!("{path}.{k}"), "unknown field"));
        }
    }
    for k in keys {
        if !o.contains_key(*k) {
            return Err(e(&format!("{path}.{k}"), "missing"));
        }
    }
    Ok(o)
}

fn get_id(v: &Json, path: &str) -> Result<StreamId, Err> {
    v.as_str()
        .and_then(parse_id)
        .ok_or_else(|| e(path, "expected a stream ID \"<ms>-<seq>\""))
}

fn arr<'a>(v: &'a Json, path: &str) -> Result<&'a Vec<Json>, Err> {
    v.as_array().ok_or_else(|| e(path, "expected an array"))
}

/// Parses a bytes value at a path.
pub(crate) type BytesParser<'a> = &'a dyn Fn(&str, &Json) -> Result<Vec<u8>, Err>;

/// Parse a stream record's value; `bytes` parses a bytes value at a path.
pub(crate) fn from_json(v: &Json, bytes: BytesParser<'_>) -> Result<Stream, Err> {
    let p = "value";
    let o = obj(
        v,
        p,
        &[
            "entries",
            "last_id",
            "first_id",
            "max_deleted_id",
            "entries_added",
            "groups",
        ],
    )?;
    let mut entries = Vec::new();
    let mut prev: Option<StreamId> = None;
    for (i, x) in arr(&o["entries"], "value.entries")?.iter().enumerate() {
        let path = format!("value.entries[{i}]");
        let pair = arr(x, &path)?;
        if pair.len() != 2 {
            return Err(e(&path, "expected [id, [field, value, ...]]"));
        }
        let eid = get_id(&pair[0], &format!("{path}[0]"))?;
        if prev.is_some_and(|p| eid <= p) {
            return Err(e(&path, "entry IDs must be strictly ascending"));
        }
        prev = Some(eid);
        let fv = arr(&pair[1], &format!("{path}[1]"))?;
        if fv.is_empty() || fv.len() % 2 != 0 {
            return Err(e(
                &format!("{path}[1]"),
                "expected a non-empty even number of fields and values",
            ));
        }
        let mut fields = Vec::new();
        let mut values = Vec::new();
        for (k, b) in fv.iter().enumerate() {
            let b = bytes(&format!("{path}[1][{k}]"), b)?;
            if k % 2 == 0 {
                fields.push(b);
            } else {
                values.push(b);
            }
        }
        entries.push((eid, fields, values));
    }
    let last_id = get_id(&o["last_id"], "value.last_id")?;
    if prev.is_some_and(|p| p > last_id) {
        return Err(e("value.last_id", "below the last entry's ID"));
    }
    let first_id = get_id(&o["first_id"], "value.first_id")?;
    let max_deleted_id = get_id(&o["max_deleted_id"], "value.max_deleted_id")?;
    let entries_added = o["entries_added"]
        .as_u64()
        .ok_or_else(|| e("value.entries_added", "expected a non-negative integer"))?;
    let length = entries.len() as u64;
    let mut groups: Vec<StreamGroup> = Vec::new();
    for (i, g) in arr(&o["groups"], "value.groups")?.iter().enumerate() {
        let path = format!("value.groups[{i}]");
        let go = obj(
            g,
            &path,
            &["name", "last_id", "entries_read", "consumers", "pending"],
        )?;
        let name = bytes(&format!("{path}.name"), &go["name"])?;
        if groups.iter().any(|x| x.name == name) {
            return Err(e(&format!("{path}.name"), "duplicate group name"));
        }
        let glast = get_id(&go["last_id"], &format!("{path}.last_id"))?;
        let entries_read = go["entries_read"]
            .as_i64()
            .filter(|r| *r >= -1)
            .ok_or_else(|| e(&format!("{path}.entries_read"), "expected an integer >= -1"))?;
        let mut consumers: Vec<StreamConsumer> = Vec::new();
        for (k, c) in arr(&go["consumers"], &format!("{path}.consumers"))?
            .iter()
            .enumerate()
        {
            let cp = format!("{path}.consumers[{k}]");
            let co = obj(c, &cp, &["name", "seen_time"])?;
            let cname = bytes(&format!("{cp}.name"), &co["name"])?;
            if consumers.iter().any(|x| x.name == cname) {
                return Err(e(&format!("{cp}.name"), "duplicate consumer name"));
            }
            let seen_time = co["seen_time"]
                .as_i64()
                .ok_or_else(|| e(&format!("{cp}.seen_time"), "expected an integer"))?;
            consumers.push(StreamConsumer {
                name: cname,
                seen_time,
                pending: Vec::new(),
            });
        }
        let mut pending: Vec<PendingEntry> = Vec::new();
        for (k, x) in arr(&go["pending"], &format!("{path}.pending"))?
            .iter()
            .enumerate()
        {
            let pp = format!("{path}.pending[{k}]");
            let a = arr(x, &pp)?;
            if a.len() != 4 {
                return Err(e(
                    &pp,
                    "expected [id, consumer, delivery_time, delivery_count]",
                ));
            }
            let pid = get_id(&a[0], &format!("{pp}[0]"))?;
            if pending.iter().any(|q| q.id == pid) {
                return Err(e(&pp, "duplicate pending ID"));
            }
            let owner = bytes(&format!("{pp}[1]"), &a[1])?;
            let Some(c) = consumers.iter_mut().find(|c| c.name == owner) else {
                return Err(e(&format!("{pp}[1]"), "not a consumer of the group"));
            };
            c.pending.push(pid);
            let delivery_time = a[2]
                .as_i64()
                .ok_or_else(|| e(&format!("{pp}[2]"), "expected an integer"))?;
            let delivery_count = a[3]
                .as_u64()
                .ok_or_else(|| e(&format!("{pp}[3]"), "expected a non-negative integer"))?;
            pending.push(PendingEntry {
                id: pid,
                delivery_time,
                delivery_count,
            });
        }
        pending.sort_by_key(|q| q.id);
        for c in &mut consumers {
            c.pending.sort_unstable();
        }
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        groups.push(StreamGroup {
            name,
            last_id: glast,
            entries_read,
            pending,
            consumers,
        });
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Stream {
        nodes: build_nodes(entries, DEFAULT_NODE_MAX_BYTES, DEFAULT_NODE_MAX_ENTRIES),
        length,
        last_id,
        first_id,
        max_deleted_id,
        entries_added,
        groups,
    })
}
