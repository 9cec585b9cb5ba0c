//! The stream type: entries by ID in listpack nodes laid out as Redis 7.0 lays them out, and
//! consumer groups with their pending entries lists (PEL) and consumers.
//!
//! Problem: XADD/XRANGE/XDEL/XTRIM with Redis's complexity, and an RDB encoding byte-identical to
//! redis-server 7.0.15's, which depends on the stream's history (which entries share a node,
//! which are flagged deleted). Redis keeps a radix tree of listpacks keyed by each node's master
//! ID (`t_stream.c`, `streamAppendItem`, `streamTrim`, `streamIteratorRemoveEntry`); we keep a
//! `BTreeMap` from master ID to [`Node`] (the structured node of `forkless_rdb::stream`, which
//! tracks the exact `lpBytes` Redis's "node is full" test reads), so nodes fill, split, get
//! flagged and get dropped exactly when Redis's do. Groups, PELs and consumers are ordered maps
//! (Redis's rax order is byte order, which `BTreeMap<Vec<u8>, _>` shares).

use std::collections::BTreeMap;

use forkless_sync::Arc;

use super::chunked::{ChunkMap, ChunkSet};

use forkless_rdb::stream::{
    self as fmt, estimate_distance, Node, PendingEntry, StreamConsumer, StreamGroup, StreamId,
};

/// Stream node limits (`stream-node-max-bytes`, `stream-node-max-entries`), Redis's defaults.
pub const NODE_MAX_BYTES: usize = fmt::DEFAULT_NODE_MAX_BYTES;
/// See [`NODE_MAX_BYTES`].
pub const NODE_MAX_ENTRIES: u64 = fmt::DEFAULT_NODE_MAX_ENTRIES;

/// A pending entry of a group (Redis's `streamNACK`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    /// Last delivery time, Unix ms.
    pub delivery_time: i64,
    /// Deliveries so far.
    pub delivery_count: u64,
    /// The consumer owning it.
    pub consumer: Vec<u8>,
}

/// A consumer of a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Last time the consumer was seen, Unix ms.
    pub seen_time: i64,
    /// The IDs it owns in the group PEL (in shared chunks, like the group PEL).
    pub pel: ChunkSet<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    /// Last delivered ID.
    pub last_id: StreamId,
    /// Logical reads counter, -1 when unknown (`SCG_INVALID_ENTRIES_READ`).
    pub entries_read: i64,
    /// The group's PEL, in `Arc`-shared chunks: a write to a group a snapshot holds copies the
    /// chunk it changes, not the PEL.
    pub pel: ChunkMap<StreamId, Nack>,
    /// Consumers by name.
    pub consumers: BTreeMap<Vec<u8>, Consumer>,
}

/// Trimming strategy of XADD/XTRIM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Drop entries with an ID below this one.
    MinId(StreamId),
}

/// Why an XADD could not add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// The ID is not above the stream's last ID (or the sequence would overflow).
    NotGreater,
    /// The fields and values exceed what a listpack can hold.
    TooLarge,
}

/// One entry as commands return it.
pub type Entry = (StreamId, Vec<(Vec<u8>, Vec<u8>)>);

/// A Redis stream value.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    /// Listpack nodes by master ID, each behind an `Arc`: cloning the stream (what a writer's
    /// `Arc::make_mut` does when a snapshot holds the value) copies one pointer per node, and a
    /// write then copies only the node it touches ([`Stream::node_mut`]).
    nodes: ChunkMap<StreamId, Arc<Node>>,
    length: u64,
    /// Last ID added or set.
    pub last_id: StreamId,
    /// First live ID (0-0 when empty).
    pub first_id: StreamId,
    /// Largest deleted ID.
    pub max_deleted_id: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// Consumer groups by name, each behind an `Arc` like the nodes (write through
    /// [`Stream::group_mut`]).
    pub groups: BTreeMap<Vec<u8>, Arc<Group>>,
    /// Heap bytes of the nodes (kept on every change, so [`Stream::mem_usage`] is cheap).
    node_mem: usize,
    /// Bytes copied so far because a write met a node or group still shared with a clone (a
    /// snapshot's): the work counter the big-value tests bound.
    cow_bytes: u64,
}

