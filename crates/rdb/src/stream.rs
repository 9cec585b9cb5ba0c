//! Streams: IDs, the listpack node layout Redis 7.0 keeps a stream's entries in, and the stream
//! model the reader produces and the writer accepts (RDB types 15, 19 and 21).
//!
//! Problem: a stream must reach the RDB byte for byte as redis-server 7.0.15 writes it, and the
//! bytes depend on the history of the stream (which entries shared a node, which were deleted),
//! not only on the live entries. So the node is kept here as Redis keeps it — a master entry and
//! delta-encoded entries, deleted ones included — in a structured form ([`Node`]) that encodes to
//! exactly the listpack `streamAppendItem` (`t_stream.c`, 7.0.15) would have built, and whose
//! [`Node::lp_bytes`] is tracked so the "is the tail node full" decision matches Redis's.
//!
//! A node's listpack (elements, not bytes; each element is a listpack entry):
//!
//! ```text
//! master entry: | count | deleted | num-fields | field-1 | ... | field-N | 0 |
//! entry:        | flags | ms-delta | seq-delta | num-fields | field-1 | value-1 | ... | lp-count |
//! same fields:  | flags | ms-delta | seq-delta | value-1 | ... | value-N | lp-count |
//! ```
//! `count` live entries, `deleted` entries flagged deleted (bit 0 of flags); bit 1 of flags means
//! "same fields as the master entry". Deltas are `id - master id` per part, as i64 (wrapping).
//! `lp-count` is the number of elements of the entry before it (3 + values, + fields + 1 when
//! the fields are spelled out). A new node starts when `lp_bytes + sum of the new entry's field
//! and value lengths >= stream-node-max-bytes` or when it holds `stream-node-max-entries`
//! entries (live and deleted).
//!
//! The node's radix-tree key (the master ID) is 16 bytes: ms then seq, both u64 **big-endian**.

use crate::listpack::Elem;
use crate::model::Bytes;
use crate::writer::ListpackBuilder;

/// Entry flag: the entry is deleted.
pub const FLAG_DELETED: i64 = 1;
/// Entry flag: the entry's fields are the master entry's.
pub const FLAG_SAMEFIELDS: i64 = 2;
/// `stream-node-max-bytes` default.
pub const DEFAULT_NODE_MAX_BYTES: usize = 4096;
/// `stream-node-max-entries` default.
pub const DEFAULT_NODE_MAX_ENTRIES: u64 = 100;
/// `STREAM_LISTPACK_MAX_SIZE`: the node size cap when the configured one is 0 or larger.
pub const LISTPACK_MAX_SIZE: usize = 1 << 30;

/// A stream entry ID: milliseconds and sequence number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// The smallest ID, `0-0`.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest ID.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// An ID.
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The 16-byte big-endian form (radix-tree keys, PEL entries in the RDB).
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    /// Parse the 16-byte big-endian form.
    pub fn from_be_bytes(b: &[u8; 16]) -> StreamId {
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..]);
        StreamId::new(u64::from_be_bytes(ms), u64::from_be_bytes(seq))
    }

    /// The next ID (`streamIncrID`): `None` at the maximum.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID (`streamDecrID`): `None` at `0-0`.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    /// `ms-seq` as text.
    pub fn to_text(self) -> Bytes {
        format!("{}-{}", self.ms, self.seq).into_bytes()
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// An entry as `(id, fields, values)`, for building nodes.
pub type RawEntry = (StreamId, Vec<Bytes>, Vec<Bytes>);

/// One entry of a node, live or deleted.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeEntry {
    /// The entry's ID.
    pub id: StreamId,
    /// Flagged deleted.
    pub deleted: bool,
    /// The field names, or `None` when they are the master entry's (`SAMEFIELDS`).
    pub fields: Option<Box<[Bytes]>>,
    /// The values, one per field.
    pub values: Box<[Bytes]>,
}

/// A listpack node of a stream: the master entry and every entry appended to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    master: StreamId,
    master_fields: Box<[Bytes]>,
    entries: Vec<NodeEntry>,
    live: u64,
    deleted: u64,
    /// `lpBytes` of the listpack this node encodes to.
    lp_bytes: usize,
    /// Heap bytes held by the strings (memory accounting).
    heap: usize,
}

fn str_size(b: &[u8]) -> usize {
    ListpackBuilder::entry_size(b)
}

