//! CLIENT TRACKING: server-assisted client-side caching, as Redis 7.0's `tracking.c`.
//!
//! Problem: a client caching values must hear when any of them changes, from any writer, and
//! the server must not pay for it while nobody tracks.
//!
//! How:
//! - Default mode: after a read-only data command of a tracking client, its keys go into the
//!   table `key → client ids` (with OPTIN only when the command follows `CLIENT CACHING yes`;
//!   with OPTOUT unless it follows `CLIENT CACHING no`). Key names only, as Redis: the
//!   database is not part of the entry.
//! - BCAST mode: the client names prefixes (none: every key) and hears about every key under
//!   them, without reading first.
//! - A write (the writer's declared keys after the command, `Shared::after_write`), a lazy or
//!   active expiry and an eviction (the keyspace's `expired` / `evicted` events) invalidate the
//!   key: each interested client is sent `invalidate [key]` and leaves the table for that key
//!   (it must read again to hear again). NOLOOP: not for the client's own writes. FLUSHDB /
//!   FLUSHALL send `invalidate` with a null to every tracking client and empty the table.
//! - Delivery: to the client itself (RESP3 push) or to its REDIRECT client, which gets a push
//!   in RESP3 or, in RESP2, a pub/sub `message` on `__redis__:invalidate` when it subscribed
//!   there (the connection encodes it: [`Event::Invalidate`]). A redirect to a client that
//!   is gone is reported to a RESP3 client as `tracking-redir-broken`.
//! - Unlike Redis, BCAST invalidations are sent per key as they happen, not batched per prefix
//!   before the event loop sleeps; each message is still an array of keys.
//!
//! Lock order: the registry lock is a leaf. It is taken under shard locks (the keyspace's
//! expiry and eviction events) and after commands; only queue sends happen inside.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use forkless_sync::atomic::{AtomicUsize, Ordering};
use forkless_sync::{Arc, Mutex};

use crate::state::{ClientEntry, Event};

/// One tracking client's options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// REDIRECT id (0: none).
    pub redirect: u64,
    /// BCAST mode.
    pub bcast: bool,
    /// OPTIN mode.
    pub optin: bool,
    /// OPTOUT mode.
    pub optout: bool,
    /// NOLOOP: not about the client's own writes.
    pub noloop: bool,
    /// BCAST prefixes (none: every key).
    pub prefixes: Vec<Vec<u8>>,
}

struct Tracked {
    entry: Arc<ClientEntry>,
    opts: Options,
    /// The REDIRECT client, found when tracking was enabled (a send to it fails once it is
    /// gone: the redirect is then broken).
    redirect_to: Option<Arc<ClientEntry>>,
    /// `CLIENT CACHING yes|no` for the next command.
    caching: Option<bool>,
    /// The redirect target was found gone.
    broken: bool,
}

#[derive(Default)]
struct Inner {
    clients: BTreeMap<u64, Tracked>,
    /// Default mode: key → ids of the clients that read it.
    keys: HashMap<Vec<u8>, BTreeSet<u64>>,
    /// BCAST mode: prefix → ids.
    prefixes: BTreeMap<Vec<u8>, BTreeSet<u64>>,
}

/// The tracking registry.
#[derive(Default)]
pub struct Tracking {
    inner: Mutex<Inner>,
    count: AtomicUsize,
}

