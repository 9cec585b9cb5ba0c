//! Writing a stream key (RDB type 19, `RDB_TYPE_STREAM_LISTPACKS_2`) as `rdbSaveObject` of Redis
//! 7.0.15 does, piece by piece in file order, so a caller can stream a large stream from its own
//! structure without building a [`Stream`] first:
//!
//! ```text
//! [expiry] 19 <key>
//! <n nodes> n x ( <string: 16-byte master ID, big-endian> <string: node listpack> )
//! <length> <last ms> <last seq> <first ms> <first seq> <max deleted ms> <max deleted seq>
//! <entries added> <n groups>
//! group:    <string name> <last ms> <last seq> <entries read (-1 as u64)>
//!           <n pel> n x ( <16-byte ID, big-endian> <u64 LE delivery time> <delivery count> )
//!           <n consumers>
//! consumer: <string name> <u64 LE seen time> <n pel> n x <16-byte ID, big-endian>
//! ```
//! Strings go through `rdbSaveRawString` (integer encoding when short and numeric, LZF when
//! longer than 20 bytes and compressible), exactly like every other string of the file.
//!
//! Call order: [`RdbWriter::stream_begin`], one [`RdbWriter::stream_node`] per node,
//! [`RdbWriter::stream_meta`], then per group [`RdbWriter::stream_group`] followed by one
//! [`RdbWriter::stream_consumer`] per consumer. [`RdbWriter::write_stream`] does it all for a
//! [`Stream`].

use std::io::Write;

use super::RdbWriter;
use crate::constants::TYPE_STREAM_LISTPACKS_2;
use crate::error::Result;
use crate::stream::{Node, Stream, StreamId};

/// The metadata of a stream that follows its nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamMeta {
    /// Live entries.
    pub length: u64,
    /// Last ID.
    pub last_id: StreamId,
    /// First live ID.
    pub first_id: StreamId,
    /// Largest deleted ID.
    pub max_deleted_id: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// Number of consumer groups that follow.
    pub groups: u64,
}

impl<W: Write> RdbWriter<W> {
    /// Start a stream key with `nodes` listpack nodes.
    pub fn stream_begin(
        &mut self,
        key: &[u8],
        expire_at_ms: Option<i64>,
        nodes: u64,
    ) -> Result<()> {
        self.guard(|me| {
            me.header(TYPE_STREAM_LISTPACKS_2, key, expire_at_ms)?;
            me.sink.put_len(nodes)
        })
    }

    /// One node: its master ID and its listpack.
    pub fn stream_node(&mut self, node: &Node) -> Result<()> {
        self.guard(|me| {
            let mut lp = std::mem::take(&mut me.lp);
            let r = node.encode(&mut lp).map(<[u8]>::to_vec);
            lp.clear();
            me.lp = lp;
            let bytes = r?;
            me.put_string(&node.master().to_be_bytes())?;
            me.put_string(&bytes)
        })
    }

    /// The stream's metadata and its number of groups.
    pub fn stream_meta(&mut self, m: &StreamMeta) -> Result<()> {
        self.guard(|me| {
            for v in [
                m.length,
                m.last_id.ms,
                m.last_id.seq,
                m.first_id.ms,
                m.first_id.seq,
                m.max_deleted_id.ms,
                m.max_deleted_id.seq,
                m.entries_added,
                m.groups,
            ] {
                me.sink.put_len(v)?;
            }
            Ok(())
        })
    }

    /// One consumer group, its PEL (ascending IDs: id, delivery time, delivery count) and its
    /// number of consumers.
    pub fn stream_group<I>(
        &mut self,
        name: &[u8],
        last_id: StreamId,
        entries_read: i64,
        pel: I,
        consumers: u64,
    ) -> Result<()>
    where
        I: ExactSizeIterator<Item = (StreamId, i64, u64)>,
    {
        self.guard(|me| {
            me.put_string(name)?;
            me.sink.put_len(last_id.ms)?;
            me.sink.put_len(last_id.seq)?;
            me.sink.put_len(entries_read as u64)?;
            me.sink.put_len(pel.len() as u64)?;
            for (id, time, count) in pel {
                me.sink.put(&id.to_be_bytes())?;
                me.sink.put(&time.to_le_bytes())?;
                me.sink.put_len(count)?;
            }
            me.sink.put_len(consumers)
        })
    }

    /// One consumer of the group written last: name, seen time and its pending IDs (ascending).
    pub fn stream_consumer<I>(&mut self, name: &[u8], seen_time: i64, pel: I) -> Result<()>
    where
        I: ExactSizeIterator<Item = StreamId>,
    {
        self.guard(|me| {
            me.put_string(name)?;
            me.sink.put(&seen_time.to_le_bytes())?;
            me.sink.put_len(pel.len() as u64)?;
            for id in pel {
                me.sink.put(&id.to_be_bytes())?;
            }
            Ok(())
        })
    }

    /// A whole stream key from the model.
    pub fn write_stream(
        &mut self,
        key: &[u8],
        s: &Stream,
        expire_at_ms: Option<i64>,
    ) -> Result<()> {
        self.stream_begin(key, expire_at_ms, s.nodes.len() as u64)?;
        for n in &s.nodes {
            self.stream_node(n)?;
        }
        self.stream_meta(&StreamMeta {
            length: s.length,
            last_id: s.last_id,
            first_id: s.first_id,
            max_deleted_id: s.max_deleted_id,
            entries_added: s.entries_added,
            groups: s.groups.len() as u64,
        })?;
        for g in &s.groups {
            self.stream_group(
                &g.name,
                g.last_id,
                g.entries_read,
                g.pending
                    .iter()
                    .map(|p| (p.id, p.delivery_time, p.delivery_count)),
                g.consumers.len() as u64,
            )?;
            for c in &g.consumers {
                self.stream_consumer(&c.name, c.seen_time, c.pending.iter().copied())?;
            }
        }
        Ok(())
    }
}
