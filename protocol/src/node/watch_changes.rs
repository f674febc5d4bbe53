//! What the dispatcher records for subscriptions (`subscriptions.rs`): a client's write or remove
//! (never a copy: `IF_NEWER` writes and removes are hand-over, repair and read repair),
//! completed (not an upload's `PREPARE` or `PART`), of a key someone watches; and for
//! namespace subscriptions, the object it was made through — the name record written, or
//! the one a remove takes away (read before the remove, only while namespaces are watched).

use std::sync::Arc;

use bytes::Bytes;
use ringblob_backends::names::{NameRecord, NAME_COLUMN};
use ringblob_backends::Backend;
use ringblob_engine::Key;

use super::info::NodeInfo;
use super::output::Output;
use super::subscriptions::{Change, Named};
use crate::wire::{NoteKind, RemoveRequest, WriteMode, WriteRequest};

/// Records a write that was applied.
pub fn written(info: &NodeInfo, out: &mut Output, key: &Key, w: &WriteRequest, size: u64) {
    let completes = !matches!(w.mode, WriteMode::Prepare { .. } | WriteMode::Part { .. });
    let record = w.column == NAME_COLUMN;
    if w.if_newer.is_some() || !completes || !info.watches.wants(&key.0, record) {
        return;
    }
    let named = match (record, &w.mode) {
        (true, WriteMode::Whole) => NameRecord::decode(&w.data).ok().map(named),
        _ => None,
    };
    out.record_change(Change {
        kind: NoteKind::Write,
        key: key.0,
        column: w.column,
        whole_key: false,
        size,
        named,
    });
}

/// The object a remove is about to take away, if namespaces are watched and the remove
/// takes its name record.
pub fn before_remove(
    b: &dyn Backend,
    info: &NodeInfo,
    key: &Key,
    r: &RemoveRequest,
) -> Option<Arc<Named>> {
    let takes_record = r.column.is_none_or(|c| c == NAME_COLUMN);
    if r.if_newer.is_some() || !takes_record || !info.watches.watches_namespaces() {
        return None;
    }
    let bytes = b
        .read_column(key, NAME_COLUMN, ringblob_engine::Range::all())
        .ok()?;
    NameRecord::decode(&bytes).ok().map(named)
}

/// Records a remove that was applied.
pub fn removed(
    info: &NodeInfo,
    out: &mut Output,
    key: &Key,
    r: &RemoveRequest,
    named: Option<Arc<Named>>,
) {
    if r.if_newer.is_some() || !info.watches.wants(&key.0, named.is_some()) {
        return;
    }
    out.record_change(Change {
        kind: NoteKind::Remove,
        key: key.0,
        column: r.column.unwrap_or(0),
        whole_key: r.column.is_none(),
        size: 0,
        named,
    });
}

fn named(record: NameRecord) -> Arc<Named> {
    Arc::new(Named {
        namespace: record.namespace,
        name: Bytes::from(record.name),
        size: record.size,
        attrs: record.attrs,
    })
}
