//! An in-memory device that remembers what is durable, so a test can take the image a
//! power cut would leave: file contents as of their last `sync_data`, directory entries as
//! of the last `sync_dir`.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Device, DeviceFile, DirLock, OpenMode};

#[derive(Default)]
struct MemFile {
    data: Mutex<Vec<u8>>,
    durable: Mutex<Vec<u8>>,
    observer: Observer,
}

type SyncObserver = Arc<dyn Fn(&MemDevice) + Send + Sync>;

/// Called after every sync (file or directory) with the device, so a test can take crash
/// images at every sync point.
#[derive(Clone, Default)]
struct Observer(Arc<Mutex<Option<(SyncObserver, MemDevice)>>>);

impl Observer {
    fn notify(&self) {
        let hook = self.0.lock().clone();
        if let Some((f, dev)) = hook {
            f(&dev);
        }
    }
}

#[derive(Default)]
struct DirState {
    names: HashMap<String, Arc<MemFile>>,
    durable_names: HashMap<String, Arc<MemFile>>,
}

/// An in-memory directory. Cloning shares the same directory.
#[derive(Clone, Default)]
pub struct MemDevice {
    dir: Arc<Mutex<DirState>>,
    locked: Arc<AtomicBool>,
    observer: Observer,
    free: Arc<Mutex<Option<u64>>>,
}

impl MemDevice {
    pub fn new() -> Self {
        Self::default()
    }

    /// What [`Device::free_space`] reports (`None`: unknown, the default).
    pub fn set_free_space(&self, bytes: Option<u64>) {
        *self.free.lock() = bytes;
    }

    /// Runs `f` after every `sync_data` and `sync_dir` on this device.
    pub fn on_sync(&self, f: impl Fn(&MemDevice) + Send + Sync + 'static) {
        *self.observer.0.lock() = Some((Arc::new(f), self.clone()));
    }

    /// What survives a power cut now: durable directory entries with durable contents.
    pub fn crash_image(&self) -> MemDevice {
        self.image(|_, durable| durable.to_vec())
    }

    /// What survives a process crash (`kill -9`) now: every file as written, synced or not
    /// (the kernel's page cache keeps what the process wrote).
    pub fn process_crash_image(&self) -> MemDevice {
        let dir = self.dir.lock();
        let out = MemDevice::new();
        for (name, f) in &dir.names {
            out.put_file(name, f.data.lock().clone());
        }
        out
    }

    /// Like [`crash_image`](Self::crash_image), but each file also keeps a prefix of its
    /// unsynced tail, `keep(file_index, unsynced_len)` bytes long: a torn append.
    pub fn torn_image(&self, keep: impl Fn(usize, usize) -> usize) -> MemDevice {
        let mut i = 0;
        self.image(|data, durable| {
            i += 1;
            let mut out = durable.to_vec();
            if data.len() > durable.len() && data.starts_with(durable) {
                let tail = &data[durable.len()..];
                out.extend_from_slice(&tail[..keep(i, tail.len()).min(tail.len())]);
            }
            out
        })
    }

    fn image(&self, mut content: impl FnMut(&[u8], &[u8]) -> Vec<u8>) -> MemDevice {
        let dir = self.dir.lock();
        let mut names: Vec<_> = dir.durable_names.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        let out = MemDevice::new();
        let mut state = out.dir.lock();
        for (name, f) in names {
            let bytes = content(&f.data.lock(), &f.durable.lock());
            let file = Arc::new(MemFile {
                data: Mutex::new(bytes.clone()),
                durable: Mutex::new(bytes),
                observer: out.observer.clone(),
            });
            state.names.insert(name.clone(), file.clone());
            state.durable_names.insert(name.clone(), file);
        }
        drop(state);
        out
    }