fn int_size(v: i64) -> usize {
    ListpackBuilder::int_entry_size(v)
}

impl Node {
    /// A node whose first entry is `id` with `pairs` (its fields become the master fields).
    pub fn new(id: StreamId, fields: Vec<Bytes>, values: Vec<Bytes>) -> Node {
        let mut lp_bytes = 6 + 1 + int_size(0) + int_size(0) + int_size(fields.len() as i64);
        lp_bytes += fields.iter().map(|f| str_size(f)).sum::<usize>() + int_size(0);
        let heap = fields.iter().map(|f| f.len()).sum::<usize>();
        let mut node = Node {
            master: id,
            master_fields: fields.into_boxed_slice(),
            entries: Vec::new(),
            live: 0,
            deleted: 0,
            lp_bytes,
            heap,
        };
        node.push(id, None, values);
        node
    }

    /// The master ID (the node's key).
    pub fn master(&self) -> StreamId {
        self.master
    }

    /// The master entry's field names.
    pub fn master_fields(&self) -> &[Bytes] {
        &self.master_fields
    }

    /// Live entries.
    pub fn live(&self) -> u64 {
        self.live
    }

    /// Entries flagged deleted.
    pub fn deleted_count(&self) -> u64 {
        self.deleted
    }

    /// Every entry, deleted ones included, in ID order.
    pub fn entries(&self) -> &[NodeEntry] {
        &self.entries
    }

    /// `lpBytes` of the encoded listpack.
    pub fn lp_bytes(&self) -> usize {
        self.lp_bytes
    }

    /// Approximate heap bytes (memory accounting).
    pub fn mem_usage(&self) -> usize {
        self.heap
            + self.entries.capacity() * std::mem::size_of::<NodeEntry>()
            + self.master_fields.len() * std::mem::size_of::<Bytes>()
    }

    /// The field names of entry `e` of this node.
    pub fn fields_of<'a>(&'a self, e: &'a NodeEntry) -> &'a [Bytes] {
        match &e.fields {
            Some(f) => f,
            None => &self.master_fields,
        }
    }

    /// The ID of the last entry (deleted or not), `lpGetEdgeStreamID(lp, 0, ...)`.
    pub fn last_id(&self) -> StreamId {
        self.entries.last().map_or(self.master, |e| e.id)
    }

    /// Redis's "is the tail node full" test before appending an entry whose fields and values
    /// total `totelelen` bytes.
    pub fn is_full(&self, totelelen: usize, max_bytes: usize, max_entries: u64) -> bool {
        let max_bytes = if max_bytes == 0 || max_bytes > LISTPACK_MAX_SIZE {
            LISTPACK_MAX_SIZE
        } else {
            max_bytes
        };
        if self.lp_bytes + totelelen >= max_bytes {
            return true;
        }
        max_entries != 0 && self.live + self.deleted >= max_entries
    }

    fn set_counts(&mut self, live: u64, deleted: u64) {
        self.lp_bytes -= int_size(self.live as i64) + int_size(self.deleted as i64);
        self.live = live;
        self.deleted = deleted;
        self.lp_bytes += int_size(live as i64) + int_size(deleted as i64);
    }

    /// Append an entry (the caller ensures `id` is above every ID of the node). The fields are
    /// compressed away when they equal the master fields.
    pub fn append(&mut self, id: StreamId, fields: Vec<Bytes>, values: Vec<Bytes>) {
        let same = fields.len() == self.master_fields.len()
            && fields
                .iter()
                .zip(self.master_fields.iter())
                .all(|(a, b)| a == b);
        let fields = if same {
            None
        } else {
            Some(fields.into_boxed_slice())
        };
        self.push(id, fields, values);
    }

    fn push(&mut self, id: StreamId, fields: Option<Box<[Bytes]>>, values: Vec<Bytes>) {
        let n = values.len() as i64;
        let flags = if fields.is_none() { FLAG_SAMEFIELDS } else { 0 };
        let mut add = int_size(flags)
            + int_size(id.ms.wrapping_sub(self.master.ms) as i64)
            + int_size(id.seq.wrapping_sub(self.master.seq) as i64);
        let mut lp_count = n + 3;
        if let Some(f) = &fields {
            add += int_size(n) + f.iter().map(|x| str_size(x)).sum::<usize>();
            self.heap += f.iter().map(|x| x.len()).sum::<usize>();
            lp_count += n + 1;
        }
        add += values.iter().map(|v| str_size(v)).sum::<usize>() + int_size(lp_count);
        self.heap += values.iter().map(|v| v.len()).sum::<usize>();
        self.lp_bytes += add;
        self.entries.push(NodeEntry {
            id,
            deleted: false,
            fields,
            values: values.into_boxed_slice(),
        });
        self.set_counts(self.live + 1, self.deleted);
    }

