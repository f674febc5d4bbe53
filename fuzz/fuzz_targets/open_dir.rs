//! Opens an engine on an in-memory directory built from the input, then iterates, reads every
//! key, writes one value, closes and reopens. Any `Err` is fine; a panic is a bug.
//!
//! Input: up to four files, each `[tag][len u16][body; len]`. `tag & 7` picks the name,
//! `(tag >> 3) & 3` how the body becomes the file:
//! 0 raw bytes; 1 a valid blob header, then the raw body; 2 a valid blob header, then records
//! encoded from the body (see [`records`]); 3 an index file listing records built earlier
//! in this input (see [`index`]). `tag & 0x20` gives a mode-1/2 header the wrong blob id.

#![no_main]

use std::collections::HashMap;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use ringblob_engine::format::blob_header::{BlobHeader, BLOB_HEADER_LEN};
use ringblob_engine::format::frames::{RecordEncoder, RecordSpec};
use ringblob_engine::format::index_file::{IndexEntry, IndexFile};
use ringblob_engine::format::record::FLAG_TOMBSTONE;
use ringblob_engine::io::MemDevice;
use ringblob_engine::{Config, Durability, Engine, Key, Range, WriteOptions};

const NAMES: [(&str, u32); 8] = [
    ("data-00000001.blob", 1),
    ("data-00000001.index", 1),
    ("data-00000002.blob", 2),
    ("data-00000002.index", 2),
    ("data-00000003.blob", 3),
    ("data-00000003.index", 3),
    ("data-00000002.index.tmp", 2),
    ("data-00000009.blob", 9),
];
const MAX_FILES: usize = 4;
/// Iteration and reads stop after this many keys, to bound the time per input.
const MAX_KEYS: usize = 256;

fuzz_target!(|data: &[u8]| {
    let dev = MemDevice::new();
    let mut input = Bytes(data);
    // Records of each structured blob, so an index file can list them.
    let mut built: HashMap<u32, Vec<IndexEntry>> = HashMap::new();
    for _ in 0..MAX_FILES {
        if input.0.is_empty() {
            break;
        }
        let tag = input.u8();
        let len = usize::from(input.u16());
        let body = input.take(len);
        let (name, id) = NAMES[usize::from(tag & 7)];
        let header_id = if tag & 0x20 != 0 { id + 1 } else { id };
        let bytes = match (tag >> 3) & 3 {
            0 => body.to_vec(),
            1 => [&BlobHeader::new(header_id).encode()[..], body].concat(),
            2 => {
                let (bytes, entries) = records(header_id, body);
                built.insert(id, entries);
                bytes
            }
            _ => index(id, body, &built),
        };
        dev.put_file(name, bytes);
    }
    exercise(dev);
});

/// Open, iterate, read, write, close, reopen.
fn exercise(dev: MemDevice) {
    let Ok(engine) = Engine::open_on(Arc::new(dev.clone()), Config::default()) else {
        return;
    };
    let metas: Vec<_> = engine
        .iterate()
        .take(MAX_KEYS)
        .filter_map(Result::ok)
        .collect();
    for m in &metas {
        if let Ok(v) = engine.read(&m.key, Range::all()) {
            assert_eq!(
                v.len() as u64,
                m.size,
                "read length differs from the record's size"
            );
        }
        let _ = engine.read(&m.key, Range::new(m.size / 3, m.size / 2 + 1));
    }
    let _ = engine.stats();
    let key = Key([0xA5; 32]);
    let value = b"written after a fuzzed open";
    // `Sync`, not the default `Batch`: the batch window would sleep on every input.
    let sync = WriteOptions::durability(Durability::Sync);
    let wrote = engine.write(&key, value, sync).is_ok();
    if wrote {
        let got = engine.read(&key, Range::all());
        assert_eq!(
            got.ok().as_deref(),
            Some(&value[..]),
            "fresh write does not read back"
        );
    }
    if engine.close().is_err() || !wrote {
        return;
    }
    if let Ok(again) = Engine::open_on(Arc::new(dev), Config::default()) {
        let got = again.read(&key, Range::all());
        assert_eq!(
            got.ok().as_deref(),
            Some(&value[..]),
            "closed write lost on reopen"
        );
        let _ = again.close();
    }
}

