//! Reads from memory-mapped files that report a page the kernel cannot fill instead of
//! ending the process.
//!
//! Touching a mapped page the kernel cannot fill — a read error on the disk, or a file
//! another process cut shorter than the map — raises `SIGBUS`, whose default action ends
//! the process. With `pread` the same read fails with `EIO` and the record or index page is
//! reported damaged; through a map, one bad sector would take the node down, and again after
//! every restart that read it. [`guarded`] notes on its thread the mapped range a closure
//! reads; the handler, for a fault inside that range, maps an anonymous zero page over the
//! faulting page (so the interrupted instruction can finish), notes the fault and returns,
//! and [`guarded`] then fails with `EIO` whatever the closure made of the zeros. The caller
//! must stop using that map (the zero page stays in it). A `SIGBUS` anywhere else goes to
//! the handler that was installed before this one (Rust's stack-overflow handler) or to
//! the default action, exactly as without this module.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::io;
use std::sync::atomic::{compiler_fence, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

thread_local! {
    /// The mapped range (start, end) the guarded closure on this thread reads; (0, 0) when
    /// none. Const-initialised `Cell`s: reading them in a signal handler allocates nothing.
    static RANGE: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// Whether a fault in the range was absorbed since the guarded closure began.
    static FAULTED: Cell<bool> = const { Cell::new(false) };
}

static INSTALL: Once = Once::new();
/// The `SIGBUS` disposition before ours, for faults that are not ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
/// The page size, read once outside the handler (`sysconf` is not async-signal-safe).
static PAGE: AtomicUsize = AtomicUsize::new(0);

/// Runs `read`, which reads the mapped bytes `range` points into, and returns its result —
/// or `EIO` if a page of `range` could not be read (the map then holds a zero page there and
/// must not be used again).
pub fn guarded<T>(range: &[u8], read: impl FnOnce() -> T) -> io::Result<T> {
    install();
    let start = range.as_ptr() as usize;
    let watch = Watch::start(start, start + range.len());
    let out = read();
    if watch.end() {
        return Err(io::Error::from_raw_os_error(libc::EIO));
    }
    Ok(out)
}

/// This thread's guarded range while it lives; cleared when dropped, even by a panic, so
/// the handler never takes a later fault at those addresses (by then maybe another
/// mapping's) for one of ours.
struct Watch;

impl Watch {
    fn start(start: usize, end: usize) -> Watch {
        RANGE.with(|r| r.set((start, end)));
        FAULTED.with(|f| f.set(false));
        // The handler must see the range before the first read of it.
        compiler_fence(Ordering::SeqCst);
        Watch
    }

    /// Ends the watch: whether a fault in the range was absorbed.
    fn end(self) -> bool {
        // The flag is read only after the last read of the range.
        compiler_fence(Ordering::SeqCst);
        drop(self);
        FAULTED.with(Cell::get)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        RANGE.with(|r| r.set((0, 0)));
    }
}

/// `dst` filled from the mapped bytes `src` (of the same length), or `EIO`.
pub fn copy(dst: &mut [u8], src: &[u8]) -> io::Result<()> {
    guarded(src, || {
        let n = dst.len().min(src.len());
        // SAFETY: both slices are valid for `n` bytes and cannot overlap (`dst` is a
        // unique borrow). Copying through raw pointers instead of `copy_from_slice` makes no
        // claim about the mapped bytes beyond this read; a zero page the handler puts in
        // place of a failing one is read as zeros, and `guarded` reports it.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr(), n) };
    })
}

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: `sysconf` and `sigaction` are called with valid arguments: a query of the
        // current disposition into a zeroed struct, then our handler with SA_SIGINFO (so the
        // kernel calls it with the siginfo it reads).
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            PAGE.store(usize::try_from(page).unwrap_or(4096), Ordering::Relaxed);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                return;
            }
            let _ = PREVIOUS.set(old);
            let mut ours: libc::sigaction = std::mem::zeroed();
            let handler: Handler = on_sigbus;
            ours.sa_sigaction = handler as libc::sighandler_t;
            ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut ours.sa_mask);
            libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut());
        }
    });
}

