use std::path::Path;

use bytes::{Bytes, BytesMut};

use super::*;
use crate::auth::{KeyEntry, KeysFile};
use crate::wire::command::ALL_COMMANDS;
use crate::wire::{
    decode_frame, Command, Envelope, Frame, Header, ObjectName, Status, FLAG_ENVELOPE,
};

fn key(n: u8) -> AccessKey {
    AccessKey::generate([n; 8], [n; 32])
}

fn write_keys(path: &Path, entries: &[(AccessKey, Role, Vec<&str>)]) {
    let mut file = KeysFile::default();
    for (k, role, ns) in entries {
        let ns = ns.iter().map(|s| s.to_string()).collect();
        assert!(file.add(KeyEntry::new(k, *role, ns)).is_ok());
    }
    assert!(std::fs::write(path, file.to_text()).is_ok());
}

fn exchange<'a>(id: &'a str) -> Exchange<'a> {
    Exchange {
        key_id: id,
        client_name: "c",
        node_name: "n",
        version: 2,
        client_nonce: [1; 32],
        node_nonce: [2; 32],
    }
}

fn frame(command: Command, key: [u8; 32], envelope: Option<&Envelope>) -> Frame {
    let mut h = Header::request(command, 1, key, 0);
    let mut payload = BytesMut::new();
    if let Some(e) = envelope {
        assert!(e.encode(&mut payload).is_ok());
        h.flags |= FLAG_ENVELOPE;
    }
    let mut buf = BytesMut::new();
    let payload = payload.freeze();
    assert!(crate::wire::encode_frame(&h, &mut buf, |b| {
        b.extend_from_slice(&payload);
        Ok(())
    })
    .is_ok());
    match decode_frame(&mut buf) {
        Ok(Some(f)) => f,
        other => panic!("{other:?}"),
    }
}

#[test]
fn proofs_identify_keys_and_a_reload_closes_removed_ones() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("keys.json");
    let (a, b) = (key(1), key(2));
    write_keys(
        &path,
        &[
            (a.clone(), Role::Read, vec!["*"]),
            (b.clone(), Role::Write, vec!["photos"]),
        ],
    );
    let access = Access::open(Some(path.clone()), None).unwrap_or_else(|e| panic!("{e}"));
    assert!(access.required());
    let ex = exchange(&a.id);
    let id = access.verify(&ex, &auth::proof(&a, &ex));
    assert_eq!(id.as_ref().map(|i| i.role), Some(Role::Read));
    assert_eq!(id.as_ref().and_then(|i| i.namespaces.clone()), None);
    // b's secret does not prove a; a proof for another exchange proves nothing.
    assert_eq!(access.verify(&ex, &auth::proof(&b, &ex)), None);
    let other = Exchange {
        node_nonce: [3; 32],
        ..exchange(&a.id)
    };
    assert_eq!(access.verify(&other, &auth::proof(&a, &ex)), None);
    let Some(id) = id else { return };
    write_keys(&path, &[(b.clone(), Role::Write, vec!["photos"])]);
    let reloads = access.subscribe();
    assert!(access.reload().is_ok());
    assert!(reloads.has_changed().unwrap_or(false));
    assert_eq!(
        access.refresh(&id),
        None,
        "a removed key's connections close"
    );
    // A broken file changes nothing.
    assert!(std::fs::write(&path, "{").is_ok());
    assert!(access.reload().is_err());
    assert!(access.lookup(&b.id).is_some());
}

#[test]
fn roles_allow_exactly_their_commands() {
    let access = Access::default();
    for role in [Role::Read, Role::Write, Role::Admin] {
        let who = Identity {
            key_id: Some("k".into()),
            role,
            namespaces: None,
            verifier: None,
        };
        for cmd in ALL_COMMANDS {
            let verdict = admit(&access, &who, &frame(cmd, [0; 32], None));
            let expected = role.allows(cmd);
            assert_eq!(verdict.is_ok(), expected, "{role} {cmd}");
            if let Err(d) = verdict {
                assert_eq!(d.status, Status::Unauthorized);
            }
        }
    }
}

