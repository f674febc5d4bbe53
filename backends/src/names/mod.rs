//! Names: the record a value written through a name keeps beside it ([`record`]), the
//! per-node sorted index of those records ([`index`]), and the backend wrapper that keeps
//! the index up to date and answers listings ([`NamedBackend`]).

pub mod attrs;
pub mod index;
mod named;
pub mod record;
#[cfg(test)]
mod tests;

pub use attrs::{AttrError, AttrValue, Attrs};
pub use index::{NameIndex, NameIndexStats};
pub use named::NamedBackend;
pub use record::{NameRecord, NameRecordError, MAX_NAME_RECORD_LEN, NAME_COLUMN};

/// The most entries one listing page holds.
pub const MAX_LIST_LIMIT: usize = 1000;

/// Names of one namespace, in bytewise order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameQuery {
    pub namespace: String,
    /// Only names that begin with these bytes.
    pub prefix: Vec<u8>,
    /// Only names after this one (a continuation).
    pub after: Option<Vec<u8>>,
    /// At most this many (clamped to 1..=[`MAX_LIST_LIMIT`]).
    pub limit: usize,
}

/// What a listing asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameListing {
    Names(NameQuery),
    /// The namespaces that hold at least one name.
    Namespaces {
        after: Option<String>,
        limit: usize,
    },
}

/// One listed name: its key, and its name record with that record's timestamp (for a
/// namespace listing, only `name`, the namespace).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameEntry {
    pub name: Vec<u8>,
    pub key: ringblob_engine::Key,
    pub timestamp_ns: u64,
    pub record: Vec<u8>,
}

/// A page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamePage {
    pub entries: Vec<NameEntry>,
    /// More entries may follow the last one.
    pub more: bool,
}
