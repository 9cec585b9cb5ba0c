//! Publish/subscribe: channel and pattern subscriptions, fan-out to client tasks.
//!
//! Problem: PUBLISH runs on whichever worker thread serves the publisher, while each subscriber's
//! socket belongs to its own connection task. The registry maps channels and patterns to the
//! subscribers' event queues (unbounded tokio channels: a publisher never waits for a slow
//! reader); each connection encodes its messages in its own protocol (RESP2 arrays or RESP3
//! pushes), as Redis's `addReplyPubsubMessage`. Delivery order per subscriber is the order of the
//! PUBLISH calls that reached the registry lock (one lock: a subscriber sees two publishers'
//! messages in one order).
//!
//! Sharded channels (SSUBSCRIBE, SPUBLISH) are a separate namespace, as in Redis 7.0 without
//! cluster mode: their own subscribers, no patterns, `smessage` pushes.
//!
//! Keyspace notifications (`notify-keyspace-events`) reach subscribers through
//! [`KeyspaceEvents`], the keyspace's event sink: it is called with the writing command's shard
//! locks held and publishes each event's channels like PUBLISH (Redis's `notifyKeyspaceEvent`).
//!
//! Lock order: the registry lock is a leaf (no shard lock, no other server lock is taken inside).
//! [`KeyspaceEvents`] runs under shard locks and takes `Shared::opts` (a leaf, held only to copy
//! a field) and then the registry lock: shard locks → opts → registry.

use std::collections::{BTreeMap, HashMap};

use std::time::Instant;

use forkless::config::BufferLimit;
use forkless_keyspace::glob;
use forkless_keyspace::notify::{EventSink, Flags, KeyEvent};
use forkless_sync::atomic::Ordering;
use forkless_sync::{Arc, Mutex, Weak};

use crate::state::{ClientEntry, Event, Shared};

/// The keyspace's event sink: publishes keyspace notifications to the server's subscribers.
/// Holds the server weakly (the keyspace, owned by the server, holds the sink).
pub struct KeyspaceEvents(pub Weak<Shared>);

impl EventSink for KeyspaceEvents {
    fn events(&self, flags: Flags, events: &[KeyEvent]) {
        let Some(shared) = self.0.upgrade() else {
            return;
        };
        let limit = shared.opts.lock().pubsub_limit;
        for e in events {
            for (channel, message) in e.messages(flags) {
                shared.pubsub.publish(&channel, &message, &limit);
            }
            // CLIENT TRACKING: expiry and eviction change keys no client wrote.
            if e.class == Flags::EXPIRED || e.class == Flags::EVICTED {
                shared.tracking.invalidate(&e.key, None);
            }
        }
    }
}

type Subscribers = BTreeMap<u64, Arc<ClientEntry>>;

#[derive(Default)]
struct Registry {
    channels: HashMap<Vec<u8>, Subscribers>,
    patterns: HashMap<Vec<u8>, Subscribers>,
    shard: HashMap<Vec<u8>, Subscribers>,
}

/// Queue `ev` (of `size` bytes) for `c`, closing `c` when its queue passes the pubsub class of
/// `client-output-buffer-limit` (hard at once, soft after `soft_seconds`), as Redis's
/// `checkClientOutputBufferLimits`. True when queued.
fn deliver(c: &ClientEntry, ev: Event, size: u64, limit: &BufferLimit) -> bool {
    let queued = c.queued.fetch_add(size, Ordering::Relaxed) + size;
    let over_hard = limit.hard != 0 && queued > limit.hard;
    let over_soft = limit.soft != 0 && queued > limit.soft && {
        let mut since = c.over_soft_since.lock();
        let t = *since.get_or_insert_with(Instant::now);
        t.elapsed().as_secs() >= limit.soft_seconds
    };
    if limit.soft != 0 && queued <= limit.soft {
        *c.over_soft_since.lock() = None;
    }
    if over_hard || over_soft {
        crate::log::warn(&format!(
            "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
            c.id, c.addr
        ));
        c.kill();
        return false;
    }
    c.tx.send(ev).is_ok()
}

/// The server's subscriptions.
#[derive(Default)]
pub struct PubSub {
    reg: Mutex<Registry>,
}

impl PubSub {
    /// Subscribe `client` to `channel` (idempotent). True when newly subscribed.
    pub fn subscribe(&self, client: &Arc<ClientEntry>, channel: &[u8], pattern: bool) -> bool {
        let mut r = self.reg.lock();
        let map = if pattern {
            &mut r.patterns
        } else {
            &mut r.channels
        };
        map.entry(channel.to_vec())
            .or_default()
            .insert(client.id, client.clone())
            .is_none()
    }

