//! Object attributes (`docs/ATTRIBUTES.md` §1): a small map of property names to values
//! (strings or integers) that a value written through a name carries in its name record
//! (version 2, `docs/OBJECTS.md` §10) and that queries find objects by.
//!
//! Byte for byte, the attribute section of a record (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 2 | count, ≤ [`MAX_ATTRS`] |
//! | per attribute: 2 + n | name (UTF-8, 1 ..= [`MAX_ATTR_NAME_LEN`] bytes, no `=`, `!`, `*`, control characters) |
//! | 1 | type: 1 string, 2 integer |
//! | 2 + n or 8 | a string's UTF-8 (≤ [`MAX_ATTR_VALUE_LEN`] bytes), or an integer (i64) |
//!
//! Names are strictly ascending (bytewise), so one map has one encoding.

use std::collections::BTreeMap;
use std::fmt;

/// Most attributes on one object.
pub const MAX_ATTRS: usize = 32;
/// The longest attribute name, in bytes.
pub const MAX_ATTR_NAME_LEN: usize = 64;
/// The longest string value, in bytes.
pub const MAX_ATTR_VALUE_LEN: usize = 256;

/// The type byte of a string value.
pub const ATTR_STRING: u8 = 1;
/// The type byte of an integer value.
pub const ATTR_INTEGER: u8 = 2;

/// One attribute's value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttrValue {
    Str(String),
    Int(i64),
}

impl AttrValue {
    /// Reads a value as the CLI types it: canonical decimal integers (`0`, `-7`, `2024`;
    /// no `+`, no leading zeros, within i64) are integers, anything else a string.
    pub fn parse(text: &str) -> AttrValue {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'))
            && text != "-0";
        match text.parse::<i64>() {
            Ok(n) if canonical => AttrValue::Int(n),
            _ => AttrValue::Str(text.to_string()),
        }
    }

    /// The type byte and the value's bytes as they are hashed and stored: a string's
    /// UTF-8, an integer's 8 bytes little-endian.
    pub fn typed_bytes(&self) -> (u8, Vec<u8>) {
        match self {
            AttrValue::Str(s) => (ATTR_STRING, s.as_bytes().to_vec()),
            AttrValue::Int(n) => (ATTR_INTEGER, n.to_le_bytes().to_vec()),
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => f.write_str(s),
            AttrValue::Int(n) => write!(f, "{n}"),
        }
    }
}

/// Why attributes are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrError {
    #[error("more than {MAX_ATTRS} attributes")]
    TooMany,
    #[error("attribute name {0:?} is empty, longer than {MAX_ATTR_NAME_LEN} bytes, or holds `=`, `!`, `*`, `,` or a control character")]
    BadName(String),
    #[error("attribute {0:?}: value longer than {MAX_ATTR_VALUE_LEN} bytes")]
    ValueTooLong(String),
    #[error("attribute {0:?} given twice")]
    Twice(String),
    #[error("{0:?} is not NAME=VALUE")]
    NotAPair(String),
    #[error("attribute section truncated, out of order, or with an unknown type")]
    Malformed,
}

/// An object's attributes, by name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct Attrs(BTreeMap<String, AttrValue>);

impl Attrs {
    pub fn new() -> Attrs {
        Attrs::default()
    }

    /// Adds `name` = `value`, checking the name, the value and the count.
    pub fn insert(&mut self, name: &str, value: AttrValue) -> Result<(), AttrError> {
        check_name(name)?;
        if let AttrValue::Str(s) = &value {
            if s.len() > MAX_ATTR_VALUE_LEN {
                return Err(AttrError::ValueTooLong(name.to_string()));
            }
        }
        if self.0.contains_key(name) {
            return Err(AttrError::Twice(name.to_string()));
        }
        if self.0.len() >= MAX_ATTRS {
            return Err(AttrError::TooMany);
        }
        self.0.insert(name.to_string(), value);
        Ok(())
    }

    /// Parses `NAME=VALUE` arguments (`--attr camera=x100 --attr year=2024`).
    pub fn parse_pairs<S: AsRef<str>>(pairs: &[S]) -> Result<Attrs, AttrError> {
        let mut attrs = Attrs::new();
        for pair in pairs {
            let pair = pair.as_ref();
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| AttrError::NotAPair(pair.to_string()))?;
            attrs.insert(name, AttrValue::parse(value))?;
        }
        Ok(attrs)
    }

    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.0.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Name and value pairs, names ascending.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &AttrValue)> {
        self.0.iter()
    }

    /// Appends the section (count, then each attribute) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.0.len() as u16).to_le_bytes());
        for (name, value) in &self.0 {
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            let (kind, bytes) = value.typed_bytes();
            out.push(kind);
            if kind == ATTR_STRING {
                out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            }
            out.extend_from_slice(&bytes);
        }
    }

    /// Decodes a section from the front of `bytes`; returns it and the bytes after it.
    pub fn decode_from(bytes: &[u8]) -> Result<(Attrs, &[u8]), AttrError> {
        let mut r = Reader(bytes);
        let count = usize::from(r.u16()?);
        if count > MAX_ATTRS {
            return Err(AttrError::TooMany);
        }
        let mut attrs = Attrs::new();
        let mut last: Option<String> = None;
        for _ in 0..count {
            let n = usize::from(r.u16()?);
            let name = std::str::from_utf8(r.take(n)?).map_err(|_| AttrError::Malformed)?;
            if last.as_deref().is_some_and(|l| l >= name) {
                return Err(AttrError::Malformed);
            }
            let value = match r.take(1)?[0] {
                ATTR_STRING => {
                    let n = usize::from(r.u16()?);
                    let s = std::str::from_utf8(r.take(n)?).map_err(|_| AttrError::Malformed)?;
                    AttrValue::Str(s.to_string())
                }
                ATTR_INTEGER => {
                    let b: [u8; 8] = r.take(8)?.try_into().map_err(|_| AttrError::Malformed)?;
                    AttrValue::Int(i64::from_le_bytes(b))
                }
                _ => return Err(AttrError::Malformed),
            };
            attrs.insert(name, value)?;
            last = Some(name.to_string());
        }
        Ok((attrs, r.0))
    }
}

