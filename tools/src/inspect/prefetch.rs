//! Sequential read-ahead for scanning a blob: a thread reads the file front to back in
//! large aligned blocks while the scanner checks earlier ones, so the disk never waits for
//! the CPU and the kernel sees one strictly sequential reader (told so with
//! `posix_fadvise(SEQUENTIAL)`, which widens its own read-ahead). The scanner checks records
//! in place with [`Prefetched::with_bytes`]; reads the blocks no longer cover (behind the
//! oldest retained block) fall back to `pread`.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use ringblob_engine::io::DeviceFile;

use super::rofile::ReadOnlyFile;

/// Bytes per read-ahead block: large reads keep the device queue full with few syscalls.
const BLOCK: usize = 8 << 20;
/// Blocks read ahead of the consumer (memory: `AHEAD × BLOCK`).
const AHEAD: usize = 4;
/// Blocks start at multiples of this (page and sector alignment).
const ALIGN: u64 = 4096;

type Block = io::Result<Vec<u8>>;

/// Blocks left over by finished scans, for the next file's reader: a fresh 8 MiB buffer
/// costs 2048 page faults before the first byte is read into it.
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Blocks kept in [`POOL`] at most.
const POOL_MAX: usize = 2 * AHEAD + 4;

/// A block buffer: a used one if there is one.
fn take_block(reuse: &Receiver<Vec<u8>>) -> Vec<u8> {
    reuse
        .try_recv()
        .ok()
        .or_else(|| POOL.lock().ok().and_then(|mut p| p.pop()))
        .unwrap_or_default()
}

/// Gives block buffers back for later files.
fn pool(blocks: impl IntoIterator<Item = Vec<u8>>) {
    if let Ok(mut p) = POOL.lock() {
        for b in blocks {
            if p.len() < POOL_MAX && b.capacity() >= BLOCK {
                p.push(b);
            }
        }
    }
}

/// Blocks received and not yet passed by the consumer.
struct Window {
    rx: Option<Receiver<Block>>,
    /// Passed blocks go back to the reader for reuse: fresh 8 MiB buffers would cost a
    /// page fault per 4 KiB, which on a cold cache is as much kernel time as the reads.
    recycle: SyncSender<Vec<u8>>,
    blocks: VecDeque<Vec<u8>>,
    /// File offset of the first retained block.
    base: u64,
    /// File offset just past the last retained block.
    top: u64,
    eof: bool,
    /// Bytes that straddle two blocks, copied together for [`Prefetched::with_bytes`].
    scratch: Vec<u8>,
}

/// A read-only file whose forward reads are served from read-ahead blocks.
pub struct Prefetched {
    file: ReadOnlyFile,
    window: Mutex<Window>,
    reader: Option<JoinHandle<()>>,
    /// Set by the reader thread when it has read the whole file (or failed).
    read_all: Arc<AtomicBool>,
}

impl Prefetched {
    /// Starts reading `file` from `start` (rounded down to a 4 KiB boundary) on a
    /// background thread.
    pub fn new(file: ReadOnlyFile, start: u64) -> io::Result<Self> {
        let start = start - start % ALIGN;
        let (tx, rx) = sync_channel::<Block>(AHEAD);
        let (recycle, reuse) = sync_channel::<Vec<u8>>(AHEAD + 2);
        let reader_file = file.try_clone_file()?;
        // Only a hint (it changes nothing on disk); a file system without it reads anyway.
        let _ = rustix::fs::fadvise(&reader_file, start, None, rustix::fs::Advice::Sequential);
        let read_all = Arc::new(AtomicBool::new(false));
        let done_flag = Arc::clone(&read_all);
        let reader = std::thread::Builder::new()
            .name("blob-inspect-read".into())
            .spawn(move || {
                let mut at = start;
                loop {
                    let buf = take_block(&reuse);
                    let block = read_block(&reader_file, at, buf);
                    let done = !matches!(&block, Ok(b) if b.len() == BLOCK);
                    at += block.as_ref().map_or(0, |b| b.len() as u64);
                    if done {
                        done_flag.store(true, Ordering::Release);
                    }
                    if tx.send(block).is_err() || done {
                        break;
                    }
                }
                done_flag.store(true, Ordering::Release);
                pool(reuse.try_iter());
            })?;
        let window = Window {
            rx: Some(rx),
            recycle,
            blocks: VecDeque::new(),
            base: start,
            top: start,
            eof: false,
            scratch: Vec::new(),
        };
        Ok(Prefetched {
            file,
            window: Mutex::new(window),
            reader: Some(reader),
            read_all,
        })
    }

