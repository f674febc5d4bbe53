//! Buffers for the large pieces of `READ` replies, kept warm. A piece of up to
//! `STREAM_PIECE` (4 MiB) bytes is read into a buffer that is then sent as shared slices;
//! a new buffer of that size is a mapping of its own (the node's mmap threshold,
//! `alloc_tuning`), faulted in and zeroed page by page, and unmapped once sent — for every
//! piece. A piece's buffer goes back here when its reply has been written, and the next
//! piece is read into it. At most four are kept (16 MiB), so what the node holds idle stays
//! fixed; a piece that finds none takes a new buffer as before.
//!
//! The HTTP gateway's whole values ([`VALUES`]) are kept the same way: a value read in
//! place in its record's buffer (`Backend::read_column_whole_in`) is sent from it, and the
//! buffer comes back for the next GET — no copy of the value, no allocation per GET.

use std::ops::RangeInclusive;

use bytes::Bytes;
use parking_lot::Mutex;
use ringblob_backends::Backend;
use ringblob_engine::{Key, Range, Stamped};

use super::read_stream::STREAM_PIECE;

/// Reads of at least this many bytes take a kept buffer; smaller ones gain nothing from one.
pub const POOLED_FROM: u64 = 1 << 20;

/// Kept buffers.
pub struct PiecePool {
    kept: Mutex<Vec<Vec<u8>>>,
    /// How many are kept at most.
    keep: usize,
    /// Buffers of a capacity within this are kept (a piece's, not a stray larger one).
    capacity: RangeInclusive<usize>,
}

/// The node's pieces (every node of the process shares them): four.
pub static PIECES: PiecePool = PiecePool::new(4, (1 << 20)..=(STREAM_PIECE + (64 << 10)));

/// The gateway's whole values: records read with one `pread` (up to 256 KiB), as many as
/// GETs in flight commonly are (64: 4 MiB idle for 64 KiB values, 17 MiB at most).
pub static VALUES: PiecePool = PiecePool::new(64, (1 << 10)..=(264 << 10));

impl PiecePool {
    const fn new(keep: usize, capacity: RangeInclusive<usize>) -> Self {
        PiecePool {
            kept: Mutex::new(Vec::new()),
            keep,
            capacity,
        }
    }

    /// A kept buffer, or a new empty one.
    pub fn take(&self) -> Vec<u8> {
        self.kept.lock().pop().unwrap_or_default()
    }

    /// `data` as reply bytes; its buffer comes back here when they are dropped (if it is a
    /// piece's and fewer than the pool keeps are kept).
    pub fn bytes(&'static self, data: Vec<u8>) -> Bytes {
        if self.capacity.contains(&data.capacity()) {
            Bytes::from_owner(Piece { data, pool: self })
        } else {
            Bytes::from(data)
        }
    }

    /// `range` of (key, column) read as a piece: into a kept buffer when `pooled` and the
    /// range is at least [`POOLED_FROM`] bytes long, else into a new one.
    pub fn read(
        &self,
        b: &dyn Backend,
        (key, column): (&Key, u16),
        range: Range,
        pooled: bool,
    ) -> ringblob_backends::Result<Stamped> {
        match pooled && range.size.is_some_and(|n| n >= POOLED_FROM) {
            true => b.read_column_stamped_into(key, column, range, self.take()),
            false => b.read_column_stamped(key, column, range),
        }
    }

    fn give_back(&self, buffer: Vec<u8>) {
        let mut kept = self.kept.lock();
        if kept.len() < self.keep {
            kept.push(buffer);
        }
    }
}

/// A piece's bytes, whose buffer goes back to its pool when dropped.
struct Piece {
    data: Vec<u8>,
    pool: &'static PiecePool,
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_buffer_comes_back_once_its_bytes_are_dropped_and_at_most_four_are_kept() {
        static POOL: PiecePool = PiecePool::new(4, (1 << 20)..=(STREAM_PIECE + (64 << 10)));
        let pieces: Vec<Bytes> = (0..6u8)
            .map(|i| POOL.bytes(vec![i; STREAM_PIECE]))
            .collect();
        let slice = pieces[0].slice(10..20);
        assert_eq!(slice.as_ref(), &[0u8; 10]);
        drop(pieces);
        assert_eq!(POOL.kept.lock().len(), 4, "never more than four");
        drop(slice);
        assert_eq!(POOL.kept.lock().len(), 4);
        let reused = POOL.take();
        assert!(reused.capacity() >= STREAM_PIECE);
        assert_eq!(POOL.kept.lock().len(), 3);
        drop(POOL.bytes(vec![1; 100]));
        assert_eq!(POOL.kept.lock().len(), 3, "a small buffer is not kept");
        drop(POOL.bytes(reused));
        assert_eq!(POOL.kept.lock().len(), 4, "a taken buffer comes back");
    }
}
