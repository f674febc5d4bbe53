//! What calls return besides bytes: a value's meta (`lookup`, `iterate`) and a listing entry
//! (`ls`), as typed, read-only Python objects.

use pyo3::prelude::*;
use ringblob_backends::names::NameRecord;
use ringblob_protocol::client::object::Manifest;
use ringblob_protocol::client::Target;
use ringblob_protocol::wire::{ListEntry, ValueMeta};

/// The meta of one value.
#[pyclass(frozen, get_all, module = "ringblob")]
#[derive(Debug, Clone)]
pub struct Meta {
    /// The key, 64 hex digits.
    pub key: String,
    pub column: u16,
    /// The size `get` returns: the object's, for a chunked object.
    pub size: u64,
    /// Bytes the value takes on the node (a chunked object's manifest alone).
    pub stored_size: u64,
    /// Write time (the version), nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// CRC-32 of the content (a chunked object's whole content).
    pub checksum: u32,
    /// Chunks of a chunked object, `None` for a plain value.
    pub chunks: Option<usize>,
    /// The replica group it was found in (with groups).
    pub group: Option<u32>,
}

impl Meta {
    pub fn new(
        target: &Target,
        m: &ValueMeta,
        object: Option<&Manifest>,
        group: Option<u32>,
    ) -> Meta {
        Meta {
            key: target.id().iter().map(|b| format!("{b:02x}")).collect(),
            column: m.column,
            size: object.map_or(m.size, |o| o.size),
            stored_size: m.stored_size,
            timestamp_ns: m.timestamp_ns,
            checksum: object.map_or(m.checksum, |o| o.crc32),
            chunks: object.map(|o| o.chunk_crcs.len()),
            group,
        }
    }
}

#[pymethods]
impl Meta {
    fn __repr__(&self) -> String {
        format!(
            "Meta(key={:?}, column={}, size={}, timestamp_ns={}, checksum=0x{:08x})",
            self.key, self.column, self.size, self.timestamp_ns, self.checksum
        )
    }
}

/// One listed name (or namespace).
#[pyclass(frozen, get_all, module = "ringblob")]
#[derive(Debug, Clone)]
pub struct Entry {
    /// The name (or the namespace), decoded as UTF-8 (invalid bytes replaced).
    pub name: String,
    /// The object's size when its name was written (0 for a namespace).
    pub size: u64,
    pub content_type: String,
    /// The entity tag the HTTP gateway gave it (empty otherwise).
    pub etag: String,
    /// When the name record was written, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// User metadata, in the order written.
    pub metadata: Vec<(String, String)>,
}

impl Entry {
    pub fn new(e: &ListEntry, namespace: bool) -> Entry {
        let record = (!namespace)
            .then(|| NameRecord::decode(&e.record).ok())
            .flatten();
        Entry {
            name: String::from_utf8_lossy(&e.name).into_owned(),
            size: record.as_ref().map_or(0, |r| r.size),
            content_type: record
                .as_ref()
                .map(|r| r.content_type.clone())
                .unwrap_or_default(),
            etag: record.as_ref().map(|r| r.etag.clone()).unwrap_or_default(),
            timestamp_ns: e.timestamp_ns,
            metadata: record.map(|r| r.user_meta).unwrap_or_default(),
        }
    }
}

#[pymethods]
impl Entry {
    fn __repr__(&self) -> String {
        format!("Entry(name={:?}, size={})", self.name, self.size)
    }
}
