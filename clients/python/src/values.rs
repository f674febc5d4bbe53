//! What calls return besides bytes: a value's meta (`lookup`, `iterate`) and a listing entry
//! (`ls`), as typed, read-only Python objects.

use pyo3::prelude::*;
use ringblob_backends::names::{AttrValue, Attrs, NameRecord};
use ringblob_protocol::client::object::Manifest;
use ringblob_protocol::client::Target;
use ringblob_protocol::wire::{ListEntry, ValueMeta};

/// An attribute's value as Python gives and gets it: an int or a str.
#[derive(Debug, Clone, PartialEq, Eq, FromPyObject, IntoPyObject)]
pub enum AttrArg {
    Int(i64),
    Str(String),
}

/// Attributes as (name, value) pairs, names ascending.
pub type AttrPairs = Vec<(String, AttrArg)>;

/// The pairs of `attrs`.
pub fn attr_pairs(attrs: &Attrs) -> AttrPairs {
    attrs
        .iter()
        .map(|(k, v)| {
            let v = match v {
                AttrValue::Int(n) => AttrArg::Int(*n),
                AttrValue::Str(s) => AttrArg::Str(s.clone()),
            };
            (k.clone(), v)
        })
        .collect()
}

/// Checked attributes from Python's pairs (a dict's items).
pub fn attrs_of(pairs: Option<AttrPairs>) -> Result<Attrs, crate::failure::Failure> {
    let mut attrs = Attrs::new();
    for (k, v) in pairs.unwrap_or_default() {
        let v = match v {
            AttrArg::Int(n) => AttrValue::Int(n),
            AttrArg::Str(s) => AttrValue::Str(s),
        };
        attrs
            .insert(&k, v)
            .map_err(|e| crate::failure::Failure::Usage(format!("attrs: {e}")))?;
    }
    Ok(attrs)
}

/// An object a query found.
#[pyclass(frozen, get_all, module = "ringblob")]
#[derive(Debug, Clone)]
pub struct Found {
    /// The object's name (UTF-8, invalid bytes replaced).
    pub name: String,
    /// Its attributes, names ascending.
    pub attrs: AttrPairs,
    pub size: u64,
    pub content_type: String,
    pub etag: String,
}

impl Found {
    pub fn new(hit: &ringblob_protocol::client::FindHit) -> Found {
        Found {
            name: String::from_utf8_lossy(&hit.name).into_owned(),
            attrs: attr_pairs(&hit.attrs),
            size: hit.record.size,
            content_type: hit.record.content_type.clone(),
            etag: hit.record.etag.clone(),
        }
    }
}

#[pymethods]
impl Found {
    fn __repr__(&self) -> String {
        format!("Found(name={:?}, attrs={:?})", self.name, self.attrs)
    }
}

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
    /// The object's attributes (from its name record; empty without).
    pub attrs: AttrPairs,
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
            attrs: Vec::new(),
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
    /// The object's attributes, names ascending.
    pub attrs: AttrPairs,
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
            attrs: record
                .as_ref()
                .map(|r| attr_pairs(&r.attrs))
                .unwrap_or_default(),
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
