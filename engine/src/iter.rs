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
    /// The blobs as they were when iteration began: a blob that defragmentation retires
    /// meanwhile stays readable through its still-open file.
    blobs: std::collections::BTreeMap<u32, Arc<crate::blob::Blob>>,
    locs: std::vec::IntoIter<Loc>,
    range: Option<(Key, Key)>,
    buf: Vec<u8>,
}

impl Iter {
    pub(crate) fn new(inner: Arc<Inner>, range: Option<(Key, Key)>) -> Self {
        let mut locs = inner.index.read().locations();
        locs.sort_unstable();
        let blobs = inner.blobs.read().clone();
        Iter {
            inner,
            blobs,
            locs: locs.into_iter(),
            range,
            buf: Vec::new(),
        }
    }
}

impl Iter {
    /// The record header at `offset`, through the engine, or through the snapshot's file
    /// handle when defragmentation retired the blob.
    fn read_header(&mut self, blob: u32, offset: u64) -> Result<()> {
        match self
            .inner
            .read_bytes(blob, offset, RECORD_HEADER_LEN, &mut self.buf)
        {
            Err(crate::Error::BlobRetired(id)) => {
                let b = self.blobs.get(&id).ok_or(crate::Error::BlobRetired(id))?;
                self.buf.resize(RECORD_HEADER_LEN, 0);
                b.file
                    .read_exact_at(&mut self.buf, offset)
                    .map_err(|e| crate::Error::io("read", crate::blob::blob_name(id), e))
            }
            other => other,
        }
    }
}

impl Iterator for Iter {
    type Item = Result<Meta>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(loc) = self.locs.next() {
            let offset = u64::from(loc.offset);
            let h = self
                .read_header(loc.blob, offset)
                .and_then(|()| RecordHeader::decode(&self.buf, loc.blob, offset));
            match h {
                Err(e) => return Some(Err(e)),
                Ok(h) => {
                    if let Some((from, to)) = &self.range {
                        if h.key < *from || h.key > *to {
                            continue;
                        }
                    }
                    // The record must be the one the index holds for the key it names: an
                    // index file that lists a record under another key (damaged, yet passing
                    // its checksum) must not make iteration disagree with reads.
                    let live = {
                        let index = self.inner.index.read();
                        index.candidates(index.tag(&h.key)).contains(&loc)
                    };
                    if !live {
                        continue;
                    }
                    return Some(Ok(Meta::from_header(&h, loc.blob, offset)));
                }
            }
        }
        None
    }
}