impl Tracking {
    /// True when some client tracks (one atomic load).
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// CLIENT TRACKING ON: (re)configure `client`. Errors as Redis's `clientCommand`.
    pub fn enable(
        &self,
        client: &Arc<ClientEntry>,
        opts: Options,
        lookup: impl Fn(u64) -> Option<Arc<ClientEntry>>,
    ) -> Result<(), String> {
        let redirect_to = (opts.redirect != 0 && opts.redirect != client.id)
            .then(|| lookup(opts.redirect))
            .flatten();
        let mut g = self.inner.lock();
        if let Some(old) = g.clients.get(&client.id) {
            let o = &old.opts;
            if o.bcast != opts.bcast {
                return Err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".into());
            }
            if (o.optin && opts.optout) || (o.optout && opts.optin) {
                return Err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".into());
            }
        }
        if opts.optin && opts.optout {
            return Err("ERR You can't use both OPTIN and OPTOUT".into());
        }
        if !opts.prefixes.is_empty() && !opts.bcast {
            return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
        }
        if opts.bcast && (opts.optin || opts.optout) {
            return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
        }
        if opts.redirect != 0 {
            if opts.redirect == client.id {
                return Err("ERR A client can only redirect to a different client".into());
            }
            if redirect_to.is_none() {
                return Err("ERR The client ID you want redirect to does not exist".into());
            }
        }
        // Overlapping prefixes of one client are refused (Redis's checkPrefixCollisionsOrReply).
        let mut all: Vec<&Vec<u8>> = opts.prefixes.iter().collect();
        if let Some(old) = g.clients.get(&client.id) {
            all.extend(old.opts.prefixes.iter());
        }
        for (i, a) in opts.prefixes.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                if i != j && *b != a && (a.starts_with(b) || b.starts_with(a)) {
                    return Err(format!(
                        "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                        String::from_utf8_lossy(a),
                        String::from_utf8_lossy(b)
                    ));
                }
            }
        }
        let id = client.id;
        let mut opts = opts;
        if opts.bcast && opts.prefixes.is_empty() {
            let had = g
                .clients
                .get(&id)
                .is_some_and(|t| !t.opts.prefixes.is_empty());
            if !had {
                opts.prefixes.push(Vec::new());
            }
        }
        for p in &opts.prefixes {
            g.prefixes.entry(p.clone()).or_default().insert(id);
        }
        let t = g.clients.entry(id).or_insert_with(|| Tracked {
            entry: client.clone(),
            opts: Options::default(),
            redirect_to: None,
            caching: None,
            broken: false,
        });
        t.redirect_to = redirect_to;
        let mut prefixes = std::mem::take(&mut t.opts.prefixes);
        for p in &opts.prefixes {
            if !prefixes.contains(p) {
                prefixes.push(p.clone());
            }
        }
        t.opts = Options { prefixes, ..opts };
        t.broken = false;
        self.count.store(g.clients.len(), Ordering::Release);
        Ok(())
    }

    /// CLIENT TRACKING OFF (also RESET and disconnect).
    pub fn disable(&self, id: u64) {
        let mut g = self.inner.lock();
        if let Some(t) = g.clients.remove(&id) {
            for p in &t.opts.prefixes {
                if let Some(s) = g.prefixes.get_mut(p) {
                    s.remove(&id);
                    if s.is_empty() {
                        g.prefixes.remove(p);
                    }
                }
            }
            // Default-mode entries are left to be dropped lazily (as Redis): an entry naming
            // a client that no longer tracks is skipped when the key is invalidated.
        }
        self.count.store(g.clients.len(), Ordering::Release);
    }

    /// `(options, caching flag, redirect broken)` of client `id`, if it tracks.
    pub fn info(&self, id: u64) -> Option<(Options, Option<bool>, bool)> {
        let g = self.inner.lock();
        g.clients
            .get(&id)
            .map(|t| (t.opts.clone(), t.caching, t.broken))
    }

    /// CLIENT CACHING yes|no.
    pub fn set_caching(&self, id: u64, yes: bool) -> Result<(), &'static str> {
        let mut g = self.inner.lock();
        let Some(t) = g.clients.get_mut(&id) else {
            return Err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
        };
        match (t.opts.optin, t.opts.optout, yes) {
            (true, _, true) | (_, true, false) => {
                t.caching = Some(yes);
                Ok(())
            }
            (true, _, false) => Err("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."),
            (_, true, true) => Err("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."),
            _ => Err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"),
        }
    }

    /// After a command of client `id` (`name`, lowercase): remember the keys of a read-only
    /// command in default mode, and consume a `CLIENT CACHING` given before it.
    pub fn after_command(&self, id: u64, name: &str, read_keys: Option<&[&[u8]]>) {
        if !self.active() {
            return;
        }
        let mut g = self.inner.lock();
        let Some(t) = g.clients.get_mut(&id) else {
            return;
        };
        if name == "client" {
            // CLIENT CACHING applies to the command after it.
            return;
        }
        let caching = t.caching.take();
        let remember = !t.opts.bcast
            && (!t.opts.optin || caching == Some(true))
            && (!t.opts.optout || caching != Some(false));
        if let (true, Some(keys)) = (remember, read_keys) {
            for k in keys {
                g.keys.entry(k.to_vec()).or_default().insert(id);
            }
        }
    }

    /// `key` changed (written by client `by`, if a client wrote it): tell every client that
    /// read it or whose BCAST prefix covers it.
    pub fn invalidate(&self, key: &[u8], by: Option<u64>) {
        if !self.active() {
            return;
        }
        let mut g = self.inner.lock();
        let mut to: BTreeSet<u64> = g.keys.remove(key).unwrap_or_default();
        for (p, ids) in g.prefixes.iter() {
            if key.starts_with(p) {
                to.extend(ids.iter().copied());
            }
        }
        let targets: Vec<u64> = to.into_iter().collect();
        for id in targets {
            let Some(t) = g.clients.get_mut(&id) else {
                continue;
            };
            if t.opts.noloop && by == Some(id) {
                continue;
            }
            send(t, Some(vec![key.to_vec()]));
        }
    }

    /// FLUSHDB / FLUSHALL: every tracking client is told that all keys changed.
    pub fn invalidate_all(&self) {
        if !self.active() {
            return;
        }
        let mut g = self.inner.lock();
        g.keys.clear();
        for t in g.clients.values_mut() {
            send(t, None);
        }
    }
}

