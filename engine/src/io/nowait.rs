//! Serving without waiting: a thread may run engine calls in a mode where any file read
//! that would wait for the disk (data not in the page cache), and any write that would
//! leave memory (flushing the write buffer, starting a blob), is *refused* instead of
//! done. The caller — an async runtime thread serving what is already in memory, so that
//! it skips a hand-off to the blocking pool — learns that something was refused and runs
//! the whole call again where waiting is allowed (`docs/ARCHITECTURE.md`, "Serving
//! inline").
//!
//! A refused call must have changed nothing: reads change nothing, and the append path
//! checks [`refused`] and the buffer's room before it touches the log. The refusal is a
//! flag on the thread as well as an error, so a caller that swallows the error (treating an
//! unreadable record as absent, say) still cannot act on what it did not read.
//!
//! Real files read with `preadv2(RWF_NOWAIT)` (Linux ≥ 4.14), which fails with `EAGAIN`
//! rather than start disk IO; so do memory-mapped files in this mode (a page fault cannot
//! be refused). io_uring refuses every read in this mode; in-memory devices never wait.

use std::cell::Cell;
use std::io;

thread_local! {
    /// Whether this thread is serving without waiting.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// Whether something was refused since the mode began.
    static REFUSED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` in no-wait mode on this thread; returns its result and whether anything in it
/// was refused (in which case the result is to be thrown away and the call made again
/// where it may wait). Nested calls keep the outer mode.
pub fn without_waiting<T>(f: impl FnOnce() -> T) -> (T, bool) {
    let outer = ACTIVE.with(|a| a.replace(true));
    let outer_refused = REFUSED.with(|r| r.replace(false));
    let result = f();
    let refused = REFUSED.with(|r| r.replace(outer_refused || r.get()));
    ACTIVE.with(|a| a.set(outer));
    (result, refused)
}

/// Whether this thread is in no-wait mode.
#[inline]
pub fn active() -> bool {
    ACTIVE.with(Cell::get)
}

/// Whether something was refused since no-wait mode began on this thread.
#[inline]
pub fn refused() -> bool {
    active() && REFUSED.with(Cell::get)
}

/// Notes a refusal and returns the error that reports it (`WouldBlock`).
pub fn refuse(what: &str) -> io::Error {
    REFUSED.with(|r| r.set(true));
    io::Error::new(
        io::ErrorKind::WouldBlock,
        format!("{what} would wait; refused while serving without waiting"),
    )
}

/// `pread` of all of `buf` at `offset` from `fd` with `RWF_NOWAIT`: data not in the page
/// cache is refused (`EAGAIN`). A read past the end is `UnexpectedEof`, as `read_exact_at`.
#[allow(unsafe_code)]
pub fn read_exact_at_nowait(
    fd: std::os::fd::BorrowedFd<'_>,
    mut buf: &mut [u8],
    mut offset: u64,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    while !buf.is_empty() {
        let at = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: `iov` points at `buf`, which is valid for writes of `buf.len()` bytes for
        // the whole call; the kernel writes at most that many; `fd` is borrowed, so open.
        let n = unsafe { libc::preadv2(fd.as_raw_fd(), &iov, 1, at, libc::RWF_NOWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Err(refuse("a read from disk")),
                // An old kernel or a file system without RWF_NOWAIT: cannot tell.
                Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => {
                    return Err(refuse("a read (RWF_NOWAIT unsupported)"))
                }
                _ => return Err(e),
            }
        }
        let n = n as usize;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "failed to fill whole buffer",
            ));
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn a_cached_read_is_served_and_the_mode_nests_and_ends() {
        let mut f = tempfile::tempfile().unwrap_or_else(|e| panic!("{e}"));
        f.write_all(b"hello, cache")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 5];
        let (r, refused) = without_waiting(|| read_exact_at_nowait(f.as_fd(), &mut buf, 7));
        // Just written: in the page cache (or, on a file system without RWF_NOWAIT,
        // refused — never wrong bytes).
        match r {
            Ok(()) => {
                assert!(!refused);
                assert_eq!(&buf, b"cache");
            }
            Err(e) => {
                assert!(refused);
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
            }
        }
        let (eof, _) = without_waiting(|| read_exact_at_nowait(f.as_fd(), &mut buf, 10));
        let eof = eof.err().map(|e| e.kind());
        assert!(matches!(
            eof,
            Some(io::ErrorKind::UnexpectedEof | io::ErrorKind::WouldBlock)
        ));
        assert!(!active(), "the mode ends with the call");
        let ((), inner_refused) = without_waiting(|| {
            let ((), refused) = without_waiting(|| {
                refuse("test");
            });
            assert!(refused);
            assert!(active(), "the outer mode goes on");
        });
        assert!(inner_refused, "a refusal inside counts outside too");
        assert!(!super::refused());
    }
}
