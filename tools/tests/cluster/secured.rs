//! A secured cluster: two groups of two nodes, TLS with client certificates on every link
//! (clients and nodes), access keys, and a cluster secret. Writes through one node reach
//! both groups (forwarded with the client's key, which a namespace-limited key keeps), a
//! node without the secret (or with a wrong one) cannot join, and forged, stale or replayed
//! membership datagrams leave every route table as it was.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringblob_protocol::auth::{AccessKey, KeyEntry, KeysFile, Role};
use ringblob_protocol::client::{
    Client, ClientConfig, ClientError, ClientSecurity, Credentials, Quorum, Target,
};
use ringblob_protocol::cluster::seal::{mac_key, Sealer};
use ringblob_protocol::cluster::ClusterMessage;
use ringblob_protocol::ring::{RingId, RouteNode};
use ringblob_protocol::tls::TlsClient;
use ringblob_protocol::wire::Status;
use serde_json::Value;

use crate::certs::{Ca, Issued};
use crate::member::{serial, Member};

fn or_panic<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Everything the members share: certificates, the keys file, the cluster secret.
struct Setup {
    ca: Ca,
    node_cert: Issued,
    client_cert: Issued,
    keys_file: PathBuf,
    secret: [u8; 32],
    secret_file: PathBuf,
    admin: AccessKey,
    photos: AccessKey,
}

impl Setup {
    fn new(dir: &Path) -> Setup {
        let ca = Ca::new(dir, "ca");
        let node_cert = ca.issue(dir, "node", false);
        let client_cert = ca.issue(dir, "client", false);
        let admin = AccessKey::generate([1; 8], [0x11; 32]);
        let photos = AccessKey::generate([2; 8], [0x22; 32]);
        let mut keys = KeysFile::default();
        or_panic(keys.add(KeyEntry::new(&admin, Role::Admin, vec!["*".into()])));
        or_panic(keys.add(KeyEntry::new(&photos, Role::Write, vec!["photos".into()])));
        let keys_file = dir.join("keys.json");
        or_panic(std::fs::write(&keys_file, keys.to_text()));
        let secret = [0x5c; 32];
        let secret_file = dir.join("cluster.secret");
        or_panic(std::fs::write(&secret_file, format!("{}\n", hex(&secret))));
        Setup {
            ca,
            node_cert,
            client_cert,
            keys_file,
            secret,
            secret_file,
            admin,
            photos,
        }
    }

    /// A member's configuration, with `secret_file` as its cluster secret.
    fn toml(&self, secret_file: &Path) -> String {
        format!(
            "keys_file = {:?}\ncluster_secret_file = {:?}\ntls_cert = {:?}\ntls_key = {:?}\n\
             tls_client_ca = {:?}\n",
            s(&self.keys_file),
            s(secret_file),
            s(&self.node_cert.cert),
            s(&self.node_cert.key),
            s(&self.ca.pem),
        )
    }

    fn member(&self, name: &str, group: u32, root: &Path, seed: Option<&str>) -> Member {
        Member::new(name, group, root, seed).with_config(&self.toml(&self.secret_file))
    }

    fn client_config(&self, key: &AccessKey) -> ClientConfig {
        let tls = TlsClient::load(
            Some(&self.ca.pem),
            Some((&self.client_cert.cert, &self.client_cert.key)),
            None,
        );
        ClientConfig {
            timeout: Duration::from_secs(5),
            security: ClientSecurity {
                credentials: Credentials::new(Some(key.clone())),
                tls: Some(or_panic(tls)),
            },
            ..ClientConfig::default()
        }
    }

    async fn client(&self, m: &Member, key: &AccessKey) -> Client {
        or_panic(Client::connect(&m.addr, self.client_config(key)).await)
    }

    /// Names in `m`'s route table, and the table's version.
    async fn table(&self, m: &Member) -> (Vec<(String, bool)>, u64) {
        let text = or_panic(self.client(m, &self.admin).await.routes().await);
        let t: Value = or_panic(serde_json::from_str(&text));
        let nodes = t["nodes"].as_array().cloned().unwrap_or_default();
        let mut names: Vec<(String, bool)> = nodes
            .iter()
            .map(|n| {
                let name = n["name"].as_str().unwrap_or_default().to_string();
                (name, n["alive"] == Value::Bool(true))
            })
            .collect();
        names.sort();
        (names, t["version"].as_u64().unwrap_or(0))
    }

