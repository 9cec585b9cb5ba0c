//! Keyspace notifications: the events commands raise on the keys they change, as Redis's
//! `notifyKeyspaceEvent` (`notify.c`), for `notify-keyspace-events`.
//!
//! Problem: a subscriber of `__keyspace@0__:foo` must see `set`, `expire`, `del`, `expired`...
//! exactly as a redis-server 7.0 subscriber does, in the order the changes happened, while the
//! keyspace knows nothing of channels or clients and must pay nothing when notifications are
//! off (the default).
//!
//! How:
//! - [`Flags`] is Redis's class mask (`NOTIFY_*` of `server.h`, same bits), parsed from and
//!   printed to the configuration string as `keyspaceEventsStringToFlags` /
//!   `keyspaceEventsFlagsToString` do.
//! - The keyspace holds the mask in an atomic ([`crate::Keyspace::set_notify_flags`]), beside
//!   the classes its sink wants anyway ([`crate::Keyspace::set_internal_events`]: the server's
//!   CLIENT TRACKING needs `expired` and `evicted`). A command's [`Ctx`](crate::Ctx) reads them
//!   once; [`Ctx::event`](crate::Ctx::event) drops an event whose class is off (one branch, no
//!   allocation) and otherwise records a [`KeyEvent`]; the sink publishes only what the
//!   configured flags ask for ([`KeyEvent::messages`]).
//! - Events raised by the dispatcher itself: `new` when a command adds a key (Redis's `dbAdd`),
//!   `del` when a write left an aggregate empty and the dispatcher removed it, `expired` for a
//!   lazy or active expiry, `evicted` for an eviction, `keymiss` for a read-only lookup that
//!   found nothing.
//! - The recorded events go to the [`EventSink`] after the command's propagated commands, with
//!   the command's shard locks still held: two commands on one key deliver their events in the
//!   order they ran.
//!
//! Lock order: the sink is called under shard locks, so it must take only leaf locks (the
//! server's pub/sub registry is one) and never a shard lock.

use std::fmt;

/// A set of event classes (Redis's `NOTIFY_*` bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u32);

impl Flags {
    /// `K`: publish `__keyspace@<db>__:<key>` with the event as message.
    pub const KEYSPACE: Flags = Flags(1 << 0);
    /// `E`: publish `__keyevent@<db>__:<event>` with the key as message.
    pub const KEYEVENT: Flags = Flags(1 << 1);
    /// `g`: generic commands (DEL, EXPIRE, RENAME...).
    pub const GENERIC: Flags = Flags(1 << 2);
    /// `$`: string commands.
    pub const STRING: Flags = Flags(1 << 3);
    /// `l`: list commands.
    pub const LIST: Flags = Flags(1 << 4);
    /// `s`: set commands.
    pub const SET: Flags = Flags(1 << 5);
    /// `h`: hash commands.
    pub const HASH: Flags = Flags(1 << 6);
    /// `z`: sorted set commands.
    pub const ZSET: Flags = Flags(1 << 7);
    /// `x`: a key expired.
    pub const EXPIRED: Flags = Flags(1 << 8);
    /// `e`: a key was evicted.
    pub const EVICTED: Flags = Flags(1 << 9);
    /// `t`: stream commands.
    pub const STREAM: Flags = Flags(1 << 10);
    /// `m`: a read found no key (not part of `A`).
    pub const KEY_MISS: Flags = Flags(1 << 11);
    /// `d`: module events (accepted; forkless has no modules).
    pub const MODULE: Flags = Flags(1 << 13);
    /// `n`: a key was created (not part of `A`).
    pub const NEW: Flags = Flags(1 << 14);
    /// `A`: `g$lshzxetd`.
    pub const ALL: Flags = Flags(
        Self::GENERIC.0
            | Self::STRING.0
            | Self::LIST.0
            | Self::SET.0
            | Self::HASH.0
            | Self::ZSET.0
            | Self::EXPIRED.0
            | Self::EVICTED.0
            | Self::STREAM.0
            | Self::MODULE.0,
    );

