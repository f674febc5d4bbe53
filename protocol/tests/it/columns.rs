//! Columns end to end through a node on 127.0.0.1: written, read with ranges, described and
//! removed one by one or with their key, listed by ITERATE and BULK_READ, on every backend.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use ringblob_backends::{Backend, BlobBackend, FsBackend, MemBackend};
use ringblob_engine::Key;
use ringblob_protocol::client::{Client, ClientConfig, PutOptions};
use ringblob_protocol::node::{self, Node, NodeConfig};
use ringblob_protocol::wire::{Durability, IterPosition, IterateEnd, IterateRequest, Status};
use tokio::net::TcpListener;

const META: u16 = 1;
const THUMB: u16 = 2;

/// Serves `backend` until the returned sender is dropped.
async fn serve(backend: Arc<dyn Backend>) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    let node = Node::new(backend, NodeConfig::default(), addr);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(node::run(listener, node, async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

fn k(name: &str) -> [u8; 32] {
    Key::from_name(b"", name.as_bytes()).0
}

fn missing<T: std::fmt::Debug>(r: Result<T, ringblob_protocol::client::ClientError>) -> bool {
    r.err().is_some_and(|e| e.is_not_found())
}

/// Every column call of the client against one node.
async fn exercise(addr: SocketAddr) {
    let c = Client::connect(&addr.to_string(), ClientConfig::default())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let o = PutOptions::default();
    let photo = k("photo");
    assert_eq!(
        c.put(photo, Bytes::from_static(b"jpeg bytes"), o)
            .await
            .ok(),
        Some(10)
    );
    assert_eq!(
        c.put_column(photo, META, Bytes::from_static(b"{\"w\":640}"), o)
            .await
            .ok(),
        Some(9)
    );
    assert_eq!(
        c.put_column(photo, THUMB, Bytes::from_static(b"tiny"), o)
            .await
            .ok(),
        Some(4)
    );
    assert_eq!(
        c.append_column(photo, THUMB, Bytes::from_static(b"!"), o)
            .await
            .ok(),
        Some(5)
    );
    assert_eq!(
        c.write_at_column(photo, THUMB, 0, Bytes::from_static(b"T"), o)
            .await
            .ok(),
        Some(5)
    );
    assert_eq!(
        c.get(photo, 0, None).await.ok().as_deref(),
        Some(&b"jpeg bytes"[..])
    );
    assert_eq!(
        c.get_column(photo, THUMB, 0, None).await.ok().as_deref(),
        Some(&b"Tiny!"[..])
    );
    assert_eq!(
        c.get_column(photo, META, 2, Some(1)).await.ok().as_deref(),
        Some(&b"w"[..])
    );
    let mut streamed = Vec::new();
    assert_eq!(
        c.get_column_to(photo, THUMB, (1, Some(3)), &mut streamed)
            .await
            .ok(),
        Some(3)
    );
    assert_eq!(streamed, b"iny");
    let m = c
        .lookup_column(photo, THUMB)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (m.column, m.size, m.checksum),
        (THUMB, 5, crc32fast::hash(b"Tiny!"))
    );
    assert_eq!(
        c.lookup(photo).await.ok().map(|m| (m.column, m.size)),
        Some((0, 10))
    );
    assert!(missing(c.lookup_column(photo, 7).await));
    assert!(missing(c.get_column(photo, 7, 0, None).await));
    let items = c
        .bulk_read_column(vec![photo, k("other")], META)
        .await
        .unwrap_or_default();
    assert_eq!(
        items.iter().map(|i| i.status).collect::<Vec<_>>(),
        [Status::Ok, Status::NotFound]
    );
    assert_eq!(&items[0].data[..], b"{\"w\":640}");
    assert!(c.put(k("other"), Bytes::from_static(b"x"), o).await.is_ok());
    listing(&c, photo).await;
    assert!(c
        .remove_column(photo, META, Durability::Default)
        .await
        .is_ok());
    assert!(missing(c.lookup_column(photo, META).await));
    assert!(missing(
        c.remove_column(photo, META, Durability::Default).await
    ));
    assert_eq!(
        c.get_column(photo, THUMB, 0, None).await.ok().as_deref(),
        Some(&b"Tiny!"[..])
    );
    assert!(
        c.remove(photo, Durability::Sync).await.is_ok(),
        "removes every column"
    );
    assert!(missing(c.get(photo, 0, None).await));
    assert!(missing(c.get_column(photo, THUMB, 0, None).await));
    assert!(missing(c.remove(photo, Durability::Default).await));
}

/// ITERATE reports each (key, column), and a page that ends inside a key resumes there.
async fn listing(c: &Client, photo: [u8; 32]) {
    let mut want = vec![
        IterPosition {
            key: photo,
            column: 0,
        },
        IterPosition {
            key: photo,
            column: META,
        },
        IterPosition {
            key: photo,
            column: THUMB,
        },
        IterPosition {
            key: k("other"),
            column: 0,
        },
    ];
    want.sort();
    let mut req = IterateRequest {
        from: [0; 32],
        to: [0xff; 32],
        after: None,
        limit: 1,
    };
    let mut seen = Vec::new();
    loop {
        let (entries, end) = c.iterate(req).await.unwrap_or_else(|e| panic!("{e}"));
        seen.extend(entries.iter().map(|e| e.position()));
        match end {
            IterateEnd::ResumeAfter(at) => req.after = Some(at),
            IterateEnd::Done => break,
        }
    }
    assert_eq!(seen, want);
}

#[tokio::test]
async fn columns_work_through_a_node_on_every_backend() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let blob = BlobBackend::open(&dir.path().join("blob"), ringblob_engine::Config::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let fs = FsBackend::open(&dir.path().join("fs")).unwrap_or_else(|e| panic!("{e}"));
    let backends: [Arc<dyn Backend>; 3] = [
        Arc::new(blob),
        Arc::new(fs),
        Arc::new(MemBackend::open_memory()),
    ];
    for backend in backends {
        let kind = backend.kind();
        let (addr, _stop) = serve(backend).await;
        eprintln!("columns through a node serving the {kind} backend");
        exercise(addr).await;
    }
}
