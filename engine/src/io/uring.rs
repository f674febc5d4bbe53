//! A device whose file reads, writes and fdatasyncs go through io_uring; lengths, truncation
//! and directory operations are [`OsDevice`]'s (plain syscalls).
//!
//! Each operation is submitted alone and waited for (queue depth 1): the engine's calls are
//! synchronous. A few rings (one per CPU, at most [`MAX_RINGS`]) each sit behind a mutex;
//! a thread takes a free one, so concurrent readers do not queue behind one ring.
//!
//! # Why the submissions are sound
//! An SQE holds raw pointers to the caller's buffer. We hold the ring's lock from the push
//! until this operation's completion has been reaped, and the kernel posts exactly one
//! completion for every SQE it consumed, so the buffer (borrowed for the whole call) and the
//! file descriptor (owned by the handle) outlive the operation. An SQE the kernel did not
//! consume is destroyed with its ring before we return.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use io_uring::{opcode, squeue, types, IoUring, Probe};
use parking_lot::{Mutex, MutexGuard};

use super::{Device, DeviceFile, DirLock, OpenMode, OsDevice};

/// Submission queue entries per ring; only one is ever in flight.
const RING_ENTRIES: u32 = 4;
/// Upper bound on the rings per device.
pub const MAX_RINGS: usize = 8;
/// Bytes per read or write SQE (a 32-bit length; the kernel caps one IO near 2 GiB anyway).
const MAX_IO_BYTES: usize = 1 << 30;
/// `io_uring_enter` failures tolerated for an SQE still in the queue before giving up.
const MAX_ENTER_RETRIES: u32 = 100;

/// One ring and the tag for its next operation.
struct Ring {
    ring: IoUring,
    next_tag: u64,
}

/// A slot is `None` after a failure left it unusable; it is rebuilt on next use.
struct Rings {
    slots: Box<[Mutex<Option<Ring>>]>,
}

/// Creates a ring and checks the kernel supports every opcode we use (Linux ≥ 5.6).
fn new_ring() -> io::Result<Ring> {
    let ring = IoUring::new(RING_ENTRIES)?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    let ops = [opcode::Read::CODE, opcode::Write::CODE, opcode::Fsync::CODE];
    if let Some(op) = ops.iter().find(|&&op| !probe.is_supported(op)) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("io_uring opcode {op} not supported by this kernel"),
        ));
    }
    Ok(Ring { ring, next_tag: 0 })
}

thread_local! {
    /// The ring slot this thread tries first.
    static HOME_SLOT: Cell<Option<usize>> = const { Cell::new(None) };
}

fn home_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    HOME_SLOT.with(|s| {
        *s.get()
            .get_or_insert_with(|| NEXT.fetch_add(1, Ordering::Relaxed))
    })
}

/// Whether `io_uring_enter` may succeed if called again.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
    )
}

impl Rings {
    fn new() -> io::Result<Rings> {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_RINGS));
        let slots = (0..n)
            .map(|_| new_ring().map(|r| Mutex::new(Some(r))))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Rings {
            slots: slots.into_boxed_slice(),
        })
    }

    /// A free ring if there is one, else this thread's home ring once it is free.
    fn slot(&self) -> MutexGuard<'_, Option<Ring>> {
        let n = self.slots.len();
        let home = home_slot() % n;
        for i in 0..n {
            if let Some(guard) = self.slots[(home + i) % n].try_lock() {
                return guard;
            }
        }
        self.slots[home].lock()
    }

    /// Submits `sqe` and waits for its completion; returns the result (≥ 0) or the error.
    ///
    /// # Safety
    /// Every buffer and file descriptor `sqe` points to must stay valid until this returns.
    #[allow(unsafe_code)]
    unsafe fn submit_wait(&self, sqe: squeue::Entry) -> io::Result<u32> {
        let mut slot = self.slot();
        if slot.is_none() {
            *slot = Some(new_ring()?);
        }
        let Some(r) = slot.as_mut() else {
            return Err(io::Error::other("io_uring ring unavailable"));
        };
        r.next_tag = r.next_tag.wrapping_add(1);
        let tag = r.next_tag;
        // SAFETY: the caller keeps the buffers and fd of `sqe` valid until we return, and we
        // return only after reaping this SQE's completion (`complete`) or after destroying
        // the ring while the SQE was still unconsumed in its queue (`slot.take()` below).
        let pushed = unsafe { r.ring.submission().push(&sqe.user_data(tag)) };
        if pushed.is_err() {
            // Cannot happen: every earlier SQE was waited for. Drop the ring to be sure.
            slot.take();
            return Err(io::Error::other("io_uring submission queue full"));
        }
        match complete(&mut r.ring, tag) {
            Ok(res) => u32::try_from(res).map_err(|_| io::Error::from_raw_os_error(-res)),
            Err(e) => {
                // `complete` gives up only while the SQE is still unconsumed in the queue:
                // drop the ring so it is never submitted.
                slot.take();
                Err(e)
            }
        }
    }
}

