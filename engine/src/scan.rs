//! Sequential scanning of a blob file: every record in order, each checked, with
//! resynchronisation past damage so one bad record costs one record.

use std::io;

use crate::error::{Error, Result};
use crate::format::frame_walk::{FrameSource, Frames, InRecord, RecordPlace};
use crate::format::record::{
    FrameEntry, FrameTable, RecordHeader, RECORD_HEADER_LEN, RECORD_MAGIC,
};
use crate::io::DeviceFile;

/// How much a scan checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Header only (for files this process wrote and synced).
    Headers,
    /// Header, frame table and every frame's CRC.
    Everything,
}

/// One step of a scan.
#[derive(Debug)]
pub enum ScanItem {
    /// A record that passed the checks.
    Record { offset: u64, header: RecordHeader },
    /// Bytes at `offset` that are not a valid record; `next` is the next valid record, if any.
    /// `header` is the record's header when it is intact (only the body is damaged or cut
    /// off) or one flipped bit away from intact: then the damaged record's key is known.
    Damaged {
        offset: u64,
        error: Error,
        next: Option<u64>,
        header: Option<RecordHeader>,
    },
}

const WINDOW: usize = 4 << 20;

/// The outcome of checking one position.
enum Checked {
    Good(RecordHeader),
    /// Not a valid record header; `Some` the header it was one flipped bit ago.
    BadHeader(Error, Option<RecordHeader>),
    /// A valid header whose record is cut off or whose body fails its checks.
    BadBody(RecordHeader, Error),
}

/// Scans `[start, end)` of a blob.
pub struct Scanner<'a> {
    file: &'a dyn DeviceFile,
    blob: u32,
    pos: u64,
    end: u64,
    check: Check,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'a> Scanner<'a> {
    pub fn new(file: &'a dyn DeviceFile, blob: u32, start: u64, end: u64, check: Check) -> Self {
        Scanner {
            file,
            blob,
            pos: start,
            end,
            check,
            buf: Vec::new(),
            buf_start: start,
        }
    }

    /// Where the scan stands.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Up to `n` bytes at `at` (fewer only at the end of the range).
    fn bytes(&mut self, at: u64, n: usize) -> io::Result<&[u8]> {
        let have_end = self.buf_start + self.buf.len() as u64;
        if at < self.buf_start || at + n as u64 > have_end {
            let want = (self.end - at).min(n.max(WINDOW) as u64) as usize;
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, at)?;
            self.buf_start = at;
        }
        let from = (at - self.buf_start) as usize;
        let to = (from + n).min(self.buf.len());
        Ok(&self.buf[from..to])
    }

    /// Checks the record at `at`.
    fn check_at(&mut self, at: u64) -> Result<Checked> {
        let (blob, end, check) = (self.blob, self.end, self.check);
        let head = self
            .bytes(at, RECORD_HEADER_LEN)
            .map_err(|e| io_err(e, blob))?;
        let h = match RecordHeader::decode(head, blob, at) {
            Ok(h) => h,
            Err(e) => {
                let repaired = RecordHeader::repaired_one_bit(head, blob, at);
                return Ok(Checked::BadHeader(e, repaired));
            }
        };
        if at + h.record_len() > end {
            let e = Error::Truncated {
                what: "record",
                offset: at,
                need: h.record_len(),
                have: end - at,
            };
            return Ok(Checked::BadBody(h, e));
        }
        if check == Check::Everything {
            let checked = if h.record_len() <= WINDOW as u64 {
                let rec = self
                    .bytes(at, h.record_len() as usize)
                    .map_err(|e| io_err(e, blob))?;
                check_frames(&h, rec, blob, at)
            } else {
                check_frames_in_file(self.file, &h, blob, at)
            };
            match checked {
                Ok(()) => {}
                Err(e @ Error::Io { .. }) => return Err(e),
                Err(e) => return Ok(Checked::BadBody(h, e)),
            }
        }
        Ok(Checked::Good(h))
    }

    /// The next valid record at or after `from`.
    fn resync(&mut self, from: u64) -> Result<Option<u64>> {
        let magic = RECORD_MAGIC.to_le_bytes();
        let mut at = from;
        while at + RECORD_HEADER_LEN as u64 <= self.end {
            let blob = self.blob;
            let chunk = self.bytes(at, WINDOW).map_err(|e| io_err(e, blob))?;
            let found = chunk.windows(4).position(|w| w == magic);
            match found {
                Some(i) => {
                    let cand = at + i as u64;
                    if matches!(self.check_at(cand)?, Checked::Good(_)) {
                        return Ok(Some(cand));
                    }
                    at = cand + 1;
                }
                None => at += chunk.len().saturating_sub(3).max(1) as u64,
            }
        }
        Ok(None)
    }
}

