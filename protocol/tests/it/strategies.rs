//! proptest strategies for every payload type.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use ringblob_protocol::wire::*;

pub fn key() -> impl Strategy<Value = KeyId> {
    any::<[u8; 32]>()
}

pub fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

pub fn name() -> impl Strategy<Value = String> {
    // Up to 60 chars of up to 4 bytes each stays under MAX_NAME_LEN (255).
    "\\PC{0,60}"
}

pub fn durability() -> impl Strategy<Value = Durability> {
    prop_oneof![
        Just(Durability::Default),
        Just(Durability::None),
        Just(Durability::Batch),
        Just(Durability::Sync),
    ]
}

pub fn status_err() -> impl Strategy<Value = Status> {
    (1u32..=u32::MAX).prop_map(Status::from_u32)
}

pub fn write_mode() -> impl Strategy<Value = WriteMode> {
    prop_oneof![
        Just(WriteMode::Whole),
        Just(WriteMode::Append),
        any::<u64>().prop_map(|offset| WriteMode::AtOffset { offset }),
        any::<u64>().prop_map(|reserve| WriteMode::Prepare { reserve }),
        any::<u64>().prop_map(|offset| WriteMode::Part { offset }),
        any::<u64>().prop_map(|size| WriteMode::Commit { size }),
    ]
}

pub fn write_request() -> impl Strategy<Value = WriteRequest> {
    (
        write_mode(),
        any::<bool>(),
        durability(),
        any::<u16>(),
        (any::<Option<u64>>(), any::<bool>(), any::<Option<u64>>()),
        bytes(512),
    )
        .prop_map(
            |(mode, compress, durability, column, (ts, versioned, deadline_ns), data)| {
                WriteRequest {
                    mode,
                    compress,
                    durability,
                    column,
                    // IF_NEWER goes with WHOLE and COMMIT only, VERSION with every mode that
                    // changes the value, and not both.
                    if_newer: ts.filter(|_| {
                        !versioned && matches!(mode, WriteMode::Whole | WriteMode::Commit { .. })
                    }),
                    version: ts.filter(|_| {
                        versioned
                            && !matches!(mode, WriteMode::Prepare { .. } | WriteMode::Part { .. })
                    }),
                    deadline_ns,
                    data: if mode.carries_data() {
                        data
                    } else {
                        Bytes::new()
                    },
                }
            },
        )
}

pub fn handshake_request() -> impl Strategy<Value = HandshakeRequest> {
    (
        1u8..=u8::MAX,
        any::<u8>(),
        any::<u32>(),
        name(),
        proptest::option::of(("[a-z0-9_-]{1,64}", any::<[u8; 32]>())),
    )
        .prop_map(|(min, span, features, n, offer)| {
            let auth = offer.map(
                |(key_id, client_nonce)| ringblob_protocol::wire::AuthOffer {
                    key_id,
                    client_nonce,
                },
            );
            let bit = u32::from(auth.is_some()) * ringblob_protocol::wire::FEATURE_AUTH;
            HandshakeRequest {
                min_version: min,
                max_version: min.saturating_add(span),
                features: features & !ringblob_protocol::wire::FEATURE_AUTH | bit,
                client_name: n,
                auth,
            }
        })
}

pub fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Ping),
        handshake_request().prop_map(Request::Handshake),
        any::<u16>().prop_map(|column| Request::Lookup(LookupRequest { column })),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u16>(),
            any::<Option<u64>>()
        )
            .prop_map(
                |(offset, size, column, if_version)| Request::Read(ReadRequest {
                    offset,
                    size,
                    column,
                    if_version,
                })
            ),
        write_request().prop_map(Request::Write),
        (
            durability(),
            option::of(any::<u16>()),
            any::<Option<u64>>(),
            any::<bool>(),
            any::<Option<u64>>()
        )
            .prop_map(|(durability, column, ts, versioned, deadline_ns)| {
                Request::Remove(RemoveRequest {
                    durability,
                    column,
                    // IF_NEWER goes with one column only; VERSION with either, not both.
                    if_newer: ts.filter(|_| !versioned && column.is_some()),
                    version: ts.filter(|_| versioned),
                    deadline_ns,
                })
            }),
        (key(), key(), option::of(position()), 0..=MAX_ITERATE_LIMIT).prop_map(
            |(from, to, after, limit)| Request::Iterate(IterateRequest {
                from,
                to,
                after,
                limit
            })
        ),
        (any::<u16>(), vec(key(), 1..=64))
            .prop_map(|(column, keys)| Request::BulkRead(BulkReadRequest { column, keys })),
        Just(Request::Stat),
        Just(Request::RouteList),
        any::<bool>().prop_map(|wait| Request::Defrag { wait }),
        (
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            0..=MAX_RANGE_DIGEST_DEPTH
        )
            .prop_map(|(start_excl, end_incl, depth)| Request::RangeDigest(
                RangeDigestRequest {
                    start_excl,
                    end_incl,
                    depth,
                }
            )),
    ]
}

