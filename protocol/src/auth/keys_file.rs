//! The keys file: the access keys a node accepts, with their roles and namespaces, secrets
//! kept only as [`Verifier`]s (hashed: a stolen file cannot authenticate). JSON, so a second
//! implementation needs nothing but this comment:
//!
//! ```json
//! {"version": 1, "keys": [
//!   {"id": "rbk-0123456789abcdef", "role": "write", "namespaces": ["photos"],
//!    "stored_key": "<64 hex digits>", "server_key": "<64 hex digits>",
//!    "s3_secret": "<64 hex digits>"}
//! ]}
//! ```
//!
//! `s3_secret` (optional) is the key's S3 secret access key (`AccessKey::s3_secret`): AWS
//! Signature Version 4 is checked with the signing secret itself, so the HTTP gateway can
//! serve S3 requests signed with this key only when the file holds it. A key without it
//! authenticates everywhere else.
//!
//! `namespaces` lists the namespaces the key may touch; `["*"]` is all of them. Parsing and
//! printing only; the node reads and writes the file (mode 0600).

use serde::{Deserialize, Serialize};

use super::{check_id, hex, unhex, AccessKey, Role, Verifier};

/// The keys file's name in a data directory.
pub const KEYS_FILE: &str = "keys.json";

/// Most keys in one file.
pub const MAX_KEYS: usize = 10_000;

/// One accepted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub id: String,
    pub role: Role,
    /// Namespaces the key may touch; `*` is all.
    pub namespaces: Vec<String>,
    pub verifier: Verifier,
    /// The S3 secret access key, for Signature V4 (see the module docs).
    pub s3_secret: Option<String>,
}

impl KeyEntry {
    /// The entry a node stores for a new key.
    pub fn new(key: &AccessKey, role: Role, namespaces: Vec<String>) -> KeyEntry {
        KeyEntry {
            id: key.id.clone(),
            role,
            namespaces,
            verifier: key.verifier(),
            s3_secret: Some(key.s3_secret()),
        }
    }

    /// Whether the key may touch every namespace.
    pub fn all_namespaces(&self) -> bool {
        self.namespaces.iter().any(|n| n == "*")
    }
}

/// Why a keys file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysFileError {
    #[error("keys file is not valid JSON of the expected shape: {0}")]
    Syntax(String),
    #[error("keys file version {0} is not 1")]
    Version(u32),
    #[error("key {id:?}: {why}")]
    BadEntry { id: String, why: String },
    #[error("key id {0:?} appears twice")]
    Duplicate(String),
    #[error("more than {MAX_KEYS} keys")]
    TooMany,
}

/// The keys a node accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysFile {
    pub keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJson {
    version: u32,
    keys: Vec<EntryJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryJson {
    id: String,
    role: String,
    namespaces: Vec<String>,
    stored_key: String,
    server_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s3_secret: Option<String>,
}

impl KeysFile {
    /// Parses and checks a keys file.
    pub fn parse(text: &str) -> Result<KeysFile, KeysFileError> {
        let f: FileJson =
            serde_json::from_str(text).map_err(|e| KeysFileError::Syntax(e.to_string()))?;
        if f.version != 1 {
            return Err(KeysFileError::Version(f.version));
        }
        if f.keys.len() > MAX_KEYS {
            return Err(KeysFileError::TooMany);
        }
        let mut out = KeysFile::default();
        for e in f.keys {
            let entry = entry(e)?;
            if out.get(&entry.id).is_some() {
                return Err(KeysFileError::Duplicate(entry.id));
            }
            out.keys.push(entry);
        }
        Ok(out)
    }

    /// The file's text (pretty JSON, one key per object).
    pub fn to_text(&self) -> String {
        let f = FileJson {
            version: 1,
            keys: self
                .keys
                .iter()
                .map(|k| EntryJson {
                    id: k.id.clone(),
                    role: k.role.to_string(),
                    namespaces: k.namespaces.clone(),
                    stored_key: hex(&k.verifier.stored_key),
                    server_key: hex(&k.verifier.server_key),
                    s3_secret: k.s3_secret.clone(),
                })
                .collect(),
        };
        // Serializing plain strings and vectors cannot fail.
        serde_json::to_string_pretty(&f).unwrap_or_default() + "\n"
    }

    /// The entry with this id.
    pub fn get(&self, id: &str) -> Option<&KeyEntry> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Adds an entry; its id must be new.
    pub fn add(&mut self, entry: KeyEntry) -> Result<(), KeysFileError> {
        if self.get(&entry.id).is_some() {
            return Err(KeysFileError::Duplicate(entry.id));
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(KeysFileError::TooMany);
        }
        self.keys.push(entry);
        Ok(())
    }

    /// Removes the entry with this id; whether there was one.
    pub fn remove(&mut self, id: &str) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| k.id != id);
        self.keys.len() != before
    }
}

fn entry(e: EntryJson) -> Result<KeyEntry, KeysFileError> {
    let bad = |why: String| KeysFileError::BadEntry {
        id: e.id.clone(),
        why,
    };
    check_id(&e.id).map_err(|x| bad(x.to_string()))?;
    let role: Role = e
        .role
        .parse()
        .map_err(|x: super::UnknownRole| bad(x.to_string()))?;
    if e.namespaces.is_empty() {
        return Err(bad("no namespaces (use [\"*\"] for all)".into()));
    }
    if let Some(n) = e.namespaces.iter().find(|n| !valid_namespace(n)) {
        return Err(bad(format!("namespace {n:?} is not 1 to 255 bytes")));
    }
    let key32 = |hex_text: &str, what: &str| -> Result<[u8; 32], KeysFileError> {
        unhex(hex_text)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| bad(format!("{what} is not 64 hex digits")))
    };
    let verifier = Verifier {
        stored_key: key32(&e.stored_key, "stored_key")?,
        server_key: key32(&e.server_key, "server_key")?,
    };
    if let Some(s3) = &e.s3_secret {
        key32(s3, "s3_secret")?;
    }
    Ok(KeyEntry {
        id: e.id.clone(),
        role,
        namespaces: e.namespaces.clone(),
        verifier,
        s3_secret: e.s3_secret.clone(),
    })
}

/// A namespace is 1 to 255 bytes, or `*` (all).
pub fn valid_namespace(n: &str) -> bool {
    !n.is_empty() && n.len() <= 255
}
