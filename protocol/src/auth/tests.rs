use super::*;
use crate::wire::Command;

fn key() -> AccessKey {
    let mut secret = [0u8; SECRET_LEN];
    for (i, b) in secret.iter_mut().enumerate() {
        *b = i as u8;
    }
    AccessKey::generate([0, 1, 2, 3, 4, 5, 6, 7], secret)
}

fn exchange(id: &str) -> Exchange<'_> {
    Exchange {
        key_id: id,
        client_name: "cli",
        node_name: "node@127.0.0.1:1025",
        version: 2,
        client_nonce: [0xaa; NONCE_LEN],
        node_nonce: [0x55; NONCE_LEN],
    }
}

/// Computed independently with Python's `hmac` and `hashlib` from the construction in the
/// module docs (secret = bytes 0..32).
#[test]
fn golden_vector() {
    let k = key();
    assert_eq!(k.id, "rbk-0001020304050607");
    let v = k.verifier();
    assert_eq!(
        hex(&v.stored_key),
        "fb609bd6e4477f43bc9282ff47ae6b8fb2e07f90050390c3917fbfef04d032d0"
    );
    assert_eq!(
        hex(&v.server_key),
        "84a9e17da2e549ea1dc5774676e327c08b57aa423533bd3b61f8ea69e2c7af74"
    );
    let x = exchange(&k.id);
    assert_eq!(x.message().len(), 129);
    assert_eq!(
        hex(&proof(&k, &x)),
        "64157988c4ef4de1b8d3d935a413bedd635e5efd87616293bc9ea5ce7948a42a"
    );
    assert_eq!(
        hex(&node_proof(&v, &x)),
        "b0d852b0288e99ff6142bfe8274f6c379e35ed4e1f73573613d75b9eb131cf66"
    );
}

#[test]
fn a_proof_checks_only_for_its_own_exchange_and_secret() {
    let k = key();
    let v = k.verifier();
    let x = exchange(&k.id);
    let p = proof(&k, &x);
    assert!(v.check(&x, &p));
    // Replayed on a connection with another node nonce, or another version, name or key id.
    let mut other = x.clone();
    other.node_nonce[0] ^= 1;
    assert!(!v.check(&other, &p));
    let mut other = x.clone();
    other.version = 1;
    assert!(!v.check(&other, &p));
    let mut other = x.clone();
    other.client_name = "clj";
    assert!(!v.check(&other, &p));
    // A wrong secret.
    let mut wrong = k.clone();
    wrong.secret[31] ^= 1;
    assert!(!v.check(&x, &proof(&wrong, &x)));
    // The verifier itself is no proof: StoredKey in place of ClientKey fails.
    let forged = xor(&v.stored_key, &hmac(&v.stored_key, &x.message()));
    assert!(!v.check(&x, &forged));
    // Every flipped bit of a proof fails.
    for bit in 0..256 {
        let mut q = p;
        q[bit / 8] ^= 1 << (bit % 8);
        assert!(!v.check(&x, &q));
    }
    assert_eq!(expected_node_proof(&k, &x), node_proof(&v, &x));
}

#[test]
fn length_prefixes_keep_fields_apart() {
    let a = Exchange {
        client_name: "ab",
        node_name: "c",
        ..exchange("k")
    };
    let b = Exchange {
        client_name: "a",
        node_name: "bc",
        ..exchange("k")
    };
    assert_ne!(a.message(), b.message());
}

