//! SORT and SORT_RO: BY (a pattern, or a constant such as `nosort` for no sorting), LIMIT, GET
//! (`#`, `key*` patterns and `hash*->field`), ASC/DESC, ALPHA, STORE.
//!
//! Semantics, replies, error texts and propagation follow Redis 7.0.15 `sort.c`
//! (`sortCommandGeneric`, `lookupKeyByPattern`, `sortCompare`; verified against redis-server
//! 7.0.15 by the differential tests): options parsed first (a bad LIMIT number is Redis's
//! integer error, an unknown word a syntax error, STORE a syntax error for SORT_RO), then the
//! type check; numeric weights parsed with `strtod` (`ERR One or more scores can't be converted
//! into double`); equal numeric weights ordered by the element's bytes; ALPHA compares as
//! `strcoll` in the C locale (bytes up to the first NUL) unless storing (all bytes); a set
//! sorted with a constant BY into STORE, or for a script, is sorted ALPHA, as Redis forces
//! (`CLIENT_SCRIPT`); LIMIT clamped as
//! Redis does. STORE writes a list (deleting the destination when the result is empty, a GET
//! of a missing key storing an empty string) and propagates the command verbatim when it
//! changed something.
//!
//! Key access: BY and GET patterns name keys that are only known while sorting, so both
//! commands are declared [`ALL_SHARDS`] (always, not only when a pattern is present: the table
//! is static). That serialises SORT with every other command, the price of reading arbitrary
//! keys consistently. A script that declared its keys may still call a SORT whose patterns read
//! no key (`Atomic::call`).

use crate::command::{CommandSpec, ALL_SHARDS, READONLY, WRITE};
use crate::convert::parse_i64;
use crate::ctx::Ctx;
use crate::notify::Flags;
use crate::reply::Reply;
use crate::types::{parse_sort_score, List};
use crate::value::Value;
use std::cmp::Ordering;

/// The commands of this module.
#[rustfmt::skip]
pub(crate) const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sort", -2, WRITE | ALL_SHARDS, 1, 1, 1, sort),
    CommandSpec::new("sort_ro", -2, READONLY | ALL_SHARDS, 1, 1, 1, sort_ro),
];

fn sort(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    sort_generic(ctx, argv, false)
}

fn sort_ro(ctx: &mut Ctx<'_>, argv: &[&[u8]]) -> Reply {
    sort_generic(ctx, argv, true)
}

/// The bytes of a C string: up to the first NUL.
fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&c| c == 0).map_or(s, |i| &s[..i])
}

/// `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` is replaced by the
/// element, and a `->field` after it (with a non-empty field) reads a hash field. A pattern
/// without `*`, a missing key or a key of another type give None.
fn lookup_by_pattern(ctx: &mut Ctx<'_>, pattern: &[u8], subst: &[u8]) -> Option<Vec<u8>> {
    let spat = c_str(pattern);
    if spat == b"#" {
        return Some(subst.to_vec());
    }
    let p = spat.iter().position(|&c| c == b'*')?;
    let after = &spat[p + 1..];
    let field = after
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&f| f + 2 < after.len())
        .map(|f| (f, &pattern[p + 1 + f + 2..]));
    let postfix = match field {
        Some((f, _)) => &pattern[p + 1..p + 1 + f],
        None => &pattern[p + 1..],
    };
    let mut key = Vec::with_capacity(p + subst.len() + postfix.len());
    key.extend_from_slice(&pattern[..p]);
    key.extend_from_slice(subst);
    key.extend_from_slice(postfix);
    match (&*ctx.get(&key)?, field) {
        (Value::Hash(h), Some((_, f))) => h.get(f).map(<[u8]>::to_vec),
        (Value::String(s), None) => Some(s.to_vec()),
        _ => None,
    }
}

struct Item {
    obj: Vec<u8>,
    score: f64,
    cmpobj: Option<Vec<u8>>,
}

