//! The `DUMP` / `RESTORE` payload (Redis 7.0.15 `cluster.c`, `createDumpPayload` /
//! `verifyDumpPayload`): one value in its RDB encoding, then a footer.
//!
//! ```text
//! +-----------+---------------------+------------------+----------------------+
//! | type byte | value (RDB encoding) | RDB version (u16 LE) | CRC-64/REDIS (u64 LE) |
//! +-----------+---------------------+------------------+----------------------+
//!                                      the CRC covers every byte before it
//! ```
//! The value bytes are exactly what an RDB file holds after the key of an entry, so both
//! directions reuse the file codec: [`dump_payload`] writes a one-entry RDB with an empty key
//! into memory and cuts the entry's bytes out; [`restore_payload`] wraps the payload's bytes
//! into a one-entry RDB (of the payload's version) and reads it with the validating reader, so a
//! hostile payload gets the same checks as a hostile file (claimed lengths before allocation,
//! nested blob validation).

use crate::crc::crc64;
use crate::error::{RdbError, Result};
use crate::model::{Entry, Value};
use crate::reader::read_all;
use crate::writer::{RdbWriter, WriteOptions};

/// The RDB version written in payloads (Redis 7.0's `RDB_VERSION`).
pub const PAYLOAD_VERSION: u16 = 10;

/// Why a payload was refused, with Redis's reply for each case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// Too short, a version above ours or a checksum mismatch (`ERR DUMP payload version or
    /// checksum are wrong`).
    VersionOrChecksum,
    /// The value bytes do not decode (`ERR Bad data format`), with what is wrong.
    BadData(String),
}

/// The `DUMP` payload of `value` (encoded with `opts`' compression and thresholds).
pub fn dump_payload(value: &Value, opts: &WriteOptions) -> Result<Vec<u8>> {
    let wopts = WriteOptions {
        checksum: false,
        extra_aux: Vec::new(),
        ..opts.clone()
    };
    let mut w = RdbWriter::new(Vec::new(), wopts)?;
    let start = w.bytes_written() as usize;
    w.write_entry(&Entry {
        db: 0,
        key: Vec::new(),
        value: value.clone(),
        expire_at_ms: None,
    })?;
    let end = w.bytes_written() as usize;
    let file = w.finish()?;
    // [type][0x00 = the empty key][value...]
    if end < start + 2 || file.get(start + 1) != Some(&0) {
        return Err(RdbError::InvalidInput(
            "unexpected entry layout while building a DUMP payload".into(),
        ));
    }
    let mut out = Vec::with_capacity(end - start + 9);
    out.push(file[start]);
    out.extend_from_slice(&file[start + 2..end]);
    out.extend_from_slice(&PAYLOAD_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Check a `RESTORE` payload's footer (`verifyDumpPayload`) and decode its value.
pub fn restore_payload(payload: &[u8]) -> std::result::Result<Value, PayloadError> {
    if payload.len() < 10 {
        return Err(PayloadError::VersionOrChecksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > PAYLOAD_VERSION {
        return Err(PayloadError::VersionOrChecksum);
    }
    let stored = u64::from_le_bytes(footer[2..10].try_into().expect("8 bytes"));
    if crc64(&payload[..payload.len() - 8]) != stored {
        return Err(PayloadError::VersionOrChecksum);
    }
    if body.is_empty() {
        return Err(PayloadError::BadData("empty payload".into()));
    }
    // A one-entry RDB of the payload's version: header, type, empty key, value, EOF, no CRC.
    let mut file = Vec::with_capacity(body.len() + 20);
    file.extend_from_slice(format!("REDIS{:04}", version.max(1)).as_bytes());
    file.push(body[0]);
    file.push(0);
    file.extend_from_slice(&body[1..]);
    file.push(0xFF);
    file.extend_from_slice(&[0u8; 8]);
    // The stored checksum is 0: the reader does not verify it (the footer's CRC was checked).
    let loaded = read_all(&file[..]).map_err(|e| PayloadError::BadData(e.to_string()))?;
    let mut entries = loaded.entries.into_iter();
    match (entries.next(), entries.next()) {
        (Some(e), None) if e.key.is_empty() => Ok(e.value),
        _ => Err(PayloadError::BadData(
            "the value does not end where the payload does".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_dump_of_a_string_round_trips() {
        // redis-server 7.0.15: SET k hello; DUMP k.
        let redis = b"\x00\x05hello\x0a\x00cr\xdfve4 \x0a";
        let v = Value::String(b"hello".to_vec());
        assert_eq!(restore_payload(redis), Ok(v.clone()));
        assert_eq!(dump_payload(&v, &WriteOptions::default()).unwrap(), redis);
    }

    #[test]
    fn every_type_round_trips_and_damage_is_refused() {
        let values = [
            Value::List(vec![b"a".to_vec(), b"1".to_vec()]),
            Value::Set(vec![b"x".to_vec(), b"y".to_vec()]),
            Value::ZSet(vec![(b"m".to_vec(), 1.5)]),
            Value::Hash(vec![(b"f".to_vec(), b"v".to_vec())]),
            Value::String(vec![b'z'; 1000]),
        ];
        for v in values {
            let p = dump_payload(&v, &WriteOptions::default()).unwrap();
            assert_eq!(restore_payload(&p).as_ref(), Ok(&v));
            let mut bad = p.clone();
            bad[1] ^= 1;
            assert_eq!(restore_payload(&bad), Err(PayloadError::VersionOrChecksum));
            let mut newer = p[..p.len() - 10].to_vec();
            newer.extend_from_slice(&11u16.to_le_bytes());
            let crc = crc64(&newer);
            newer.extend_from_slice(&crc.to_le_bytes());
            assert_eq!(
                restore_payload(&newer),
                Err(PayloadError::VersionOrChecksum)
            );
        }
        assert_eq!(
            restore_payload(b"short"),
            Err(PayloadError::VersionOrChecksum)
        );
    }

    #[test]
    fn a_hostile_length_is_refused_without_allocating_it() {
        // A string claiming 2^32-1 bytes, with a valid footer.
        let mut p = vec![0x00, 0x80, 0xff, 0xff, 0xff, 0xff, b'x'];
        p.extend_from_slice(&10u16.to_le_bytes());
        let crc = crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(restore_payload(&p), Err(PayloadError::BadData(_))));
    }
}
