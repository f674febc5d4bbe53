//! [`SwimCodec`]: foca's packet header and member updates in bytes (`docs/PROTOCOL.md`
//! §15.8). Every decoder checks lengths before reading and returns [`ClusterError`].

use bytes::{Buf, BufMut};
use foca::{Header, Member, Message, State};

use super::reader::{room, u16_of, u8_of};
use super::{ClusterError, MemberId};

/// The SWIM message kinds, one byte each.
mod tag {
    pub const PING: u8 = 1;
    pub const ACK: u8 = 2;
    pub const PING_REQ: u8 = 3;
    pub const INDIRECT_PING: u8 = 4;
    pub const INDIRECT_ACK: u8 = 5;
    pub const FORWARDED_ACK: u8 = 6;
    pub const ANNOUNCE: u8 = 7;
    pub const FEED: u8 = 8;
    pub const GOSSIP: u8 = 9;
    pub const BROADCAST: u8 = 10;
    pub const TURN_UNDEAD: u8 = 11;
}

/// The codec foca uses for [`MemberId`]s. Stateless.
#[derive(Clone, Copy, Debug, Default)]
pub struct SwimCodec;

impl foca::Codec<MemberId> for SwimCodec {
    type Error = ClusterError;

    fn encode_header(
        &mut self,
        header: &Header<MemberId>,
        mut buf: impl BufMut,
    ) -> Result<(), ClusterError> {
        header.src.encode(&mut buf)?;
        room(&buf, 2, "swim header")?;
        buf.put_u16_le(header.src_incarnation);
        header.dst.encode(&mut buf)?;
        encode_message(&header.message, &mut buf)
    }

    fn decode_header(&mut self, mut buf: impl Buf) -> Result<Header<MemberId>, ClusterError> {
        let src = MemberId::decode(&mut buf)?;
        let src_incarnation = u16_of(&mut buf, "swim incarnation")?;
        let dst = MemberId::decode(&mut buf)?;
        let message = decode_message(&mut buf)?;
        Ok(Header {
            src,
            src_incarnation,
            dst,
            message,
        })
    }

    fn encode_member(
        &mut self,
        member: &Member<MemberId>,
        mut buf: impl BufMut,
    ) -> Result<(), ClusterError> {
        member.id().encode(&mut buf)?;
        room(&buf, 3, "swim member")?;
        buf.put_u16_le(member.incarnation());
        buf.put_u8(match member.state() {
            State::Alive => 0,
            State::Suspect => 1,
            State::Down => 2,
        });
        Ok(())
    }

    fn decode_member(&mut self, mut buf: impl Buf) -> Result<Member<MemberId>, ClusterError> {
        let id = MemberId::decode(&mut buf)?;
        let incarnation = u16_of(&mut buf, "swim member incarnation")?;
        let state = match u8_of(&mut buf, "swim member state")? {
            0 => State::Alive,
            1 => State::Suspect,
            2 => State::Down,
            got => {
                return Err(ClusterError::BadTag {
                    what: "swim member state",
                    got,
                })
            }
        };
        Ok(Member::new(id, incarnation, state))
    }
}

fn encode_message<B: BufMut>(message: &Message<MemberId>, buf: &mut B) -> Result<(), ClusterError> {
    let (kind, member, probe) = match message {
        Message::Ping(n) => (tag::PING, None, Some(*n)),
        Message::Ack(n) => (tag::ACK, None, Some(*n)),
        Message::PingReq {
            target,
            probe_number,
        } => (tag::PING_REQ, Some(target), Some(*probe_number)),
        Message::IndirectPing {
            origin,
            probe_number,
        } => (tag::INDIRECT_PING, Some(origin), Some(*probe_number)),
        Message::IndirectAck {
            target,
            probe_number,
        } => (tag::INDIRECT_ACK, Some(target), Some(*probe_number)),
        Message::ForwardedAck {
            origin,
            probe_number,
        } => (tag::FORWARDED_ACK, Some(origin), Some(*probe_number)),
        Message::Announce => (tag::ANNOUNCE, None, None),
        Message::Feed => (tag::FEED, None, None),
        Message::Gossip => (tag::GOSSIP, None, None),
        Message::Broadcast => (tag::BROADCAST, None, None),
        Message::TurnUndead => (tag::TURN_UNDEAD, None, None),
    };
    room(buf, 1, "swim message")?;
    buf.put_u8(kind);
    if let Some(member) = member {
        member.encode(buf)?;
    }
    if let Some(probe) = probe {
        room(buf, 1, "swim message")?;
        buf.put_u8(probe);
    }
    Ok(())
}

