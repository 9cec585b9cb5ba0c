//! `forkless rdb check FILE`: validate a whole RDB file and summarize it, like `redis-check-rdb`
//! (Redis `src/redis-check-rdb.c`): one progress line per structural record with its offset,
//! then keys per database and type, expiries, skipped keys and the checksum verdict.
//!
//! Keys are counted per logical type and per on-disk encoding (listpack, intset, quicklist2...,
//! from the reader's `last_value_type`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use forkless_dump::show_bytes;
use forkless_rdb::constants::type_encoding_name;
use forkless_rdb::{ChecksumStatus, Item, RdbError, RdbReader};

use super::{open_input, print_stdout, CheckArgs};
use crate::error::CliError;

/// Counts of one database.
#[derive(Debug, Default)]
struct DbStats {
    keys: u64,
    per_type: BTreeMap<&'static str, u64>,
    per_encoding: BTreeMap<&'static str, u64>,
    expires: u64,
    already_expired: u64,
    skipped: u64,
    resize_hint: Option<(u64, u64)>,
}

/// Everything learned from the file so far.
#[derive(Debug, Default)]
struct Report {
    lines: String,
    dbs: BTreeMap<u32, DbStats>,
    skipped_kinds: BTreeMap<&'static str, u64>,
    functions: u64,
    module_aux: u64,
}

impl Report {
    fn line(&mut self, offset: u64, text: std::fmt::Arguments<'_>) {
        let _ = writeln!(self.lines, "[offset {offset}] {text}");
    }

    fn summary(&self, version: u32, checksum: Option<ChecksumStatus>, trailing: u64) -> String {
        let mut s = String::new();
        let keys: u64 = self.dbs.values().map(|d| d.keys).sum();
        let expires: u64 = self.dbs.values().map(|d| d.expires).sum();
        let expired: u64 = self.dbs.values().map(|d| d.already_expired).sum();
        let skipped: u64 = self.skipped_kinds.values().sum();
        let _ = writeln!(s, "[info] RDB version {version}");
        let _ = writeln!(
            s,
            "[info] {keys} keys in {} database(s), {expires} with an expiry ({expired} already expired), {skipped} skipped",
            self.dbs.len()
        );
        for (db, d) in &self.dbs {
            let _ = write!(
                s,
                "[info] db {db}: {} keys, {} expires, {} already expired",
                d.keys, d.expires, d.already_expired
            );
            if d.skipped > 0 {
                let _ = write!(s, ", {} skipped", d.skipped);
            }
            if let Some((k, e)) = d.resize_hint {
                let _ = write!(s, " (RESIZEDB hint: {k} keys, {e} expires)");
            }
            s.push('\n');
            for (ty, n) in &d.per_type {
                let _ = writeln!(s, "[info]   {ty}: {n}");
            }
            for (enc, n) in &d.per_encoding {
                let _ = writeln!(s, "[info]   encoding {enc}: {n}");
            }
        }
        for (kind, n) in &self.skipped_kinds {
            let _ = writeln!(s, "[info] skipped {kind} keys (no canonical form): {n}");
        }
        if self.functions > 0 {
            let _ = writeln!(s, "[info] function libraries: {}", self.functions);
        }
        if self.module_aux > 0 {
            let _ = writeln!(s, "[info] module aux records: {}", self.module_aux);
        }
        if let Some(c) = checksum {
            let verdict = match c {
                ChecksumStatus::Verified => "verified (CRC-64 matches)",
                ChecksumStatus::Disabled => "not verified: stored as 0 (saved with rdbchecksum no)",
                ChecksumStatus::Absent => "none (RDB version below 5 has no checksum)",
            };
            let _ = writeln!(s, "[info] checksum: {verdict}");
        }
        if trailing > 0 {
            let _ = writeln!(
                s,
                "[info] {trailing} bytes after the checksum (ignored, as Redis does)"
            );
        }
        s
    }
}

/// The offset an error refers to, or `fallback` when it names none.
fn error_offset(e: &RdbError, fallback: u64) -> u64 {
    match e {
        RdbError::Corrupt { offset, .. }
        | RdbError::UnexpectedEof { offset, .. }
        | RdbError::ChecksumMismatch { offset, .. } => *offset,
        _ => fallback,
    }
}