pub fn meta() -> impl Strategy<Value = ValueMeta> {
    (any::<[u64; 4]>(), any::<[u32; 2]>(), any::<[u16; 2]>()).prop_map(|(l, w, s)| ValueMeta {
        size: l[0],
        stored_size: l[1],
        timestamp_ns: l[2],
        offset: l[3],
        checksum: w[0],
        blob: w[1],
        flags: s[0],
        column: s[1],
    })
}

pub fn entry() -> impl Strategy<Value = IterEntry> {
    (key(), meta()).prop_map(|(key, meta)| IterEntry { key, meta })
}

/// A (key, column) place in listing order; column 0 and small columns often.
pub fn position() -> impl Strategy<Value = IterPosition> {
    let column = prop_oneof![Just(0u16), 1u16..4, any::<u16>()];
    (key(), column).prop_map(|(key, column)| IterPosition { key, column })
}

pub fn iterate_end() -> impl Strategy<Value = IterateEnd> {
    prop_oneof![
        Just(IterateEnd::Done),
        position().prop_map(IterateEnd::ResumeAfter)
    ]
}

pub fn bulk_item() -> impl Strategy<Value = BulkItem> {
    prop_oneof![
        (key(), bytes(512)).prop_map(|(key, data)| BulkItem {
            key,
            status: Status::Ok,
            data
        }),
        (key(), status_err(), "\\PC{0,40}").prop_map(|(key, status, msg)| BulkItem {
            key,
            status,
            data: Bytes::from(msg),
        }),
    ]
}

/// A reply together with the command of the request it answers.
pub fn reply() -> impl Strategy<Value = (Command, Reply)> {
    prop_oneof![
        (status_err(), "\\PC{0,100}", 0usize..10).prop_map(|(status, message, c)| {
            let cmd = ringblob_protocol::wire::command::ALL_COMMANDS
                .get(c)
                .copied();
            (
                cmd.unwrap_or(Command::Ping),
                Reply::Error { status, message },
            )
        }),
        Just((Command::Ping, Reply::Pong)),
        (
            any::<u8>(),
            any::<u32>(),
            name(),
            proptest::option::of(any::<[u8; 32]>())
        )
            .prop_map(|(v, features, node_name, node_nonce)| {
                let version = v.max(1);
                let auth = ringblob_protocol::wire::FEATURE_AUTH;
                let bit = u32::from(node_nonce.is_some()) * auth;
                (
                    Command::Handshake,
                    Reply::Handshake(HandshakeReply {
                        version,
                        features: features & !auth | bit,
                        node_name,
                        node_nonce,
                    }),
                )
            }),
        meta().prop_map(|m| (Command::Lookup, Reply::Meta(m))),
        (bytes(2048), any::<bool>())
            .prop_map(|(data, more)| (Command::Read, Reply::ReadPart { data, more })),
        any::<u64>().prop_map(|size| (Command::Write, Reply::Write(WriteAck { size }))),
        Just((Command::Remove, Reply::Removed)),
        (vec(entry(), 0..20), option::of(iterate_end())).prop_map(|(entries, end)| {
            (
                Command::Iterate,
                Reply::IteratePart(IteratePart {
                    entries,
                    end,
                    moving: false,
                }),
            )
        }),
        (bulk_item(), any::<bool>())
            .prop_map(|(item, more)| (Command::BulkRead, Reply::BulkItem { item, more })),
        "\\PC{0,200}".prop_map(|s| (Command::Stat, Reply::Stat(s))),
        "\\PC{0,200}".prop_map(|s| (Command::RouteList, Reply::RouteList(s))),
        "\\PC{0,200}".prop_map(|s| (Command::Defrag, Reply::Defrag(s))),
        (any::<u64>(), 0..=2u8, any::<[u8; 32]>()).prop_map(|(records, depth, seed)| {
            let leaves = (0..16usize.pow(u32::from(depth)))
                .map(|i| {
                    let mut leaf = seed;
                    leaf[0] ^= i as u8;
                    leaf
                })
                .collect();
            let reply = RangeDigestReply {
                records,
                depth,
                leaves,
            };
            (Command::RangeDigest, Reply::RangeDigest(reply))
        }),
    ]
}