/// A blob file: valid header, then from `body`: `[cut]` (bytes cut off the end, a torn
/// tail), then ops. An op with bit 7 set is `[op][n][n raw bytes]` (garbage between records);
/// otherwise `[op][len u16][pattern len u8][pattern]`: a record for key `op & 15`, a tombstone
/// if `op & 0x10`, compressed if `op & 0x20`, with one byte flipped if `op & 0x40` (then
/// `[at u16][xor]` follow). Returns the file and what an index file would list.
fn records(id: u32, body: &[u8]) -> (Vec<u8>, Vec<IndexEntry>) {
    let mut input = Bytes(body);
    let cut = usize::from(input.u8());
    let mut out = BlobHeader::new(id).encode().to_vec();
    let mut entries = Vec::new();
    let mut enc = RecordEncoder::new();
    while !input.0.is_empty() {
        let op = input.u8();
        if op & 0x80 != 0 {
            let n = usize::from(input.u8());
            out.extend_from_slice(input.take(n));
            continue;
        }
        let len = usize::from(input.u16()) % 20_000;
        let pn = usize::from(input.u8());
        let pattern = input.take(pn);
        let tombstone = op & 0x10 != 0;
        let value: Vec<u8> = match (tombstone, pattern.is_empty()) {
            (true, _) => Vec::new(),
            (false, true) => vec![op; len],
            (false, false) => pattern.iter().copied().cycle().take(len).collect(),
        };
        let spec = RecordSpec {
            key: Key([op & 15; 32]),
            column: 0,
            flags: if tombstone { FLAG_TOMBSTONE } else { 0 },
            timestamp_ns: entries.len() as u64,
            frame_len: 4096,
            compress: op & 0x20 != 0,
        };
        let start = out.len();
        let Ok(h) = enc.encode(spec, &value, &mut out) else {
            out.truncate(start);
            continue;
        };
        if op & 0x40 != 0 {
            let at = start + usize::from(input.u16()) % (out.len() - start);
            out[at] ^= input.u8() | 1;
        }
        entries.push(IndexEntry {
            key: h.key,
            offset: start as u64,
            record_len: (out.len() - start) as u32,
            flags: h.flags,
            column: h.column,
        });
    }
    out.truncate(
        out.len()
            .saturating_sub(cut)
            .max(BLOB_HEADER_LEN.min(out.len())),
    );
    (out, entries)
}

/// An index file for blob `id` from `[n][how][arg]`: the first `n` records built for that blob
/// (none if it was not built), damaged by `how`: 1 another key, 2 tombstone flag flipped,
/// 3 the boundary after entry `arg` moved, 4 wrong blob id, 5 covered length off by `arg`.
fn index(id: u32, body: &[u8], built: &HashMap<u32, Vec<IndexEntry>>) -> Vec<u8> {
    let mut input = Bytes(body);
    let n = usize::from(input.u8());
    let (how, arg) = (input.u8() % 8, input.u8());
    let mut entries: Vec<IndexEntry> = built
        .get(&id)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .copied()
        .take(n)
        .collect();
    let mut blob_id = id;
    let mut covered_len = entries.last().map_or(BLOB_HEADER_LEN as u64, |e| {
        e.offset + u64::from(e.record_len)
    });
    let j = usize::from(arg) % entries.len().max(1);
    match how {
        1 => {
            if let Some(e) = entries.get_mut(j) {
                e.key.0[0] ^= arg | 1;
            }
        }
        2 => {
            if let Some(e) = entries.get_mut(j) {
                e.flags ^= FLAG_TOMBSTONE;
            }
        }
        3 => {
            let d = u32::from(arg % 64) + 1;
            if j + 1 < entries.len() && entries[j + 1].record_len > d + 88 {
                entries[j].record_len += d;
                entries[j + 1].record_len -= d;
                entries[j + 1].offset += u64::from(d);
            }
        }
        4 => blob_id = id + 1,
        5 => covered_len += u64::from(arg),
        _ => {}
    }
    IndexFile {
        blob_id,
        covered_len,
        entries,
    }
    .encode()
}

/// A cursor over the input that yields zeros once it runs out.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | u16::from(self.u8()) << 8
    }
}
