//! Conditional requests (RFC 9110 §13): `If-Match`, `If-None-Match`,
//! `If-Unmodified-Since` and `If-Modified-Since`, evaluated in the RFC's order against the
//! current representation's entity tag and modification time (whole seconds, as HTTP dates
//! carry them).

use std::time::{Duration, SystemTime};

/// The representation a precondition is evaluated against (`None`: there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// The strong entity tag, quoted.
    pub etag: String,
    pub modified: SystemTime,
}

/// What to do about the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// 304: a GET or HEAD whose cached copy is current.
    NotModified,
    /// 412.
    Failed,
}

/// The conditional headers of a request.
#[derive(Debug, Clone, Default)]
pub struct Conditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
}

impl Conditions<'_> {
    /// Evaluates the conditions for a request that reads (`GET`/`HEAD`) or not.
    pub fn evaluate(&self, current: Option<&Current>, reads: bool) -> Verdict {
        if let Some(list) = self.if_match {
            if !matches_any(list, current, false) {
                return Verdict::Failed;
            }
        } else if let (Some(date), Some(cur)) = (self.if_unmodified_since, current) {
            if let Some(since) = parse_date(date) {
                if whole_seconds(cur.modified) > since {
                    return Verdict::Failed;
                }
            }
        }
        if let Some(list) = self.if_none_match {
            if matches_any(list, current, true) {
                return if reads {
                    Verdict::NotModified
                } else {
                    Verdict::Failed
                };
            }
        } else if let (true, Some(date), Some(cur)) = (reads, self.if_modified_since, current) {
            if let Some(since) = parse_date(date) {
                if whole_seconds(cur.modified) <= since {
                    return Verdict::NotModified;
                }
            }
        }
        Verdict::Proceed
    }
}

/// Whether a comma-separated entity-tag list (or `*`) matches the current representation;
/// `weak` compares weakly (If-None-Match), otherwise strongly (If-Match).
fn matches_any(list: &str, current: Option<&Current>, weak: bool) -> bool {
    let Some(cur) = current else {
        return false;
    };
    if list.trim() == "*" {
        return true;
    }
    list.split(',')
        .map(str::trim)
        .any(|tag| match tag.strip_prefix("W/") {
            Some(opaque) => weak && opaque == cur.etag,
            None => tag == cur.etag,
        })
}

/// Whether a `Range` is to be served given `If-Range` (RFC 9110 §13.1.5): always without
/// one; with an entity tag, only if it strongly matches the current one; with a date, only
/// if it is exactly the current value's modification time. Otherwise the whole value is
/// sent (200).
pub fn range_applies(if_range: Option<&str>, current: &Current) -> bool {
    let Some(condition) = if_range.map(str::trim) else {
        return true;
    };
    if condition.starts_with('"') || condition.starts_with("W/") {
        return condition == current.etag;
    }
    parse_date(condition).is_some_and(|date| date == whole_seconds(current.modified))
}

fn parse_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

/// `t` without its fraction of a second.
pub fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_range_serves_the_range_only_for_the_current_value() {
        let c = cur();
        assert!(range_applies(None, &c));
        assert!(range_applies(Some(&c.etag), &c));
        assert!(!range_applies(Some("\"other\""), &c));
        assert!(!range_applies(Some(&format!("W/{}", c.etag)), &c));
        let date = httpdate::fmt_http_date(c.modified);
        assert!(range_applies(Some(&date), &c));
        let earlier = httpdate::fmt_http_date(c.modified - Duration::from_secs(5));
        assert!(!range_applies(Some(&earlier), &c));
        assert!(!range_applies(Some("not a date"), &c));
    }

    fn cur() -> Current {
        Current {
            etag: "\"abc\"".into(),
            modified: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_500),
        }
    }

    const AT: &str = "Tue, 14 Nov 2023 22:13:20 GMT"; // 1_700_000_000 s
    const BEFORE: &str = "Tue, 14 Nov 2023 22:13:19 GMT";

    #[test]
    fn entity_tags() {
        let c = cur();
        let with = |m: Option<&'static str>, n: Option<&'static str>| Conditions {
            if_match: m,
            if_none_match: n,
            ..Conditions::default()
        };
        assert_eq!(
            with(Some("\"abc\""), None).evaluate(Some(&c), true),
            Verdict::Proceed
        );
        assert_eq!(
            with(Some("\"x\", \"abc\""), None).evaluate(Some(&c), false),
            Verdict::Proceed
        );
        assert_eq!(
            with(Some("W/\"abc\""), None).evaluate(Some(&c), true),
            Verdict::Failed
        );
        assert_eq!(
            with(Some("\"x\""), None).evaluate(Some(&c), true),
            Verdict::Failed
        );
        assert_eq!(with(Some("*"), None).evaluate(None, false), Verdict::Failed);
        assert_eq!(
            with(None, Some("\"abc\"")).evaluate(Some(&c), true),
            Verdict::NotModified
        );
        assert_eq!(
            with(None, Some("W/\"abc\"")).evaluate(Some(&c), true),
            Verdict::NotModified
        );
        assert_eq!(
            with(None, Some("*")).evaluate(Some(&c), false),
            Verdict::Failed
        );
        assert_eq!(
            with(None, Some("*")).evaluate(None, false),
            Verdict::Proceed
        );
        assert_eq!(
            with(None, Some("\"x\"")).evaluate(Some(&c), true),
            Verdict::Proceed
        );
    }

    #[test]
    fn dates_compare_in_whole_seconds() {
        let c = cur();
        let since = |d: &'static str| Conditions {
            if_modified_since: Some(d),
            ..Conditions::default()
        };
        assert_eq!(since(AT).evaluate(Some(&c), true), Verdict::NotModified);
        assert_eq!(since(BEFORE).evaluate(Some(&c), true), Verdict::Proceed);
        assert_eq!(since("garbage").evaluate(Some(&c), true), Verdict::Proceed);
        assert_eq!(since(AT).evaluate(Some(&c), false), Verdict::Proceed);
        let unmodified = |d: &'static str| Conditions {
            if_unmodified_since: Some(d),
            ..Conditions::default()
        };
        assert_eq!(unmodified(AT).evaluate(Some(&c), false), Verdict::Proceed);
        assert_eq!(
            unmodified(BEFORE).evaluate(Some(&c), false),
            Verdict::Failed
        );
        // If-None-Match wins over If-Modified-Since.
        let both = Conditions {
            if_none_match: Some("\"x\""),
            if_modified_since: Some(AT),
            ..Conditions::default()
        };
        assert_eq!(both.evaluate(Some(&c), true), Verdict::Proceed);
    }
}
