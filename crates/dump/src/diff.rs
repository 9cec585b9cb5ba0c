//! Human-readable differences between two keyspaces, for test failure messages.
//!
//! Both sides are canonicalized copies, walked in key order like a merge; each difference is one
//! line naming the database and key, then what differs (type, expiry, the first differing list
//! index, members or fields present on one side only, differing scores or values). The list is
//! cut at [`MAX_DIFF_LINES`] with a final line counting what was left out.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use forkless_rdb::model::{canonicalize, Entry, Value};

use crate::show_bytes;

/// Most lines [`diff`] returns before its "... more" line.
pub const MAX_DIFF_LINES: usize = 20;

/// Differences between `a` (left) and `b` (right); empty exactly when they hold the same
/// keyspace (scores compare as numbers, so `-0.0` equals `0.0`).
pub fn diff(a: &[Entry], b: &[Entry]) -> Vec<String> {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    canonicalize(&mut a);
    canonicalize(&mut b);
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let ord = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.db.cmp(&y.db).then_with(|| x.key.cmp(&y.key)),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match ord {
            Ordering::Less => {
                out.push(format!(
                    "{}: only on the left ({})",
                    name(&a[i]),
                    a[i].value.type_name()
                ));
                i += 1;
            }
            Ordering::Greater => {
                out.push(format!(
                    "{}: only on the right ({})",
                    name(&b[j]),
                    b[j].value.type_name()
                ));
                j += 1;
            }
            Ordering::Equal => {
                entry_diff(&a[i], &b[j], &mut out);
                i += 1;
                j += 1;
            }
        }
    }
    if out.len() > MAX_DIFF_LINES {
        let more = out.len() - MAX_DIFF_LINES;
        out.truncate(MAX_DIFF_LINES);
        out.push(format!("... and {more} more differences"));
    }
    out
}

fn name(e: &Entry) -> String {
    format!("db {} key {}", e.db, show_bytes(&e.key))
}

fn entry_diff(x: &Entry, y: &Entry, out: &mut Vec<String>) {
    let n = name(x);
    if x.expire_at_ms != y.expire_at_ms {
        out.push(format!(
            "{n}: expire_at_ms {:?} vs {:?}",
            x.expire_at_ms, y.expire_at_ms
        ));
    }
    match (&x.value, &y.value) {
        (Value::String(p), Value::String(q)) => {
            if p != q {
                out.push(format!("{n}: string {} vs {}", short(p), short(q)));
            }
        }
        (Value::List(p), Value::List(q)) => {
            if let Some(k) = (0..p.len().max(q.len())).find(|&k| p.get(k) != q.get(k)) {
                let show = |v: Option<&Vec<u8>>| v.map_or("(none)".to_string(), |b| short(b));
                out.push(format!(
                    "{n}: list lengths {} vs {}, first difference at index {k}: {} vs {}",
                    p.len(),
                    q.len(),
                    show(p.get(k)),
                    show(q.get(k))
                ));
            }
        }
        (Value::Set(p), Value::Set(q)) => {
            let p: BTreeMap<&[u8], ()> = p.iter().map(|m| (m.as_slice(), ())).collect();
            let q: BTreeMap<&[u8], ()> = q.iter().map(|m| (m.as_slice(), ())).collect();
            map_diff(&n, "member", &p, &q, out);
        }
        (Value::Hash(p), Value::Hash(q)) => {
            let p: BTreeMap<&[u8], &[u8]> = p
                .iter()
                .map(|(f, v)| (f.as_slice(), v.as_slice()))
                .collect();
            let q: BTreeMap<&[u8], &[u8]> = q
                .iter()
                .map(|(f, v)| (f.as_slice(), v.as_slice()))
                .collect();
            map_diff(&n, "field", &p, &q, out);
        }
        (Value::ZSet(p), Value::ZSet(q)) => {
            let p: BTreeMap<&[u8], Score> =
                p.iter().map(|(m, s)| (m.as_slice(), Score(*s))).collect();
            let q: BTreeMap<&[u8], Score> =
                q.iter().map(|(m, s)| (m.as_slice(), Score(*s))).collect();
            map_diff(&n, "member", &p, &q, out);
        }
        (Value::Stream(p), Value::Stream(q)) => {
            let pe: Vec<_> = p.live_entries().collect();
            let qe: Vec<_> = q.live_entries().collect();
            if pe.len() != qe.len() {
                out.push(format!("{n}: stream lengths {} vs {}", pe.len(), qe.len()));
            } else if let Some(k) = (0..pe.len()).find(|&k| pe[k] != qe[k]) {
                out.push(format!(
                    "{n}: stream entries differ first at {} vs {}",
                    pe[k].0, qe[k].0
                ));
            }
            if (p.last_id, p.first_id, p.max_deleted_id, p.entries_added)
                != (q.last_id, q.first_id, q.max_deleted_id, q.entries_added)
            {
                out.push(format!(
                    "{n}: stream IDs/counters (last, first, max deleted, added) {} {} {} {} vs {} {} {} {}",
                    p.last_id, p.first_id, p.max_deleted_id, p.entries_added,
                    q.last_id, q.first_id, q.max_deleted_id, q.entries_added
                ));
            }
            if p.groups != q.groups {
                out.push(format!(
                    "{n}: stream consumer groups differ: {:?} vs {:?}",
                    p.groups, q.groups
                ));
            }
        }
        (p, q) => out.push(format!("{n}: type {} vs {}", p.type_name(), q.type_name())),
    }
}