/// SORT's options (Redis's `sortCommandGeneric` option loop), parsed once for the handler, a
/// script's shard check (`Atomic::call`) and the server's after-write wake-ups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SortOptions<'a> {
    /// DESC (the last of ASC/DESC wins).
    pub desc: bool,
    /// ALPHA.
    pub alpha: bool,
    /// LIMIT offset count.
    pub limit: Option<(i64, i64)>,
    /// BY patterns, in order: the last one sorts; one without `*` (a constant such as `nosort`)
    /// anywhere means no sorting, as in Redis.
    pub bys: Vec<&'a [u8]>,
    /// STORE destination (SORT only; the last one wins).
    pub store: Option<&'a [u8]>,
    /// GET patterns, in order.
    pub gets: Vec<&'a [u8]>,
}

/// Why [`SortOptions::parse`] refused the options: the reply SORT gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOptionError {
    /// A LIMIT number is not an integer (`ERR value is not an integer or out of range`).
    NotInteger,
    /// An unknown word, a missing argument, or STORE in SORT_RO (`ERR syntax error`).
    Syntax,
}

impl<'a> SortOptions<'a> {
    /// The options of `argv` (`SORT key ...`; `readonly` for SORT_RO, which has no STORE).
    pub fn parse(argv: &[&'a [u8]], readonly: bool) -> Result<SortOptions<'a>, SortOptionError> {
        let mut o = SortOptions::default();
        let mut j = 2;
        while j < argv.len() {
            let left = argv.len() - j - 1;
            let w = argv[j];
            if w.eq_ignore_ascii_case(b"asc") {
                o.desc = false;
            } else if w.eq_ignore_ascii_case(b"desc") {
                o.desc = true;
            } else if w.eq_ignore_ascii_case(b"alpha") {
                o.alpha = true;
            } else if w.eq_ignore_ascii_case(b"limit") && left >= 2 {
                match (parse_i64(argv[j + 1]), parse_i64(argv[j + 2])) {
                    (Some(s), Some(c)) => o.limit = Some((s, c)),
                    _ => return Err(SortOptionError::NotInteger),
                }
                j += 2;
            } else if !readonly && w.eq_ignore_ascii_case(b"store") && left >= 1 {
                o.store = Some(argv[j + 1]);
                j += 1;
            } else if w.eq_ignore_ascii_case(b"by") && left >= 1 {
                o.bys.push(argv[j + 1]);
                j += 1;
            } else if w.eq_ignore_ascii_case(b"get") && left >= 1 {
                o.gets.push(argv[j + 1]);
                j += 1;
            } else {
                return Err(SortOptionError::Syntax);
            }
            j += 1;
        }
        Ok(o)
    }

    /// Whether a BY or GET pattern may read other keys (has a `*` before its first NUL; a GET
    /// of `#` is the element itself): then SORT needs every shard.
    pub fn reads_other_keys(&self) -> bool {
        self.bys.iter().chain(&self.gets).any(|p| has_star(p))
    }
}

/// Whether pattern `p`, read as a C string, has a `*`.
fn has_star(p: &[u8]) -> bool {
    c_str(p).contains(&b'*')
}

fn sort_generic(ctx: &mut Ctx<'_>, argv: &[&[u8]], readonly: bool) -> Reply {
    let o = match SortOptions::parse(argv, readonly) {
        Ok(o) => o,
        Err(SortOptionError::NotInteger) => return Reply::not_integer(),
        Err(SortOptionError::Syntax) => return Reply::syntax_error(),
    };
    let (desc, mut alpha, storekey, gets) = (o.desc, o.alpha, o.store, o.gets);
    let (limit_start, limit_count) = o.limit.unwrap_or((0, -1));
    let mut sortby = o.bys.last().copied();
    let mut dontsort = o.bys.iter().any(|p| !has_star(p));

    // The elements, in their native order (a set's order is its iteration order).
    enum Kind {
        List,
        Set,
        ZSet,
    }
    let (kind, elems): (Kind, Vec<Vec<u8>>) = match ctx.get(argv[1]).as_deref() {
        None => (Kind::List, Vec::new()),
        Some(Value::List(l)) => (Kind::List, l.iter().map(<[u8]>::to_vec).collect()),
        Some(Value::Set(s)) => (Kind::Set, s.iter().map(<[u8]>::to_vec).collect()),
        Some(Value::ZSet(z)) => (Kind::ZSet, z.iter().map(|(m, _)| m.to_vec()).collect()),
        Some(_) => return Reply::wrong_type(),
    };
    if dontsort && matches!(kind, Kind::Set) && (storekey.is_some() || ctx.called_by_script()) {
        dontsort = false;
        alpha = true;
        sortby = None;
    }
    let len = elems.len() as i64;
    let mut start = limit_start.max(0);
    let mut end = if limit_count < 0 {
        len - 1
    } else {
        start.wrapping_add(limit_count).wrapping_sub(1)
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }

    let mut items: Vec<Item> = Vec::new();
    if dontsort && !matches!(kind, Kind::Set) {
        // Native order (reversed for DESC), just the LIMIT range.
        if end >= start {
            let range = start as usize..=end as usize;
            let ordered: Box<dyn Iterator<Item = Vec<u8>>> = if desc {
                Box::new(elems.into_iter().rev())
            } else {
                Box::new(elems.into_iter())
            };
            items = ordered
                .enumerate()
                .filter(|(i, _)| range.contains(i))
                .map(|(_, obj)| Item {
                    obj,
                    score: 0.0,
                    cmpobj: None,
                })
                .collect();
        }
        end -= start;
        start = 0;
    } else {
        items = elems
            .into_iter()
            .map(|obj| Item {
                obj,
                score: 0.0,
                cmpobj: None,
            })
            .collect();
    }

    let mut conversion_error = false;
    if !dontsort {
        for it in items.iter_mut() {
            let byval = match sortby {
                Some(p) => match lookup_by_pattern(ctx, p, &it.obj) {
                    Some(v) => v,
                    None => continue,
                },
                None => it.obj.clone(),
            };
            if alpha {
                if sortby.is_some() {
                    it.cmpobj = Some(byval);
                }
            } else {
                match parse_sort_score(&byval) {
                    Some(v) => it.score = v,
                    None => conversion_error = true,
                }
            }
        }
        let store = storekey.is_some();
        let bypattern = sortby.is_some();
        let cmp = |a: &Item, b: &Item| -> Ordering {
            let c = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.obj.cmp(&b.obj))
            } else if bypattern {
                match (&a.cmpobj, &b.cmpobj) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) if store => x.cmp(y),
                    (Some(x), Some(y)) => c_str(x).cmp(c_str(y)),
                }
            } else if store {
                a.obj.cmp(&b.obj)
            } else {
                c_str(&a.obj).cmp(c_str(&b.obj))
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        };
        items.sort_by(cmp);
    }

    let count = if end >= start {
        (end - start + 1) as usize
    } else {
        0
    };
    let outputlen = if gets.is_empty() {
        count
    } else {
        gets.len() * count
    };
    if conversion_error {
        return Reply::err("ERR One or more scores can't be converted into double");
    }
    let selected = if count > 0 {
        &items[start as usize..=end as usize]
    } else {
        &items[..0]
    };
    match storekey {
        None => {
            let mut out = Vec::with_capacity(outputlen);
            for it in selected {
                if gets.is_empty() {
                    out.push(Reply::Bulk(it.obj.clone()));
                }
                for g in &gets {
                    out.push(match lookup_by_pattern(ctx, g, &it.obj) {
                        Some(v) => Reply::Bulk(v),
                        None => Reply::Nil,
                    });
                }
            }
            Reply::Array(out)
        }
        Some(dst) => {
            let mut list = List::new();
            for it in selected {
                if gets.is_empty() {
                    list.push_back(it.obj.clone());
                }
                for g in &gets {
                    list.push_back(lookup_by_pattern(ctx, g, &it.obj).unwrap_or_default());
                }
            }
            if outputlen > 0 {
                ctx.insert(dst, Value::List(list));
                ctx.event(Flags::LIST, "sortstore", dst);
                ctx.propagate(argv);
            } else if ctx.remove(dst).is_some() {
                ctx.event(Flags::GENERIC, "del", dst);
                ctx.propagate(argv);
            }
            Reply::Integer(outputlen as i64)
        }
    }
}
