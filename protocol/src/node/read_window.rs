//! How much a connection reads from its socket at once.

use bytes::BytesMut;

/// How much a connection reads at once. A client that pipelines — a gateway's or an async
/// client's one connection with many requests in flight — has more frames waiting than one
/// small read takes, and every batch of writes costs a sync: reading what is waiting as one
/// batch lets one sync serve them all. The window doubles while reads fill it (up to
/// [`ReadWindow::MAX`]) and halves when they do not; an idle connection's buffer shrinks
/// back to [`ReadWindow::MIN`].
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadWindow(usize);

impl Default for ReadWindow {
    fn default() -> Self {
        ReadWindow(ReadWindow::MIN)
    }
}

impl ReadWindow {
    pub(super) const MIN: usize = 64 << 10;
    pub(super) const MAX: usize = 1 << 20;

    /// Reserves room for the next read in `buf`; returns the room it has.
    pub(super) fn make_room(&self, buf: &mut BytesMut) -> usize {
        if buf.is_empty() && self.0 == Self::MIN && buf.capacity() > 2 * Self::MIN {
            // A wide window or a long frame grew it, and reads are small again: let it go.
            *buf = BytesMut::with_capacity(Self::MIN);
        }
        if buf.capacity() - buf.len() < self.0 {
            buf.reserve(self.0);
        }
        buf.capacity() - buf.len()
    }

    /// A read of `n` bytes into `room`.
    pub(super) fn read(&mut self, n: usize, room: usize) {
        self.0 = if n >= room {
            (self.0 * 2).min(Self::MAX)
        } else if n < self.0 / 4 {
            (self.0 / 2).max(Self::MIN)
        } else {
            self.0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_doubles_while_reads_fill_it_and_halves_when_they_do_not() {
        let mut w = ReadWindow::default();
        let mut buf = BytesMut::new();
        let room = w.make_room(&mut buf);
        assert!(room >= ReadWindow::MIN);
        w.read(room, room);
        assert_eq!(w.0, 2 * ReadWindow::MIN);
        for _ in 0..10 {
            w.read(1, 1);
        }
        assert_eq!(w.0, ReadWindow::MAX, "never past the largest");
        let mut buf = BytesMut::new();
        assert!(w.make_room(&mut buf) >= ReadWindow::MAX);
        w.read(ReadWindow::MAX / 2, ReadWindow::MAX);
        assert_eq!(w.0, ReadWindow::MAX, "a read of half the window keeps it");
        for _ in 0..10 {
            w.read(10, ReadWindow::MAX);
        }
        assert_eq!(w.0, ReadWindow::MIN, "never under the smallest");
    }

    #[test]
    fn an_idle_buffer_is_given_back_once_reads_are_small_again() {
        let w = ReadWindow::default();
        let mut buf = BytesMut::with_capacity(4 * ReadWindow::MAX);
        let room = w.make_room(&mut buf);
        assert!(
            (ReadWindow::MIN..2 * ReadWindow::MIN).contains(&room),
            "{room}"
        );
        // A partial frame is kept whatever its size.
        let mut partial = BytesMut::with_capacity(4 * ReadWindow::MAX);
        partial.extend_from_slice(b"part of a frame");
        assert!(w.make_room(&mut partial) >= 4 * ReadWindow::MAX - 15);
        assert_eq!(&partial[..], b"part of a frame");
    }
}
