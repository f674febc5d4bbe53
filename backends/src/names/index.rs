//! The name index: per namespace, the names this node holds a name record for, sorted
//! bytewise (a name's key is derived from its namespace and name, so it is not kept). Lives in memory, rebuilt from the name records when the
//! backend opens ([`super::NamedBackend`]). An entry is a hint, checked against the
//! backend when listed: a name whose record is gone is dropped then, so a race between a
//! write and a remove can leave a stale entry for a moment but never hide a live name.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use ringblob_engine::Key;

/// Names of one namespace, sorted.
type Space = BTreeSet<Box<[u8]>>;

/// The index. Lock order: `state`, then nothing (backend calls are made without it, except
/// the liveness probe in [`NameIndex::forget_unless`]).
#[derive(Default)]
pub struct NameIndex {
    state: Mutex<State>,
    loaded: Condvar,
}

#[derive(Default)]
struct State {
    spaces: BTreeMap<String, Space>,
    names: usize,
    name_bytes: usize,
    loaded: bool,
    load_error: Option<String>,
}

/// What the index holds, for STAT and the README's cost figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct NameIndexStats {
    pub namespaces: usize,
    pub names: usize,
    /// Bytes of the names themselves (namespaces and names), without map overhead.
    pub name_bytes: usize,
    pub loaded: bool,
}

impl NameIndex {
    /// Adds (or keeps) `name` of `namespace`.
    pub fn insert(&self, namespace: &str, name: &[u8]) {
        let mut s = self.state.lock();
        let space = match s.spaces.get_mut(namespace) {
            Some(space) => space,
            None => s.spaces.entry(namespace.to_string()).or_default(),
        };
        if space.insert(name.into()) {
            s.names += 1;
            s.name_bytes += name.len();
        }
    }

    /// Drops `name` of `namespace` unless `live()` (asked under the index lock, so no
    /// insert can come between) says its record is there.
    pub fn forget_unless(&self, namespace: &str, name: &[u8], live: impl FnOnce() -> bool) {
        let mut s = self.state.lock();
        let Some(space) = s.spaces.get_mut(namespace) else {
            return;
        };
        if !space.contains(name) || live() {
            return;
        }
        space.remove(name);
        if space.is_empty() {
            s.spaces.remove(namespace);
        }
        s.names -= 1;
        s.name_bytes -= name.len();
    }

    /// Up to `limit` (name, key) pairs of `namespace` after `after` (or from the start)
    /// whose names begin with `prefix`, in name order.
    pub fn candidates(
        &self,
        namespace: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Key)> {
        let s = self.state.lock();
        let Some(space) = s.spaces.get(namespace) else {
            return Vec::new();
        };
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        space
            .range::<[u8], _>((start, Bound::Unbounded))
            .take_while(|name| name.starts_with(prefix))
            .take(limit)
            .map(|name| (name.to_vec(), Key::from_name(namespace.as_bytes(), name)))
            .collect()
    }

    /// Up to `limit` namespaces after `after` (or from the start), in order.
    pub fn namespaces(&self, after: Option<&str>, limit: usize) -> Vec<String> {
        let s = self.state.lock();
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        s.spaces
            .range::<str, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|(ns, _)| ns.clone())
            .collect()
    }

    /// Marks the index complete (or failed to load, with why).
    pub fn finish_loading(&self, error: Option<String>) {
        let mut s = self.state.lock();
        s.loaded = true;
        s.load_error = error;
        self.loaded.notify_all();
    }

    /// Waits up to `timeout` for the index to be loaded: `Ok(())`, or why it is not usable —
    /// still loading (`Busy`: try again), or its load failed (`Internal`: this node cannot
    /// list until it is restarted; a listing then takes another group).
    pub fn wait_loaded(&self, timeout: Duration) -> crate::Result<()> {
        let mut s = self.state.lock();
        if !s.loaded {
            let _ = self.loaded.wait_for(&mut s, timeout);
        }
        match (&s.loaded, &s.load_error) {
            (true, None) => Ok(()),
            (true, Some(e)) => Err(crate::Error::Internal(format!(
                "the name index failed to load ({e}); this node cannot list names until it is restarted"
            ))),
            (false, _) => Err(crate::Error::Busy(
                "the name index is still loading; try again".into(),
            )),
        }
    }

    pub fn stats(&self) -> NameIndexStats {
        let s = self.state.lock();
        NameIndexStats {
            namespaces: s.spaces.len(),
            names: s.names,
            name_bytes: s.name_bytes + s.spaces.keys().map(String::len).sum::<usize>(),
            loaded: s.loaded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn candidates_follow_prefix_and_after() -> TestResult {
        let ix = NameIndex::default();
        for n in ["a/1", "a/2", "a/3", "b/1", "ab"] {
            ix.insert("ns", n.as_bytes());
        }
        ix.insert("other", b"a/1");
        let names = |c: Vec<(Vec<u8>, Key)>| {
            c.into_iter()
                .map(|(n, _)| String::from_utf8_lossy(&n).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(ix.candidates("ns", b"a/", None, 10)),
            ["a/1", "a/2", "a/3"]
        );
        assert_eq!(names(ix.candidates("ns", b"a/", Some(b"a/1"), 1)), ["a/2"]);
        assert_eq!(
            names(ix.candidates("ns", b"", Some(b"a/3"), 10)),
            ["ab", "b/1"]
        );
        assert_eq!(names(ix.candidates("ns", b"b", Some(b"a"), 10)), ["b/1"]);
        assert!(ix.candidates("none", b"", None, 10).is_empty());
        assert_eq!(ix.namespaces(None, 10), ["ns", "other"]);
        assert_eq!(ix.namespaces(Some("ns"), 10), ["other"]);
        assert_eq!(ix.stats().names, 6);
        Ok(())
    }

    #[test]
    fn forget_only_a_dead_entry() -> TestResult {
        let ix = NameIndex::default();
        ix.insert("", b"x");
        ix.forget_unless("", b"y", || false);
        ix.forget_unless("", b"x", || true);
        assert_eq!(ix.stats().names, 1);
        ix.forget_unless("", b"x", || false);
        assert_eq!(ix.stats(), NameIndexStats::default());
        Ok(())
    }

    #[test]
    fn waiting_reports_loading_and_failure() -> TestResult {
        let ix = NameIndex::default();
        let loading = ix.wait_loaded(Duration::from_millis(1));
        assert!(matches!(loading, Err(crate::Error::Busy(_))), "{loading:?}");
        ix.finish_loading(Some("disk".into()));
        match ix.wait_loaded(Duration::ZERO) {
            Err(crate::Error::Internal(why)) => assert!(why.contains("disk"), "{why}"),
            other => return Err(format!("expected a failed load: {other:?}").into()),
        }
        ix.finish_loading(None);
        ix.wait_loaded(Duration::ZERO)?;
        Ok(())
    }
}
