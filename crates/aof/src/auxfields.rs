//! The aux-field codec of the log layer: how a snapshot or base records where it cuts the log.
//!
//! A cut is written as RDB aux fields (`RDB_OPCODE_AUX`, key and value strings) after the
//! snapshot's end barrier and before EOF; Redis 7.0 ignores unknown aux fields, so such files
//! still load there. Both layouts use it: the multi-part AOF's bases ([`crate::BaseCut`],
//! `forkless-aof-*` keys) and the segments directory's snapshots (`forkless-cut-*` keys).
//!
//! ```text
//! field  = key, value          value = the field's text: ASCII decimal for numbers
//! lookup = the last field with that key wins (fields in file order); a value that is not
//!          UTF-8 or does not parse as the wanted type reads as absent
//! ```

use std::fmt::Display;
use std::str::FromStr;

/// One aux field: `key` and the text of `value`.
pub fn field(key: &[u8], value: impl Display) -> (Vec<u8>, Vec<u8>) {
    (key.to_vec(), value.to_string().into_bytes())
}

/// The value of `key` in `fields` (aux fields in file order; the last one wins), parsed as
/// `T`; `None` when absent, not UTF-8 or not a `T`.
pub fn get<T: FromStr>(fields: &[(Vec<u8>, Vec<u8>)], key: &[u8]) -> Option<T> {
    let (_, v) = fields.iter().rev().find(|(k, _)| k == key)?;
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_field_wins_and_bad_values_read_as_absent() {
        let fields = vec![
            field(b"a", 1),
            field(b"b", "x"),
            field(b"a", -7i64),
            (b"c".to_vec(), vec![0xff]),
        ];
        assert_eq!(get::<i64>(&fields, b"a"), Some(-7));
        assert_eq!(get::<u64>(&fields, b"a"), None);
        assert_eq!(get::<i64>(&fields, b"b"), None);
        assert_eq!(get::<String>(&fields, b"b").as_deref(), Some("x"));
        assert_eq!(get::<String>(&fields, b"c"), None);
        assert_eq!(get::<i64>(&fields, b"d"), None);
    }
}
