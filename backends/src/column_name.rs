//! How one column of a key is spelled in file names (the fs backend's value files, staged
//! uploads): `<key hex>` for column 0, so files written before columns existed still name
//! column 0, and `<key hex>.<column>` (decimal, no leading zeros) for columns 1..=65535.

use ringblob_engine::Key;

/// The file name stem of `column` of `key`.
pub(crate) fn column_name(key: &Key, column: u16) -> String {
    match column {
        0 => key.to_hex(),
        c => format!("{}.{c}", key.to_hex()),
    }
}

/// The (key, column) a name stem spells, if it is one: every (key, column) has exactly one
/// spelling, so `<hex>.0` and `<hex>.01` are not ours.
pub(crate) fn parse_column_name(stem: &str) -> Option<(Key, u16)> {
    let Some((hex, c)) = stem.split_once('.') else {
        return Some((Key::from_hex(stem)?, 0));
    };
    let column: u16 = c.parse().ok()?;
    if column == 0 || column.to_string() != c {
        return None;
    }
    Some((Key::from_hex(hex)?, column))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_round_trips_and_odd_spellings_are_refused() {
        let k = Key::from_name(b"", b"name");
        for c in [0, 1, 2, 9, 10, 65_535] {
            assert_eq!(parse_column_name(&column_name(&k, c)), Some((k, c)));
        }
        assert_eq!(
            column_name(&k, 0),
            k.to_hex(),
            "column 0 keeps the old name"
        );
        let hex = k.to_hex();
        for bad in ["0", "01", "65536", "-1", "", "x", "1.2"] {
            assert_eq!(parse_column_name(&format!("{hex}.{bad}")), None, "{bad:?}");
        }
        assert_eq!(parse_column_name("not-a-key"), None);
    }
}