#[test]
fn a_namespace_limited_key_reaches_only_its_namespaces() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("keys.json");
    let limited = key(3);
    write_keys(&path, &[(limited.clone(), Role::Write, vec!["photos"])]);
    let access = Access::open(Some(path), None).unwrap_or_else(|e| panic!("{e}"));
    let who = access
        .lookup(&limited.id)
        .unwrap_or_else(|| panic!("no key"));
    let named = |ns: &str| Envelope {
        acting: None,
        name: Some(ObjectName::new(ns, Bytes::from_static(b"cat.jpg"))),
    };
    let photo = named("photos");
    let id = ObjectName::new("photos", Bytes::from_static(b"cat.jpg")).key_id();
    for cmd in [
        Command::Lookup,
        Command::Read,
        Command::Write,
        Command::Remove,
    ] {
        assert!(
            admit(&access, &who, &frame(cmd, id, Some(&photo))).is_ok(),
            "{cmd}"
        );
        let bare = admit(&access, &who, &frame(cmd, id, None));
        assert_eq!(
            bare.map_err(|d| d.status),
            Err(Status::Unauthorized),
            "{cmd}"
        );
        let docs = named("docs");
        let docs_id = ObjectName::new("docs", Bytes::from_static(b"cat.jpg")).key_id();
        let other = admit(&access, &who, &frame(cmd, docs_id, Some(&docs)));
        assert_eq!(
            other.map_err(|d| d.status),
            Err(Status::Unauthorized),
            "{cmd}"
        );
        // A name that does not derive the header's key is refused.
        let lie = admit(&access, &who, &frame(cmd, docs_id, Some(&photo)));
        assert_eq!(lie.map_err(|d| d.status), Err(Status::BadRequest), "{cmd}");
    }
    for cmd in [Command::Iterate, Command::BulkRead] {
        let r = admit(&access, &who, &frame(cmd, [0; 32], None));
        assert_eq!(r.map_err(|d| d.status), Err(Status::Unauthorized), "{cmd}");
    }
    // A client cannot act for another key; a node acts with the key's own rights.
    let acting = Envelope {
        acting: Some(limited.id.clone()),
        name: None,
    };
    let r = admit(&access, &who, &frame(Command::Read, id, Some(&acting)));
    assert_eq!(r.map_err(|d| d.status), Err(Status::Unauthorized));
    let node = Identity::node(&key(9).verifier());
    let r = admit(&access, &node, &frame(Command::Read, id, Some(&acting)));
    assert_eq!(
        r.map_err(|d| d.status),
        Err(Status::Unauthorized),
        "the key is limited: the node must forward the name too"
    );
    let sealed = seal_for_forward(&frame(Command::Read, id, Some(&photo)), &limited.id)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(admit(&access, &node, &sealed).is_ok());
    let stat = seal_for_forward(&frame(Command::Stat, [0; 32], None), &limited.id)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        admit(&access, &node, &stat).is_err(),
        "never wider than the key"
    );
    assert_eq!(
        strip_envelope(sealed).map(|f| f.payload.len()),
        Ok(0),
        "the envelope is set aside before serving"
    );
}

#[test]
fn cluster_secrets_load_and_rotate() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("cluster.secret");
    let (new, old) = ("ab".repeat(32), "cd".repeat(32));
    assert!(std::fs::write(&path, format!("# rotation\n{new}\n{old} # old\n")).is_ok());
    let access = Access::open(None, Some(path.clone())).unwrap_or_else(|e| panic!("{e}"));
    assert!(access.required() && access.has_cluster_secret());
    assert_eq!(access.cluster_macs().len(), 2);
    let used = access
        .peer_credentials()
        .get()
        .unwrap_or_else(|| panic!("no key"));
    assert_eq!(auth::hex(&used.secret), new);
    let old_key = AccessKey::parse(&format!("node:{old}")).unwrap_or_else(|e| panic!("{e}"));
    let ex = exchange(NODE_KEY_ID);
    let id = access.verify(&ex, &auth::proof(&old_key, &ex));
    assert_eq!(id.as_ref().map(|i| i.role), Some(Role::Node));
    assert!(std::fs::write(&path, format!("{new}\n")).is_ok());
    assert!(access.reload().is_ok());
    assert_eq!(id.and_then(|i| access.refresh(&i)), None, "retired secret");
    assert!(std::fs::write(&path, "zz\n").is_ok());
    assert!(Access::open(None, Some(path)).is_err());
}