    /// Flag entry `index` deleted (flags keep their one-byte size). Returns false when it already
    /// was.
    pub fn mark_deleted(&mut self, index: usize) -> bool {
        match self.entries.get_mut(index) {
            Some(e) if !e.deleted => {
                e.deleted = true;
                self.set_counts(self.live.saturating_sub(1), self.deleted + 1);
                true
            }
            _ => false,
        }
    }

    /// Index of the entry with exactly `id`, deleted or not.
    pub fn find(&self, id: StreamId) -> Option<usize> {
        self.entries.binary_search_by(|e| e.id.cmp(&id)).ok()
    }

    /// Index of the first entry with an ID `>= id`.
    pub fn lower_bound(&self, id: StreamId) -> usize {
        self.entries.partition_point(|e| e.id < id)
    }

    /// Encode the node's listpack into `lp` (cleared first) and return its bytes.
    pub fn encode<'a>(&self, lp: &'a mut ListpackBuilder) -> crate::Result<&'a [u8]> {
        lp.clear();
        lp.push_int(self.live as i64);
        lp.push_int(self.deleted as i64);
        lp.push_int(self.master_fields.len() as i64);
        for f in self.master_fields.iter() {
            lp.push(f);
        }
        lp.push_int(0);
        for e in &self.entries {
            let mut flags = 0;
            if e.deleted {
                flags |= FLAG_DELETED;
            }
            if e.fields.is_none() {
                flags |= FLAG_SAMEFIELDS;
            }
            lp.push_int(flags);
            lp.push_int(e.id.ms.wrapping_sub(self.master.ms) as i64);
            lp.push_int(e.id.seq.wrapping_sub(self.master.seq) as i64);
            let n = e.values.len() as i64;
            let mut lp_count = n + 3;
            if let Some(f) = &e.fields {
                lp.push_int(n);
                lp_count += n + 1;
                for (f, v) in f.iter().zip(e.values.iter()) {
                    lp.push(f);
                    lp.push(v);
                }
            } else {
                for v in e.values.iter() {
                    lp.push(v);
                }
            }
            lp.push_int(lp_count);
        }
        lp.finish()
    }

    /// Decode and validate a node's listpack as `streamValidateListpackIntegrity` (deep) does,
    /// and further: every entry ID above the previous one and not below the master ID.
    pub fn decode(master: StreamId, lp: &[u8]) -> Result<Node, String> {
        let elems = crate::listpack::parse(lp).map_err(|e| e.to_string())?;
        if elems.is_empty() {
            return Err("empty listpack inside stream".into());
        }
        let mut it = elems.iter();
        let mut int = |what: &str| -> Result<i64, String> {
            match it.next() {
                Some(Elem::Int(v)) => Ok(*v),
                Some(Elem::Str(_)) => Err(format!("{what} is not an integer")),
                None => Err(format!("listpack ends before the {what}")),
            }
        };
        let live = int("entry count")?;
        let deleted = int("deleted count")?;
        let nmaster = int("master field count")?;
        if live < 0 || deleted < 0 || nmaster < 0 {
            return Err("negative count in the master entry".into());
        }
        let mut pos = 3usize;
        let take = |pos: &mut usize, what: &str| -> Result<Bytes, String> {
            let e = elems
                .get(*pos)
                .ok_or_else(|| format!("listpack ends inside the {what}"))?;
            *pos += 1;
            Ok(e.to_bytes())
        };
        let take_int = |pos: &mut usize, what: &str| -> Result<i64, String> {
            match elems.get(*pos) {
                Some(Elem::Int(v)) => {
                    *pos += 1;
                    Ok(*v)
                }
                Some(Elem::Str(_)) => Err(format!("{what} is not an integer")),
                None => Err(format!("listpack ends before the {what}")),
            }
        };
        let mut master_fields = Vec::new();
        for _ in 0..nmaster {
            master_fields.push(take(&mut pos, "master fields")?);
        }
        if take_int(&mut pos, "master entry terminator")? != 0 {
            return Err("master entry terminator is not 0".into());
        }
        let total = (live as u64).saturating_add(deleted as u64);
        let mut node = Node {
            master,
            master_fields: master_fields.into_boxed_slice(),
            entries: Vec::new(),
            live: 0,
            deleted: 0,
            lp_bytes: lp.len(),
            heap: 0,
        };
        node.heap = node.master_fields.iter().map(|f| f.len()).sum();
        let mut prev: Option<StreamId> = None;
        let mut seen = 0u64;
        while pos < elems.len() {
            if seen == total {
                return Err("more entries than the master entry counts".into());
            }
            let flags = take_int(&mut pos, "entry flags")?;
            let ms = take_int(&mut pos, "entry ID")?;
            let seq = take_int(&mut pos, "entry ID")?;
            let id = StreamId::new(
                master.ms.wrapping_add(ms as u64),
                master.seq.wrapping_add(seq as u64),
            );
            if prev.is_some_and(|p| id <= p) || id < master {
                return Err(format!("entry ID {id} out of order"));
            }
            prev = Some(id);
            let (fields, n) = if flags & FLAG_SAMEFIELDS != 0 {
                (None, nmaster)
            } else {
                let n = take_int(&mut pos, "entry field count")?;
                if n < 0 || n as usize > elems.len() {
                    return Err("bad entry field count".into());
                }
                (Some(Vec::with_capacity(n as usize)), n)
            };
            let mut fields = fields;
            let mut values = Vec::with_capacity((n as usize).min(elems.len()));
            for _ in 0..n {
                if let Some(f) = &mut fields {
                    f.push(take(&mut pos, "entry fields")?);
                }
                values.push(take(&mut pos, "entry values")?);
            }
            let want = n + 3 + if fields.is_some() { n + 1 } else { 0 };
            if take_int(&mut pos, "entry lp-count")? != want {
                return Err("entry lp-count does not match its fields".into());
            }
            let deleted_flag = flags & FLAG_DELETED != 0;
            if deleted_flag {
                node.deleted += 1;
            } else {
                node.live += 1;
            }
            node.heap += values.iter().map(|v| v.len()).sum::<usize>()
                + fields
                    .as_ref()
                    .map_or(0, |f| f.iter().map(|x| x.len()).sum::<usize>());
            node.entries.push(NodeEntry {
                id,
                deleted: deleted_flag,
                fields: fields.map(Vec::into_boxed_slice),
                values: values.into_boxed_slice(),
            });
            seen += 1;
        }
        if node.live != live as u64 || node.deleted != deleted as u64 {
            return Err("entry counts in the master entry do not match the entries".into());
        }
        Ok(node)
    }
}

