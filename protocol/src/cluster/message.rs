//! [`ClusterMessage`]: one datagram between cluster members — a SWIM packet, or one step
//! of the route-table exchange (`docs/PROTOCOL.md` §15.8). Bounded decoders, typed errors.

use bytes::{Buf, BufMut};
use sha2::{Digest, Sha256};

use super::reader::{count_of, finish, id_of, put_count, put_text, text_of, u32_of, u64_of, u8_of};
use super::ClusterError;
use crate::ring::{RouteNode, MAX_IDS_PER_NODE, MAX_ROUTE_NODES, RING_ID_LEN};

/// The format version of cluster messages.
pub const CLUSTER_MESSAGE_VERSION: u8 = 1;
/// Most bytes in one cluster message.
pub const MAX_CLUSTER_MESSAGE_LEN: usize = 1 << 24;

const KIND_SWIM: u8 = 1;
const KIND_ROUTE_DIGEST: u8 = 2;
const KIND_ROUTE_UPDATE: u8 = 3;

/// The smallest encoded [`EntrySummary`]: 2-byte name, u64, u8, u64.
const MIN_SUMMARY_LEN: usize = 2 + 8 + 1 + 8;
/// The smallest encoded route entry: 2-byte name and addr, group, incarnation, alive, count.
const MIN_ENTRY_LEN: usize = 2 + 2 + 4 + 8 + 1 + 4;

/// What a node knows of one route-table entry, in 19 to 273 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntrySummary {
    /// The entry's node name.
    pub name: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// Its liveness.
    pub alive: bool,
    /// Whether it is leaving (only when not alive).
    pub leaving: bool,
    /// [`entry_hash`] of the whole entry, so equal-ranked but different entries are seen.
    pub hash: u64,
}

/// One cluster datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterMessage {
    /// A foca packet, opaque here.
    Swim(Vec<u8>),
    /// "This is what my table holds": the receiver answers with a [`ClusterMessage::RouteUpdate`].
    RouteDigest {
        /// Where to answer.
        from_addr: String,
        /// The sender's table version.
        version: u64,
        /// One summary per entry of the sender's table.
        entries: Vec<EntrySummary>,
    },
    /// Entries the receiver lacks, and names of entries the sender wants back.
    RouteUpdate {
        /// Where to answer.
        from_addr: String,
        /// The sender's table version.
        version: u64,
        /// Entries to merge.
        entries: Vec<RouteNode>,
        /// Names whose entries the sender wants (empty: no answer expected).
        want: Vec<String>,
    },
}

impl ClusterMessage {
    /// The datagram bytes.
    pub fn encode(&self) -> Result<Vec<u8>, ClusterError> {
        let mut buf = vec![CLUSTER_MESSAGE_VERSION];
        match self {
            ClusterMessage::Swim(packet) => {
                buf.put_u8(KIND_SWIM);
                buf.put_slice(packet);
            }
            ClusterMessage::RouteDigest {
                from_addr,
                version,
                entries,
            } => {
                buf.put_u8(KIND_ROUTE_DIGEST);
                put_text(&mut buf, from_addr, "route sender addr")?;
                buf.put_u64_le(*version);
                put_count(&mut buf, entries.len(), MAX_ROUTE_NODES, "route digest")?;
                for entry in entries {
                    put_summary(&mut buf, entry)?;
                }
            }
            ClusterMessage::RouteUpdate {
                from_addr,
                version,
                entries,
                want,
            } => {
                buf.put_u8(KIND_ROUTE_UPDATE);
                put_text(&mut buf, from_addr, "route sender addr")?;
                buf.put_u64_le(*version);
                put_count(&mut buf, entries.len(), MAX_ROUTE_NODES, "route entries")?;
                for entry in entries {
                    put_entry(&mut buf, entry)?;
                }
                put_count(&mut buf, want.len(), MAX_ROUTE_NODES, "route wants")?;
                for name in want {
                    put_text(&mut buf, name, "wanted name")?;
                }
            }
        }
        check_len(buf.len())?;
        Ok(buf)
    }

    /// Decodes one whole datagram.
    pub fn decode(bytes: &[u8]) -> Result<ClusterMessage, ClusterError> {
        check_len(bytes.len())?;
        let mut buf = bytes;
        let version = u8_of(&mut buf, "cluster message version")?;
        if version != CLUSTER_MESSAGE_VERSION {
            return Err(ClusterError::UnsupportedVersion {
                what: "cluster message",
                got: version,
                supported: CLUSTER_MESSAGE_VERSION,
            });
        }
        let message = match u8_of(&mut buf, "cluster message kind")? {
            KIND_SWIM => return Ok(ClusterMessage::Swim(buf.to_vec())),
            KIND_ROUTE_DIGEST => decode_digest(&mut buf)?,
            KIND_ROUTE_UPDATE => decode_update(&mut buf)?,
            got => {
                return Err(ClusterError::BadTag {
                    what: "cluster message kind",
                    got,
                })
            }
        };
        finish(&buf, "cluster message")?;
        Ok(message)
    }
}