    /// Subscribe `client` to the shard channel `channel` (idempotent). True when newly
    /// subscribed.
    pub fn subscribe_shard(&self, client: &Arc<ClientEntry>, channel: &[u8]) -> bool {
        self.reg
            .lock()
            .shard
            .entry(channel.to_vec())
            .or_default()
            .insert(client.id, client.clone())
            .is_none()
    }

    /// Unsubscribe client `id` from the shard channel `channel`. True when it was subscribed.
    pub fn unsubscribe_shard(&self, id: u64, channel: &[u8]) -> bool {
        let mut r = self.reg.lock();
        let Some(subs) = r.shard.get_mut(channel) else {
            return false;
        };
        let was = subs.remove(&id).is_some();
        if subs.is_empty() {
            r.shard.remove(channel);
        }
        was
    }

    /// SPUBLISH: deliver `message` to the subscribers of the shard channel `channel` as
    /// `smessage`; returns how many it reached.
    pub fn publish_shard(&self, channel: &[u8], message: &[u8], limit: &BufferLimit) -> i64 {
        let r = self.reg.lock();
        let mut n = 0;
        let size = (channel.len() + message.len() + 32) as u64;
        if let Some(subs) = r.shard.get(channel) {
            for c in subs.values() {
                let ev = Event::ShardMessage {
                    channel: channel.to_vec(),
                    message: message.to_vec(),
                };
                if deliver(c, ev, size, limit) {
                    n += 1;
                }
            }
        }
        n
    }

    /// PUBSUB SHARDCHANNELS [pattern]: active shard channels.
    pub fn shard_channels(&self, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let r = self.reg.lock();
        let mut v: Vec<Vec<u8>> = r
            .shard
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob::matches(p, c, false)))
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// PUBSUB SHARDNUMSUB: subscribers of the shard channel `channel`.
    pub fn shard_numsub(&self, channel: &[u8]) -> i64 {
        self.reg
            .lock()
            .shard
            .get(channel)
            .map_or(0, |s| s.len() as i64)
    }

    /// The subscriptions of the clients `ids`: (client, channel or pattern, is a pattern);
    /// shard channels are listed as channels (ACLs check them alike).
    pub fn subscriptions_of(&self, ids: &[u64]) -> Vec<(u64, Vec<u8>, bool)> {
        let r = self.reg.lock();
        let mut out = Vec::new();
        for (map, pattern) in [(&r.channels, false), (&r.patterns, true), (&r.shard, false)] {
            for (ch, subs) in map {
                for id in ids {
                    if subs.contains_key(id) {
                        out.push((*id, ch.clone(), pattern));
                    }
                }
            }
        }
        out
    }

    /// Unsubscribe client `id` from `channel`. True when it was subscribed.
    pub fn unsubscribe(&self, id: u64, channel: &[u8], pattern: bool) -> bool {
        let mut r = self.reg.lock();
        let map = if pattern {
            &mut r.patterns
        } else {
            &mut r.channels
        };
        let Some(subs) = map.get_mut(channel) else {
            return false;
        };
        let was = subs.remove(&id).is_some();
        if subs.is_empty() {
            map.remove(channel);
        }
        was
    }

    /// Deliver `message` to every subscriber of `channel` and of a matching pattern; returns how
    /// many receivers it reached (Redis counts a client once per matching subscription).
    pub fn publish(&self, channel: &[u8], message: &[u8], limit: &BufferLimit) -> i64 {
        let r = self.reg.lock();
        let mut n = 0;
        let size = (channel.len() + message.len() + 32) as u64;
        if let Some(subs) = r.channels.get(channel) {
            for c in subs.values() {
                let ev = Event::Message {
                    pattern: None,
                    channel: channel.to_vec(),
                    message: message.to_vec(),
                };
                if deliver(c, ev, size, limit) {
                    n += 1;
                }
            }
        }
        for (pat, subs) in &r.patterns {
            if !glob::matches(pat, channel, false) {
                continue;
            }
            for c in subs.values() {
                let ev = Event::Message {
                    pattern: Some(pat.clone()),
                    channel: channel.to_vec(),
                    message: message.to_vec(),
                };
                if deliver(c, ev, size + pat.len() as u64, limit) {
                    n += 1;
                }
            }
        }
        n
    }

    /// PUBSUB CHANNELS [pattern]: active channels.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let r = self.reg.lock();
        let mut v: Vec<Vec<u8>> = r
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob::matches(p, c, false)))
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// PUBSUB NUMSUB: subscribers of `channel`.
    pub fn numsub(&self, channel: &[u8]) -> i64 {
        self.reg
            .lock()
            .channels
            .get(channel)
            .map_or(0, |s| s.len() as i64)
    }

    /// PUBSUB NUMPAT: number of patterns with at least one subscriber.
    pub fn numpat(&self) -> i64 {
        self.reg.lock().patterns.len() as i64
    }
}