#[test]
fn access_keys_parse_and_print_without_showing_the_secret() {
    let k = key();
    let text = k.to_text();
    assert_eq!(text.len(), "rbk-0001020304050607:".len() + 64);
    assert_eq!(AccessKey::parse(&text), Ok(k.clone()));
    assert_eq!(AccessKey::parse(&format!("  {text}\n")), Ok(k.clone()));
    assert!(!format!("{k:?}").contains(&hex(&k.secret)));
    assert!(!format!("{:?}", k.verifier()).contains(&hex(&k.verifier().stored_key)));
    assert_eq!(AccessKey::parse("nocolon"), Err(BadAccessKey::NoColon));
    assert_eq!(AccessKey::parse(":00"), Err(BadAccessKey::BadId));
    assert_eq!(AccessKey::parse("A B:00"), Err(BadAccessKey::BadId));
    assert_eq!(AccessKey::parse("k:00"), Err(BadAccessKey::BadSecret));
    let plus = format!("k:+{}", &"0".repeat(63));
    assert_eq!(AccessKey::parse(&plus), Err(BadAccessKey::BadSecret));
    assert_eq!(
        AccessKey::parse(&format!("k:{}", "zz".repeat(32))),
        Err(BadAccessKey::BadSecret)
    );
}

#[test]
fn each_role_can_do_exactly_its_commands() {
    use Command::*;
    let all = [
        Ping,
        Handshake,
        Lookup,
        Read,
        Write,
        Remove,
        Iterate,
        BulkRead,
        Stat,
        RouteList,
        Defrag,
        RangeDigest,
        Auth,
    ];
    let table: [(Role, &[Command]); 4] = [
        (
            Role::Read,
            &[
                Ping, Handshake, Auth, Lookup, Read, Iterate, BulkRead, RouteList,
            ],
        ),
        (
            Role::Write,
            &[
                Ping, Handshake, Auth, Lookup, Read, Iterate, BulkRead, RouteList, Write, Remove,
            ],
        ),
        (Role::Admin, &all),
        (Role::Node, &all),
    ];
    for (role, allowed) in table {
        for c in all {
            assert_eq!(role.allows(c), allowed.contains(&c), "{role} {c:?}");
        }
        assert!(
            role.allows(Command::Unknown(11)),
            "answered UNKNOWN_COMMAND, not refused"
        );
    }
    assert_eq!("write".parse::<Role>(), Ok(Role::Write));
    assert!(
        "node".parse::<Role>().is_err(),
        "no access key gets the node role"
    );
}

#[test]
fn keys_files_round_trip_and_refuse_what_is_wrong() {
    let k = key();
    let mut f = KeysFile::default();
    f.add(KeyEntry::new(&k, Role::Write, vec!["photos".into()]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(f
        .add(KeyEntry::new(&k, Role::Read, vec!["*".into()]))
        .is_err());
    let text = f.to_text();
    assert!(
        !text.contains(&hex(&k.secret)),
        "the secret is never stored"
    );
    let back = KeysFile::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, f);
    assert!(!back.keys[0].all_namespaces());
    let entry = back.get(&k.id).unwrap_or_else(|| panic!("entry"));
    let x = exchange(&k.id);
    assert!(entry.verifier.check(&x, &proof(&k, &x)));
    let mut f2 = back.clone();
    assert!(f2.remove(&k.id));
    assert!(!f2.remove(&k.id));

    for bad in [
        "",
        "{}",
        r#"{"version":2,"keys":[]}"#,
        r#"{"version":1,"keys":[{"id":"a","role":"root","namespaces":["*"],"stored_key":"00","server_key":"00"}]}"#,
        r#"{"version":1,"keys":[],"extra":1}"#,
    ] {
        assert!(KeysFile::parse(bad).is_err(), "{bad}");
    }
    let one =
        r#"{"id":"a","role":"read","namespaces":["*"],"stored_key":"KEY","server_key":"KEY"}"#
            .replace("KEY", &"00".repeat(32));
    let twice = format!(r#"{{"version":1,"keys":[{one},{one}]}}"#);
    assert_eq!(
        KeysFile::parse(&twice),
        Err(KeysFileError::Duplicate("a".into()))
    );
    assert!(KeysFile::parse(&format!(r#"{{"version":1,"keys":[{one}]}}"#)).is_ok());
    let no_ns = text.replace("\"photos\"", "");
    assert!(KeysFile::parse(&no_ns).is_err());
}
