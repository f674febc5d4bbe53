//! Allocator tuning for the node (and the CLI, the bench and the Python client, which stream
//! large values too). Large buffers — value pieces of streamed replies, upload
//! parts, read groups — are allocated and freed all the time on many threads. glibc's
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
}