fn decode_message<B: Buf>(buf: &mut B) -> Result<Message<MemberId>, ClusterError> {
    let what = "swim probe number";
    let kind = u8_of(buf, "swim message kind")?;
    let message = match kind {
        tag::PING => Message::Ping(u8_of(buf, what)?),
        tag::ACK => Message::Ack(u8_of(buf, what)?),
        tag::PING_REQ => Message::PingReq {
            target: MemberId::decode(buf)?,
            probe_number: u8_of(buf, what)?,
        },
        tag::INDIRECT_PING => Message::IndirectPing {
            origin: MemberId::decode(buf)?,
            probe_number: u8_of(buf, what)?,
        },
        tag::INDIRECT_ACK => Message::IndirectAck {
            target: MemberId::decode(buf)?,
            probe_number: u8_of(buf, what)?,
        },
        tag::FORWARDED_ACK => Message::ForwardedAck {
            origin: MemberId::decode(buf)?,
            probe_number: u8_of(buf, what)?,
        },
        tag::ANNOUNCE => Message::Announce,
        tag::FEED => Message::Feed,
        tag::GOSSIP => Message::Gossip,
        tag::BROADCAST => Message::Broadcast,
        tag::TURN_UNDEAD => Message::TurnUndead,
        got => {
            return Err(ClusterError::BadTag {
                what: "swim message kind",
                got,
            })
        }
    };
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use foca::Codec;

    fn id(name: &str) -> MemberId {
        MemberId {
            name: name.into(),
            addr: format!("{name}:1"),
            group: 1,
            incarnation: 3,
        }
    }

    fn every_message() -> Vec<Message<MemberId>> {
        vec![
            Message::Ping(1),
            Message::Ack(2),
            Message::PingReq {
                target: id("t"),
                probe_number: 3,
            },
            Message::IndirectPing {
                origin: id("o"),
                probe_number: 4,
            },
            Message::IndirectAck {
                target: id("t"),
                probe_number: 5,
            },
            Message::ForwardedAck {
                origin: id("o"),
                probe_number: 6,
            },
            Message::Announce,
            Message::Feed,
            Message::Gossip,
            Message::Broadcast,
            Message::TurnUndead,
        ]
    }

    #[test]
    fn headers_round_trip_and_truncations_fail() -> Result<(), ClusterError> {
        for message in every_message() {
            let header = Header {
                src: id("a"),
                src_incarnation: 7,
                dst: id("b"),
                message,
            };
            let mut buf = Vec::new();
            SwimCodec.encode_header(&header, &mut buf)?;
            assert_eq!(SwimCodec.decode_header(buf.as_slice())?, header);
            for cut in 0..buf.len() {
                let short = buf.get(..cut).unwrap_or_default();
                assert!(SwimCodec.decode_header(short).is_err(), "cut at {cut}");
            }
        }
        Ok(())
    }

    #[test]
    fn members_round_trip_and_bad_state_fails() -> Result<(), ClusterError> {
        let member = Member::new(id("m"), 9, State::Suspect);
        let mut buf = Vec::new();
        SwimCodec.encode_member(&member, &mut buf)?;
        assert_eq!(SwimCodec.decode_member(buf.as_slice())?, member);
        if let Some(state) = buf.last_mut() {
            *state = 3;
        }
        assert!(matches!(
            SwimCodec.decode_member(buf.as_slice()),
            Err(ClusterError::BadTag { got: 3, .. })
        ));
        Ok(())
    }
}