const GROUP_COST: usize = 96;
const NACK_COST: usize = 64;
const CONSUMER_COST: usize = 96;

impl Stream {
    /// An empty stream.
    pub fn new() -> Stream {
        Stream::default()
    }

    /// Live entries.
    pub fn len(&self) -> u64 {
        self.length
    }

    /// True when no entry is live (an empty stream is still a key: Redis keeps it).
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Number of listpack nodes (XINFO's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Node pointers copied so far because a write met a chunk of the node index shared with a
    /// clone (at most a chunk, 256, per write).
    pub fn index_copied(&self) -> u64 {
        self.nodes.copied()
    }

    /// The nodes in ID order.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &Node> + '_ {
        self.nodes.iter().map(|(_, n)| &**n)
    }

    /// The node handles in ID order (tests check which nodes a clone still shares).
    pub fn node_handles(&self) -> impl ExactSizeIterator<Item = &Arc<Node>> + '_ {
        self.nodes.iter().map(|(_, n)| n)
    }

    /// Bytes copied by copy-on-write so far (see the field's doc).
    pub fn cow_bytes(&self) -> u64 {
        self.cow_bytes
    }

    /// The node `k`, unshared first when a clone still holds it (copying that node only).
    fn node_mut(&mut self, k: StreamId) -> Option<&mut Node> {
        let n = self.nodes.get_mut(&k)?;
        if Arc::strong_count(n) > 1 || Arc::weak_count(n) > 0 {
            // The copy's vectors have no spare capacity: keep the O(1) counter exact.
            let old = n.mem_usage();
            self.cow_bytes += old as u64;
            let copy = Arc::make_mut(n);
            self.node_mem = self.node_mem - old + copy.mem_usage();
            return Some(copy);
        }
        Some(Arc::make_mut(n))
    }

    /// The group `name` for writing, unshared first when a clone still holds it (copying that
    /// group, its PEL and consumers, not the nodes or the other groups).
    pub fn group_mut(&mut self, name: &[u8]) -> Option<&mut Group> {
        let g = self.groups.get_mut(name)?;
        if Arc::strong_count(g) > 1 || Arc::weak_count(g) > 0 {
            // The group's clone: its consumers and one pointer per PEL chunk (the chunks a
            // write then changes count their own copies: `ChunkMap::copied`).
            let chunks: usize = g.pel.chunk_count()
                + g.consumers
                    .values()
                    .map(|c| c.pel.chunk_count())
                    .sum::<usize>();
            self.cow_bytes += (GROUP_COST + chunks * 8 + g.consumers.len() * CONSUMER_COST) as u64;
        }
        Some(Arc::make_mut(g))
    }

    fn groups_mem(&self) -> usize {
        self.groups
            .iter()
            .map(|(n, g)| {
                GROUP_COST + n.len() + g.pel.len() * NACK_COST + g.consumers.len() * CONSUMER_COST
            })
            .sum()
    }

    /// Approximate heap bytes (O(groups)).
    pub fn mem_usage(&self) -> usize {
        self.node_mem + self.groups_mem()
    }

    /// [`Stream::mem_usage`] recomputed from every node.
    pub fn mem_usage_recount(&self) -> usize {
        self.nodes.iter().map(|(_, n)| n.mem_usage()).sum::<usize>() + self.groups_mem()
    }

    /// The ID `XADD *` would give now (`streamNextID`): `ms` if above the last ID's, else the
    /// last ID plus one. `None` when the stream is at the maximum ID.
    pub fn next_id(&self, now_ms: u64) -> Option<StreamId> {
        if self.last_id.ms < now_ms {
            Some(StreamId::new(now_ms, 0))
        } else {
            self.last_id.incr()
        }
    }

    /// Append an entry with `id` (already checked to be above the last ID by the caller, or
    /// checked here) as `streamAppendItem`.
    pub fn append(
        &mut self,
        id: StreamId,
        fields: Vec<Vec<u8>>,
        values: Vec<Vec<u8>>,
    ) -> Result<StreamId, AddError> {
        self.append_with(id, fields, values, (NODE_MAX_BYTES, NODE_MAX_ENTRIES))
    }

    /// [`Stream::append`] with node limits `(stream-node-max-bytes, stream-node-max-entries)`
    /// (0: no limit).
    pub fn append_with(
        &mut self,
        id: StreamId,
        fields: Vec<Vec<u8>>,
        values: Vec<Vec<u8>>,
        (max_bytes, max_entries): (usize, u64),
    ) -> Result<StreamId, AddError> {
        if id <= self.last_id {
            return Err(AddError::NotGreater);
        }
        let tot: usize = fields.iter().chain(values.iter()).map(Vec::len).sum();
        if tot > fmt::LISTPACK_MAX_SIZE {
            return Err(AddError::TooLarge);
        }
        let tail = self
            .nodes
            .last()
            .filter(|(_, n)| !n.is_full(tot, max_bytes, max_entries))
            .map(|(k, _)| *k);
        match tail.and_then(|k| self.node_mut(k)) {
            Some(n) => {
                let before = n.mem_usage();
                n.append(id, fields, values);
                let after = n.mem_usage();
                self.node_mem = self.node_mem + after - before;
            }
            None => {
                let n = Node::new(id, fields, values);
                self.node_mem += n.mem_usage();
                self.nodes.insert(id, Arc::new(n));
            }
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        Ok(id)
    }

    /// The first live ID at or after `from` (or before it, `rev`), skipping tombstones.
    fn edge_from(&self, from: StreamId, rev: bool) -> Option<StreamId> {
        let (s, e) = if rev {
            (StreamId::MIN, from)
        } else {
            (from, StreamId::MAX)
        };
        self.range(s, e, rev, Some(1))
            .into_iter()
            .next()
            .map(|e| e.0)
    }

    fn refresh_first_id(&mut self) {
        self.first_id = if self.length == 0 {
            StreamId::MIN
        } else {
            self.edge_from(StreamId::MIN, false)
                .unwrap_or(StreamId::MAX)
        };
    }

    /// `streamTrim`: returns the number of entries removed. `limit` 0 means no limit.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        // Always the head node: it is dropped whole (and the loop goes on) or trimmed inside
        // and the loop ends; no list of every node key per call (O(nodes) on each XADD MAXLEN).
        while let Some(k) = self.nodes.first_key() {
            if let Trim::MaxLen(max) = how {
                if self.length <= max {
                    break;
                }
            }
            let Some(node) = self.nodes.get(&k) else {
                break;
            };
            let entries = node.live();
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let remove = match how {
                Trim::MaxLen(max) => self.length - entries >= max,
                Trim::MinId(min) => node.last_id() < min,
            };
            if remove {
                if let Some(n) = self.nodes.remove(&k) {
                    self.node_mem -= n.mem_usage();
                }
                self.length -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            let mut length = self.length;
            let Some(node) = self.node_mut(k) else {
                break;
            };
            let before = node.mem_usage();
            let mut i = 0;
            while i < node.entries().len() {
                let stop = match how {
                    Trim::MaxLen(max) => length <= max,
                    Trim::MinId(min) => node.entries()[i].id >= min,
                };
                if stop {
                    break;
                }
                if node.mark_deleted(i) {
                    length -= 1;
                    deleted += 1;
                }
                i += 1;
            }
            let after = node.mem_usage();
            self.length = length;
            self.node_mem = self.node_mem + after - before;
            break;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.refresh_first_id();
        }
        deleted
    }

    /// XDEL of one ID: flag it deleted (dropping its node when it was the node's last live
    /// entry). True when it was live.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&k, node)) = self.nodes.floor(&id) else {
            return false;
        };
        let Some(i) = node.find(id) else {
            return false;
        };
        if node.entries()[i].deleted {
            return false;
        }
        if node.live() == 1 {
            if let Some(n) = self.nodes.remove(&k) {
                self.node_mem -= n.mem_usage();
            }
        } else if let Some(node) = self.node_mut(k) {
            let before = node.mem_usage();
            node.mark_deleted(i);
            let after = node.mem_usage();
            self.node_mem = self.node_mem + after - before;
        }
        self.length -= 1;
        true
    }

    /// After XDEL removed entries: Redis updates the first ID and the tombstone ID.
    pub fn after_deletes(&mut self, max_deleted: StreamId, any_first: bool) {
        if max_deleted > self.max_deleted_id {
            self.max_deleted_id = max_deleted;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if any_first {
            self.refresh_first_id();
        }
    }

    /// The live entry with exactly `id`.
    pub fn get(&self, id: StreamId) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let (_, node) = self.nodes.floor(&id)?;
        let e = &node.entries()[node.find(id)?];
        if e.deleted {
            return None;
        }
        Some(pairs(node, e))
    }

    /// Live entries with `start <= id <= end`, ascending (or descending, `rev`), at most
    /// `count` (None: all).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: Option<usize>,
    ) -> Vec<Entry> {
        let mut out = Vec::new();
        self.for_each_in(start, end, rev, |id, node, e| {
            if count.is_some_and(|c| out.len() >= c) {
                return false;
            }
            out.push((id, pairs(node, e)));
            true
        });
        out
    }

    /// Call `f(id, node, entry)` for each live entry in `start..=end` (descending when `rev`)
    /// until it returns false.
    pub fn for_each_in(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        mut f: impl FnMut(StreamId, &Node, &fmt::NodeEntry) -> bool,
    ) {
        if start > end {
            return;
        }
        let first_key = self.nodes.floor(&start).map_or(start, |(k, _)| *k);
        if !rev {
            for node in self.nodes.range_between(first_key, end).map(|(_, n)| n) {
                let from = node.lower_bound(start);
                for e in &node.entries()[from..] {
                    if e.id > end {
                        return;
                    }
                    if !e.deleted && !f(e.id, node, e) {
                        return;
                    }
                }
            }
        } else {
            for node in self
                .nodes
                .range_between(first_key, end)
                .rev()
                .map(|(_, n)| n)
            {
                let to = node.entries().partition_point(|e| e.id <= end);
                for e in node.entries()[..to].iter().rev() {
                    if e.id < start {
                        return;
                    }
                    if !e.deleted && !f(e.id, node, e) {
                        return;
                    }
                }
            }
        }
    }

    /// The first live entry ID (`streamGetEdgeID`), or None.
    pub fn first_entry_id(&self) -> Option<StreamId> {
        self.edge_from(StreamId::MIN, false)
    }

    /// The last live entry ID, or None.
    pub fn last_entry_id(&self) -> Option<StreamId> {
        self.edge_from(StreamId::MAX, true)
    }

    /// `streamEstimateDistanceFromFirstEverEntry`.
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        estimate_distance(
            self.entries_added,
            self.length,
            self.last_id,
            self.first_id,
            self.max_deleted_id,
            id,
        )
    }

    /// `streamRangeHasTombstones`.
    pub fn range_has_tombstones(&self, start: Option<StreamId>, end: Option<StreamId>) -> bool {
        if self.length == 0 || self.max_deleted_id == StreamId::MIN {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        let s = start.unwrap_or(StreamId::MIN);
        let e = end.unwrap_or(StreamId::MAX);
        s <= self.max_deleted_id && self.max_deleted_id <= e
    }

    /// `streamReplyWithCGLag`'s lag computation (it can be negative after XGROUP SETID with a
    /// large ENTRIESREAD): None when unknown.
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != -1 && !self.range_has_tombstones(Some(g.last_id), None) {
            return Some(added.wrapping_sub(g.entries_read));
        }
        let e = self.estimate_distance(g.last_id);
        (e != -1).then(|| added.wrapping_sub(e))
    }

    /// `streamCreateCG`: false when the group exists.
    pub fn create_group(&mut self, name: &[u8], id: StreamId, entries_read: i64) -> bool {
        if self.groups.contains_key(name) {
            return false;
        }
        self.groups.insert(
            name.to_vec(),
            Arc::new(Group {
                last_id: id,
                entries_read,
                pel: ChunkMap::new(),
                consumers: BTreeMap::new(),
            }),
        );
        true
    }

    /// Write the stream as one RDB key (type 19) without copying it into the model first.
    pub fn write_rdb<W: std::io::Write>(
        &self,
        w: &mut forkless_rdb::RdbWriter<W>,
        key: &[u8],
        expire_at_ms: Option<i64>,
    ) -> forkless_rdb::Result<()> {
        w.stream_begin(key, expire_at_ms, self.nodes.len() as u64)?;
        for (_, n) in self.nodes.iter() {
            w.stream_node(n)?;
        }
        w.stream_meta(&forkless_rdb::StreamMeta {
            length: self.length,
            last_id: self.last_id,
            first_id: self.first_id,
            max_deleted_id: self.max_deleted_id,
            entries_added: self.entries_added,
            groups: self.groups.len() as u64,
        })?;
        for (name, g) in &self.groups {
            w.stream_group(
                name,
                g.last_id,
                g.entries_read,
                g.pel
                    .iter()
                    .map(|(id, n)| (*id, n.delivery_time, n.delivery_count)),
                g.consumers.len() as u64,
            )?;
            for (cn, c) in &g.consumers {
                w.stream_consumer(cn, c.seen_time, c.pel.iter().copied())?;
            }
        }
        Ok(())
    }

    /// To the RDB model (nodes cloned).
    pub fn to_model(&self) -> fmt::Stream {
        fmt::Stream {
            nodes: self.nodes.iter().map(|(_, n)| Node::clone(n)).collect(),
            length: self.length,
            last_id: self.last_id,
            first_id: self.first_id,
            max_deleted_id: self.max_deleted_id,
            entries_added: self.entries_added,
            groups: self
                .groups
                .iter()
                .map(|(name, g)| StreamGroup {
                    name: name.clone(),
                    last_id: g.last_id,
                    entries_read: g.entries_read,
                    pending: g
                        .pel
                        .iter()
                        .map(|(id, n)| PendingEntry {
                            id: *id,
                            delivery_time: n.delivery_time,
                            delivery_count: n.delivery_count,
                        })
                        .collect(),
                    consumers: g
                        .consumers
                        .iter()
                        .map(|(cn, c)| StreamConsumer {
                            name: cn.clone(),
                            seen_time: c.seen_time,
                            pending: c.pel.iter().copied().collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// From the RDB model (validated by the reader: every PEL entry has one owner).
    pub fn from_model(m: fmt::Stream) -> Stream {
        let mut s = Stream {
            nodes: ChunkMap::new(),
            length: m.length,
            last_id: m.last_id,
            first_id: m.first_id,
            max_deleted_id: m.max_deleted_id,
            entries_added: m.entries_added,
            groups: BTreeMap::new(),
            node_mem: 0,
            cow_bytes: 0,
        };
        for n in m.nodes {
            s.node_mem += n.mem_usage();
            s.nodes.insert(n.master(), Arc::new(n));
        }
        for g in m.groups {
            let mut owner: BTreeMap<StreamId, Vec<u8>> = BTreeMap::new();
            let mut consumers = BTreeMap::new();
            for c in g.consumers {
                for id in &c.pending {
                    owner.insert(*id, c.name.clone());
                }
                consumers.insert(
                    c.name,
                    Consumer {
                        seen_time: c.seen_time,
                        pel: c.pending.into_iter().collect(),
                    },
                );
            }
            let pel = g
                .pending
                .into_iter()
                .map(|p| {
                    (
                        p.id,
                        Nack {
                            delivery_time: p.delivery_time,
                            delivery_count: p.delivery_count,
                            consumer: owner.remove(&p.id).unwrap_or_default(),
                        },
                    )
                })
                .collect();
            s.groups.insert(
                g.name,
                Arc::new(Group {
                    last_id: g.last_id,
                    entries_read: g.entries_read,
                    pel,
                    consumers,
                }),
            );
        }
        s
    }
}

/// The field-value pairs of a node entry.
pub fn pairs(node: &Node, e: &fmt::NodeEntry) -> Vec<(Vec<u8>, Vec<u8>)> {
    node.fields_of(e)
        .iter()
        .cloned()
        .zip(e.values.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(s: &mut Stream, ms: u64) {
        s.append(
            StreamId::new(ms, 0),
            vec![b"f".to_vec()],
            vec![ms.to_string().into_bytes()],
        )
        .unwrap();
    }

    /// The nodes `a` and `b` do not share (by pointer), as master IDs.
    fn unshared(a: &Stream, b: &Stream) -> Vec<StreamId> {
        let held: BTreeMap<StreamId, &Arc<Node>> =
            b.node_handles().map(|n| (n.master(), n)).collect();
        a.node_handles()
            .filter(|n| held.get(&n.master()).is_none_or(|h| !Arc::ptr_eq(h, n)))
            .map(|n| n.master())
            .collect()
    }

    /// The big-value rule: a write to a long stream that a snapshot still holds (the value's
    /// `Arc` cloned, then `Arc::make_mut` by the writer) copies the node it touches, not the
    /// stream. Bounded by work (bytes copied, nodes unshared), not by time.
    #[test]
    fn writes_to_a_held_stream_copy_one_node() {
        const N: u64 = 1_000_000;
        let mut s = Stream::new();
        for ms in 1..=N {
            add(&mut s, ms);
        }
        s.create_group(b"g", StreamId::MIN, 0);
        let nodes = s.node_count();
        assert_eq!(nodes as u64, N.div_ceil(NODE_MAX_ENTRIES));
        let max_node = s.nodes().map(Node::mem_usage).max().unwrap() as u64;
        let total = s.mem_usage() as u64;

        let mut live = Arc::new(crate::Value::Stream(Box::new(s)));
        let snapshot = Arc::clone(&live);
        let crate::Value::Stream(held) = &*snapshot else {
            unreachable!()
        };
        // The writer's copy-on-write: one pointer per node, no entry copied.
        let crate::Value::Stream(w) = Arc::make_mut(&mut live) else {
            unreachable!()
        };
        assert!(unshared(w, held).is_empty());

        // XADD into the tail node (not full: 1M is a multiple of 100, so first fill a fresh
        // node, then append to it while it is shared).
        add(w, N + 1);
        let snap2 = w.clone();
        let c0 = w.cow_bytes();
        add(w, N + 2);
        assert!(
            w.cow_bytes() - c0 <= max_node,
            "XADD copied {}",
            w.cow_bytes() - c0
        );
        assert_eq!(unshared(w, &snap2), vec![StreamId::new(N + 1, 0)]);

        // XDEL in the middle: that node only.
        let c0 = w.cow_bytes();
        assert!(w.delete(StreamId::new(N / 2 + 7, 0)));
        assert!(w.cow_bytes() - c0 <= max_node);
        assert_eq!(unshared(w, held).len(), 2, "the tail node and the XDEL's");

        // XTRIM MAXLEN exact: drops whole head nodes (no copy) and flags entries in one node.
        let c0 = w.cow_bytes();
        assert_eq!(w.trim(Trim::MaxLen(N - 150), false, 0), 151);
        assert!(w.cow_bytes() - c0 <= max_node);
        assert_eq!(w.node_count(), nodes - 1 + 1);

        // A group write copies the group, never the nodes.
        let before = unshared(w, held);
        let c0 = w.cow_bytes();
        w.group_mut(b"g").unwrap().last_id = StreamId::new(5, 0);
        assert!(w.cow_bytes() - c0 < 1024);
        assert_eq!(unshared(w, held), before);

        // The node index is chunked too: the clone copied one pointer per chunk of node
        // pointers, and the writes above copied at most a chunk of node pointers each.
        use crate::types::chunked::CHUNK_MAX;
        assert!(
            held.nodes.chunk_count() * 64 <= nodes,
            "{} chunks",
            held.nodes.chunk_count()
        );
        assert!(
            w.index_copied() <= 4 * 2 * CHUNK_MAX as u64,
            "{}",
            w.index_copied()
        );
        // Everything copied is a few nodes' worth, a tiny part of the stream.
        assert!(w.cow_bytes() <= 4 * max_node && 4 * max_node < total / 1000);
        // The held version is untouched.
        assert_eq!(held.len(), N);
        assert!(held.get(StreamId::new(N / 2 + 7, 0)).is_some());
        assert_eq!(held.groups[&b"g"[..]].last_id, StreamId::MIN);
        assert_eq!(w.mem_usage(), w.mem_usage_recount());
    }

    /// The big-value rule for consumer groups: an XACK/XCLAIM-like write to a group with a
    /// large PEL that a snapshot holds copies the PEL chunk it changes, not the PEL.
    #[test]
    fn writes_to_a_held_group_copy_one_pel_chunk() {
        use crate::types::chunked::CHUNK_MAX;
        const N: u64 = 300_000;
        let mut s = Stream::new();
        s.create_group(b"g", StreamId::MIN, 0);
        {
            let g = s.group_mut(b"g").unwrap();
            let mut c = Consumer::default();
            for ms in 1..=N {
                let id = StreamId::new(ms, 0);
                let nack = Nack {
                    delivery_time: 1,
                    delivery_count: 1,
                    consumer: b"alice".to_vec(),
                };
                g.pel.insert(id, nack);
                c.pel.insert(id);
            }
            g.consumers.insert(b"alice".to_vec(), c);
        }
        let held = s.clone();
        let c0 = s.cow_bytes();
        let g = s.group_mut(b"g").unwrap();
        // XACK of one ID, XCLAIM-like update of another.
        let id = StreamId::new(N / 2, 0);
        assert!(g.pel.remove(&id).is_some());
        assert!(g.consumers.get_mut(&b"alice"[..]).unwrap().pel.remove(&id));
        g.pel.get_mut(&StreamId::new(17, 0)).unwrap().delivery_count += 1;
        let copied = g.pel.copied() + g.consumers[&b"alice"[..]].pel.copied();
        assert!(copied <= 6 * CHUNK_MAX as u64, "copied {copied} entries");
        let chunks = g.pel.chunk_count() as u64;
        assert!(s.cow_bytes() - c0 < 1024 + 3 * 8 * chunks);
        // The held group is unchanged.
        let hg = &held.groups[&b"g"[..]];
        assert_eq!(hg.pel.len() as u64, N);
        assert_eq!(hg.pel.get(&StreamId::new(17, 0)).unwrap().delivery_count, 1);
        assert!(hg.consumers[&b"alice"[..]].pel.contains(&id));
    }

    #[test]
    fn range_both_ways_across_nodes_and_tombstones() {
        let mut s = Stream::new();
        for ms in 1..=350 {
            add(&mut s, ms);
        }
        assert_eq!(s.node_count(), 4);
        for ms in (2..=350).step_by(7) {
            assert!(s.delete(StreamId::new(ms, 0)));
        }
        let live: Vec<u64> = (1..=350).filter(|m| m < &2 || (m - 2) % 7 != 0).collect();
        let fwd: Vec<u64> = s
            .range(StreamId::MIN, StreamId::MAX, false, None)
            .iter()
            .map(|e| e.0.ms)
            .collect();
        assert_eq!(fwd, live);
        let back: Vec<u64> = s
            .range(StreamId::new(50, 0), StreamId::new(250, 5), true, None)
            .iter()
            .map(|e| e.0.ms)
            .collect();
        let want: Vec<u64> = live
            .iter()
            .rev()
            .copied()
            .filter(|m| (50..=250).contains(m))
            .collect();
        assert_eq!(back, want);
        assert_eq!(s.mem_usage(), s.mem_usage_recount());
        let before = s.len();
        assert_eq!(s.trim(Trim::MaxLen(10), false, 0), before - 10);
        assert_eq!(s.len(), 10);
        assert_eq!(s.first_id, s.first_entry_id().unwrap());
        assert_eq!(s.mem_usage(), s.mem_usage_recount());
    }
}