    /// A file's current bytes, for tests that damage or inspect files.
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.dir
            .lock()
            .names
            .get(name)
            .map(|f| f.data.lock().clone())
    }

    /// Replaces a file's bytes, current and durable, creating it if needed (for fuzzing
    /// and damage tests).
    pub fn put_file(&self, name: &str, bytes: Vec<u8>) {
        let file = Arc::new(MemFile {
            data: Mutex::new(bytes.clone()),
            durable: Mutex::new(bytes),
            observer: self.observer.clone(),
        });
        let mut dir = self.dir.lock();
        dir.names.insert(name.to_string(), file.clone());
        dir.durable_names.insert(name.to_string(), file);
    }
}

struct MemHandle {
    file: Arc<MemFile>,
    writable: bool,
}

impl DeviceFile for MemHandle {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let data = self.file.data.lock();
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = data
            .get(start..start.saturating_add(buf.len()))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "read-only"));
        }
        let mut data = self.file.data.lock();
        let start = offset as usize;
        if data.len() < start + buf.len() {
            data.resize(start + buf.len(), 0);
        }
        data[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.data.lock().len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.data.lock().resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let data = self.file.data.lock().clone();
        *self.file.durable.lock() = data;
        self.file.observer.notify();
        Ok(())
    }
}

struct MemLock(Arc<AtomicBool>);
impl DirLock for MemLock {}
impl Drop for MemLock {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Device for MemDevice {
    fn describe(&self) -> String {
        "<memory>".into()
    }

    fn lock(&self) -> io::Result<Box<dyn DirLock>> {
        if self.locked.swap(true, Ordering::SeqCst) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Box::new(MemLock(self.locked.clone())))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.dir.lock().names.keys().cloned().collect())
    }

    fn open(&self, name: &str, mode: OpenMode) -> io::Result<Arc<dyn DeviceFile>> {
        let mut dir = self.dir.lock();
        let file = match (mode, dir.names.get(name)) {
            (OpenMode::CreateNew, Some(_)) => return Err(io::ErrorKind::AlreadyExists.into()),
            (OpenMode::CreateNew, None) => {
                let f = Arc::new(MemFile {
                    observer: self.observer.clone(),
                    ..MemFile::default()
                });
                dir.names.insert(name.to_string(), f.clone());
                f
            }
            (_, Some(f)) => f.clone(),
            (_, None) => return Err(io::ErrorKind::NotFound.into()),
        };
        Ok(Arc::new(MemHandle {
            file,
            writable: mode != OpenMode::ReadOnly,
        }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.dir
            .lock()
            .names
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut dir = self.dir.lock();
        let f = dir.names.remove(from).ok_or(io::ErrorKind::NotFound)?;
        dir.names.insert(to.to_string(), f);
        Ok(())
    }

    fn free_space(&self) -> io::Result<Option<u64>> {
        Ok(*self.free.lock())
    }

    fn sync_dir(&self) -> io::Result<()> {
        {
            let mut dir = self.dir.lock();
            dir.durable_names = dir.names.clone();
        }
        self.observer.notify();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_image_keeps_only_synced_bytes_and_names() {
        let dev = MemDevice::new();
        let a = dev.open("a", OpenMode::CreateNew).ok();
        let a = a.as_deref();
        assert!(a.is_some_and(|a| a.write_all_at(b"hello", 0).is_ok()));
        // Not synced at all: neither the name nor the data survives.
        assert!(dev.crash_image().file_bytes("a").is_none());
        assert!(dev.sync_dir().is_ok());
        assert_eq!(dev.crash_image().file_bytes("a"), Some(vec![]));
        assert!(a.is_some_and(|a| a.sync_data().is_ok()));
        assert!(a.is_some_and(|a| a.write_all_at(b" world", 5).is_ok()));
        assert_eq!(dev.crash_image().file_bytes("a"), Some(b"hello".to_vec()));
        assert_eq!(
            dev.torn_image(|_, _| 3).file_bytes("a"),
            Some(b"hello wo".to_vec())
        );
    }
}
