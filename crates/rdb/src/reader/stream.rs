//! Decoding a stream value (types 15, 19 and 21) into [`Stream`], with the checks Redis's loader
//! makes (`rdbLoadObject`, stream branch, 7.0.15; type 21 from 7.2) plus deep validation of every
//! node listpack (`streamValidateListpackIntegrity`).
//!
//! ```text
//! <n nodes> n x ( <string: 16-byte master ID, big-endian> <string: listpack> )
//! <length> <last id ms> <last id seq>
//! [19, 21: <first id ms> <first id seq> <max deleted ms> <max deleted seq> <entries added>]
//! <n groups> n x ( <string name> <id ms> <id seq> [19, 21: <entries read>]
//!                  <n pel> n x ( <16-byte id> <u64 LE delivery time> <delivery count> )
//!                  <n consumers> n x ( <string name> <u64 LE seen time> [21: <u64 LE active time>]
//!                                      <n pel> n x <16-byte id> ) )
//! ```
//! Type 15 has no first ID, tombstone ID, entries-added counter nor entries-read counters: they
//! are derived as Redis does (first live ID or `MAX` when none, `0-0`, the length, and
//! [`estimate_entries_read`]). Nothing is allocated from a count read in the file beyond
//! [`MAX_PREALLOC`](super) elements.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use super::source::Source;
use crate::constants::{TYPE_STREAM_LISTPACKS, TYPE_STREAM_LISTPACKS_3};
use crate::error::{RdbError, Result};
use crate::stream::{
    estimate_entries_read, Node, PendingEntry, Stream, StreamConsumer, StreamGroup, StreamId,
};

fn corrupt(offset: u64, what: impl Into<String>) -> RdbError {
    RdbError::Corrupt {
        offset,
        key: None,
        what: what.into(),
    }
}

fn read_id<R: Read>(src: &mut Source<R>, what: &str) -> Result<StreamId> {
    let b: [u8; 16] = src.read_array(what)?;
    Ok(StreamId::from_be_bytes(&b))
}

fn read_len_id<R: Read>(src: &mut Source<R>, what: &str) -> Result<StreamId> {
    let ms = src.read_len(what)?;
    let seq = src.read_len(what)?;
    Ok(StreamId::new(ms, seq))
}

fn read_ms<R: Read>(src: &mut Source<R>, what: &str) -> Result<i64> {
    Ok(i64::from_le_bytes(src.read_array(what)?))
}