impl FromIterator<(String, AttrValue)> for Attrs {
    /// Collects pairs without checks (later pairs replace earlier ones); for tests and
    /// callers that checked them already.
    fn from_iter<T: IntoIterator<Item = (String, AttrValue)>>(iter: T) -> Attrs {
        Attrs(iter.into_iter().collect())
    }
}

/// Checks a property name: 1 ..= 64 bytes, none of `=`, `!`, `*`, `,` and no control
/// characters (they are the query syntax's).
pub fn check_name(name: &str) -> Result<(), AttrError> {
    let bad = name.is_empty()
        || name.len() > MAX_ATTR_NAME_LEN
        || name
            .chars()
            .any(|c| matches!(c, '=' | '!' | '*' | ',') || c.is_control());
    if bad {
        return Err(AttrError::BadName(name.to_string()));
    }
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AttrError> {
        if self.0.len() < n {
            return Err(AttrError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, AttrError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn the_cli_types_canonical_integers_only() {
        assert_eq!(AttrValue::parse("2024"), AttrValue::Int(2024));
        assert_eq!(AttrValue::parse("-7"), AttrValue::Int(-7));
        assert_eq!(AttrValue::parse("0"), AttrValue::Int(0));
        for s in ["007", "+1", "-0", "1.5", "x100", "", "99999999999999999999"] {
            assert_eq!(AttrValue::parse(s), AttrValue::Str(s.into()), "{s}");
        }
    }

    #[test]
    fn pairs_are_checked() -> TestResult {
        let a = Attrs::parse_pairs(&["camera=x100", "year=2024", "note=a=b"])?;
        assert_eq!(a.get("year"), Some(&AttrValue::Int(2024)));
        assert_eq!(a.get("note"), Some(&AttrValue::Str("a=b".into())));
        assert!(Attrs::parse_pairs(&["x"]).is_err());
        assert!(Attrs::parse_pairs(&["=1"]).is_err());
        assert!(Attrs::parse_pairs(&["a*=1"]).is_err());
        assert!(Attrs::parse_pairs(&["a=1", "a=2"]).is_err());
        let long = format!("v={}", "x".repeat(MAX_ATTR_VALUE_LEN + 1));
        assert!(Attrs::parse_pairs(&[long]).is_err());
        let many: Vec<String> = (0..=MAX_ATTRS).map(|i| format!("p{i}=1")).collect();
        assert_eq!(Attrs::parse_pairs(&many), Err(AttrError::TooMany));
        Ok(())
    }

    #[test]
    fn golden_section() -> TestResult {
        let a = Attrs::parse_pairs(&["year=2024", "cam=x"])?;
        let mut out = Vec::new();
        a.encode_into(&mut out);
        let want: Vec<u8> = [
            &[2, 0][..],
            &[3, 0],
            b"cam",
            &[1, 1, 0],
            b"x",
            &[4, 0],
            b"year",
            &[2, 0xe8, 0x07, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        assert_eq!(out, want);
        let (back, rest) = Attrs::decode_from(&out)?;
        assert_eq!(back, a);
        assert!(rest.is_empty());
        Ok(())
    }

    #[test]
    fn out_of_order_or_unknown_types_are_refused() {
        // "b" before "a".
        let bad = [
            &[2u8, 0, 1, 0][..],
            b"b",
            &[2],
            &[0; 8],
            &[1, 0],
            b"a",
            &[2],
            &[0; 8],
        ]
        .concat();
        assert_eq!(Attrs::decode_from(&bad), Err(AttrError::Malformed));
        let bad = [&[1u8, 0, 1, 0][..], b"a", &[3], &[0; 8]].concat();
        assert_eq!(Attrs::decode_from(&bad), Err(AttrError::Malformed));
    }

    proptest! {
        #[test]
        fn sections_round_trip(
            pairs in proptest::collection::btree_map("[a-z]{1,10}", prop_oneof![
                any::<i64>().prop_map(AttrValue::Int),
                ".{0,30}".prop_map(AttrValue::Str),
            ], 0..MAX_ATTRS),
        ) {
            let attrs: Attrs = pairs.into_iter().collect();
            let mut out = Vec::new();
            attrs.encode_into(&mut out);
            let (back, rest) = Attrs::decode_from(&out)?;
            prop_assert_eq!(back, attrs);
            prop_assert!(rest.is_empty());
        }

        #[test]
        fn arbitrary_sections_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Attrs::decode_from(&bytes);
        }
    }
}