/// A handler installed with SA_SIGINFO.
type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// The `SIGBUS` handler: only async-signal-safe work (thread-local cells, `mmap`, atomics).
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo; for SIGBUS `si_addr` is the
    // faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (start, end) = RANGE.with(Cell::get);
    let page = PAGE.load(Ordering::Relaxed);
    if page > 0 && start <= addr && addr < end {
        let base = addr & !(page - 1);
        // SAFETY: `base` is the page-aligned start of a page inside a read-only file map
        // this thread is reading (the guarded range); replacing that one page with an
        // anonymous zero page (MAP_FIXED) changes only that map's contents, which the caller
        // stops using once `guarded` reports the fault.
        let zero = unsafe {
            libc::mmap(
                base as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zero != libc::MAP_FAILED {
            FAULTED.with(|f| f.set(true));
            return;
        }
    }
    pass_on(sig, info, ctx);
}

/// A `SIGBUS` that is not ours: to the handler before ours, else the default action (the
/// faulting instruction runs again on return and the process ends as it would have).
fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let previous = PREVIOUS.get().map(|p| (p.sa_sigaction, p.sa_flags));
    match previous {
        Some((handler, flags)) if handler != libc::SIG_DFL && handler != libc::SIG_IGN => {
            if flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous disposition was installed with SA_SIGINFO, so its
                // address is such a handler; we pass it what the kernel passed us.
                let f = unsafe { std::mem::transmute::<libc::sighandler_t, Handler>(handler) };
                f(sig, info, ctx);
            } else {
                // SAFETY: as above, a plain handler.
                let f = unsafe {
                    std::mem::transmute::<libc::sighandler_t, extern "C" fn(libc::c_int)>(handler)
                };
                f(sig);
            }
        }
        _ => {
            // SAFETY: restoring the default disposition of SIGBUS with a zeroed struct.
            unsafe {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &default, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_guarded_read_without_a_fault_returns_what_it_read() {
        let src = vec![3u8; 10_000];
        let mut dst = vec![0u8; 10_000];
        or_panic(copy(&mut dst, &src));
        assert_eq!(dst, src);
        assert_eq!(or_panic(guarded(&src, || src.len())), 10_000);
        assert_eq!(RANGE.with(Cell::get), (0, 0), "the watch ended");
    }

    /// Set in the child process of the test below.
    const CHILD: &str = "RINGBLOB_SIGBUS_TEST_CHILD";

    /// A fault outside a guarded read is not taken for ours: the process still ends with
    /// `SIGBUS`, as without the handler (checked in a child process, this test's own
    /// binary run again).
    #[test]
    fn an_unguarded_fault_still_ends_the_process() {
        use std::os::unix::process::ExitStatusExt;
        if std::env::var_os(CHILD).is_some() {
            install();
            let dir = or_panic(tempfile::tempdir());
            let path = dir.path().join("f");
            or_panic(std::fs::write(&path, [1u8; 8192]));
            let file = or_panic(std::fs::File::open(&path));
            // SAFETY: the test cuts the file short under the map on purpose; the only read
            // of the cut page is the volatile one below, which is meant to fault.
            let map = or_panic(unsafe { memmap2::Mmap::map(&file) });
            or_panic(or_panic(std::fs::OpenOptions::new().write(true).open(&path)).set_len(0));
            // SAFETY: a read of a byte inside the map (its page is gone: SIGBUS).
            let byte = unsafe { std::ptr::read_volatile(map.as_ptr().add(4096)) };
            panic!("read {byte} from a page cut from the file");
        }
        let exe = or_panic(std::env::current_exe());
        let status = or_panic(
            std::process::Command::new(exe)
                .args([
                    "--exact",
                    "io::sigbus::tests::an_unguarded_fault_still_ends_the_process",
                    "--test-threads=1",
                ])
                .env(CHILD, "1")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status(),
        );
        assert_eq!(status.signal(), Some(libc::SIGBUS), "{status:?}");
    }
}
