//! A namespace's **attribute space** (`docs/ATTRIBUTES.md` §2): the paper's compression
//! formula. It lists **overlays** — each a set of queryable property names with their
//! weights (regions per dimension) — and the **fallback** space of the paper's §3, where
//! every property counts and a property's name hashes to one of `dimensions` dimensions of
//! `regions` regions each. The space is stored as an object of its own (the name
//! [`SPACE_NAME`] in the namespace) and read by every client that writes or queries there.

use std::collections::BTreeMap;

use ringblob_backends::names::attrs::check_name;
use serde::{Deserialize, Serialize};

use super::hash::{tagged_u64, AttrHasher};
use super::AttrsError;
use ringblob_backends::names::Attrs;

/// The paper's default number of dimensions.
pub const DEFAULT_DIMENSIONS: u32 = 10;
/// The paper's default regions per dimension.
pub const DEFAULT_REGIONS: u32 = 3;
/// Most declared overlays.
pub const MAX_OVERLAYS: usize = 16;
/// Most properties (dimensions) in one overlay.
pub const MAX_OVERLAY_DIMS: usize = 16;
/// Most dimensions of the fallback space.
pub const MAX_FALLBACK_DIMS: u32 = 64;
/// Most regions of one space (the product of its dimensions' regions): 2^32, so every
/// region spans at least 2^32 ring positions.
pub const MAX_SPACE_REGIONS: u64 = 1 << 32;
/// The name the space object is stored under in its namespace (a NUL first, so no CLI or
/// HTTP name can be it; it has no name record and is never listed).
pub const SPACE_NAME: &[u8] = b"\0ringblob/attribute-space";
/// Domain tag of a space's fingerprint.
pub const SPACE_TAG: &[u8] = b"ringblob/attr/space\0";

/// The fallback space: every property, hashed into `dimensions` dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fallback {
    pub dimensions: u32,
    pub regions: u32,
}

impl Default for Fallback {
    fn default() -> Fallback {
        Fallback {
            dimensions: DEFAULT_DIMENSIONS,
            regions: DEFAULT_REGIONS,
        }
    }
}

fn default_fallback() -> Option<Fallback> {
    Some(Fallback::default())
}

/// A namespace's attribute space. Overlay `i` of `overlays` is overlay number `i + 1`; the
/// fallback is overlay 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Space {
    /// Declared overlays: property name → regions of its dimension (its weight).
    #[serde(default)]
    pub overlays: Vec<BTreeMap<String, u32>>,
    /// The paper's default space over every property; `null` to index only by overlays.
    #[serde(default = "default_fallback")]
    pub fallback: Option<Fallback>,
}

impl Default for Space {
    /// What a namespace without a stored space uses: the fallback alone, `|D|` = 10, `r` = 3.
    fn default() -> Space {
        Space {
            overlays: Vec::new(),
            fallback: default_fallback(),
        }
    }
}

/// How one overlay turns attributes into a region: its dimensions' sizes, and which
/// properties fall in which dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// 0 for the fallback, `i + 1` for declared overlay `i`.
    pub overlay: u16,
    /// Regions per dimension, dimension 0 first (the most significant).
    pub radices: Vec<u32>,
    /// Declared overlays: the property of each dimension. Empty for the fallback.
    pub properties: Vec<String>,
}

impl Layout {
    /// Regions in the space: the product of the radices.
    pub fn regions(&self) -> u64 {
        self.radices.iter().map(|r| u64::from(*r)).product()
    }

    /// The fallback's dimension of property `name`.
    pub fn fallback_dim(&self, hasher: &dyn AttrHasher, name: &str) -> usize {
        (hasher.name_hash(name) % self.radices.len() as u64) as usize
    }

    /// The dimension of `name` in this overlay, if it has one (the fallback: always).
    pub fn dim_of(&self, hasher: &dyn AttrHasher, name: &str) -> Option<usize> {
        match self.overlay {
            0 => Some(self.fallback_dim(hasher, name)),
            _ => self.properties.iter().position(|p| p == name),
        }
    }

    /// The object's coordinate in every dimension (paper §3): in the fallback, the sum of
    /// the value hashes (each modulo `r`) of the properties falling in a dimension, modulo
    /// `r` (0 where none falls); in a declared overlay, its property's value hash modulo the
    /// dimension's regions (0 if the object lacks it).
    pub fn coordinates(&self, hasher: &dyn AttrHasher, attrs: &Attrs) -> Vec<u32> {
        let mut coords = vec![0u64; self.radices.len()];
        for (name, value) in attrs.iter() {
            if let Some(d) = self.dim_of(hasher, name) {
                let r = u64::from(self.radices[d]);
                coords[d] = (coords[d] + hasher.value_hash(value) % r) % r;
            }
        }
        coords.into_iter().map(|c| c as u32).collect()
    }