    /// True when any class of `other` is in `self`.
    pub fn any(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// True when an event of `class` is published under these flags: its class is on and at
    /// least one of `K` / `E` is.
    pub fn publishes(self, class: Flags) -> bool {
        self.any(class) && self.any(Flags(Self::KEYSPACE.0 | Self::KEYEVENT.0))
    }

    /// Parse the configuration string (`notify-keyspace-events`), as
    /// `keyspaceEventsStringToFlags`: every character a class, any order, repeats allowed.
    pub fn parse(s: &str) -> Result<Flags, String> {
        let mut f = 0;
        for c in s.chars() {
            f |= match c {
                'A' => Self::ALL.0,
                'g' => Self::GENERIC.0,
                '$' => Self::STRING.0,
                'l' => Self::LIST.0,
                's' => Self::SET.0,
                'h' => Self::HASH.0,
                'z' => Self::ZSET.0,
                'x' => Self::EXPIRED.0,
                'e' => Self::EVICTED.0,
                'K' => Self::KEYSPACE.0,
                'E' => Self::KEYEVENT.0,
                't' => Self::STREAM.0,
                'm' => Self::KEY_MISS.0,
                'd' => Self::MODULE.0,
                'n' => Self::NEW.0,
                other => {
                    return Err(format!(
                        "Invalid event class character '{other}'. Use 'Ag$lshzxeKEtmdn'."
                    ))
                }
            };
        }
        Ok(Flags(f))
    }
}

impl fmt::Display for Flags {
    /// The canonical string, as `keyspaceEventsFlagsToString` (what CONFIG GET answers).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        if self.0 & Self::ALL.0 == Self::ALL.0 {
            s.push('A');
        } else {
            for (flag, c) in [
                (Self::GENERIC, 'g'),
                (Self::STRING, '$'),
                (Self::LIST, 'l'),
                (Self::SET, 's'),
                (Self::HASH, 'h'),
                (Self::ZSET, 'z'),
                (Self::EXPIRED, 'x'),
                (Self::EVICTED, 'e'),
                (Self::STREAM, 't'),
                (Self::MODULE, 'd'),
                (Self::NEW, 'n'),
            ] {
                if self.any(flag) {
                    s.push(c);
                }
            }
        }
        for (flag, c) in [
            (Self::KEYSPACE, 'K'),
            (Self::KEYEVENT, 'E'),
            (Self::KEY_MISS, 'm'),
        ] {
            if self.any(flag) {
                s.push(c);
            }
        }
        f.write_str(&s)
    }
}

/// One event: `event` happened to `key` in database `db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    /// The database.
    pub db: u32,
    /// The event's class (one bit of [`Flags`]).
    pub class: Flags,
    /// Redis's event name (`set`, `lpush`, `expired`...).
    pub event: &'static str,
    /// The key.
    pub key: Vec<u8>,
}

impl KeyEvent {
    /// The `(channel, message)` pairs Redis publishes for this event under `flags`, in its order
    /// (keyspace channel first, then keyevent channel).
    pub fn messages(&self, flags: Flags) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::with_capacity(2);
        if !flags.publishes(self.class) {
            return out;
        }
        if flags.any(Flags::KEYSPACE) {
            let mut ch = format!("__keyspace@{}__:", self.db).into_bytes();
            ch.extend_from_slice(&self.key);
            out.push((ch, self.event.as_bytes().to_vec()));
        }
        if flags.any(Flags::KEYEVENT) {
            let ch = format!("__keyevent@{}__:{}", self.db, self.event).into_bytes();
            out.push((ch, self.key.clone()));
        }
        out
    }
}

/// Where a keyspace's events go (the server publishes them; an embedder may subscribe).
/// Called with the raising command's shard locks held: take only leaf locks.
pub trait EventSink: Send + Sync {
    /// Events of one command (or one expiry / eviction), in the order they happened, with the
    /// `notify-keyspace-events` classes in force (which channels: [`KeyEvent::messages`]).
    fn events(&self, flags: Flags, events: &[KeyEvent]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_as_redis_prints_them() {
        // Expected strings: Redis's tests/unit/pubsub.tcl ("test CONFIG GET/SET of event flags").
        for (input, printed) in [
            ("gKE", "gKE"),
            ("$lshzxeKE", "$lshzxeKE"),
            ("KA", "AK"),
            ("EA", "AE"),
            ("", ""),
            ("Am", "Am"),
            ("nE", "nE"),
        ] {
            assert_eq!(Flags::parse(input).unwrap().to_string(), printed, "{input}");
        }
        assert!(Flags::parse("Kq").unwrap_err().contains("'q'"));
    }

    #[test]
    fn messages_follow_the_key_and_event_flags() {
        let ev = KeyEvent {
            db: 3,
            class: Flags::LIST,
            event: "lpush",
            key: b"k".to_vec(),
        };
        let kel = Flags::parse("KEl").unwrap();
        assert_eq!(
            ev.messages(kel),
            vec![
                (b"__keyspace@3__:k".to_vec(), b"lpush".to_vec()),
                (b"__keyevent@3__:lpush".to_vec(), b"k".to_vec()),
            ]
        );
        assert!(ev.messages(Flags::parse("KEg").unwrap()).is_empty());
        assert!(ev.messages(Flags::parse("l").unwrap()).is_empty());
    }
}
