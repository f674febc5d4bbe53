//! Allocator tuning for the node and the bench ([`fix_mmap_threshold`]) and for clients —
//! the CLI and the Python extension — which stream large values too ([`fix_for_client`]).
//! Large buffers — value pieces of streamed replies, upload parts, read groups — are
//! allocated and freed all the time on many threads. glibc's
//! malloc raises its mmap threshold to the size of the largest chunk freed so far, after
//! which such buffers come from per-thread heaps whose free space it rarely gives back:
//! resident memory then grows with the number of threads and the size of values, not with
//! what is in use (measured: 4 slow readers and 4 uploads took a node from 8 to 178 MiB;
//! with a fixed threshold, to 85 MiB — `tools/tests/cli/big_reads.rs`). A fixed threshold
//! maps every buffer of at least [`MMAP_THRESHOLD`] and returns it to the system when freed.

/// Allocations from this size on are mapped on their own: streamed reply pieces (4 MiB) and
/// upload parts (8 MiB) are; values of a few MiB, read and freed at high rates, stay on the
/// heap (measured with 1 MiB gets: a 1 MiB threshold cost a third of the throughput, 4 MiB
/// nothing measurable).
pub const MMAP_THRESHOLD: usize = 4 << 20;

/// Fixes glibc's mmap threshold (call once, first thing in `main`). Returns whether the
/// allocator took the setting (always false where the C library is not glibc). The
/// `MALLOC_MMAP_THRESHOLD_` environment variable, if set, is left to win.
pub fn fix_mmap_threshold() -> bool {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return false;
    }
    set_threshold()
}

/// A client's allocations from this size on are mapped on their own (see
/// [`fix_for_client`]): streamed pieces (4 MiB) are not, upload parts (8 MiB) are.
pub const CLIENT_MMAP_THRESHOLD: usize = 8 << 20;

/// Free memory a client's heap keeps at its top before giving it back.
pub const CLIENT_TRIM_THRESHOLD: usize = 16 << 20;

/// Heaps (arenas) a client's threads share.
pub const CLIENT_ARENAS: usize = 2;

/// Allocator tuning for a client process — the CLI, the Python extension — instead of
/// [`fix_mmap_threshold`]. A client streams a few large values with a few threads: with
/// every 4 MiB piece mapped and unmapped, or trimmed off a heap when freed, each piece
/// was faulted in and zeroed page by page again (measured: 64 MiB streamed by
/// `Client.open()` at 280 MB/s, 505–588 MB/s with these settings). Here pieces stay on
/// two shared heaps that keep up to [`CLIENT_TRIM_THRESHOLD`] free, so a buffer
/// freed is the next one's, warm; the memory held stays bounded by what is in flight plus
/// that slack (two heaps, not one per thread). The node keeps [`fix_mmap_threshold`]: it
/// serves many readers at once on many threads. Returns whether glibc took the settings;
/// `MALLOC_MMAP_THRESHOLD_`, if set, is left to win (as are glibc's other `MALLOC_*`).
pub fn fix_for_client() -> bool {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return false;
    }
    set_client_settings()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_client_settings() -> bool {
    let settings = [
        (libc::M_ARENA_MAX, CLIENT_ARENAS),
        (libc::M_TRIM_THRESHOLD, CLIENT_TRIM_THRESHOLD),
        (libc::M_MMAP_THRESHOLD, CLIENT_MMAP_THRESHOLD),
    ];
    settings.iter().all(|&(param, value)| {
        let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
        // SAFETY: as in `set_threshold`: `mallopt` changes a tuning parameter of glibc's
        // allocator under its own lock, with no memory-safety preconditions.
        unsafe { libc::mallopt(param, value) == 1 }
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_client_settings() -> bool {
    false
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set_threshold() -> bool {
    // SAFETY: `mallopt` only changes a tuning parameter of glibc's allocator; it is safe to
    // call at any time (glibc takes its own lock) and has no memory-safety preconditions.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_threshold() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_fixed_threshold_and_large_buffers_are_given_back() {
        assert!(super::set_threshold());
        // A buffer over the threshold is its own mapping: freeing it unmaps it, so a
        // second, equal allocation is not served from a heap grown by the first.
        let big = vec![1u8; 8 << 20];
        assert_eq!(big.iter().map(|&b| u64::from(b)).sum::<u64>(), 8 << 20);
        drop(big);
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_client_settings() {
        // Run in a child process: the settings are process-wide, and this test binary's
        // other tests set the node's threshold.
        if std::env::var_os("RINGBLOB_ALLOC_CHILD").is_none() {
            let exe = std::env::current_exe().unwrap_or_default();
            let status = std::process::Command::new(exe)
                .args([
                    "--exact",
                    "alloc_tuning::tests::glibc_takes_the_client_settings",
                ])
                .env("RINGBLOB_ALLOC_CHILD", "1")
                .env_remove("MALLOC_MMAP_THRESHOLD_")
                .status();
            assert!(status.is_ok_and(|s| s.success()));
            return;
        }
        assert!(super::set_client_settings());
        let pieces: Vec<Vec<u8>> = (0..4).map(|i| vec![i as u8; 4 << 20]).collect();
        assert_eq!(pieces.iter().map(Vec::len).sum::<usize>(), 16 << 20);
    }
}