    /// Whether an object with `attrs` has an entry in this overlay: always in the fallback,
    /// in a declared overlay when it has at least one of its properties.
    pub fn indexes(&self, attrs: &Attrs) -> bool {
        self.overlay == 0 || self.properties.iter().any(|p| attrs.get(p).is_some())
    }
}

impl Space {
    /// Parses and checks a space written as JSON.
    pub fn from_json(text: &str) -> Result<Space, AttrsError> {
        let space: Space =
            serde_json::from_str(text).map_err(|e| AttrsError::Space(e.to_string()))?;
        space.check()?;
        Ok(space)
    }

    /// The canonical JSON (property names sorted), as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks the limits: at most 16 overlays of 1 to 16 properties, every weight ≥ 2,
    /// every space at most 2^32 regions, property names valid.
    pub fn check(&self) -> Result<(), AttrsError> {
        let bad = |m: String| Err(AttrsError::Space(m));
        if self.overlays.len() > MAX_OVERLAYS {
            return bad(format!("more than {MAX_OVERLAYS} overlays"));
        }
        if let Some(f) = self.fallback {
            if !(1..=MAX_FALLBACK_DIMS).contains(&f.dimensions) || f.regions < 2 {
                return bad(format!(
                    "fallback: 1 to {MAX_FALLBACK_DIMS} dimensions of at least 2 regions"
                ));
            }
        }
        for (i, overlay) in self.overlays.iter().enumerate() {
            if overlay.is_empty() || overlay.len() > MAX_OVERLAY_DIMS {
                return bad(format!(
                    "overlay {}: 1 to {MAX_OVERLAY_DIMS} properties",
                    i + 1
                ));
            }
            for (name, weight) in overlay {
                check_name(name).map_err(|e| AttrsError::Space(e.to_string()))?;
                if *weight < 2 {
                    return bad(format!(
                        "overlay {}: {name:?} needs 2 regions or more",
                        i + 1
                    ));
                }
            }
        }
        for layout in self.layouts() {
            if checked_regions(&layout.radices).is_none() {
                return bad(format!(
                    "overlay {}: more than 2^32 regions (the product of its weights)",
                    layout.overlay
                ));
            }
        }
        Ok(())
    }

    /// Every overlay's layout: the fallback (if any) first, then the declared ones.
    pub fn layouts(&self) -> Vec<Layout> {
        let fallback = self.fallback.map(|f| Layout {
            overlay: 0,
            radices: vec![f.regions; f.dimensions as usize],
            properties: Vec::new(),
        });
        let declared = self.overlays.iter().enumerate().map(|(i, o)| Layout {
            overlay: (i + 1) as u16,
            radices: o.values().copied().collect(),
            properties: o.keys().cloned().collect(),
        });
        fallback.into_iter().chain(declared).collect()
    }

    /// A 64-bit fingerprint of the space (its canonical JSON): index entries carry it, so
    /// entries placed under another space are recognised as stale.
    pub fn fingerprint(&self) -> u64 {
        tagged_u64(SPACE_TAG, &[self.to_json().as_bytes()])
    }
}

fn checked_regions(radices: &[u32]) -> Option<u64> {
    let mut n: u64 = 1;
    for r in radices {
        n = n.checked_mul(u64::from(*r))?;
        if n > MAX_SPACE_REGIONS {
            return None;
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn json_round_trips_and_defaults_to_the_papers_space() -> TestResult {
        let s = Space::from_json(r#"{"overlays":[{"year":4,"camera":9}]}"#)?;
        assert_eq!(s.fallback, Some(Fallback::default()));
        assert_eq!(
            s.to_json(),
            r#"{"overlays":[{"camera":9,"year":4}],"fallback":{"dimensions":10,"regions":3}}"#
        );
        assert_eq!(Space::from_json(&s.to_json())?, s);
        let only = Space::from_json(r#"{"overlays":[{"lens":6}],"fallback":null}"#)?;
        assert_eq!(only.fallback, None);
        assert_eq!(only.layouts().len(), 1);
        assert_eq!(only.layouts()[0].overlay, 1);
        assert_eq!(Space::default().layouts()[0].regions(), 59_049);
        Ok(())
    }

    #[test]
    fn bad_spaces_are_refused() {
        for bad in [
            r#"{"overlays":[{}]}"#,
            r#"{"overlays":[{"a":1}]}"#,
            r#"{"overlays":[{"a*":3}]}"#,
            r#"{"fallback":{"dimensions":0,"regions":3}}"#,
            r#"{"fallback":{"dimensions":40,"regions":3}}"#,
            r#"{"overlays":[{"a":65536,"b":65536,"c":2}]}"#,
            r#"{"shapes":[]}"#,
            "not json",
        ] {
            assert!(Space::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprints_differ_with_the_space() -> TestResult {
        let a = Space::default();
        let b = Space::from_json(r#"{"overlays":[{"camera":9}]}"#)?;
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), Space::from_json("{}")?.fingerprint());
        Ok(())
    }
}
