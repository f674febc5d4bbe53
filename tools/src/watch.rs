//! `ringblob watch`: a key's or a namespace's changes as they happen, as text or JSON lines
//! (`Client::watch`, `docs/PROTOCOL.md` §7.15).

use std::io::Write;

use ringblob_protocol::client::{Client, ClientError, WatchEvent, WatchTarget};
use ringblob_protocol::wire::{NoteKind, WatchNote};

/// How to print.
#[derive(Debug, Clone, Copy, Default)]
pub struct Show {
    pub json: bool,
    /// Also changes of the reserved columns (name records, index entries, uploads).
    pub all_columns: bool,
    /// Stop after this many changes.
    pub count: Option<u64>,
}

/// The first reserved column (index entries, name records, upload records).
const RESERVED_COLUMNS: u16 = 0xFFFD;

/// Watches `target` and prints every event until `show.count` changes were printed (or
/// forever).
pub async fn run(
    client: &Client,
    target: WatchTarget,
    label: Option<&str>,
    group: u32,
    show: Show,
) -> Result<(), ClientError> {
    let mut watch = client.watch(target, group);
    let mut changes = 0u64;
    while show.count.is_none_or(|n| changes < n) {
        let Some(event) = watch.next().await else {
            return Err(ClientError::Disconnected("the watch ended".into()));
        };
        let line = match event? {
            WatchEvent::Change { note, .. }
                if note.column >= RESERVED_COLUMNS && !show.all_columns =>
            {
                continue
            }
            WatchEvent::Change { node, note } => {
                changes += 1;
                change_line(&node, &note, label, show.json)
            }
            WatchEvent::Gap {
                node,
                reason,
                missed,
            } => gap_line(&node, &reason, missed, show.json),
            // On stderr: stdout carries changes and gaps only.
            WatchEvent::Attached { node, epoch } if !show.json => {
                eprintln!("watching through {node} (start {epoch:016x})");
                continue;
            }
            WatchEvent::Attached { node, epoch } => {
                let line = serde_json::json!({
                    "event": "attached", "node": node, "epoch": format!("{epoch:016x}"),
                });
                eprintln!("{line}");
                continue;
            }
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| ClientError::Output(e.to_string()))?;
    }
    Ok(())
}

fn change_line(node: &str, note: &WatchNote, label: Option<&str>, json: bool) -> String {
    let op = match note.kind {
        NoteKind::Remove => "remove",
        _ => "write",
    };
    let name = match (note.name.is_empty(), label) {
        (false, _) => String::from_utf8_lossy(&note.name).into_owned(),
        (true, Some(l)) => l.to_string(),
        (true, None) => hex(&note.key),
    };
    if json {
        return serde_json::json!({
            "event": op, "name": name, "key": hex(&note.key), "column": note.column,
            "whole_key": note.whole_key, "size": note.size, "timestamp_ns": note.timestamp_ns,
            "seq": note.seq, "owner_seq": note.owner_seq, "node": node,
            "epoch": format!("{:016x}", note.epoch),
        })
        .to_string();
    }
    let what = match (note.kind, note.whole_key) {
        (NoteKind::Remove, true) => "every column".to_string(),
        (NoteKind::Remove, false) => format!("column {}", note.column),
        _ => format!("column {} size {}", note.column, note.size),
    };
    format!(
        "{op} {name} {what} seq {} at {} node {node}",
        note.seq, note.timestamp_ns
    )
}

fn gap_line(node: &str, reason: &str, missed: Option<(u64, u64)>, json: bool) -> String {
    if json {
        return serde_json::json!({
            "event": "gap", "node": node, "reason": reason,
            "from_seq": missed.map(|m| m.0), "missed": missed.map(|m| m.1),
        })
        .to_string();
    }
    match missed {
        Some((from, n)) => format!("gap node {node}: {n} changes from seq {from} missed: {reason}"),
        None => format!("gap node {node}: {reason}"),
    }
}

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}
