//! What PATH names: a data directory (every blob, index and sorted index file in it, by id)
//! or a single blob file. Listing only; nothing is opened here.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ringblob_engine::blob::{index_name, parse_name, sorted_name, FileKind};

/// A file inside the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub name: String,
    pub path: PathBuf,
}

/// One blob file, its index file and its sorted index file, where they exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// The id from the file name; `None` for a single blob file with a non-canonical name
    /// (the id in its header is used then).
    pub id: Option<u32>,
    pub file: FileRef,
    pub index: Option<FileRef>,
    /// `data-<id>.sorted` (sealed blobs only).
    pub sorted: Option<FileRef>,
}

/// Everything to inspect.
#[derive(Debug, Clone)]
pub struct Target {
    /// The data directory (the blob file's directory when PATH is a blob file).
    pub root: PathBuf,
    /// Blob files in id order: the order records are replayed in.
    pub blobs: Vec<BlobRef>,
    /// Index and sorted index files whose blob file is missing.
    pub orphan_indexes: Vec<FileRef>,
    /// PATH was one blob file: only it is replayed.
    pub single_file: bool,
}

impl Target {
    /// PATH as a directory or a blob file. A missing PATH is an error (exit status 2).
    pub fn resolve(path: &Path) -> Result<Target> {
        let meta = fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            Self::directory(path)
        } else if meta.is_file() {
            Ok(Self::blob_file(path))
        } else {
            bail!("{}: neither a directory nor a regular file", path.display())
        }
    }

    /// Sum of the blob files' current lengths (for progress; 0 for files gone missing).
    pub fn total_bytes(&self) -> u64 {
        let len = |b: &BlobRef| b.file.path.metadata().map_or(0, |m| m.len());
        self.blobs.iter().map(len).sum()
    }

    fn directory(root: &Path) -> Result<Target> {
        let mut blobs = Vec::new();
        let mut indexes = Vec::new();
        let mut sorted = Vec::new();
        let list = fs::read_dir(root).with_context(|| format!("list {}", root.display()))?;
        for entry in list {
            let entry = entry.with_context(|| format!("list {}", root.display()))?;
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let file = FileRef {
                path: entry.path(),
                name,
            };
            match parse_name(&file.name) {
                Some((id, FileKind::Blob)) => blobs.push((id, file)),
                Some((id, FileKind::Index)) => indexes.push((id, file)),
                Some((id, FileKind::Sorted)) => sorted.push((id, file)),
                None => {} // LOCK, *.tmp, anything else: not ours to judge.
            }
        }
        blobs.sort_by_key(|(id, _)| *id);
        let blob_ids: Vec<u32> = blobs.iter().map(|(id, _)| *id).collect();
        let mut orphan_indexes: Vec<(u32, FileRef)> = indexes
            .iter()
            .chain(&sorted)
            .filter(|(id, _)| blob_ids.binary_search(id).is_err())
            .cloned()
            .collect();
        orphan_indexes.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
        let find = |list: &[(u32, FileRef)], id: u32| {
            list.iter().find(|(i, _)| *i == id).map(|(_, f)| f.clone())
        };
        let blobs = blobs
            .into_iter()
            .map(|(id, file)| BlobRef {
                id: Some(id),
                file,
                index: find(&indexes, id),
                sorted: find(&sorted, id),
            })
            .collect();
        let orphan_indexes = orphan_indexes.into_iter().map(|(_, f)| f).collect();
        Ok(Target {
            root: root.to_path_buf(),
            blobs,
            orphan_indexes,
            single_file: false,
        })
    }

    fn blob_file(path: &Path) -> Target {
        let root = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = match parse_name(&name) {
            Some((id, FileKind::Blob)) => Some(id),
            _ => None,
        };
        let sibling = |name: String| {
            let path = root.join(&name);
            path.is_file().then_some(FileRef { name, path })
        };
        let index = id.map(index_name).and_then(sibling);
        let sorted = id.map(sorted_name).and_then(sibling);
        let file = FileRef {
            name,
            path: path.to_path_buf(),
        };
        Target {
            root,
            blobs: vec![BlobRef {
                id,
                file,
                index,
                sorted,
            }],
            orphan_indexes: Vec::new(),
            single_file: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_lists_blobs_in_id_order_and_ignores_strangers() -> Result<()> {
        let dir = tempfile::tempdir()?;
        for name in [
            "data-00000002.blob",
            "data-00000010.blob",
            "data-00000002.index",
            "data-00000007.index",
            "data-00000010.sorted",
            "data-00000011.sorted",
            "LOCK",
            "data-00000010.index.tmp",
        ] {
            fs::write(dir.path().join(name), b"")?;
        }
        fs::create_dir(dir.path().join("data-00000003.blob"))?;
        let t = Target::resolve(dir.path())?;
        let ids: Vec<Option<u32>> = t.blobs.iter().map(|b| b.id).collect();
        assert_eq!(ids, [Some(2), Some(10)]);
        let idx: Vec<Option<&str>> = t
            .blobs
            .iter()
            .map(|b| b.index.as_ref().map(|f| f.name.as_str()))
            .collect();
        assert_eq!(idx, [Some("data-00000002.index"), None]);
        let sorted: Vec<Option<&str>> = t
            .blobs
            .iter()
            .map(|b| b.sorted.as_ref().map(|f| f.name.as_str()))
            .collect();
        assert_eq!(sorted, [None, Some("data-00000010.sorted")]);
        let orphans: Vec<&str> = t.orphan_indexes.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(orphans, ["data-00000007.index", "data-00000011.sorted"]);
        assert!(!t.single_file);
        Ok(())
    }

    #[test]
    fn single_blob_file_finds_its_sibling_index() -> Result<()> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("data-00000004.blob"), b"")?;
        fs::write(dir.path().join("data-00000004.index"), b"")?;
        fs::write(dir.path().join("data-00000004.sorted"), b"")?;
        fs::write(dir.path().join("copy.blob"), b"")?;
        let t = Target::resolve(&dir.path().join("data-00000004.blob"))?;
        assert!(t.single_file);
        assert_eq!(t.blobs.len(), 1);
        assert_eq!(t.blobs.first().and_then(|b| b.id), Some(4));
        assert!(t
            .blobs
            .first()
            .is_some_and(|b| b.index.is_some() && b.sorted.is_some()));
        let t = Target::resolve(&dir.path().join("copy.blob"))?;
        assert_eq!(
            t.blobs.first().map(|b| (b.id, b.index.is_some())),
            Some((None, false))
        );
        Ok(())
    }

    #[test]
    fn missing_path_is_an_error() {
        assert!(Target::resolve(Path::new("/nonexistent/ringblob")).is_err());
    }
}
