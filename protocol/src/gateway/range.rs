//! The `Range` request header (RFC 9110 §14): one byte range — `bytes=a-b`, `a-` or `-n` —
//! resolved against the representation's length. Several ranges are not served as
//! `multipart/byteranges`: the whole representation is sent (200), which RFC 9110 allows.

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// No range (absent, another unit, several ranges, or malformed): the whole body, 200.
    Whole,
    /// Bytes `start..start + len`, 206.
    Part { start: u64, len: u64 },
    /// No byte of the range exists: 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Resolves `header` (the `Range` value, if any) against `len` bytes.
pub fn resolve(header: Option<&str>, len: u64) -> RangeAsk {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match number(last) {
            Some(0) => RangeAsk::Unsatisfiable,
            Some(n) if len == 0 => {
                let _ = n;
                RangeAsk::Unsatisfiable
            }
            Some(n) => {
                let n = n.min(len);
                RangeAsk::Part {
                    start: len - n,
                    len: n,
                }
            }
            None => RangeAsk::Whole,
        },
        // `a-`: from a to the end.
        (false, true) => match number(first) {
            Some(a) if a >= len => RangeAsk::Unsatisfiable,
            Some(a) => RangeAsk::Part {
                start: a,
                len: len - a,
            },
            None => RangeAsk::Whole,
        },
        // `a-b`: inclusive; b past the end is cut to the end.
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a > b => RangeAsk::Whole,
            (Some(a), Some(_)) if a >= len => RangeAsk::Unsatisfiable,
            (Some(a), Some(b)) => RangeAsk::Part {
                start: a,
                len: b.min(len - 1) - a + 1,
            },
            _ => RangeAsk::Whole,
        },
        (true, true) => RangeAsk::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeAsk::*;

    #[test]
    fn the_three_forms() {
        assert_eq!(resolve(Some("bytes=0-9"), 100), Part { start: 0, len: 10 });
        assert_eq!(resolve(Some("bytes=90-"), 100), Part { start: 90, len: 10 });
        assert_eq!(resolve(Some("bytes=-10"), 100), Part { start: 90, len: 10 });
        assert_eq!(
            resolve(Some("bytes=-500"), 100),
            Part { start: 0, len: 100 }
        );
        assert_eq!(
            resolve(Some("bytes=95-200"), 100),
            Part { start: 95, len: 5 }
        );
        assert_eq!(
            resolve(Some("bytes=99-99"), 100),
            Part { start: 99, len: 1 }
        );
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(resolve(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=100-200"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(resolve(Some("bytes=-5"), 0), Unsatisfiable);
        assert_eq!(resolve(None, 100), Whole);
        assert_eq!(resolve(Some("items=0-1"), 100), Whole);
        assert_eq!(resolve(Some("bytes=0-1,5-6"), 100), Whole);
        assert_eq!(resolve(Some("bytes=5-1"), 100), Whole);
        assert_eq!(resolve(Some("bytes=x-1"), 100), Whole);
        assert_eq!(resolve(Some("bytes=-"), 100), Whole);
        assert_eq!(resolve(Some("bytes=+1-2"), 100), Whole);
    }
}