    /// True once the reader thread has read to the end of the file (or hit an error): the
    /// disk has nothing more to do for this file.
    pub fn read_all(&self) -> bool {
        self.read_all.load(Ordering::Acquire)
    }

    /// Calls `f` with the `n` bytes at `offset`: in place when one read-ahead block holds
    /// them all, else copied together. `None` (and `f` is not called) when the blocks do not
    /// cover them: behind the window, or past the end of the file; `read_exact_at` then
    /// reads them (or reports the error). `f` must not read `self`.
    pub fn with_bytes<R>(
        &self,
        offset: u64,
        n: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> io::Result<Option<R>> {
        let mut w = self
            .window
            .lock()
            .map_err(|_| io::Error::other("read-ahead state poisoned"))?;
        if offset < w.base || !w.fill(offset, offset + n as u64)? {
            return Ok(None);
        }
        if let Some(bytes) = w.slice(offset, n) {
            return Ok(Some(f(bytes)));
        }
        let mut scratch = std::mem::take(&mut w.scratch);
        scratch.clear();
        scratch.resize(n, 0);
        w.copy_out(&mut scratch, offset);
        let r = f(&scratch);
        w.scratch = scratch;
        Ok(Some(r))
    }
}

/// Up to `BLOCK` bytes at `at` (fewer only at the end of the file), read into `buf`.
fn read_block(file: &File, at: u64, mut buf: Vec<u8>) -> Block {
    // A recycled block is full length already; only a fresh one is zero-filled.
    buf.resize(BLOCK, 0);
    let mut n = 0;
    while n < BLOCK {
        match file.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

impl Window {
    /// Receives blocks until `off..end` is covered or the file ends; false if it ended
    /// first. Blocks before `off` are let go as they pass, so a jump far ahead (past a large
    /// damaged record) does not pile the skipped bytes up in memory.
    fn fill(&mut self, off: u64, end: u64) -> io::Result<bool> {
        self.release_before(off);
        while self.top < end {
            let Some(rx) = self.rx.as_ref().filter(|_| !self.eof) else {
                return Ok(false);
            };
            let block = rx
                .recv()
                .map_err(|_| io::Error::other("read-ahead thread ended"))??;
            self.eof = block.len() < BLOCK;
            self.top += block.len() as u64;
            self.blocks.push_back(block);
            self.release_before(off);
        }
        Ok(true)
    }

    /// Drops blocks that end at or before `off`: the consumer has moved past them.
    fn release_before(&mut self, off: u64) {
        while let Some(first) = self.blocks.front() {
            let end = self.base + first.len() as u64;
            if end > off || self.blocks.len() == 1 {
                break;
            }
            self.base = end;
            if let Some(block) = self.blocks.pop_front() {
                if let Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) =
                    self.recycle.try_send(block)
                {
                    pool([b]);
                }
            }
        }
    }

    /// The `n` bytes at `off` if one retained block holds them all.
    fn slice(&self, off: u64, n: usize) -> Option<&[u8]> {
        let mut block_at = self.base;
        for block in &self.blocks {
            let block_end = block_at + block.len() as u64;
            if off < block_end {
                let from = off.checked_sub(block_at)? as usize;
                return block.get(from..from + n);
            }
            block_at = block_end;
        }
        None
    }

    /// Copies `base..` bytes at `off` into `buf`; the caller made sure they are retained.
    fn copy_out(&self, buf: &mut [u8], off: u64) {
        let mut block_at = self.base;
        let mut done = 0usize;
        for block in &self.blocks {
            let block_end = block_at + block.len() as u64;
            let want_at = off + done as u64;
            if done < buf.len() && want_at < block_end {
                let from = (want_at - block_at) as usize;
                let n = (block.len() - from).min(buf.len() - done);
                buf[done..done + n].copy_from_slice(&block[from..from + n]);
                done += n;
            }
            block_at = block_end;
        }
    }
}

impl DeviceFile for Prefetched {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset + buf.len() as u64;
        let mut w = self
            .window
            .lock()
            .map_err(|_| io::Error::other("read-ahead state poisoned"))?;
        if offset < w.base {
            drop(w);
            return self.file.read_exact_at(buf, offset);
        }
        if !w.fill(offset, end)? {
            drop(w);
            return self.file.read_exact_at(buf, offset);
        }
        w.copy_out(buf, offset);
        Ok(())
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

impl Drop for Prefetched {
    fn drop(&mut self) {
        // Closing the channel makes a blocked reader's `send` fail, so it returns.
        if let Ok(w) = self.window.get_mut() {
            w.rx = None;
            pool(w.blocks.drain(..));
        }
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn forward_backward_and_spanning_reads_match_the_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        let data = pattern(3 * BLOCK + 12_345);
        std::fs::write(&path, &data)?;
        let p = Prefetched::new(ReadOnlyFile::open(&path)?, 32)?;
        let reads = [
            (32u64, 88usize),
            (100, BLOCK),
            (BLOCK as u64 - 10, 20),
            (2 * BLOCK as u64 + 5, BLOCK + 1000),
            (40, 16), // behind the window: falls back to pread
            (3 * BLOCK as u64, 12_345),
        ];
        for (off, n) in reads {
            let mut buf = vec![0u8; n];
            p.read_exact_at(&mut buf, off)?;
            assert_eq!(buf, data[off as usize..off as usize + n], "read {off}+{n}");
        }
        let mut far = vec![0u8; 100];
        p.read_exact_at(&mut far, 3 * BLOCK as u64 + 100)?;
        assert_eq!(far, data[3 * BLOCK + 100..3 * BLOCK + 200]);
        let retained = p.window.lock().map(|w| w.blocks.len()).unwrap_or(99);
        assert!(retained <= 2, "passed blocks are released, {retained} kept");
        let mut past = vec![0u8; 10];
        assert!(p.read_exact_at(&mut past, data.len() as u64 - 5).is_err());
        assert!(p.write_all_at(b"x", 0).is_err());
        Ok(())
    }

    #[test]
    fn with_bytes_serves_in_place_and_across_blocks() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        let data = pattern(2 * BLOCK + 777);
        std::fs::write(&path, &data)?;
        let p = Prefetched::new(ReadOnlyFile::open(&path)?, 32)?;
        let reads = [
            (32u64, 100usize),
            (BLOCK as u64 - 50, 100),
            (BLOCK as u64 + 1, BLOCK + 776),
        ];
        for (off, n) in reads {
            let got = p.with_bytes(off, n, |b| b.to_vec())?;
            assert_eq!(got.as_deref(), data.get(off as usize..off as usize + n));
        }
        assert_eq!(
            p.with_bytes(0, 4, |b| b.to_vec())?,
            None,
            "behind the window"
        );
        assert_eq!(
            p.with_bytes(2 * BLOCK as u64, 778, |_| ())?,
            None,
            "past the end"
        );
        assert!(p.read_all());
        Ok(())
    }

    #[test]
    fn dropping_early_stops_the_reader() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        std::fs::write(&path, pattern(8 * BLOCK))?;
        let p = Prefetched::new(ReadOnlyFile::open(&path)?, 0)?;
        let mut buf = [0u8; 4];
        p.read_exact_at(&mut buf, 0)?;
        drop(p); // must not hang with the channel full
        Ok(())
    }
}