impl Iterator for Scanner<'_> {
    type Item = Result<ScanItem>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let at = self.pos;
        Some(match self.check_at(at) {
            Err(e) => {
                self.pos = self.end;
                Err(e)
            }
            Ok(Checked::Good(header)) => {
                self.pos = at + header.record_len();
                Ok(ScanItem::Record { offset: at, header })
            }
            // The header is intact, so its length is trusted: a record cut off by the end of
            // the file is a torn tail, and a damaged body is skipped whole, never searched
            // for record images (a value may itself contain a blob file).
            Ok(Checked::BadBody(h, error)) => {
                let after = at + h.record_len();
                let next = if after > self.end {
                    Ok(None)
                } else {
                    self.resync(after)
                };
                self.damaged(at, error, next, Some(h))
            }
            // A header one flipped bit from intact is as good as intact (the flip is the only
            // one CRC-32 allows), so the record is skipped whole by its length, like a
            // damaged body. Any other damaged header: search from the next byte.
            Ok(Checked::BadHeader(error, repaired)) => {
                let after = repaired.map(|h| at + h.record_len());
                let next = match after {
                    Some(after) if after > self.end => Ok(None),
                    Some(after) => self.resync(after),
                    None => self.resync(at + 1),
                };
                self.damaged(at, error, next, repaired)
            }
        })
    }
}

impl Scanner<'_> {
    /// The damage item for `at`, moving on to `next` (the end when none).
    fn damaged(
        &mut self,
        at: u64,
        error: Error,
        next: Result<Option<u64>>,
        header: Option<RecordHeader>,
    ) -> Result<ScanItem> {
        let next = next?;
        self.pos = next.unwrap_or(self.end);
        Ok(ScanItem::Damaged {
            offset: at,
            error,
            next,
            header,
        })
    }
}

/// Checks the frame table and the CRC of every frame stored in the whole record `rec`.
/// A patch's kept frames are frames of earlier records of the blob, checked with them.
pub fn check_frames(h: &RecordHeader, rec: &[u8], blob: u32, offset: u64) -> Result<()> {
    let table = FrameTable::decode(h, rec.get(RECORD_HEADER_LEN..).unwrap_or(&[]), blob, offset)?;
    let frames = Frames {
        h,
        table: &table,
        place: RecordPlace { blob, offset },
    };
    frames.walk_all(&mut InRecord::new(rec, h), &mut |_, _, _| Ok(()))
}

/// [`check_frames`] for a record too large to read whole: its frame table, then its frames
/// a group of at most [`WINDOW`] bytes at a time, so a record of any size is checked in
/// bounded memory.
fn check_frames_in_file(
    file: &dyn DeviceFile,
    h: &RecordHeader,
    blob: u32,
    offset: u64,
) -> Result<()> {
    let table_at = offset + RECORD_HEADER_LEN as u64;
    let mut buf = vec![0u8; h.table_len()];
    file.read_exact_at(&mut buf, table_at)
        .map_err(|e| io_err(e, blob))?;
    let table = FrameTable::decode(h, &buf, blob, offset)?;
    let frames = Frames {
        h,
        table: &table,
        place: RecordPlace { blob, offset },
    };
    let mut src = InFile {
        file,
        blob,
        area_at: table_at + h.table_len() as u64,
        buf,
    };
    frames.walk_all(&mut src, &mut |_, _, _| Ok(()))
}

/// A record's own frames read from its blob file a group at a time; frames a patch keeps
/// from an earlier record are passed by (checked with that record).
struct InFile<'a> {
    file: &'a dyn DeviceFile,
    blob: u32,
    area_at: u64,
    buf: Vec<u8>,
}

impl FrameSource for InFile<'_> {
    fn group_limit(&self) -> u64 {
        WINDOW as u64
    }

    fn own(&mut self, from: u64, len: u64) -> Result<&[u8]> {
        self.buf.resize(len as usize, 0);
        self.file
            .read_exact_at(&mut self.buf, self.area_at + from)
            .map_err(|e| io_err(e, self.blob))?;
        Ok(&self.buf)
    }

    fn kept(&mut self, _: FrameEntry, _: u64) -> Result<Option<&[u8]>> {
        Ok(None)
    }
}

fn io_err(e: io::Error, blob: u32) -> Error {
    Error::io("read", crate::blob::blob_name(blob), e)
}