/// Queue an invalidation (`None`: all keys) for tracking client `t`, to its redirect target if
/// it has one.
fn send(t: &mut Tracked, keys: Option<Vec<Vec<u8>>>) {
    if t.opts.redirect == 0 {
        let _ = t.entry.tx.send(Event::Invalidate {
            keys,
            redirected: false,
        });
        return;
    }
    let delivered = t.redirect_to.as_ref().is_some_and(|c| {
        c.tx.send(Event::Invalidate {
            keys,
            redirected: true,
        })
        .is_ok()
    });
    if !delivered {
        t.broken = true;
        let _ = t.entry.tx.send(Event::RedirectBroken(t.opts.redirect));
    }
}

/// Parse `CLIENT TRACKING on|off [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP]`
/// (the words after TRACKING): `Some(options)` for ON, `None` for OFF.
pub fn parse(args: &[Vec<u8>]) -> Result<Option<Options>, String> {
    let on = match args.first().map(|a| a.to_ascii_lowercase()) {
        Some(a) if a == b"on" => true,
        Some(a) if a == b"off" => false,
        _ => return Err("ERR syntax error".into()),
    };
    let mut o = Options::default();
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_ascii_lowercase();
        let more = i + 1 < args.len();
        match a.as_slice() {
            b"redirect" if more => {
                if o.redirect != 0 {
                    return Err("ERR A client can only redirect to a single other client".into());
                }
                o.redirect = forkless_keyspace::convert::parse_i64(&args[i + 1])
                    .filter(|&n| n > 0)
                    .ok_or("ERR value is not an integer or out of range")?
                    as u64;
                i += 1;
            }
            b"bcast" => o.bcast = true,
            b"optin" => o.optin = true,
            b"optout" => o.optout = true,
            b"noloop" => o.noloop = true,
            b"prefix" if more => {
                o.prefixes.push(args[i + 1].clone());
                i += 1;
            }
            _ => return Err("ERR syntax error".into()),
        }
        i += 1;
    }
    Ok(on.then_some(o))
}
