//! Striped per-key locks: operations that read before they write (append, write at offset, commit)
//! on one key never interleave.

use parking_lot::{Mutex, MutexGuard};
use ringblob_engine::io::nowait;
use ringblob_engine::Key;

const STRIPES: usize = 256;

/// A fixed set of mutexes; a key maps to one by its bytes.
pub struct KeyLocks {
    stripes: Vec<Mutex<()>>,
}

impl Default for KeyLocks {
    fn default() -> Self {
        KeyLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }
}

impl KeyLocks {
    /// The key's stripe, locked. Serving without waiting (`ringblob_engine::io::nowait`),
    /// a stripe held by another thread (a long commit, say) is refused, not waited for.
    pub fn lock(&self, key: &Key) -> crate::Result<MutexGuard<'_, ()>> {
        let i = (usize::from(key.0[0]) << 8 | usize::from(key.0[31])) % STRIPES;
        if !nowait::active() {
            return Ok(self.stripes[i].lock());
        }
        self.stripes[i].try_lock().ok_or_else(|| crate::Error::Io {
            op: "lock",
            path: format!("key {key}"),
            source: nowait::refuse("a key lock held elsewhere"),
        })
    }
}
