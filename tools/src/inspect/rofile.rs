//! Data files opened read-only. The inspector's [`DeviceFile`] can read and nothing else:
//! the write, truncate and sync calls fail, so no code path can change a file it inspects.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use ringblob_engine::io::DeviceFile;

/// A file opened `O_RDONLY` (and `O_NOATIME` where allowed, so reading leaves even the
/// access time alone).
#[derive(Debug)]
pub struct ReadOnlyFile {
    file: File,
}

impl ReadOnlyFile {
    pub fn open(path: &Path) -> io::Result<Self> {
        let no_atime = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOATIME)
            .open(path);
        let file = match no_atime {
            Ok(f) => f,
            // O_NOATIME is refused on files we do not own (and on some file systems).
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EINVAL)) => {
                File::open(path)?
            }
            Err(e) => return Err(e),
        };
        Ok(ReadOnlyFile { file })
    }

    /// Another handle on the same open file (for a read-ahead thread).
    pub fn try_clone_file(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    /// The whole file, if it holds at most `limit` bytes.
    pub fn read_all(&self, limit: u64) -> io::Result<Result<Vec<u8>, u64>> {
        let len = self.len()?;
        if len > limit {
            return Ok(Err(len));
        }
        let mut bytes = vec![0u8; len as usize];
        self.file.read_exact_at(&mut bytes, 0)?;
        Ok(Ok(bytes))
    }
}

fn refused(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("blob-inspect never {what}s the files it inspects"),
    )
}

impl DeviceFile for ReadOnlyFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, _buf: &[u8], _offset: u64) -> io::Result<()> {
        Err(refused("write"))
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn set_len(&self, _len: u64) -> io::Result<()> {
        Err(refused("truncate"))
    }
    fn sync_data(&self) -> io::Result<()> {
        Err(refused("sync"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_but_refuses_every_change() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello")?;
        let f = ReadOnlyFile::open(&path)?;
        let mut buf = [0u8; 3];
        f.read_exact_at(&mut buf, 1)?;
        assert_eq!(&buf, b"ell");
        assert_eq!(f.len()?, 5);
        assert!(f.write_all_at(b"x", 0).is_err());
        assert!(f.set_len(0).is_err());
        assert!(f.sync_data().is_err());
        assert_eq!(f.read_all(4)?, Err(5));
        assert_eq!(std::fs::read(&path)?, b"hello");
        Ok(())
    }
}
