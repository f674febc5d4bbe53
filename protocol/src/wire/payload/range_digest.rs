//! RANGE_DIGEST request and reply: the leaf digests of a Merkle-style summary of the live
//! values a node holds in a key range (`docs/PROTOCOL.md` §7.10), so repair between groups
//! lists and copies only the sub-ranges whose digests differ.

use bytes::{BufMut, BytesMut};

use crate::wire::cursor::Reader;
use crate::wire::error::WireError;
use crate::wire::KeyId;

/// Bytes of an encoded [`RangeDigestRequest`].
pub const RANGE_DIGEST_REQUEST_LEN: usize = 72;
/// Bytes of a [`RangeDigestReply`] before its leaves.
pub const RANGE_DIGEST_REPLY_FIXED_LEN: usize = 16;
/// Deepest summary a node sends: 16^3 = 4096 leaves, 128 KiB.
pub const MAX_RANGE_DIGEST_DEPTH: u8 = 3;
/// Bytes of one leaf digest.
pub const DIGEST_LEN: usize = 32;

/// The leaves a summary of `depth` has.
pub fn leaves_at(depth: u8) -> usize {
    16usize.pow(u32::from(depth))
}

/// Summarize the range (`start_excl`, `end_incl`] of the ring (`start_excl == end_incl`:
/// the whole ring) cut into 16^`depth` leaves. Layout: start_excl [32], end_incl [32],
/// depth u8, reserved [7].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RangeDigestRequest {
    pub start_excl: KeyId,
    pub end_incl: KeyId,
    pub depth: u8,
}

impl RangeDigestRequest {
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        check_depth(self.depth)?;
        dst.put_slice(&self.start_excl);
        dst.put_slice(&self.end_incl);
        dst.put_u8(self.depth);
        dst.put_bytes(0, 7);
        Ok(())
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "RANGE_DIGEST request");
        let start_excl = r.key()?;
        let end_incl = r.key()?;
        let depth = r.u8()?;
        r.reserved(7, "RANGE_DIGEST reserved")?;
        r.finish()?;
        check_depth(depth)?;
        Ok(RangeDigestRequest {
            start_excl,
            end_incl,
            depth,
        })
    }
}

/// The summary: how many live values the range holds and the 16^depth leaf digests in the
/// range's order. Layout: records u64, depth u8, reserved [7], leaves [32] × 16^depth.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RangeDigestReply {
    pub records: u64,
    pub depth: u8,
    pub leaves: Vec<[u8; DIGEST_LEN]>,
}

impl RangeDigestReply {
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        check_depth(self.depth)?;
        if self.leaves.len() != leaves_at(self.depth) {
            return Err(WireError::InvalidValue {
                what: "RANGE_DIGEST leaf count",
                value: self.leaves.len() as u64,
            });
        }
        dst.put_u64_le(self.records);
        dst.put_u8(self.depth);
        dst.put_bytes(0, 7);
        for leaf in &self.leaves {
            dst.put_slice(leaf);
        }
        Ok(())
    }

    /// The length is checked against the depth before anything is allocated.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload, "RANGE_DIGEST reply");
        let records = r.u64()?;
        let depth = r.u8()?;
        r.reserved(7, "RANGE_DIGEST reply reserved")?;
        check_depth(depth)?;
        let want = leaves_at(depth) * DIGEST_LEN;
        if r.remaining() != want {
            return Err(WireError::InvalidValue {
                what: "RANGE_DIGEST reply length",
                value: payload.len() as u64,
            });
        }
        let leaves = r
            .slice(want)?
            .chunks_exact(DIGEST_LEN)
            .map(|c| {
                let mut leaf = [0u8; DIGEST_LEN];
                leaf.copy_from_slice(c);
                leaf
            })
            .collect();
        r.finish()?;
        Ok(RangeDigestReply {
            records,
            depth,
            leaves,
        })
    }
}

fn check_depth(depth: u8) -> Result<(), WireError> {
    if depth > MAX_RANGE_DIGEST_DEPTH {
        return Err(WireError::InvalidValue {
            what: "RANGE_DIGEST depth",
            value: u64::from(depth),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_72_bytes_and_round_trips() -> Result<(), WireError> {
        let req = RangeDigestRequest {
            start_excl: [1; 32],
            end_incl: [2; 32],
            depth: 3,
        };
        let mut buf = BytesMut::new();
        req.encode(&mut buf)?;
        assert_eq!(buf.len(), RANGE_DIGEST_REQUEST_LEN);
        assert_eq!(buf.get(64), Some(&3));
        assert_eq!(RangeDigestRequest::decode(&buf)?, req);
        buf[64] = 4;
        assert!(RangeDigestRequest::decode(&buf).is_err(), "too deep");
        buf[64] = 1;
        buf[70] = 1;
        assert!(RangeDigestRequest::decode(&buf).is_err(), "reserved byte");
        assert!(RangeDigestRequest::decode(&buf[..71]).is_err(), "truncated");
        Ok(())
    }

    #[test]
    fn reply_length_must_match_its_depth() -> Result<(), WireError> {
        let reply = RangeDigestReply {
            records: 9,
            depth: 1,
            leaves: (0..16u8).map(|i| [i; 32]).collect(),
        };
        let mut buf = BytesMut::new();
        reply.encode(&mut buf)?;
        assert_eq!(buf.len(), RANGE_DIGEST_REPLY_FIXED_LEN + 16 * 32);
        assert_eq!(RangeDigestReply::decode(&buf)?, reply);
        assert!(RangeDigestReply::decode(&buf[..buf.len() - 1]).is_err());
        let mut longer = buf.clone();
        longer.put_u8(0);
        assert!(RangeDigestReply::decode(&longer).is_err());
        let mut deeper = buf.clone();
        deeper[8] = 9;
        assert!(RangeDigestReply::decode(&deeper).is_err());
        let short = RangeDigestReply {
            leaves: vec![[0; 32]; 3],
            ..reply
        };
        assert!(short.encode(&mut BytesMut::new()).is_err());
        Ok(())
    }
}
