//! Queries on object attributes by **unispace hashing** (`docs/ATTRIBUTES.md`; Vasilakis et
//! al., APSys'17). Pure functions, no IO: the [`space`] of a namespace (the paper's
//! compression formula: overlays of weighted properties, and the fallback over every
//! property), the [`hash`]es that turn property names into dimensions and values into
//! coordinates, the [`place`]ment of an object's index [`entry`] on the ring (the leading
//! bits of its key are its region), and the [`plan`] of a [`query`]: the runs of regions,
//! hence the ring ranges and their owners, that can hold its answers. The client
//! (`client/find.rs`) writes entries and asks the planned owners.

pub mod entry;
pub mod hash;
pub mod place;
pub mod plan;
pub mod query;
pub mod space;
#[cfg(test)]
mod tests;

pub use entry::{Entry, ENTRY_COLUMN};
pub use hash::{AttrHasher, Sha256Hasher};
pub use plan::{plan, Plan};
pub use query::{Conjunction, Query, Term};
pub use space::{Layout, Space, SPACE_NAME};

use ringblob_backends::names::Attrs;

use crate::wire::KeyId;

/// Why a space or a query is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrsError {
    #[error("attribute space: {0}")]
    Space(String),
    #[error("query: {0}")]
    Query(String),
}

/// Where one object's index entries go: (overlay's layout, entry key) for every overlay
/// of `space` that indexes `attrs`. No attributes, no entries.
pub fn placements(
    space: &Space,
    hasher: &dyn AttrHasher,
    namespace: &str,
    name: &[u8],
    attrs: &Attrs,
) -> Vec<(u16, KeyId)> {
    if attrs.is_empty() {
        return Vec::new();
    }
    space
        .layouts()
        .into_iter()
        .filter(|l| l.indexes(attrs))
        .map(|l| {
            let region = place::region_of(&l.coordinates(hasher, attrs), &l.radices);
            let key = place::entry_key(namespace, l.overlay, name, region, l.regions());
            (l.overlay, key)
        })
        .collect()
}
