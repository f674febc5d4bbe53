//! Striped per-key locks: operations that read before they write (append, write at offset, commit)
//! on one key never interleave.

use parking_lot::{Mutex, MutexGuard};
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
    pub fn lock(&self, key: &Key) -> MutexGuard<'_, ()> {
        let i = (usize::from(key.0[0]) << 8 | usize::from(key.0[31])) % STRIPES;
        self.stripes[i].lock()
    }
}
