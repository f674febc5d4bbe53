//! What an object is named by in Python: a name (`str`, hashed into its key in the client's
//! namespace exactly as the CLI does) or a raw 32-byte key (`bytes`).

use pyo3::prelude::*;
use ringblob_protocol::client::Target;

use crate::failure::Failure;

/// A `name` argument as Python passed it.
#[derive(Debug, Clone, FromPyObject)]
pub enum NameArg {
    Name(String),
    Key(Vec<u8>),
}

impl NameArg {
    /// The target in `namespace`: a name's key, or the raw key itself.
    pub fn target(&self, namespace: &str) -> Result<Target, Failure> {
        match self {
            NameArg::Name(name) => Ok(Target::named(namespace, name.clone().into_bytes())),
            NameArg::Key(raw) => {
                let id: [u8; 32] = raw.as_slice().try_into().map_err(|_| {
                    Failure::Usage(format!(
                        "a raw key is 32 bytes, not {} (names are str)",
                        raw.len()
                    ))
                })?;
                Ok(Target::Id(id))
            }
        }
    }

    /// The name, when it is one (a name record is written for it).
    pub fn name(&self) -> Option<&str> {
        match self {
            NameArg::Name(n) => Some(n),
            NameArg::Key(_) => None,
        }
    }
}
