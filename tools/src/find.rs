//! `ringblob find` (a query on attributes, page by page) and `ringblob space` (a
//! namespace's attribute space): `docs/ATTRIBUTES.md`.

use std::io::Write;

use ringblob_backends::names::{AttrValue, Attrs};
use ringblob_protocol::attrs::Query;
use ringblob_protocol::client::{Client, ClientError, FindAsk, FindCost, MAX_FIND_LIMIT};
use ringblob_protocol::ring::RingId;

/// What to find.
#[derive(Debug, Clone)]
pub struct Ask {
    pub namespace: String,
    pub query: Query,
    /// A continuation token (64 hex digits) printed by an earlier run.
    pub after: Option<String>,
    pub limit: Option<u64>,
    pub groups: Vec<u32>,
}

/// How to print: names (or JSON lines), and the cost on stderr.
#[derive(Debug, Clone, Copy, Default)]
pub struct Show {
    pub json: bool,
    pub long: bool,
    pub explain: bool,
}

/// Prints every answer of `ask` (at most `limit`), page by page. With `--limit` reached and
/// more left, the continuation token goes to stderr.
pub async fn run(client: &Client, ask: Ask, show: Show) -> Result<(), ClientError> {
    let mut after = match &ask.after {
        Some(hex) => Some(
            RingId::from_hex(hex)
                .map_err(|e| ClientError::Input(format!("--after: {e}")))?
                .0,
        ),
        None => None,
    };
    let mut left = ask.limit.unwrap_or(u64::MAX);
    let mut total = Totals::default();
    let out = std::io::stdout();
    while left > 0 {
        let page = client
            .find(&FindAsk {
                namespace: ask.namespace.clone(),
                query: ask.query.clone(),
                after,
                limit: left.min(MAX_FIND_LIMIT as u64) as usize,
                groups: ask.groups.clone(),
                scan: false,
            })
            .await?;
        let mut lock = out.lock();
        for hit in &page.hits {
            let name = String::from_utf8_lossy(&hit.name);
            let line = match (show.json, show.long) {
                (true, _) => serde_json::json!({
                    "name": name, "attrs": attrs_json(&hit.attrs), "size": hit.record.size,
                    "content_type": hit.record.content_type,
                })
                .to_string(),
                (false, true) => format!("{name}\t{}\t{}", hit.record.size, attrs_text(&hit.attrs)),
                (false, false) => name.into_owned(),
            };
            writeln!(lock, "{line}").map_err(|e| ClientError::Output(e.to_string()))?;
        }
        left -= page.hits.len() as u64;
        total.add(page.hits.len(), &page.cost);
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    if let Some(next) = after {
        eprintln!("more: continue with --after {}", RingId(next).to_hex());
    }
    if show.explain {
        eprintln!("{}", total.explain());
    }
    Ok(())
}

/// The cost of every page, added up.
#[derive(Debug, Default)]
struct Totals {
    found: usize,
    pages: usize,
    last: FindCost,
    entries_read: u64,
    dead: u64,
    asked: usize,
    moving_pieces: u64,
    earlier_asks: u64,
}

impl Totals {
    fn add(&mut self, found: usize, cost: &FindCost) {
        self.found += found;
        self.pages += 1;
        self.entries_read += cost.entries_read;
        self.dead += cost.dead_entries;
        self.asked = self.asked.max(cost.asked_nodes);
        self.moving_pieces += cost.moving_pieces;
        self.earlier_asks += cost.earlier_asks;
        self.last = cost.clone();
    }

    fn explain(&self) -> String {
        let c = &self.last;
        serde_json::json!({
            "found": self.found, "pages": self.pages, "group": c.group, "overlay": c.overlay,
            "regions": c.regions, "total_regions": c.total_regions, "ranges": c.ranges,
            "pieces": c.pieces, "planned_nodes": c.planned_nodes, "asked_nodes": self.asked,
            "group_nodes": c.group_nodes, "entries_read": self.entries_read,
            "dead_entries": self.dead, "moving_pieces": self.moving_pieces,
            "earlier_asks": self.earlier_asks,
        })
        .to_string()
    }
}

/// Attributes as a JSON object (integers as numbers).
pub fn attrs_json(attrs: &Attrs) -> serde_json::Value {
    let map = attrs
        .iter()
        .map(|(k, v)| {
            let v = match v {
                AttrValue::Str(s) => serde_json::Value::from(s.as_str()),
                AttrValue::Int(n) => serde_json::Value::from(*n),
            };
            (k.clone(), v)
        })
        .collect();
    serde_json::Value::Object(map)
}

/// Attributes as `k=v k=v`.
pub fn attrs_text(attrs: &Attrs) -> String {
    attrs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
