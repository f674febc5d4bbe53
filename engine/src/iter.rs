//! Iteration over live values: a snapshot of the index's locations, read in disk order.

use std::sync::Arc;

use crate::engine::{Inner, Meta};
use crate::error::Result;
use crate::format::record::{RecordHeader, RECORD_HEADER_LEN};
use crate::index::Loc;
use crate::key::Key;

/// Yields `(key, meta)` for every value that was live when iteration began (a key written
/// again meanwhile may show its older value). Keys may be limited to an inclusive range.
pub struct Iter {
    inner: Arc<Inner>,
    locs: std::vec::IntoIter<Loc>,
    range: Option<(Key, Key)>,
    buf: Vec<u8>,
}

impl Iter {
    pub(crate) fn new(inner: Arc<Inner>, range: Option<(Key, Key)>) -> Self {
        let mut locs = inner.index.read().locations();
        locs.sort_unstable();
        Iter {
            inner,
            locs: locs.into_iter(),
            range,
            buf: Vec::new(),
        }
    }
}

impl Iterator for Iter {
    type Item = Result<Meta>;

    fn next(&mut self) -> Option<Self::Item> {
        for loc in self.locs.by_ref() {
            let offset = u64::from(loc.offset);
            let h = self
                .inner
                .read_bytes(loc.blob, offset, RECORD_HEADER_LEN, &mut self.buf)
                .and_then(|()| RecordHeader::decode(&self.buf, loc.blob, offset));
            match h {
                Err(e) => return Some(Err(e)),
                Ok(h) => {
                    if let Some((from, to)) = &self.range {
                        if h.key < *from || h.key > *to {
                            continue;
                        }
                    }
                    return Some(Ok(Meta::from_header(&h, loc.blob, offset)));
                }
            }
        }
        None
    }
}
