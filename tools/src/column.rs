//! Column names for the `ringblob` CLI's `--column`: the built-in names `data` (0, the
//! value), `meta` (1) and `thumb` (2), or any number 0..=65535.

use std::fmt;

/// The built-in column names and their numbers.
pub const COLUMN_NAMES: [(&str, u16); 3] = [("data", 0), ("meta", 1), ("thumb", 2)];

/// A `--column` argument that is neither a built-in name nor a number 0..=65535.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownColumn(pub String);

impl fmt::Display for UnknownColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown column {:?}: use data, meta, thumb or a number 0..=65535",
            self.0
        )
    }
}

impl std::error::Error for UnknownColumn {}

/// The column `arg` names: a built-in name (exact, lower case) or a decimal number.
pub fn parse_column(arg: &str) -> Result<u16, UnknownColumn> {
    if let Some((_, n)) = COLUMN_NAMES.iter().find(|(name, _)| *name == arg) {
        return Ok(*n);
    }
    let digits = !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit());
    match arg.parse::<u16>() {
        Ok(n) if digits => Ok(n),
        _ => Err(UnknownColumn(arg.to_string())),
    }
}

/// How a column is shown: its built-in name, or its number.
pub fn column_label(column: u16) -> String {
    match COLUMN_NAMES.iter().find(|(_, n)| *n == column) {
        Some((name, _)) => (*name).to_string(),
        None => column.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_parse() {
        assert_eq!(parse_column("data"), Ok(0));
        assert_eq!(parse_column("meta"), Ok(1));
        assert_eq!(parse_column("thumb"), Ok(2));
        assert_eq!(parse_column("0"), Ok(0));
        assert_eq!(parse_column("2"), Ok(2));
        assert_eq!(parse_column("65535"), Ok(65_535));
        assert_eq!(parse_column("007"), Ok(7));
    }

    #[test]
    fn unknown_names_and_out_of_range_numbers_are_refused() {
        for bad in [
            "", "Data", "thumbs", "65536", "-1", "+1", " 1", "1.0", "0x10",
        ] {
            assert_eq!(
                parse_column(bad),
                Err(UnknownColumn(bad.to_string())),
                "{bad:?}"
            );
        }
        assert!(UnknownColumn("x".into())
            .to_string()
            .contains("data, meta, thumb"));
    }

    #[test]
    fn labels_name_the_built_in_columns() {
        assert_eq!(column_label(0), "data");
        assert_eq!(column_label(2), "thumb");
        assert_eq!(column_label(3), "3");
    }
}