/// The datagram carrying one foca packet (without copying it twice).
pub(crate) fn swim_datagram(packet: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(2 + packet.len());
    buf.push(CLUSTER_MESSAGE_VERSION);
    buf.push(KIND_SWIM);
    buf.extend_from_slice(packet);
    buf
}

fn check_len(len: usize) -> Result<(), ClusterError> {
    if len > MAX_CLUSTER_MESSAGE_LEN {
        return Err(ClusterError::TooLarge {
            what: "cluster message",
            len: super::reader::as_u64(len),
            max: super::reader::as_u64(MAX_CLUSTER_MESSAGE_LEN),
        });
    }
    Ok(())
}

fn decode_digest(buf: &mut &[u8]) -> Result<ClusterMessage, ClusterError> {
    let from_addr = text_of(buf, "route sender addr")?;
    let version = u64_of(buf, "route version")?;
    let count = count_of(buf, MAX_ROUTE_NODES, MIN_SUMMARY_LEN, "route digest")?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let name = text_of(buf, "summary name")?;
        let incarnation = u64_of(buf, "summary incarnation")?;
        let (alive, leaving) = liveness_of(buf, "summary liveness")?;
        entries.push(EntrySummary {
            name,
            incarnation,
            alive,
            leaving,
            hash: u64_of(buf, "summary hash")?,
        });
    }
    Ok(ClusterMessage::RouteDigest {
        from_addr,
        version,
        entries,
    })
}

fn decode_update(buf: &mut &[u8]) -> Result<ClusterMessage, ClusterError> {
    let from_addr = text_of(buf, "route sender addr")?;
    let version = u64_of(buf, "route version")?;
    let count = count_of(buf, MAX_ROUTE_NODES, MIN_ENTRY_LEN, "route entries")?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(decode_entry(buf)?);
    }
    let count = count_of(buf, MAX_ROUTE_NODES, 2, "route wants")?;
    let mut want = Vec::with_capacity(count);
    for _ in 0..count {
        want.push(text_of(buf, "wanted name")?);
    }
    Ok(ClusterMessage::RouteUpdate {
        from_addr,
        version,
        entries,
        want,
    })
}

fn put_summary(buf: &mut Vec<u8>, entry: &EntrySummary) -> Result<(), ClusterError> {
    put_text(buf, &entry.name, "summary name")?;
    buf.put_u64_le(entry.incarnation);
    buf.put_u8(liveness_byte(entry.alive, entry.leaving));
    buf.put_u64_le(entry.hash);
    Ok(())
}

/// Appends one route entry: name, addr, group u32, incarnation u64, liveness u8 (see
/// [`liveness_byte`]), id count u32, the IDs.
pub(crate) fn put_entry<B: BufMut>(buf: &mut B, node: &RouteNode) -> Result<(), ClusterError> {
    put_text(buf, &node.name, "entry name")?;
    put_text(buf, &node.addr, "entry addr")?;
    buf.put_u32_le(node.group);
    buf.put_u64_le(node.incarnation);
    buf.put_u8(liveness_byte(node.alive, node.leaving));
    put_count(buf, node.ids.len(), MAX_IDS_PER_NODE, "entry ids")?;
    for id in &node.ids {
        buf.put_slice(&id.0);
    }
    Ok(())
}

fn decode_entry<B: Buf>(buf: &mut B) -> Result<RouteNode, ClusterError> {
    let name = text_of(buf, "entry name")?;
    let addr = text_of(buf, "entry addr")?;
    let group = u32_of(buf, "entry group")?;
    let incarnation = u64_of(buf, "entry incarnation")?;
    let (alive, leaving) = liveness_of(buf, "entry liveness")?;
    let count = count_of(buf, MAX_IDS_PER_NODE, RING_ID_LEN, "entry ids")?;
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        ids.push(id_of(buf, "entry id")?);
    }
    Ok(RouteNode {
        name,
        addr,
        group,
        ids,
        alive,
        leaving,
        incarnation,
    })
}

/// The liveness byte: 0 dead, 1 alive, 2 leaving (alive wins if both flags are set).
pub(crate) fn liveness_byte(alive: bool, leaving: bool) -> u8 {
    match (alive, leaving) {
        (true, _) => 1,
        (false, true) => 2,
        (false, false) => 0,
    }
}