/// One pending (delivered, unacknowledged) entry of a consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    /// The entry ID.
    pub id: StreamId,
    /// Last delivery, Unix ms.
    pub delivery_time: i64,
    /// Times delivered.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamConsumer {
    /// Name.
    pub name: Bytes,
    /// Last time seen, Unix ms.
    pub seen_time: i64,
    /// IDs of the group PEL entries this consumer owns, ascending.
    pub pending: Vec<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamGroup {
    /// Name.
    pub name: Bytes,
    /// Last delivered ID.
    pub last_id: StreamId,
    /// Logical reads counter (`entries_read`); -1 when unknown.
    pub entries_read: i64,
    /// The group's PEL, ascending by ID.
    pub pending: Vec<PendingEntry>,
    /// Consumers, ascending by name.
    pub consumers: Vec<StreamConsumer>,
}

/// A stream as the RDB holds it (type 19 content; 15 and 21 are mapped onto it).
#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    /// Listpack nodes, ascending by master ID.
    pub nodes: Vec<Node>,
    /// Live entries.
    pub length: u64,
    /// Last ID ever added (or set by XSETID).
    pub last_id: StreamId,
    /// First live entry ID (0-0 when empty).
    pub first_id: StreamId,
    /// Largest deleted ID.
    pub max_deleted_id: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// Consumer groups, ascending by name.
    pub groups: Vec<StreamGroup>,
}

impl Stream {
    /// Lay the live entries out afresh, as appending them in order to an empty stream with the
    /// default node limits would (tombstones and history dropped; metadata and groups kept).
    /// Two streams with the same content are equal after this.
    pub fn relay_nodes(&mut self) {
        let entries: Vec<RawEntry> = self
            .live_entries()
            .map(|(id, f, v)| (id, f.to_vec(), v.to_vec()))
            .collect();
        self.nodes = build_nodes(entries, DEFAULT_NODE_MAX_BYTES, DEFAULT_NODE_MAX_ENTRIES);
    }

