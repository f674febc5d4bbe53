//! [`MemberId`]: who a cluster member is, as SWIM (foca) tracks it.

use std::fmt;

use bytes::{Buf, BufMut};

use super::reader::{put_text, room, text_of, u32_of, u64_of};
use super::ClusterError;

/// A member's identity: its unique name, where to reach it, its replica group and its
/// incarnation. The incarnation is the same number as the incarnation of the member's
/// route-table entry; a member raises both whenever it changes its entry, refutes a report
/// of its death or restarts, so a newer identity of the same address always wins.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId {
    /// Unique node name (1 to 255 bytes of UTF-8).
    pub name: String,
    /// `host:port` to send cluster messages to (1 to 255 bytes of UTF-8).
    pub addr: String,
    /// Replica group.
    pub group: u32,
    /// Raised by the member on every change of its entry, refutation or restart.
    pub incarnation: u64,
}

impl MemberId {
    /// A stand-in identity for a seed known only by its address: SWIM accepts an
    /// announce addressed to any identity with the receiver's address.
    pub fn seed(addr: &str) -> MemberId {
        MemberId {
            name: String::from("?"),
            addr: addr.to_string(),
            group: 0,
            incarnation: 0,
        }
    }

    /// Appends the identity: name, addr, group u32, incarnation u64 (`docs/PROTOCOL.md` §15.8).
    pub fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), ClusterError> {
        put_text(buf, &self.name, "member name")?;
        put_text(buf, &self.addr, "member addr")?;
        room(buf, 12, "member identity")?;
        buf.put_u32_le(self.group);
        buf.put_u64_le(self.incarnation);
        Ok(())
    }

    /// Reads one identity written by [`MemberId::encode`].
    pub fn decode<B: Buf>(buf: &mut B) -> Result<MemberId, ClusterError> {
        Ok(MemberId {
            name: text_of(buf, "member name")?,
            addr: text_of(buf, "member addr")?,
            group: u32_of(buf, "member group")?,
            incarnation: u64_of(buf, "member incarnation")?,
        })
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}/g{}#{}",
            self.name, self.addr, self.group, self.incarnation
        )
    }
}

impl foca::Identity for MemberId {
    /// Identities with the same address are the same member; the newer one wins.
    type Addr = String;

    fn renew(&self) -> Option<MemberId> {
        let incarnation = self.incarnation.checked_add(1)?;
        Some(MemberId {
            incarnation,
            ..self.clone()
        })
    }

    fn addr(&self) -> String {
        self.addr.clone()
    }

    fn win_addr_conflict(&self, adversary: &MemberId) -> bool {
        (self.incarnation, &self.name) > (adversary.incarnation, &adversary.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Identity;

    fn member() -> MemberId {
        MemberId {
            name: "n1".into(),
            addr: "10.0.0.1:7000".into(),
            group: 2,
            incarnation: 5,
        }
    }

    #[test]
    fn round_trips_and_is_bounded() -> Result<(), ClusterError> {
        let mut buf = Vec::new();
        member().encode(&mut buf)?;
        assert_eq!(buf.len(), 1 + 2 + 1 + 13 + 4 + 8);
        assert_eq!(MemberId::decode(&mut buf.as_slice())?, member());
        for cut in 0..buf.len() {
            let mut short = buf.get(..cut).unwrap_or_default();
            assert!(MemberId::decode(&mut short).is_err(), "cut at {cut}");
        }
        Ok(())
    }

    #[test]
    fn empty_or_bad_text_is_refused() {
        let mut bad = member();
        bad.name.clear();
        assert!(bad.encode(&mut Vec::new()).is_err());
        let bytes = [2u8, 0xff, 0xfe];
        assert!(matches!(
            MemberId::decode(&mut &bytes[..]),
            Err(ClusterError::BadText { .. })
        ));
    }

    #[test]
    fn newer_incarnation_wins_the_address() {
        let old = member();
        let new = old.renew().unwrap_or_else(member);
        assert_eq!(new.incarnation, 6);
        assert!(new.win_addr_conflict(&old));
        assert!(!old.win_addr_conflict(&new));
    }
}
