//! `ringblob export` and `ringblob import`: a namespace's names, values, content types and
//! metadata as a POSIX tar archive (pax headers), streamed: one value at a time passes
//! through a bounded pipe, whatever its size. Each name is an archive member of that path;
//! its name record's content type, entity tag and user metadata travel as pax records
//! `RINGBLOB.content_type`, `RINGBLOB.etag` and `RINGBLOB.meta.NAME`, its write time as the
//! member's mtime. Only the value (column 0) is exported; other columns are not.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use ringblob_backends::names::NameRecord;
use ringblob_protocol::client::{Client, ClientError, PutOptions, Target};
use ringblob_protocol::wire::{ListRequest, MAX_LIST_LIMIT};
use tokio_util::io::SyncIoBridge;

const CONTENT_TYPE: &str = "RINGBLOB.content_type";
const ETAG: &str = "RINGBLOB.etag";
const META: &str = "RINGBLOB.meta.";

/// What an export or import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Moved {
    pub names: u64,
    pub bytes: u64,
}

fn io(e: std::io::Error) -> ClientError {
    ClientError::Output(e.to_string())
}

/// Writes every name of `namespace` beginning with `prefix` to `out` as a tar archive.
pub async fn export(
    client: Arc<Client>,
    namespace: &str,
    prefix: &str,
    out: Box<dyn std::io::Write + Send>,
) -> Result<Moved, ClientError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<u8>, NameRecord, u64)>(64);
    let writer_client = client.clone();
    let ns = namespace.to_string();
    // The archive is written on a blocking thread; values are pulled through bridges.
    let writer = tokio::task::spawn_blocking(move || -> Result<Moved, ClientError> {
        let mut tar = tar::Builder::new(out);
        let mut moved = Moved::default();
        while let Some((name, rec, ts)) = rx.blocking_recv() {
            let reader =
                writer_client.reader(Target::named(&ns, name.clone()), (0, Some(rec.size)));
            let mut bridge = SyncIoBridge::new(reader);
            append(&mut tar, &name, &rec, ts, &mut bridge).map_err(io)?;
            moved.names += 1;
            moved.bytes += rec.size;
        }
        tar.finish().map_err(io)?;
        tar.into_inner().map_err(io)?.flush().map_err(io)?;
        Ok(moved)
    });
    let mut req = ListRequest {
        namespace: namespace.to_string(),
        prefix: Bytes::from(prefix.as_bytes().to_vec()),
        limit: MAX_LIST_LIMIT,
        ..ListRequest::default()
    };
    let listed = async {
        loop {
            let page = client.list(&req, &[]).await?;
            for e in page.entries {
                let rec = NameRecord::decode(&e.record).unwrap_or_default();
                if tx
                    .send((e.name.to_vec(), rec, e.timestamp_ns))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
            match page.next {
                Some(next) => req.after = Some(next),
                None => return Ok::<(), ClientError>(()),
            }
        }
    };
    let listed = listed.await;
    drop(tx);
    let written = writer
        .await
        .map_err(|e| ClientError::Unexpected(e.to_string()))?;
    listed?;
    written
}

/// One member: pax records for the name record, then the header and the value.
fn append<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    name: &[u8],
    rec: &NameRecord,
    timestamp_ns: u64,
    value: &mut dyn Read,
) -> std::io::Result<()> {
    let mut pax: Vec<(String, Vec<u8>)> = vec![
        ("path".into(), name.to_vec()),
        (CONTENT_TYPE.into(), rec.content_type.clone().into_bytes()),
        (ETAG.into(), rec.etag.clone().into_bytes()),
    ];
    pax.extend(
        rec.user_meta
            .iter()
            .map(|(k, v)| (format!("{META}{k}"), v.clone().into_bytes())),
    );
    tar.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
    let mut header = tar::Header::new_ustar();
    header.set_size(rec.size);
    header.set_mode(0o644);
    header.set_mtime(timestamp_ns / 1_000_000_000);
    header.set_entry_type(tar::EntryType::Regular);
    // The full name is in the pax `path`; the header keeps a short stand-in.
    let short: String = String::from_utf8_lossy(name).chars().take(90).collect();
    header
        .set_path(short.trim_start_matches('/'))
        .or_else(|_| header.set_path("name"))?;
    header.set_cksum();
    let mut limited = value.take(rec.size);
    tar.append(&header, &mut limited)?;
    if limited.limit() > 0 {
        return Err(std::io::Error::other(format!(
            "{}: the value is shorter than its record says",
            String::from_utf8_lossy(name)
        )));
    }
    Ok(())
}

/// Stores every regular member of the tar archive `input` as a name of `namespace`.
pub async fn import(
    client: Arc<Client>,
    namespace: &str,
    input: Box<dyn Read + Send>,
    o: PutOptions,
) -> Result<Moved, ClientError> {
    let ns = namespace.to_string();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || -> Result<Moved, ClientError> {
        let mut archive = tar::Archive::new(input);
        let mut moved = Moved::default();
        for entry in archive.entries().map_err(io)? {
            let mut entry = entry.map_err(io)?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let (name, rec) = described(&mut entry, &ns)?;
            let size = entry.header().size().map_err(io)?;
            let (tx, mut rx) = tokio::io::duplex(1 << 20);
            let (c, target) = (client.clone(), Target::named(&ns, name.clone()));
            let put = handle
                .spawn(async move { c.put_object(target, &mut rx, (Some(size), o), |_| {}).await });
            let mut bridge = SyncIoBridge::new_with_handle(tx, handle.clone());
            let copied = std::io::copy(&mut entry, &mut bridge).and_then(|_| bridge.shutdown());
            let stored = handle
                .block_on(put)
                .map_err(|e| ClientError::Unexpected(e.to_string()))??;
            copied.map_err(|e| ClientError::Input(e.to_string()))?;
            // The entity tag is this store's own: of the value as written here.
            let meta = handle.block_on(client.lookup_column(Target::named(&ns, name), 0))?;
            let etag = ringblob_protocol::gateway::etag_of(&meta);
            let record = NameRecord {
                size: stored,
                etag,
                ..rec
            };
            handle.block_on(client.put_name_record(&record, o))?;
            moved.names += 1;
            moved.bytes += stored;
        }
        Ok(moved)
    })
    .await
    .map_err(|e| ClientError::Unexpected(e.to_string()))?
}

/// The name and name record (content type, tag, metadata) a member describes.
fn described<R: Read>(
    entry: &mut tar::Entry<R>,
    ns: &str,
) -> Result<(Vec<u8>, NameRecord), ClientError> {
    let name = entry.path_bytes().into_owned();
    let mut rec = NameRecord::new(ns, name.clone(), 0);
    if let Some(exts) = entry.pax_extensions().map_err(io)? {
        for ext in exts {
            let ext = ext.map_err(io)?;
            let (Ok(key), Ok(value)) = (ext.key(), ext.value()) else {
                continue;
            };
            match key {
                CONTENT_TYPE => rec.content_type = value.to_string(),
                ETAG => rec.etag = value.to_string(),
                k => {
                    if let Some(m) = k.strip_prefix(META) {
                        rec.user_meta.push((m.to_string(), value.to_string()));
                    }
                }
            }
        }
    }
    Ok((name, rec))
}
