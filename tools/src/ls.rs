//! `ringblob ls`: a namespace's names (or the namespaces), page by page across the
//! cluster (`Client::list`), printed as they come.

use std::io::Write;

use bytes::Bytes;
use ringblob_backends::names::NameRecord;
use ringblob_protocol::client::{Client, ClientError};
use ringblob_protocol::wire::{ListEntry, ListRequest, MAX_LIST_LIMIT};

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// `None`: the namespaces.
    pub namespace: Option<String>,
    pub prefix: String,
    pub after: Option<String>,
    pub limit: Option<u64>,
}

/// How to print.
#[derive(Debug, Clone, Copy, Default)]
pub struct Show {
    pub long: bool,
    pub json: bool,
}

/// Lists `ask` from the first of `groups` (or any group) that answers whole.
pub async fn run(client: &Client, groups: &[u32], ask: Ask, show: Show) -> Result<(), ClientError> {
    let mut left = ask.limit.unwrap_or(u64::MAX);
    let mut after = ask.after.map(Bytes::from);
    let out = std::io::stdout();
    while left > 0 {
        let req = ListRequest {
            namespaces: ask.namespace.is_none(),
            namespace: ask.namespace.clone().unwrap_or_default(),
            prefix: Bytes::from(ask.prefix.clone()),
            after: after.clone(),
            limit: left.min(u64::from(MAX_LIST_LIMIT)) as u32,
        };
        let page = client.list(&req, groups).await?;
        let mut lock = out.lock();
        for e in &page.entries {
            let line = match ask.namespace {
                Some(_) => name_line(e, show),
                None => namespace_line(e, show),
            };
            writeln!(lock, "{line}").map_err(|e| ClientError::Output(e.to_string()))?;
        }
        left -= page.entries.len() as u64;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(())
}

fn namespace_line(e: &ListEntry, show: Show) -> String {
    let ns = String::from_utf8_lossy(&e.name);
    match show.json {
        true => serde_json::json!({ "namespace": ns }).to_string(),
        false => ns.into_owned(),
    }
}

fn name_line(e: &ListEntry, show: Show) -> String {
    let name = String::from_utf8_lossy(&e.name);
    let rec = NameRecord::decode(&e.record).ok();
    let size = rec.as_ref().map_or(0, |r| r.size);
    if show.json {
        let rec = rec.unwrap_or_default();
        let meta: serde_json::Map<String, serde_json::Value> = rec
            .user_meta
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect();
        return serde_json::json!({
            "name": name,
            "key": hex(&e.key),
            "size": size,
            "timestamp_ns": e.timestamp_ns,
            "content_type": rec.content_type,
            "etag": rec.etag,
            "meta": meta,
        })
        .to_string();
    }
    if !show.long {
        return name.into_owned();
    }
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.timestamp_ns / 1_000_000_000);
    format!(
        "{size:>12}  {}  {name}",
        humantime::format_rfc3339_seconds(at)
    )
}

fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}