pub(super) fn check(a: &CheckArgs) -> Result<ExitCode, CliError> {
    let name = a.file.display().to_string();
    let ctx = format!("rdb check {name}");
    let input = open_input(&a.file).map_err(|e| CliError::new(format!("reading {name}"), e))?;
    let mut report = Report::default();
    report.line(0, format_args!("Checking RDB file {name}"));
    let mut reader = match RdbReader::new(input) {
        Ok(r) => r,
        Err(e) => {
            print_stdout(&report.lines)?;
            return Err(CliError::new(
                ctx,
                format!("error at offset {}: {e}", error_offset(&e, 0)),
            ));
        }
    };
    let version = reader.version();
    report.line(reader.offset(), format_args!("RDB version {version}"));
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut db = 0u32;
    let bar = crate::progress::file_bar(&a.file, "checking");
    let mut items = 0u64;
    let checksum = loop {
        let at = reader.offset();
        items += 1;
        if items.is_multiple_of(4096) {
            bar.set_position(at);
        }
        let item = match reader.next_item() {
            Ok(Some(item)) => item,
            Ok(None) => break None,
            Err(e) => {
                bar.finish_and_clear();
                print_stdout(&report.lines)?;
                print_stdout(&report.summary(version, None, 0))?;
                return Err(CliError::new(
                    ctx,
                    format!("error at offset {}: {e}", error_offset(&e, at)),
                ));
            }
        };
        match item {
            Item::Aux { key, value } => {
                report.line(
                    at,
                    format_args!("AUX {} = {}", show_bytes(&key), aux_value(&key, &value)),
                );
            }
            Item::SelectDb(n) => {
                db = n;
                report.dbs.entry(n).or_default();
                report.line(at, format_args!("SELECTDB {n}"));
            }
            Item::ResizeDb {
                db_size,
                expires_size,
            } => {
                report.dbs.entry(db).or_default().resize_hint = Some((db_size, expires_size));
                report.line(
                    at,
                    format_args!("RESIZEDB {db_size} keys, {expires_size} expires"),
                );
            }
            Item::Entry(e) => {
                let enc = reader
                    .last_value_type()
                    .map_or("unknown", type_encoding_name);
                let d = report.dbs.entry(e.db).or_default();
                d.keys += 1;
                *d.per_type.entry(e.value.type_name()).or_default() += 1;
                *d.per_encoding.entry(enc).or_default() += 1;
                if let Some(t) = e.expire_at_ms {
                    d.expires += 1;
                    if t <= now_ms {
                        d.already_expired += 1;
                    }
                }
            }
            Item::Skipped {
                db,
                key,
                kind,
                rdb_type,
            } => {
                report.dbs.entry(db).or_default().skipped += 1;
                *report.skipped_kinds.entry(kind).or_default() += 1;
                report.line(
                    at,
                    format_args!(
                        "skipped db {db} key {} type {kind} (RDB type {rdb_type})",
                        show_bytes(&key)
                    ),
                );
            }
            Item::Function { code } => {
                report.functions += 1;
                report.line(
                    at,
                    format_args!("FUNCTION library ({} bytes of code)", code.len()),
                );
            }
            Item::ModuleAux { module_id } => {
                report.module_aux += 1;
                report.line(
                    at,
                    format_args!("MODULE_AUX module id {module_id:#018x} (skipped)"),
                );
            }
            Item::End { checksum } => {
                report.line(at, format_args!("EOF"));
                break Some(checksum);
            }
        }
    };
    bar.finish_and_clear();
    let end = reader.offset();
    let mut rest = reader.into_inner();
    let trailing = io::copy(&mut rest, &mut io::sink())
        .map_err(|e| CliError::new(format!("reading {name}"), e))?;
    report.line(end, format_args!("RDB looks OK"));
    print_stdout(&report.lines)?;
    print_stdout(&report.summary(version, checksum, trailing))?;
    Ok(ExitCode::SUCCESS)
}

/// Aux values for display: text quoted, binary in escapes, long ones (a Lua script) cut.
fn aux_value(key: &[u8], value: &[u8]) -> String {
    if value.len() > 80 {
        format!("{}... ({} bytes)", show_bytes(&value[..60]), value.len())
    } else if key == b"ctime" {
        format!("{} (unix seconds)", show_bytes(value))
    } else {
        show_bytes(value)
    }
}