    async fn converge(&self, ms: &[&Member], alive: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut seen = Vec::new();
            for m in ms {
                let (names, _) = self.table(m).await;
                seen.push(names.iter().filter(|n| n.1).count());
            }
            if seen.iter().all(|&n| n == alive) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no convergence on {alive}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn photo(i: u32) -> Target {
    Target::named("photos", format!("img-{i}.jpg").into_bytes())
}

#[test]
fn tls_and_keys_on_every_link_and_no_way_in_without_the_secret() {
    let _one = serial();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    or_panic(rt).block_on(secured_cluster());
}

async fn secured_cluster() {
    let dir = or_panic(tempfile::tempdir());
    let root = dir.path();
    let setup = Setup::new(root);
    let mut a1 = setup.member("a1", 1, root, None);
    a1.start();
    let seed = a1.addr.clone();
    let mut a2 = setup.member("a2", 1, root, Some(&seed));
    let mut b1 = setup.member("b1", 2, root, Some(&seed));
    let mut b2 = setup.member("b2", 2, root, Some(&seed));
    for m in [&mut a2, &mut b1, &mut b2] {
        m.start();
    }
    let all = [&a1, &a2, &b1, &b2];
    setup.converge(&all, 4).await;

    // A namespace-limited key writes through one node to both groups (forwarded to the
    // owners over TLS, with its identity) and reads back through every node.
    let c = setup.client(&a1, &setup.photos).await;
    for i in 0..60 {
        let v = Bytes::from(format!("photo {i}"));
        let done = c
            .put_groups(photo(i), 0, v, Default::default(), &[1, 2], Quorum::All)
            .await;
        assert!(done.is_ok(), "photo {i}: {done:?}");
    }
    for m in &all {
        let c = setup.client(m, &setup.photos).await;
        for g in [1, 2] {
            let c = c.in_group(g);
            for i in (0..60).step_by(7) {
                let got = or_panic(c.get(photo(i), 0, None).await);
                assert_eq!(
                    got,
                    Bytes::from(format!("photo {i}")),
                    "{} group {g}",
                    m.name
                );
            }
        }
        // Another namespace is refused, whichever node owns the key.
        for i in 0..8 {
            let theirs = Target::named("docs", format!("d{i}").into_bytes());
            match c.get(theirs, 0, None).await {
                Err(ClientError::Status { status, .. }) => {
                    assert_eq!(status, Status::Unauthorized)
                }
                other => panic!("docs read through {}: {other:?}", m.name),
            }
        }
    }

    // Without the secret, or with a wrong one, a node cannot join.
    let wrong = root.join("wrong.secret");
    or_panic(std::fs::write(&wrong, format!("{}\n", hex(&[0x77; 32]))));
    let mut stranger =
        Member::new("stranger", 1, root, Some(&seed)).with_config(&setup.toml(&wrong));
    stranger.start();
    let no_secret = format!(
        "keys_file = {:?}\ntls_cert = {:?}\ntls_key = {:?}\ntls_client_ca = {:?}\n",
        s(&setup.keys_file),
        s(&setup.node_cert.cert),
        s(&setup.node_cert.key),
        s(&setup.ca.pem)
    );
    let mut outsider = Member::new("outsider", 2, root, Some(&seed)).with_config(&no_secret);
    outsider.start();
    let before = setup.table(&a1).await;

    // Forged, stale and replayed membership datagrams: a route update announcing a node
    // that does not exist.
    let fake = RouteNode {
        name: "fake".into(),
        addr: "127.0.0.1:9".into(),
        group: 1,
        ids: (0..16).map(|i| RingId([i; 32])).collect(),
        alive: true,
        leaving: false,
        incarnation: 1,
    };
    let update = ClusterMessage::RouteUpdate {
        from_addr: "127.0.0.1:9".into(),
        version: 1_000_000,
        entries: vec![fake],
        want: Vec::new(),
    };
    let message = or_panic(update.encode());
    let right = mac_key(&setup.secret);
    let mut sealer = Sealer::default();
    let ten_minutes = 600 * 1_000_000_000;
    // An authentic datagram captured earlier (`old`), replayed after a newer one from the
    // same sender (`newer`, harmless) was delivered.
    let old = sealer.seal(&right, "replayer", &message, now_ns() - 1_000_000_000);
    let harmless = or_panic(ClusterMessage::Swim(vec![0xff; 8]).encode());
    let newer = sealer.seal(&right, "replayer", &harmless, now_ns());
    let datagrams = [
        message.clone(),
        sealer.seal(&mac_key(&[0x77; 32]), "a2", &message, now_ns()),
        Sealer::default().seal(&right, "a2", &message, now_ns() - ten_minutes),
        newer,
        old,
    ];
    let udp = or_panic(std::net::UdpSocket::bind("127.0.0.1:0"));
    for m in &all {
        for d in &datagrams {
            or_panic(udp.send_to(d, &m.addr));
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    for m in &all {
        let (names, _) = setup.table(m).await;
        let names: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(names, ["a1", "a2", "b1", "b2"], "{}'s route table", m.name);
    }
    let after = setup.table(&a1).await;
    assert_eq!(before.0, after.0, "membership unchanged");
    // The stranger (wrong secret) sees only itself.
    let c = setup.client(&stranger, &setup.admin).await;
    let seen = or_panic(c.routes().await);
    assert!(
        !seen.contains("\"a2\""),
        "the stranger learned nothing: {seen}"
    );
    stranger.kill9();
    outsider.kill9();

    // The control: the same update, sealed with the secret and fresh, is taken (so the
    // datagrams above were dropped for their seal, not for their content).
    let fresh = Sealer::default().seal(&right, "control", &message, now_ns());
    or_panic(udp.send_to(&fresh, &a1.addr));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (names, _) = setup.table(&a1).await;
        if names.iter().any(|n| n.0 == "fake") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "an authentic update was not taken: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