/// Waits for the completion tagged `tag`. Returns an error only while that SQE is still in
/// the submission queue, never after the kernel has consumed it (it owes us a completion).
fn complete(ring: &mut IoUring, tag: u64) -> io::Result<i32> {
    let mut failures = 0u32;
    loop {
        if let Err(e) = ring.submit_and_wait(1) {
            let queued = !ring.submission().is_empty();
            failures += 1;
            if queued && (!transient(&e) || failures > MAX_ENTER_RETRIES) {
                return Err(e);
            }
            if failures > 16 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // Only this ring's lock holder submits, one SQE at a time: the queue holds no other
        // operation's completion, but skip strangers rather than trust that.
        for cqe in ring.completion() {
            if cqe.user_data() == tag {
                return Ok(cqe.result());
            }
        }
    }
}

/// A directory on the local file system with file IO through io_uring.
#[derive(Clone)]
pub struct UringDevice {
    os: OsDevice,
    rings: Arc<Rings>,
}

impl UringDevice {
    /// The directory at `root`, created if missing; fails if the kernel refuses io_uring.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        Self::new(OsDevice::open(root)?)
    }

    /// io_uring file IO over `os`'s directory. An error means the kernel refused io_uring
    /// (seccomp, `ENOSYS`, `EPERM`, `kernel.io_uring_disabled`, or a kernel older than 5.6).
    pub fn new(os: OsDevice) -> io::Result<Self> {
        Ok(UringDevice {
            os,
            rings: Arc::new(Rings::new()?),
        })
    }
}

struct UringFile {
    file: File,
    rings: Arc<Rings>,
}

/// Rejects offsets io_uring would take as "the current file position" (-1) or overflow.
fn check_offset(offset: u64, len: usize) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= i64::MAX as u64 => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("offset {offset} + {len} bytes is out of range"),
        )),
    }
}

impl UringFile {
    fn fd(&self) -> types::Fd {
        types::Fd(self.file.as_raw_fd())
    }

    /// One read of up to `buf.len()` bytes (capped at [`MAX_IO_BYTES`]); 0 at end of file.
    #[allow(unsafe_code)]
    fn read_once(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let len = buf.len().min(MAX_IO_BYTES) as u32;
        let sqe = opcode::Read::new(self.fd(), buf.as_mut_ptr(), len)
            .offset(offset)
            .build();
        // SAFETY: the kernel writes at most `len` bytes into `buf`, which is mutably borrowed
        // (so no one else reads it) for this whole call, and `submit_wait` returns only after
        // the operation completed. `self.file` keeps the fd open for as long.
        let n = unsafe { self.rings.submit_wait(sqe) }?;
        Ok(n as usize)
    }

    /// One write of up to `buf.len()` bytes (capped at [`MAX_IO_BYTES`]).
    #[allow(unsafe_code)]
    fn write_once(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let len = buf.len().min(MAX_IO_BYTES) as u32;
        let sqe = opcode::Write::new(self.fd(), buf.as_ptr(), len)
            .offset(offset)
            .build();
        // SAFETY: the kernel reads at most `len` bytes from `buf`, borrowed for this whole
        // call, and `submit_wait` returns only after the operation completed. `self.file`
        // keeps the fd open for as long.
        let n = unsafe { self.rings.submit_wait(sqe) }?;
        Ok(n as usize)
    }

    /// fdatasync through the ring.
    #[allow(unsafe_code)]
    fn fdatasync(&self) -> io::Result<()> {
        let sqe = opcode::Fsync::new(self.fd())
            .flags(types::FsyncFlags::DATASYNC)
            .build();
        // SAFETY: the SQE points to no memory; `self.file` keeps the fd open until
        // `submit_wait` has reaped the completion.
        unsafe { self.rings.submit_wait(sqe) }.map(|_| ())
    }
}

impl DeviceFile for UringFile {
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        if super::nowait::active() {
            return Err(super::nowait::refuse("a read through io_uring"));
        }
        check_offset(offset, buf.len())?;
        while !buf.is_empty() {
            match self.read_once(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "failed to fill whole buffer",
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        check_offset(offset, buf.len())?;
        while !buf.is_empty() {
            match self.write_once(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "failed to write whole buffer",
                    ))
                }
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        loop {
            match self.fdatasync() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

impl Device for UringDevice {
    fn describe(&self) -> String {
        self.os.describe()
    }
    fn lock(&self) -> io::Result<Box<dyn DirLock>> {
        self.os.lock()
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.os.list()
    }
    fn open(&self, name: &str, mode: OpenMode) -> io::Result<Arc<dyn DeviceFile>> {
        Ok(Arc::new(UringFile {
            file: self.os.open_file(name, mode)?,
            rings: self.rings.clone(),
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.os.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.os.rename(from, to)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.os.sync_dir()
    }

    fn free_space(&self) -> io::Result<Option<u64>> {
        self.os.free_space()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_syncs_through_the_ring_or_says_why_not() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let dev = match UringDevice::open(dir.path()) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("note: kernel refuses io_uring ({e}); skipping");
                return Ok(());
            }
        };
        let f = dev.open("f", OpenMode::CreateNew)?;
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all_at(&data, 10)?;
        f.sync_data()?;
        let mut back = vec![0; data.len()];
        f.read_exact_at(&mut back, 10)?;
        assert_eq!(back, data);
        let mut one = [0u8; 1];
        let eof = f.read_exact_at(&mut one, 100_010).map_err(|e| e.kind());
        assert_eq!(eof, Err(io::ErrorKind::UnexpectedEof));
        let bad = f.read_exact_at(&mut one, u64::MAX).map_err(|e| e.kind());
        assert_eq!(
            bad,
            Err(io::ErrorKind::InvalidInput),
            "-1 means 'file position'"
        );
        Ok(())
    }
}
