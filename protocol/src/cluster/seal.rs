//! Sealed cluster datagrams (`docs/PROTOCOL.md` §15.11): with a cluster secret, every
//! membership datagram carries its sender, a counter and a MAC, and a datagram that fails
//! any check is dropped before the state machine sees it. Pure: the caller passes the
//! clock and the secrets.
//!
//! Layout: magic `RBCS` (4), version u8 = 1, reserved u8×3 (zero), counter u64 (little
//! endian), sender_len u8, sender (UTF-8), the cluster message, then 16 bytes of
//! `HMAC-SHA-256(MacKey, every byte before)`, where `MacKey = HMAC-SHA-256(cluster secret,
//! "ringblob cluster mac")`.
//!
//! **Replay.** A sender's counter is its wall clock in nanoseconds, forced to grow by at
//! least one per datagram. A receiver accepts a counter only above the last it accepted
//! from that sender, and only within [`REPLAY_WINDOW`] of its own clock: a captured
//! datagram replayed later is older than the window or not above the last counter seen.

use std::collections::HashMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes before the sender: magic, version, reserved, counter, sender_len.
pub const SEAL_FIXED_LEN: usize = 4 + 1 + 3 + 8 + 1;
/// Bytes of the MAC at the end.
pub const SEAL_MAC_LEN: usize = 16;
/// How far a datagram's counter may be from the receiver's clock.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(60);
/// Senders whose last counter is remembered.
pub const MAX_SENDERS: usize = 4096;

const MAGIC: [u8; 4] = *b"RBCS";

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("not a sealed datagram (too short, bad magic or version)")]
    Malformed,
    #[error("MAC does not match any accepted cluster secret")]
    BadMac,
    #[error("counter outside the replay window")]
    Stale,
    #[error("counter not above the last one from this sender (replayed)")]
    Replayed,
}

/// The MAC key of a cluster secret.
pub fn mac_key(secret: &[u8; 32]) -> [u8; 32] {
    mac(secret, &[b"ringblob cluster mac"])
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        return [0; 32];
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// One node's sealing and opening state.
#[derive(Debug, Default)]
pub struct Sealer {
    last_sent: u64,
    last_seen: HashMap<String, u64>,
}

impl Sealer {
    /// `message` sealed by `sender` with `key` (a [`mac_key`]) at `now_ns`.
    pub fn seal(&mut self, key: &[u8; 32], sender: &str, message: &[u8], now_ns: u64) -> Vec<u8> {
        self.last_sent = now_ns.max(self.last_sent.saturating_add(1));
        let name = sender.as_bytes();
        let name = name.get(..name.len().min(255)).unwrap_or_default();
        let mut out = Vec::with_capacity(SEAL_FIXED_LEN + name.len() + message.len() + 16);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[1, 0, 0, 0]);
        out.extend_from_slice(&self.last_sent.to_le_bytes());
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.extend_from_slice(message);
        let tag = mac(key, &[&out]);
        out.extend_from_slice(tag.get(..SEAL_MAC_LEN).unwrap_or_default());
        out
    }

    /// The message inside `datagram`, if its MAC matches one of `keys`, and its counter is
    /// fresh and above the sender's last; the sender's counter is then remembered.
    pub fn open<'d>(
        &mut self,
        keys: &[[u8; 32]],
        datagram: &'d [u8],
        now_ns: u64,
    ) -> Result<&'d [u8], SealError> {
        let (body, tag) = datagram
            .split_at_checked(datagram.len().saturating_sub(SEAL_MAC_LEN))
            .ok_or(SealError::Malformed)?;
        if body.len() < SEAL_FIXED_LEN
            || body.get(..4) != Some(&MAGIC)
            || body.get(4..8) != Some(&[1, 0, 0, 0])
        {
            return Err(SealError::Malformed);
        }
        let authentic = keys.iter().any(|k| {
            let expected = mac(k, &[body]);
            let expected = expected.get(..SEAL_MAC_LEN).unwrap_or_default();
            expected
                .iter()
                .zip(tag)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
                && tag.len() == SEAL_MAC_LEN
        });
        if !authentic {
            return Err(SealError::BadMac);
        }
        let counter = body
            .get(8..16)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or(SealError::Malformed)?;
        let name_len = usize::from(*body.get(16).ok_or(SealError::Malformed)?);
        let sender = body
            .get(SEAL_FIXED_LEN..SEAL_FIXED_LEN + name_len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or(SealError::Malformed)?;
        let message = body
            .get(SEAL_FIXED_LEN + name_len..)
            .ok_or(SealError::Malformed)?;
        let window = REPLAY_WINDOW.as_nanos() as u64;
        if counter.abs_diff(now_ns) > window {
            return Err(SealError::Stale);
        }
        if self
            .last_seen
            .get(sender)
            .is_some_and(|last| counter <= *last)
        {
            return Err(SealError::Replayed);
        }
        if self.last_seen.len() >= MAX_SENDERS && !self.last_seen.contains_key(sender) {
            // Senders silent for a window can no longer be replayed (too old): forget them.
            self.last_seen
                .retain(|_, last| now_ns.saturating_sub(*last) <= window);
            if self.last_seen.len() >= MAX_SENDERS {
                return Err(SealError::Stale);
            }
        }
        self.last_seen.insert(sender.to_string(), counter);
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000_000_000;

    #[test]
    fn a_sealed_datagram_opens_once_and_forgeries_do_not() {
        let key = mac_key(&[7; 32]);
        let other = mac_key(&[8; 32]);
        let mut a = Sealer::default();
        let mut b = Sealer::default();
        let d = a.seal(&key, "node-a", b"hello", NOW);
        assert_eq!(b.open(&[other, key], &d, NOW + 5), Ok(&b"hello"[..]));
        assert_eq!(b.open(&[key], &d, NOW + 6), Err(SealError::Replayed));
        let d2 = a.seal(&key, "node-a", b"again", NOW);
        assert_eq!(
            b.open(&[key], &d2, NOW),
            Ok(&b"again"[..]),
            "same clock, counter grew"
        );
        // Wrong secret, a flipped byte, a truncated datagram, an unsealed one.
        let d3 = a.seal(&key, "node-a", b"x", NOW + 10);
        assert_eq!(b.open(&[other], &d3, NOW), Err(SealError::BadMac));
        let mut flipped = d3.clone();
        flipped[SEAL_FIXED_LEN + 6] ^= 1;
        assert_eq!(b.open(&[key], &flipped, NOW), Err(SealError::BadMac));
        assert_eq!(b.open(&[key], &d3[..10], NOW), Err(SealError::Malformed));
        assert_eq!(
            b.open(&[key], b"plain swim bytes", NOW),
            Err(SealError::Malformed)
        );
        // A fresh receiver (restarted) refuses a datagram older than the window.
        let mut c = Sealer::default();
        let late = NOW + 10 + REPLAY_WINDOW.as_nanos() as u64 + 1;
        assert_eq!(c.open(&[key], &d3, late), Err(SealError::Stale));
        assert_eq!(c.open(&[key], &d3, NOW), Ok(&b"x"[..]));
    }
}