/// A score compared as a number (`-0.0 == 0.0`), shown in the dump's spelling.
#[derive(Clone, Copy, PartialEq)]
struct Score(f64);

/// How a map value appears in a difference line (`None`: set members have no value).
trait Show {
    fn show(&self) -> Option<String>;
}

impl Show for () {
    fn show(&self) -> Option<String> {
        None
    }
}

impl Show for &[u8] {
    fn show(&self) -> Option<String> {
        Some(short(self))
    }
}

impl Show for Score {
    fn show(&self) -> Option<String> {
        Some(format!("score {}", self.0))
    }
}

fn map_diff<V: PartialEq + Show>(
    n: &str,
    what: &str,
    p: &BTreeMap<&[u8], V>,
    q: &BTreeMap<&[u8], V>,
    out: &mut Vec<String>,
) {
    let only = |k: &[u8], v: &V, side: &str| match v.show() {
        Some(s) => format!("{n}: {what} {} ({s}) only on the {side}", short(k)),
        None => format!("{n}: {what} {} only on the {side}", short(k)),
    };
    for (k, v) in p {
        match q.get(k) {
            None => out.push(only(k, v, "left")),
            Some(w) if w != v => out.push(format!(
                "{n}: {what} {}: {} vs {}",
                short(k),
                v.show().unwrap_or_default(),
                w.show().unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    for (k, w) in q {
        if !p.contains_key(k) {
            out.push(only(k, w, "right"));
        }
    }
}

/// Bytes for a message, cut to 60 bytes with the full length noted.
fn short(b: &[u8]) -> String {
    if b.len() <= 60 {
        show_bytes(b)
    } else {
        format!("{}... ({} bytes)", show_bytes(&b[..60]), b.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(db: u32, key: &str, value: Value) -> Entry {
        Entry {
            db,
            key: key.as_bytes().to_vec(),
            value,
            expire_at_ms: None,
        }
    }

    #[test]
    fn describes_each_kind_of_difference() {
        let b = |s: &str| s.as_bytes().to_vec();
        let left = vec![
            e(0, "s", Value::String(b("x"))),
            e(0, "l", Value::List(vec![b("a"), b("b")])),
            e(0, "z", Value::ZSet(vec![(b("m"), 1.0), (b("zero"), -0.0)])),
            e(1, "only", Value::Set(vec![b("a")])),
            e(0, "t", Value::String(b("same"))),
        ];
        let mut right = vec![
            e(0, "s", Value::String(b("y"))),
            e(0, "l", Value::List(vec![b("a")])),
            e(
                0,
                "z",
                Value::ZSet(vec![(b("zero"), 0.0), (b("m"), 2.0), (b("n"), 3.0)]),
            ),
            e(0, "t", Value::List(vec![b("same")])),
        ];
        right[0].expire_at_ms = Some(5);
        let d = diff(&left, &right);
        assert_eq!(
            d,
            [
                "db 0 key \"l\": list lengths 2 vs 1, first difference at index 1: \"b\" vs (none)",
                "db 0 key \"s\": expire_at_ms None vs Some(5)",
                "db 0 key \"s\": string \"x\" vs \"y\"",
                "db 0 key \"t\": type string vs list",
                "db 0 key \"z\": member \"m\": score 1 vs score 2",
                "db 0 key \"z\": member \"n\" (score 3) only on the right",
                "db 1 key \"only\": only on the left (set)",
            ]
        );
        assert!(diff(&left, &left).is_empty());
    }

    #[test]
    fn bounded() {
        let many: Vec<Entry> = (0..50)
            .map(|i| e(0, &format!("k{i}"), Value::String(vec![])))
            .collect();
        let d = diff(&many, &[]);
        assert_eq!(d.len(), MAX_DIFF_LINES + 1);
        assert_eq!(d[MAX_DIFF_LINES], "... and 30 more differences");
    }
}
