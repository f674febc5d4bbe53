//! Where a batch stops to ask another node (`dispatch::serve_batch`'s `ask_elsewhere`, a
//! range taken over and not yet handed over): a remove before it is applied; a read only
//! once it failed here (`NOT_FOUND`, or `CHANGED` when pinned to a version), its error reply
//! dropped — reads that find their key are served without the question.

use std::cell::RefCell;

use ringblob_backends::Backend;

use super::dispatch::{serve_batch, Serving};
use super::inline_tests::{frame, key, open, read, replies, value, write};
use super::NodeInfo;
use crate::wire::{
    Durability, Frame, KeyId, ReadRequest, RemoveRequest, Reply, Request, READ_TO_END,
};

fn remove(k: KeyId) -> Frame {
    let r = RemoveRequest {
        durability: Durability::None,
        column: None,
        if_newer: None,
        version: None,
        deadline_ns: None,
    };
    frame(&Request::Remove(r), k)
}

#[test]
fn a_read_asks_elsewhere_once_it_found_nothing_and_a_remove_before_it_is_applied() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let b = open(dir.path());
    let b: &dyn Backend = b.as_ref();
    let addr = "127.0.0.1:1".parse().unwrap_or_else(|e| panic!("{e}"));
    let info = NodeInfo::new("t".into(), addr, 1);
    let never = |_: &dyn Backend, _: &Frame| false;
    for i in [1, 3] {
        let w = write(key(i), value(i, 0), Durability::None);
        let served = serve_batch(b, &info, vec![w], &never, (usize::MAX, Serving::Pool));
        assert_eq!(served.outcomes.len(), 1);
    }
    for how in [Serving::Pool, Serving::Inline] {
        let asked = RefCell::new(Vec::new());
        let ask = |_: &dyn Backend, f: &Frame| {
            asked.borrow_mut().push(f.header.key);
            true
        };
        let batch = vec![read(key(1)), read(key(2)), read(key(3))];
        let served = serve_batch(b, &info, batch, &ask, (usize::MAX, how));
        assert!(served.ask_first, "{how:?}");
        let rest: Vec<KeyId> = served.rest.iter().map(|f| f.header.key).collect();
        assert_eq!(rest, vec![key(2), key(3)], "{how:?}");
        assert_eq!(
            *asked.borrow(),
            vec![key(2)],
            "only the read that found nothing"
        );
        match replies(served).as_slice() {
            [Reply::ReadPart { data, more: false }] => assert_eq!(&data[..], value(1, 0)),
            other => panic!("{how:?}: the missing key's NOT_FOUND must be dropped: {other:?}"),
        }

        // A read pinned to a version fails CHANGED here, not NOT_FOUND: asked all the same.
        asked.borrow_mut().clear();
        let mut pinned = ReadRequest::range(0, 0, READ_TO_END);
        pinned.if_version = Some(12_345);
        let batch = vec![frame(&Request::Read(pinned), key(2))];
        let served = serve_batch(b, &info, batch, &ask, (usize::MAX, how));
        assert!(served.ask_first && served.outcomes.is_empty(), "{how:?}");
        assert!(replies(served).is_empty());
        assert_eq!(*asked.borrow(), vec![key(2)]);

        asked.borrow_mut().clear();
        let batch = vec![remove(key(3)), read(key(1))];
        let served = serve_batch(b, &info, batch, &ask, (usize::MAX, how));
        assert!(served.ask_first && served.outcomes.is_empty(), "{how:?}");
        assert_eq!(served.rest.len(), 2);
        assert_eq!(*asked.borrow(), vec![key(3)]);
        let check = vec![read(key(3))];
        let still = serve_batch(b, &info, check, &never, (usize::MAX, Serving::Pool));
        assert!(
            matches!(replies(still).as_slice(), [Reply::ReadPart { .. }]),
            "{how:?}: the remove was not applied"
        );
    }
}