/// Read a stream value of type `rdb_type` (15, 19 or 21).
pub(crate) fn read_stream<R: Read>(src: &mut Source<R>, rdb_type: u8) -> Result<Stream> {
    let n_nodes = src.read_len("stream listpack count")?;
    let mut nodes: Vec<Node> = Vec::new();
    for _ in 0..n_nodes {
        let at = src.offset();
        let key = src.read_string("stream master ID")?;
        let key: [u8; 16] = key.as_slice().try_into().map_err(|_| {
            corrupt(
                at,
                format!(
                    "stream node key is {} bytes, not a 16-byte stream ID",
                    key.len()
                ),
            )
        })?;
        let master = StreamId::from_be_bytes(&key);
        let at = src.offset();
        let lp = src.read_string("stream listpack")?;
        let node = Node::decode(master, &lp)
            .map_err(|e| corrupt(at, format!("stream listpack integrity check failed: {e}")))?;
        if let Some(prev) = nodes.last() {
            if prev.master() >= master {
                return Err(corrupt(at, "stream node keys are not ascending"));
            }
            if prev.last_id() >= master {
                return Err(corrupt(at, "stream node overlaps the next node's IDs"));
            }
        }
        nodes.push(node);
    }
    let at = src.offset();
    let length = src.read_len("stream length")?;
    let last_id = read_len_id(src, "stream last ID")?;
    let live: u64 = nodes.iter().map(Node::live).sum();
    if length != live {
        return Err(corrupt(
            at,
            format!("stream length {length} but its nodes hold {live} entries"),
        ));
    }
    if nodes.last().is_some_and(|n| n.last_id() > last_id) {
        return Err(corrupt(at, "stream last ID below its last entry"));
    }
    let (first_id, max_deleted_id, entries_added) = if rdb_type == TYPE_STREAM_LISTPACKS {
        let first = nodes
            .iter()
            .flat_map(|n| n.entries().iter())
            .find(|e| !e.deleted)
            .map_or(StreamId::MAX, |e| e.id);
        (first, StreamId::MIN, length)
    } else {
        let first = read_len_id(src, "stream first ID")?;
        let maxdel = read_len_id(src, "stream max deleted ID")?;
        let added = src.read_len("stream entries added")?;
        (first, maxdel, added)
    };
    let mut s = Stream {
        nodes,
        length,
        last_id,
        first_id,
        max_deleted_id,
        entries_added,
        groups: Vec::new(),
    };
    let n_groups = src.read_len("stream consumer group count")?;
    let mut group_names: HashSet<Vec<u8>> = HashSet::new();
    for _ in 0..n_groups {
        let at = src.offset();
        let name = src.read_string("stream consumer group name")?;
        let gid = read_len_id(src, "stream consumer group ID")?;
        let entries_read = if rdb_type == TYPE_STREAM_LISTPACKS {
            estimate_entries_read(&s, gid)
        } else {
            src.read_len("stream consumer group offset")? as i64
        };
        if !group_names.insert(name.clone()) {
            return Err(corrupt(
                at,
                format!(
                    "duplicated consumer group name {:?}",
                    String::from_utf8_lossy(&name)
                ),
            ));
        }
        let n_pel = src.read_len("stream PEL size")?;
        let mut pending: Vec<PendingEntry> = Vec::new();
        let mut owner: HashMap<StreamId, bool> = HashMap::new();
        for _ in 0..n_pel {
            let at = src.offset();
            let id = read_id(src, "stream PEL ID")?;
            let delivery_time = read_ms(src, "stream PEL delivery time")?;
            let delivery_count = src.read_len("stream PEL delivery count")?;
            if owner.insert(id, false).is_some() {
                return Err(corrupt(at, "duplicated global PEL entry"));
            }
            pending.push(PendingEntry {
                id,
                delivery_time,
                delivery_count,
            });
        }
        pending.sort_unstable_by_key(|p| p.id);
        let n_cons = src.read_len("stream consumer count")?;
        let mut consumers: Vec<StreamConsumer> = Vec::new();
        let mut consumer_names: HashSet<Vec<u8>> = HashSet::new();
        for _ in 0..n_cons {
            let at = src.offset();
            let cname = src.read_string("stream consumer name")?;
            if !consumer_names.insert(cname.clone()) {
                return Err(corrupt(at, "duplicate stream consumer"));
            }
            let seen_time = read_ms(src, "stream consumer seen time")?;
            if rdb_type == TYPE_STREAM_LISTPACKS_3 {
                read_ms(src, "stream consumer active time")?;
            }
            let n = src.read_len("stream consumer PEL size")?;
            let mut ids = Vec::new();
            for _ in 0..n {
                let at = src.offset();
                let id = read_id(src, "stream consumer PEL ID")?;
                match owner.get_mut(&id) {
                    None => {
                        return Err(corrupt(at, "consumer entry not found in group global PEL"))
                    }
                    Some(true) => return Err(corrupt(at, "duplicated consumer PEL entry")),
                    Some(o) => *o = true,
                }
                ids.push(id);
            }
            ids.sort_unstable();
            consumers.push(StreamConsumer {
                name: cname,
                seen_time,
                pending: ids,
            });
        }
        if owner.values().any(|o| !o) {
            return Err(corrupt(at, "stream CG PEL entry without consumer"));
        }
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        s.groups.push(StreamGroup {
            name,
            last_id: gid,
            entries_read,
            pending,
            consumers,
        });
    }
    s.groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(s)
}