/// Reads a liveness byte as (alive, leaving); any other value is an error.
fn liveness_of<B: Buf>(buf: &mut B, what: &'static str) -> Result<(bool, bool), ClusterError> {
    match u8_of(buf, what)? {
        0 => Ok((false, false)),
        1 => Ok((true, false)),
        2 => Ok((false, true)),
        got => Err(ClusterError::BadTag { what, got }),
    }
}

/// The first 8 bytes (as u64 LE) of the SHA-256 of the entry's encoding; entries that fail
/// to encode (over a limit) hash to 0.
pub fn entry_hash(node: &RouteNode) -> u64 {
    let mut bytes = Vec::with_capacity(64 + node.ids.len() * RING_ID_LEN);
    if put_entry(&mut bytes, node).is_err() {
        return 0;
    }
    let digest = Sha256::digest(&bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(first)
}

/// The summary of one entry.
pub fn summarize(node: &RouteNode) -> EntrySummary {
    EntrySummary {
        name: node.name.clone(),
        incarnation: node.incarnation,
        alive: node.alive,
        leaving: node.leaving && !node.alive,
        hash: entry_hash(node),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::RingId;

    fn node(name: &str) -> RouteNode {
        RouteNode {
            name: name.into(),
            addr: format!("{name}:7000"),
            group: 1,
            ids: vec![RingId::MIN, RingId::MAX],
            alive: true,
            leaving: false,
            incarnation: 4,
        }
    }

    fn samples() -> Vec<ClusterMessage> {
        vec![
            ClusterMessage::Swim(vec![1, 2, 3]),
            ClusterMessage::RouteDigest {
                from_addr: "a:1".into(),
                version: 9,
                entries: vec![summarize(&node("x")), summarize(&node("y"))],
            },
            ClusterMessage::RouteUpdate {
                from_addr: "a:1".into(),
                version: 3,
                entries: vec![node("x")],
                want: vec!["y".into()],
            },
        ]
    }

    #[test]
    fn messages_round_trip() -> Result<(), ClusterError> {
        for message in samples() {
            let bytes = message.encode()?;
            assert_eq!(ClusterMessage::decode(&bytes)?, message);
        }
        Ok(())
    }

    #[test]
    fn truncated_extended_and_bad_headers_fail() -> Result<(), ClusterError> {
        for message in samples().into_iter().skip(1) {
            let bytes = message.encode()?;
            for cut in 0..bytes.len() {
                let short = bytes.get(..cut).unwrap_or_default();
                assert!(ClusterMessage::decode(short).is_err(), "cut at {cut}");
            }
            let mut long = bytes.clone();
            long.push(0);
            assert!(matches!(
                ClusterMessage::decode(&long),
                Err(ClusterError::TrailingBytes { extra: 1, .. })
            ));
        }
        assert!(matches!(
            ClusterMessage::decode(&[2, 1]),
            Err(ClusterError::UnsupportedVersion { got: 2, .. })
        ));
        assert!(matches!(
            ClusterMessage::decode(&[1, 9]),
            Err(ClusterError::BadTag { got: 9, .. })
        ));
        Ok(())
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        let mut bytes = vec![1, KIND_ROUTE_UPDATE, 1, b'a'];
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&4096u32.to_le_bytes());
        assert!(matches!(
            ClusterMessage::decode(&bytes),
            Err(ClusterError::Truncated { .. })
        ));
        let mut over = bytes.clone();
        over.truncate(12);
        over.extend_from_slice(&4097u32.to_le_bytes());
        assert!(matches!(
            ClusterMessage::decode(&over),
            Err(ClusterError::TooMany { count: 4097, .. })
        ));
    }

    #[test]
    fn golden_empty_digest() -> Result<(), ClusterError> {
        // docs/PROTOCOL.md §15.8: from `a:1`, version 9, no entries.
        let digest = ClusterMessage::RouteDigest {
            from_addr: "a:1".into(),
            version: 9,
            entries: Vec::new(),
        };
        let mut want = vec![1u8, 2, 3, b'a', b':', b'1', 9];
        want.extend_from_slice(&[0; 11]);
        assert_eq!(digest.encode()?, want);
        Ok(())
    }

    #[test]
    fn hash_sees_every_field() {
        let base = entry_hash(&node("x"));
        let mut other = node("x");
        other.ids.pop();
        assert_ne!(entry_hash(&other), base);
        assert_eq!(entry_hash(&node("x")), base);
    }
}