    /// Live entries as `(id, fields, values)` in ID order.
    pub fn live_entries(&self) -> impl Iterator<Item = (StreamId, &[Bytes], &[Bytes])> + '_ {
        self.nodes.iter().flat_map(|n| {
            n.entries()
                .iter()
                .filter(|e| !e.deleted)
                .map(move |e| (e.id, n.fields_of(e), &*e.values))
        })
    }
}

/// `streamEstimateDistanceFromFirstEverEntry`: the entries-read counter of a group whose last
/// delivered ID is `id`, or -1 when it cannot be known.
pub fn estimate_entries_read(s: &Stream, id: StreamId) -> i64 {
    estimate_distance(
        s.entries_added,
        s.length,
        s.last_id,
        s.first_id,
        s.max_deleted_id,
        id,
    )
}

/// [`estimate_entries_read`] on the stream's counters.
pub fn estimate_distance(
    entries_added: u64,
    length: u64,
    last_id: StreamId,
    first_id: StreamId,
    max_deleted: StreamId,
    id: StreamId,
) -> i64 {
    if entries_added == 0 {
        return 0;
    }
    if length == 0 && id <= last_id {
        return entries_added as i64;
    }
    if id == last_id {
        return entries_added as i64;
    } else if id > last_id {
        return -1;
    }
    if max_deleted == StreamId::MIN || max_deleted < first_id {
        if id < first_id {
            return entries_added.saturating_sub(length) as i64;
        } else if id == first_id {
            return entries_added.saturating_sub(length).saturating_add(1) as i64;
        }
    }
    -1
}

/// Build the nodes a stream gets when its entries are appended in order to an empty stream with
/// the given node limits (the dump reader and tests use it).
pub fn build_nodes<I>(entries: I, max_bytes: usize, max_entries: u64) -> Vec<Node>
where
    I: IntoIterator<Item = RawEntry>,
{
    let mut nodes: Vec<Node> = Vec::new();
    for (id, fields, values) in entries {
        let tot: usize = fields.iter().chain(values.iter()).map(|b| b.len()).sum();
        match nodes.last_mut() {
            Some(n) if !n.is_full(tot, max_bytes, max_entries) => n.append(id, fields, values),
            _ => nodes.push(Node::new(id, fields, values)),
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        s.as_bytes().to_vec()
    }

    #[test]
    fn lp_bytes_tracks_the_encoding() {
        let mut n = Node::new(StreamId::new(5, 0), vec![b("a")], vec![b("1")]);
        let mut lp = ListpackBuilder::new();
        assert_eq!(n.lp_bytes(), n.encode(&mut lp).unwrap().len());
        for i in 1..300u64 {
            let f = if i % 3 == 0 { b("zz") } else { b("a") };
            n.append(
                StreamId::new(5 + i, i),
                vec![f],
                vec![vec![b'x'; i as usize]],
            );
            assert_eq!(n.lp_bytes(), n.encode(&mut lp).unwrap().len(), "after {i}");
        }
        for i in (0..300).step_by(2) {
            n.mark_deleted(i);
            assert_eq!(n.lp_bytes(), n.encode(&mut lp).unwrap().len());
        }
        let bytes = n.encode(&mut lp).unwrap().to_vec();
        let back = Node::decode(StreamId::new(5, 0), &bytes).unwrap();
        assert_eq!(back.entries(), n.entries());
        assert_eq!(back.lp_bytes(), n.lp_bytes());
    }

    #[test]
    fn decode_refuses_bad_counts() {
        let n = Node::new(StreamId::new(1, 1), vec![b("f")], vec![b("v")]);
        let mut lp = ListpackBuilder::new();
        let bytes = n.encode(&mut lp).unwrap().to_vec();
        assert!(Node::decode(StreamId::new(1, 1), &bytes).is_ok());
        assert!(Node::decode(StreamId::new(1, 1), &bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn ids() {
        assert_eq!(StreamId::new(1, u64::MAX).incr(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::new(2, 0).decr(), Some(StreamId::new(1, u64::MAX)));
        let id = StreamId::new(0x0102, 7);
        assert_eq!(StreamId::from_be_bytes(&id.to_be_bytes()), id);
    }
}
