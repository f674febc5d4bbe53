//! `ringblob`: the command-line client.
//!
//! Exit status: 0 on success, 2 when the key (or column) does not exist, 1 on any other error
//! (usage errors included, such as a `--column` that names no column), with a one-line
//! message on stderr.
//!
//! `--column C` (put, get, lookup, rm) picks one column of the key: `data` (0, the value and
//! the default), `meta` (1), `thumb` (2) or any number 0..=65535. `rm` without it removes
//! the key with every column.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use ringblob_backends::names::{Attrs, NameRecord, NAME_COLUMN};
use ringblob_engine::Key;
use ringblob_protocol::attrs::{Query, Space, ENTRY_COLUMN};
use ringblob_protocol::client::{
    restarting_when, Client, ClientConfig, ClientError, ClientSecurity, PutOptions, Quorum, Target,
    WatchTarget,
};
use ringblob_protocol::wire::{Durability, LeaveAsk};
use ringblob_tools::column::{column_label, parse_column};
use ringblob_tools::progress::Counted;
use ringblob_tools::{find, ls, watch};

/// Talk to a ringblob node.
#[derive(Parser, Debug)]
#[command(name = "ringblob", version = ringblob_tools::VERSION, about)]
struct Cli {
    /// Node address
    #[arg(
        long,
        env = "RINGBLOB_REMOTE",
        default_value = "127.0.0.1:1025",
        global = true
    )]
    remote: String,
    /// Namespace names are hashed in: key = SHA-256(len(ns) || ns || NAME)
    #[arg(long, default_value = "", global = true)]
    namespace: String,
    /// Per-request timeout in seconds
    #[arg(long, default_value_t = 30, global = true)]
    timeout: u64,
    /// No progress bars (they are shown on a terminal for transfers over 4 MB)
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    /// Replica groups, in preference order (e.g. 1,2): put/rm write to each, get/lookup read
    /// the newest replica (falling over, repairing stale groups) [default: the node's group]
    #[arg(long, value_delimiter = ',', global = true)]
    groups: Vec<u32>,
    /// Groups that must acknowledge a put or rm with --groups: one, quorum or all
    #[arg(long = "w", default_value = "quorum", global = true)]
    write_quorum: Quorum,
    /// Values larger than this many bytes are stored as chunked objects of chunks this
    /// size, spread over the ring (4096 to 1073741824)
    #[arg(long, env = "RINGBLOB_CHUNK_SIZE", default_value_t = ringblob_protocol::client::object::DEFAULT_CHUNK_SIZE, global = true)]
    chunk_size: u64,
    #[command(flatten)]
    security: ringblob_tools::client_args::SecurityArgs,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Store FILE (or stdin when FILE is absent or `-`) under NAME
    Put {
        name: String,
        file: Option<PathBuf>,
        /// Compress with Snappy
        #[arg(long)]
        compress: bool,
        /// none | batch | sync (default: the node's)
        #[arg(long)]
        durability: Option<String>,
        /// Append to the value instead of replacing it (creating it if absent)
        #[arg(long, conflicts_with = "offset")]
        append: bool,
        /// Write at this byte offset inside the value, growing it if needed
        #[arg(long)]
        offset: Option<u64>,
        /// Column to write: data (the value; default), meta, thumb or a number 0..=65535
        #[arg(long)]
        column: Option<String>,
        /// An attribute of the object, repeatable (`--attr camera=x100 --attr year=2024`):
        /// stored in its name record and indexed for `find` (docs/ATTRIBUTES.md). Canonical
        /// decimal values are integers, others strings. A put without --attr leaves none.
        #[arg(long = "attr", value_name = "NAME=VALUE")]
        attrs: Vec<String>,
        /// The object's media type, kept in its name record and served by the HTTP gateway
        /// (default: guessed from NAME's extension, else FILE's; none if neither tells)
        #[arg(long, value_name = "TYPE")]
        content_type: Option<String>,
    },
    /// Write the value of NAME (or a byte range of it) to stdout or FILE
    Get {
        name: String,
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long)]
        size: Option<u64>,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// Column to read: data (the value; default), meta, thumb or a number 0..=65535
        #[arg(long)]
        column: Option<String>,
    },
    /// Remove NAME with all its columns, or only the column given
    Rm {
        name: String,
        #[arg(long)]
        durability: Option<String>,
        /// Remove only this column: data, meta, thumb or a number 0..=65535
        #[arg(long)]
        column: Option<String>,
    },
    /// Size, timestamp, checksum and location of NAME (one column of it)
    Lookup {
        name: String,
        #[arg(long)]
        json: bool,
        /// Column to describe: data (the value; default), meta, thumb or a number 0..=65535
        #[arg(long)]
        column: Option<String>,
    },
    /// List the names stored in NAMESPACE (default: --namespace), in byte order; or, with
    /// --namespaces, the namespaces that hold names
    Ls {
        #[arg(value_name = "NAMESPACE")]
        space: Option<String>,
        /// Only names that begin with this
        #[arg(long, default_value = "")]
        prefix: String,
        /// Only names after this one (to continue a listing)
        #[arg(long)]
        after: Option<String>,
        /// At most this many [default: all]
        #[arg(long)]
        limit: Option<u64>,
        /// Size and time of each name too
        #[arg(long, short = 'l')]
        long: bool,
        /// One JSON object per line: name, key, size, timestamp_ns, content_type, etag, meta
        #[arg(long)]
        json: bool,
        /// List namespaces instead of names
        #[arg(long, conflicts_with_all = ["space", "prefix"])]
        namespaces: bool,
    },
    /// Names in NAMESPACE whose attributes match a query: terms NAME=VALUE, NAME=* (has it),
    /// !NAME (lacks it), NAME!=VALUE, all of which must hold; `or` between groups of terms
    /// (e.g. `find photos camera=x100 year=*`). Asks only the nodes that can hold answers
    Find {
        #[arg(value_name = "NAMESPACE")]
        space: String,
        #[arg(value_name = "TERM", required = true, num_args = 1..)]
        terms: Vec<String>,
        /// The paper's structural query: also no property other than those named with `=`
        #[arg(long)]
        exact: bool,
        /// At most this many [default: all]
        #[arg(long)]
        limit: Option<u64>,
        /// Continue after this token (printed on stderr when --limit stopped a query)
        #[arg(long)]
        after: Option<String>,
        /// Size and attributes of each name too
        #[arg(long, short = 'l')]
        long: bool,
        /// One JSON object per line: name, attrs, size, content_type
        #[arg(long)]
        json: bool,
        /// What the query cost, as JSON on stderr: overlay, regions, nodes planned and asked
        #[arg(long)]
        explain: bool,
    },
    /// Print every write and remove of NAME as it happens (through any node), or with no
    /// NAME those of the objects of --namespace (optionally only those matching --find),
    /// until interrupted; a `gap` line says when changes may have been missed (a node
    /// restarted, ownership moved, the watcher fell behind)
    Watch {
        name: Option<String>,
        /// Only objects whose attributes match this query (e.g. 'camera=x100 year=*';
        /// namespace watches)
        #[arg(long, conflicts_with = "name")]
        find: Option<String>,
        /// The query is exact (docs/ATTRIBUTES.md)
        #[arg(long, requires = "find")]
        exact: bool,
        /// One JSON object per line: event (write, remove, gap), name, key, column, size,
        /// timestamp_ns, seq, owner_seq, node, epoch (and `attached` events on stderr)
        #[arg(long)]
        json: bool,
        /// Exit after this many changes
        #[arg(long)]
        count: Option<u64>,
        /// Also changes of the reserved columns (name records 65534, index entries 65533,
        /// upload records 65535)
        #[arg(long)]
        all_columns: bool,
    },
    /// A namespace's attribute space: the overlays (queryable properties and their
    /// weights) and fallback that place its index entries (docs/ATTRIBUTES.md)
    Space {
        #[command(subcommand)]
        cmd: SpaceCmd,
    },
    /// Write every name of NAMESPACE (default: --namespace) with its value, content type and
    /// metadata to a tar archive, on stdout or -o FILE (the value, column 0, only)
    Export {
        #[arg(value_name = "NAMESPACE")]
        space: Option<String>,
        /// Only names that begin with this
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Store every file of a tar archive (-i FILE, or stdin) as a name of NAMESPACE (default:
    /// --namespace), with the content type and metadata `export` recorded
    Import {
        #[arg(value_name = "NAMESPACE")]
        space: Option<String>,
        #[arg(short = 'i', long = "input")]
        input: Option<PathBuf>,
        /// none | batch | sync (default: the node's)
        #[arg(long)]
        durability: Option<String>,
    },
    /// The node's statistics (JSON), with every cluster node's keys, bytes and rebalancing
    /// progress (`cluster_nodes`, `cluster_totals`) when it is in a cluster of several
    Stat,
    /// Reclaim the space of overwritten and removed values now (blob backend)
    Defrag {
        /// Return when it is done, printing its report (default: once it has started)
        #[arg(long)]
        wait: bool,
    },
    /// The route table: nodes, groups, ranges of the key space
    Routes {
        #[arg(long)]
        json: bool,
    },
    /// The cluster on one screen: nodes, groups, liveness, shares, keys, bytes, free disk,
    /// damage, and hand-over, scrub and defragmentation under way
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Take a node out of service: drain, leave, undrain, or see how far it is (admin)
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
    /// Round trips to every node of the cluster (PING), like `redis-cli --latency`
    Ping {
        /// Pings per node
        #[arg(long, default_value_t = 10)]
        count: u32,
        #[arg(long)]
        json: bool,
    },
    /// Remove the chunks of interrupted, failed or replaced object uploads (orphans) on
    /// every node, printing what was found (JSON)
    Reclaim {
        /// Keep uploads started less than this many seconds ago (they may be running)
        #[arg(long, default_value_t = 3600)]
        grace_secs: u64,
    },
}

#[derive(Subcommand, Debug)]
enum SpaceCmd {
    /// Print the space (JSON; the default space if none was set)
    Show {
        #[arg(value_name = "NAMESPACE")]
        space: Option<String>,
    },
    /// Store a space given as JSON (or @FILE), e.g.
    /// '{"overlays":[{"camera":9,"year":4}],"fallback":{"dimensions":10,"regions":3}}',
    /// then re-place the entries of every name of the namespace that has attributes
    Set {
        #[arg(value_name = "NAMESPACE")]
        space: String,
        #[arg(value_name = "JSON")]
        json: String,
    },
}

#[derive(Subcommand, Debug)]
enum NodeCmd {
    /// Hand every range of the node to the rest of its group (at its rebalance rate; keys stay
    /// readable throughout); the node then leaves the cluster but keeps running
    Drain {
        /// The node [default: --remote]
        addr: Option<String>,
        /// Return once every range is handed over, showing progress
        #[arg(long)]
        wait: bool,
    },
    /// Drain the node, then stop its process
    Leave {
        /// The node [default: --remote]
        addr: Option<String>,
        /// Return once every range is handed over (the node then stops)
        #[arg(long)]
        wait: bool,
    },
    /// Cancel a drain that has not finished: the node takes its ranges back and stays
    Undrain {
        /// The node [default: --remote]
        addr: Option<String>,
    },
    /// Where the node's drain or leave stands (JSON)
    Status {
        /// The node [default: --remote]
        addr: Option<String>,
    },
}

impl Cmd {
    /// The `--column` argument, for the commands that take one.
    fn column_arg(&self) -> Option<&str> {
        match self {
            Cmd::Put { column, .. }
            | Cmd::Get { column, .. }
            | Cmd::Rm { column, .. }
            | Cmd::Lookup { column, .. } => column.as_deref(),
            _ => None,
        }
    }
}

/// A failure and the exit status it maps to.
struct Failure(i32, String);

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure(if e.is_not_found() { 2 } else { 1 }, e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure(1, e.to_string())
    }
}

fn durability(s: Option<&str>) -> Result<Durability, Failure> {
    match s {
        None => Ok(Durability::Default),
        Some("none") => Ok(Durability::None),
        Some("batch") => Ok(Durability::Batch),
        Some("sync") => Ok(Durability::Sync),
        Some(other) => Err(Failure(
            1,
            format!("unknown durability {other:?} (none, batch or sync)"),
        )),
    }
}

/// The value to store: FILE, or stdin. Refused before reading when it is over the largest
/// value a node stores.
/// A put's input: read whole (appends, offsets, replicated puts) or streamed.
enum Input {
    Whole(Vec<u8>),
    Streamed(Source),
}

/// A streamed put's source and its size, if known.
struct Source {
    reader: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    size: Option<u64>,
    /// The file it reads, which can be read again (not stdin).
    path: Option<PathBuf>,
}

/// FILE or stdin, to stream. A file for a column other than 0 (never a chunked object) is
/// checked against the value limit now.
async fn streamed_input(file: Option<&PathBuf>, column: Option<u16>) -> Result<Source, Failure> {
    let limit = ringblob_engine::format::record::MAX_VALUE_LEN;
    match file {
        Some(p) if p.as_os_str() != "-" => {
            let io = |e: std::io::Error| Failure(1, format!("{}: {e}", p.display()));
            let f = tokio::fs::File::open(p).await.map_err(io)?;
            let len = f.metadata().await.map_err(io)?.len();
            if len > limit && column.unwrap_or(0) != 0 {
                return Err(Failure(
                    1,
                    format!("value of {len} bytes is over the {limit}-byte limit"),
                ));
            }
            Ok(Source {
                reader: Box::new(f),
                size: Some(len),
                path: Some(p.clone()),
            })
        }
        _ => Ok(Source {
            reader: Box::new(tokio::io::stdin()),
            size: None,
            path: None,
        }),
    }
}

/// `put` of a whole value, streamed from its source with progress.
async fn put_streamed(
    ctx: &Ctx,
    name: &str,
    column: Option<u16>,
    source: Source,
    (opts, described): (PutOptions, (&Attrs, &str)),
    quiet: bool,
) -> Result<(), Failure> {
    let bar = ringblob_tools::progress::bar(source.size, quiet);
    let at = (ctx.key(name), column.unwrap_or(0));
    let progress = |n| {
        if let Some(b) = &bar {
            b.set_position(n)
        }
    };
    // A file is sent again from its start if the key moved to another node mid-way; stdin
    // cannot be read again.
    let (mut first, path, size) = (Some(source.reader), source.path, (source.size, opts));
    let (at, lost) = (&at, |e: &ClientError| e.is_upload_lost() && path.is_some());
    let result = restarting_when(lost, || {
        let (reader, path) = (first.take(), path.clone());
        async move {
            let mut reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match (reader, path) {
                (Some(r), _) => r,
                (None, Some(p)) => Box::new(
                    tokio::fs::File::open(&p)
                        .await
                        .map_err(|e| ClientError::Input(format!("{}: {e}", p.display())))?,
                ),
                (None, None) => return Err(ClientError::Input("stdin was read already".into())),
            };
            // Column 0 holds plain values and chunked objects alike; other columns plain values.
            match at.1 {
                0 => {
                    ctx.client
                        .put_object(at.0.clone(), &mut reader, size, progress)
                        .await
                }
                c => {
                    ctx.client
                        .put_stream(at.0.clone(), c, &mut reader, size, progress)
                        .await
                }
            }
        }
    })
    .await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let size = result?;
    if at.1 == 0 {
        record_name(ctx, name, size, opts, described).await?;
    }
    println!("stored {}: {size} bytes", shown(name, column));
    Ok(())
}

/// NAME's name record, holding `size`, the object's attributes and media type, and the
/// entity tag the HTTP gateway serves for the value now stored (`ls` lists it).
async fn name_record(
    ctx: &Ctx,
    name: &str,
    size: u64,
    (attrs, content_type): (&Attrs, &str),
    group: Option<u32>,
) -> NameRecord {
    NameRecord {
        attrs: attrs.clone(),
        content_type: content_type.to_string(),
        etag: stored_etag(ctx, name, group).await,
        ..NameRecord::new(ctx.namespace.clone(), name.as_bytes().to_vec(), size)
    }
}

/// The entity tag of NAME's value as stored (in `group`, or where the client routes): the
/// tag a GET through the gateway answers. Empty if the lookup fails (the value was removed
/// or replaced meanwhile; the record is then superseded too).
async fn stored_etag(ctx: &Ctx, name: &str, group: Option<u32>) -> String {
    let key = ctx.key(name);
    let found = match group {
        Some(g) => ctx.client.in_group(g).object_meta(&key).await,
        None => ctx.client.object_meta(&key).await,
    };
    match found {
        Ok((meta, manifest)) => {
            ringblob_protocol::gateway::object_etag(&meta, manifest.map(|m| m.crc32))
        }
        Err(_) => String::new(),
    }
}

/// The media type of a put: given, or guessed from the name, then the file.
fn media_type(given: Option<&str>, name: &str, file: Option<&PathBuf>) -> String {
    if let Some(t) = given {
        return t.to_string();
    }
    let guess = |p: &std::path::Path| mime_guess::from_path(p).first().map(|m| m.to_string());
    guess(std::path::Path::new(name))
        .or_else(|| file.and_then(|f| guess(f)))
        .unwrap_or_default()
}

/// Stores NAME's name record after its value, so `ls` lists it; with attributes, the
/// index entries first and the entries of the attributes it replaces removed after
/// (docs/ATTRIBUTES.md §5).
async fn record_name(
    ctx: &Ctx,
    name: &str,
    size: u64,
    opts: PutOptions,
    (attrs, content_type): (&Attrs, &str),
) -> Result<(), Failure> {
    let record = name_record(ctx, name, size, (attrs, content_type), None).await;
    if attrs.is_empty() {
        ctx.client.put_name_record(&record, opts).await?;
        return Ok(());
    }
    let old = ctx
        .client
        .name_record(&ctx.namespace, name.as_bytes())
        .await?;
    let space = ctx.client.attribute_space(&ctx.namespace).await?;
    ctx.client
        .put_record_indexed(&record, old.as_ref(), &space, opts)
        .await?;
    Ok(())
}

/// A progress bar for a get of `range`, sized by the range or the value (one LOOKUP, only
/// when a bar would be shown).
async fn get_bar(
    client: &Client,
    (key, column): &(Target, u16),
    (offset, size): (u64, Option<u64>),
    quiet: bool,
) -> Option<indicatif::ProgressBar> {
    ringblob_tools::progress::bar(None, quiet)?;
    let total = match size {
        Some(s) => s,
        None => {
            let meta = client.lookup_column(key.clone(), *column).await.ok()?;
            let object = match column {
                0 => client.object_manifest(key).await.ok().flatten(),
                _ => None,
            };
            object.map_or(meta.size, |m| m.size).saturating_sub(offset)
        }
    };
    ringblob_tools::progress::bar(Some(total), quiet)
}

fn read_input(file: Option<&PathBuf>) -> Result<Vec<u8>, Failure> {
    let limit = ringblob_engine::format::record::MAX_VALUE_LEN;
    let too_large = |n: u64| {
        Failure(
            1,
            format!("value of {n} bytes is over the {limit}-byte limit"),
        )
    };
    let mut data = Vec::new();
    match file {
        Some(p) if p.as_os_str() != "-" => {
            let io = |e: std::io::Error| Failure(1, format!("{}: {e}", p.display()));
            let len = std::fs::metadata(p).map_err(io)?.len();
            if len > limit {
                return Err(too_large(len));
            }
            data = std::fs::read(p).map_err(io)?;
        }
        _ => {
            std::io::stdin().take(limit + 1).read_to_end(&mut data)?;
            if data.len() as u64 > limit {
                return Err(too_large(data.len() as u64));
            }
        }
    }
    Ok(data)
}

/// The `--column` a command names (`None` without one); an unknown name is a usage error
/// (exit 1, like clap's), not "not found" (2).
fn column_of(cmd: &Cmd) -> Result<Option<u16>, Failure> {
    cmd.column_arg()
        .map(|arg| parse_column(arg).map_err(|e| Failure(1, e.to_string())))
        .transpose()
}

/// What every command needs: the connected client and the global options.
struct Ctx {
    client: Client,
    namespace: String,
    groups: Vec<u32>,
    write_quorum: Quorum,
    timeout: Duration,
    security: ClientSecurity,
}

impl Ctx {
    /// The key of `name` in the namespace (its ID, and the name for the envelope).
    fn key(&self, name: &str) -> Target {
        Target::named(&self.namespace, name.as_bytes().to_vec())
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let security = cli
        .security
        .security()
        .map_err(|e| Failure(2, format!("{e:#}")))?;
    let config = ClientConfig {
        timeout: Duration::from_secs(cli.timeout),
        security: security.clone(),
        chunk_size: cli.chunk_size,
        ..ClientConfig::default()
    };
    let limits = ringblob_protocol::client::object::MIN_CHUNK_SIZE
        ..=ringblob_protocol::client::object::MAX_CHUNK_SIZE;
    if !limits.contains(&cli.chunk_size) {
        return Err(Failure(
            1,
            format!("--chunk-size {} is not within {limits:?}", cli.chunk_size),
        ));
    }
    // Arguments and a put's input are checked before connecting: fail fast. A plain put
    // streams its input in parts (memory bounded by one part, whatever the size); appends,
    // writes at an offset and replicated puts read it whole first, so a connection is never
    // held open while stdin trickles in for them.
    let column = column_of(&cli.command)?;
    let attrs = match &cli.command {
        Cmd::Put { attrs, .. } => {
            Attrs::parse_pairs(attrs).map_err(|e| Failure(1, format!("--attr: {e}")))?
        }
        _ => Attrs::new(),
    };
    if !attrs.is_empty() && column.unwrap_or(0) != 0 {
        return Err(Failure(
            1,
            "--attr describes the object: give it with the value (column data)".into(),
        ));
    }
    let input = match &cli.command {
        Cmd::Put {
            file,
            append,
            offset,
            ..
        } if *append || offset.is_some() || !cli.groups.is_empty() => {
            Input::Whole(read_input(file.as_ref())?)
        }
        Cmd::Put { file, .. } => Input::Streamed(streamed_input(file.as_ref(), column).await?),
        _ => Input::Whole(Vec::new()),
    };
    let ctx = Ctx {
        client: Client::connect(&cli.remote, config.clone()).await?,
        namespace: cli.namespace,
        groups: cli.groups,
        write_quorum: cli.write_quorum,
        timeout: Duration::from_secs(cli.timeout),
        security,
    };
    match cli.command {
        Cmd::Put {
            name,
            compress,
            durability: d,
            append,
            offset,
            content_type,
            file,
            ..
        } => {
            let content_type = media_type(content_type.as_deref(), &name, file.as_ref());
            let opts = PutOptions {
                compress,
                durability: durability(d.as_deref())?,
                ..PutOptions::default()
            };
            let described = (&attrs, content_type.as_str());
            match input {
                Input::Whole(data) => {
                    let data = Bytes::from(data);
                    put(&ctx, &name, column, data, opts, (append, offset), described).await
                }
                Input::Streamed(source) => {
                    put_streamed(&ctx, &name, column, source, (opts, described), cli.quiet).await
                }
            }
        }
        Cmd::Get {
            name,
            offset,
            size,
            output,
            ..
        } => {
            let at = (ctx.key(&name), column.unwrap_or(0));
            if ctx.groups.is_empty() {
                let bar = get_bar(&ctx.client, &at, (offset, size), cli.quiet).await;
                get(&ctx.client, at, (offset, size), output, bar).await
            } else {
                get_replicated(&ctx.client, at, &ctx.groups, (offset, size), output).await
            }
        }
        Cmd::Rm {
            name,
            durability: d,
            ..
        } => rm(&ctx, &name, column, durability(d.as_deref())?).await,
        Cmd::Lookup { name, json, .. } => lookup(&ctx, &name, column.unwrap_or(0), json).await,
        Cmd::Defrag { wait } => {
            let report = ctx.client.defrag_report(wait).await?;
            println!("{}", pretty(&report));
            Ok(())
        }
        Cmd::Ls {
            space,
            prefix,
            after,
            limit,
            long,
            json,
            namespaces,
        } => {
            let ns = space.unwrap_or_else(|| ctx.namespace.clone());
            let ask = ls::Ask {
                namespace: (!namespaces).then_some(ns),
                prefix,
                after,
                limit,
            };
            Ok(ls::run(&ctx.client, &ctx.groups, ask, ls::Show { long, json }).await?)
        }
        Cmd::Export {
            space,
            prefix,
            output,
        } => {
            let ns = space.unwrap_or_else(|| ctx.namespace.clone());
            let out: Box<dyn std::io::Write + Send> = match &output {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .map_err(|e| Failure(1, format!("{}: {e}", p.display())))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            };
            let client = std::sync::Arc::new(Client::connect(&cli.remote, config.clone()).await?);
            let moved = ringblob_tools::export::export(client, &ns, &prefix, out).await?;
            eprintln!("exported {} names, {} bytes", moved.names, moved.bytes);
            Ok(())
        }
        Cmd::Import {
            space,
            input,
            durability: d,
        } => {
            let ns = space.unwrap_or_else(|| ctx.namespace.clone());
            let source: Box<dyn std::io::Read + Send> = match &input {
                Some(p) => Box::new(std::io::BufReader::new(
                    std::fs::File::open(p)
                        .map_err(|e| Failure(1, format!("{}: {e}", p.display())))?,
                )),
                None => Box::new(std::io::BufReader::new(std::io::stdin())),
            };
            let o = PutOptions {
                durability: durability(d.as_deref())?,
                ..PutOptions::default()
            };
            let client = std::sync::Arc::new(Client::connect(&cli.remote, config.clone()).await?);
            let moved = ringblob_tools::export::import(client, &ns, source, o).await?;
            eprintln!("imported {} names, {} bytes", moved.names, moved.bytes);
            Ok(())
        }
        Cmd::Find {
            space,
            terms,
            exact,
            limit,
            after,
            long,
            json,
            explain,
        } => {
            let query = Query::parse(&terms, exact).map_err(|e| Failure(1, e.to_string()))?;
            let ask = find::Ask {
                namespace: space,
                query,
                after,
                limit,
                groups: ctx.groups.clone(),
            };
            let show = find::Show {
                json,
                long,
                explain,
            };
            Ok(find::run(&ctx.client, ask, show).await?)
        }
        Cmd::Space { cmd } => space_cmd(&ctx, cmd).await,
        Cmd::Watch {
            name,
            find: query,
            exact,
            json,
            count,
            all_columns,
        } => {
            let target = match &name {
                Some(n) => WatchTarget::Key(ctx.key(n)),
                None => {
                    let query = query.unwrap_or_default();
                    let words: Vec<&str> = query.split_whitespace().collect();
                    if !words.is_empty() {
                        Query::parse(&words, exact).map_err(|e| Failure(1, e.to_string()))?;
                    }
                    WatchTarget::Namespace {
                        namespace: ctx.namespace.clone(),
                        query,
                        exact,
                    }
                }
            };
            let group = ctx.groups.first().copied().unwrap_or(0);
            let show = watch::Show {
                json,
                all_columns,
                count,
            };
            Ok(watch::run(&ctx.client, target, name.as_deref(), group, show).await?)
        }
        Cmd::Stat => stat(&ctx).await,
        Cmd::Routes { json } => routes(&ctx, json).await,
        Cmd::Reclaim { grace_secs } => reclaim(&ctx, config, grace_secs).await,
        Cmd::Ping { count, json } => ping(&ctx, config, count, json).await,
        Cmd::Status { json } => status(&ctx, json).await,
        Cmd::Node { cmd } => node_cmd(&ctx, config, cmd).await,
    }
}

/// `node drain|leave|undrain|status`: a LEAVE to the node, then (with `--wait`) its progress until
/// every range is handed over.
async fn node_cmd(ctx: &Ctx, config: ClientConfig, cmd: NodeCmd) -> Result<(), Failure> {
    let (addr, ask, wait) = match cmd {
        NodeCmd::Drain { addr, wait } => (addr, LeaveAsk::Drain, wait),
        NodeCmd::Leave { addr, wait } => (addr, LeaveAsk::Stop, wait),
        NodeCmd::Undrain { addr } => (addr, LeaveAsk::Cancel, false),
        NodeCmd::Status { addr } => (addr, LeaveAsk::Status, false),
    };
    let stop = ask == LeaveAsk::Stop;
    let addr = addr.unwrap_or_else(|| ctx.client.addr().to_string());
    let client = Client::connect(&addr, config).await?;
    let mut report = client.leave(ask).await?;
    while wait && report["state"] != "left" {
        if report["state"] == "none" {
            return Err(Failure(
                1,
                format!("{addr}: the drain was cancelled (node undrain): it keeps its ranges"),
            ));
        }
        let stalled = match report["last_error"].as_str() {
            Some(why) => format!(" — retrying after: {why}"),
            None => String::new(),
        };
        eprintln!(
            "{addr}: {} — {} transfers pending, {:.1} % of its key space left, {} records sent{stalled}",
            report["state"].as_str().unwrap_or_default(),
            report["transfers_pending"],
            report["fraction_left"].as_f64().unwrap_or(0.0) * 100.0,
            report["records_sent"]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        report = match client.leave(LeaveAsk::Status).await {
            Ok(r) => r,
            // A leave that stops the node ends with the node gone.
            Err(e) if stop && e.is_retryable() => break,
            Err(e) => return Err(e.into()),
        };
    }
    println!("{}", pretty(&report));
    Ok(())
}

/// `status`: every node of the route table with its STAT, as a screen or JSON lines.
async fn status(ctx: &Ctx, json: bool) -> Result<(), Failure> {
    let table = ctx.client.route_table().await?;
    let stats = ringblob_tools::cluster_stat::all_stats(&table, ctx.timeout, &ctx.security).await;
    let shares = ringblob_tools::routes_view::shares(&table);
    let rows = ringblob_tools::status_view::rows(&table, &stats, &shares);
    if json {
        for r in &rows {
            println!("{r}");
        }
    } else {
        print!("{}", ringblob_tools::status_view::render(&table, &rows));
    }
    Ok(())
}

/// The address of every node in the route table (the node asked, outside a cluster).
async fn node_addrs(ctx: &Ctx) -> Result<Vec<String>, Failure> {
    let table = ctx.client.route_table().await?;
    let mut addrs: Vec<String> = table.nodes.iter().map(|n| n.addr.clone()).collect();
    addrs.sort();
    addrs.dedup();
    if addrs.is_empty() {
        addrs.push(ctx.client.addr().to_string());
    }
    Ok(addrs)
}

/// `ping`: connect time and PING round trips to every node (µs); a node that cannot be
/// reached is reported and makes the exit status 1.
async fn ping(ctx: &Ctx, config: ClientConfig, count: u32, json: bool) -> Result<(), Failure> {
    let mut failed = false;
    let mut rows = Vec::new();
    for addr in node_addrs(ctx).await? {
        let started = std::time::Instant::now();
        let client = match Client::connect(&addr, config.clone()).await {
            Ok(c) => c,
            Err(e) => {
                failed = true;
                rows.push(serde_json::json!({ "node": addr, "error": e.to_string() }));
                continue;
            }
        };
        let connect_us = started.elapsed().as_micros() as u64;
        let mut times = Vec::with_capacity(count as usize);
        let mut error = None;
        for _ in 0..count.max(1) {
            let t = std::time::Instant::now();
            match client.ping().await {
                Ok(()) => times.push(t.elapsed().as_micros() as u64),
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        failed |= error.is_some();
        times.sort_unstable();
        let pick = |q: f64| {
            times
                .get(((times.len() as f64 - 1.0) * q).round() as usize)
                .copied()
        };
        rows.push(serde_json::json!({
            "node": addr, "connect_us": connect_us, "pings": times.len(),
            "min_us": times.first(), "p50_us": pick(0.5), "max_us": times.last(),
            "error": error,
        }));
    }
    for r in &rows {
        if json {
            println!("{r}");
        } else if let Some(e) = r["error"].as_str() {
            println!(
                "{:<24} unreachable: {e}",
                r["node"].as_str().unwrap_or_default()
            );
        } else {
            println!(
                "{:<24} connect {} µs  ping min {} / p50 {} / max {} µs ({} pings)",
                r["node"].as_str().unwrap_or_default(),
                r["connect_us"],
                r["min_us"],
                r["p50_us"],
                r["max_us"],
                r["pings"]
            );
        }
    }
    if failed {
        return Err(Failure(1, "some nodes did not answer".into()));
    }
    Ok(())
}

/// `reclaim`: orphaned object uploads removed on every node of the cluster (each node
/// lists its own keys), or on the node asked outside a cluster.
async fn reclaim(ctx: &Ctx, config: ClientConfig, grace_secs: u64) -> Result<(), Failure> {
    let addrs = node_addrs(ctx).await?;
    let grace = Duration::from_secs(grace_secs);
    let mut nodes = serde_json::Map::new();
    for addr in addrs {
        let client = Client::connect(&addr, config.clone()).await?;
        let report = client.reclaim_uploads(grace, Durability::Default).await?;
        let value = serde_json::to_value(&report).map_err(|e| Failure(1, e.to_string()))?;
        nodes.insert(addr, value);
    }
    println!("{}", pretty(&serde_json::Value::Object(nodes)));
    Ok(())
}

/// `put`: a whole value, an append or a write at an offset; replicated with `--groups`.
async fn put(
    ctx: &Ctx,
    name: &str,
    column: Option<u16>,
    data: Bytes,
    opts: PutOptions,
    (append, offset): (bool, Option<u64>),
    (attrs, content_type): (&Attrs, &str),
) -> Result<(), Failure> {
    let (k, c) = (ctx.key(name), column.unwrap_or(0));
    let client = &ctx.client;
    if !ctx.groups.is_empty() {
        if append || offset.is_some() {
            return Err(Failure(1, "--append and --offset take no --groups".into()));
        }
        let len = data.len();
        let done = client
            .put_groups(k.clone(), c, data, opts, &ctx.groups, ctx.write_quorum)
            .await
            .map_err(|o| Failure(1, format!("write quorum not met: {o}")))?;
        report_failed_groups(&done);
        if c == 0 {
            let group = done.succeeded.first().copied();
            let record = name_record(ctx, name, len as u64, (attrs, content_type), group).await;
            let space = client.attribute_space(&ctx.namespace).await?;
            // Entries before the record (docs/ATTRIBUTES.md §5); those of attributes this
            // put replaces die with the old record and go at a later find.
            for (key, entry) in Client::index_entries(&record, &space) {
                client
                    .put_groups(
                        Target::Id(key),
                        ENTRY_COLUMN,
                        entry,
                        opts,
                        &ctx.groups,
                        ctx.write_quorum,
                    )
                    .await
                    .map_err(|o| Failure(1, format!("index entry: write quorum not met: {o}")))?;
            }
            let bytes = record
                .encode()
                .map_err(|e| Failure(1, format!("name {name:?}: {e}")))?;
            client
                .put_groups(
                    k,
                    NAME_COLUMN,
                    Bytes::from(bytes),
                    opts,
                    &ctx.groups,
                    ctx.write_quorum,
                )
                .await
                .map_err(|o| Failure(1, format!("name record: write quorum not met: {o}")))?;
        }
        println!("stored {}: {len} bytes in {done}", shown(name, column));
        return Ok(());
    }
    let size = match (append, offset) {
        (true, _) => client.append_column(k, c, data, opts).await?,
        (false, Some(at)) => client.write_at_column(k, c, at, data, opts).await?,
        (false, None) => client.put_column(k, c, data, opts).await?,
    };
    if c == 0 {
        record_name(ctx, name, size, opts, (attrs, content_type)).await?;
    }
    println!("stored {}: {size} bytes", shown(name, column));
    Ok(())
}

/// `rm`: the key with every column, or one column; replicated with `--groups`.
async fn rm(ctx: &Ctx, name: &str, column: Option<u16>, d: Durability) -> Result<(), Failure> {
    let k = ctx.key(name);
    if !ctx.groups.is_empty() {
        if column.is_some() {
            return Err(Failure(1, "rm --column takes no --groups".into()));
        }
        let done = ctx
            .client
            .remove_groups(k, d, &ctx.groups, ctx.write_quorum)
            .await
            .map_err(|o| Failure(1, format!("write quorum not met: {o}")))?;
        report_failed_groups(&done);
        println!("removed {} in {done}", shown(name, column));
        return Ok(());
    }
    // The record names the entries to remove after the object (docs/ATTRIBUTES.md §5).
    let indexed = match column {
        None | Some(0) => indexed_record(ctx, name).await?,
        Some(_) => None,
    };
    match column {
        Some(c) => {
            ctx.client.remove_column(k.clone(), c, d).await?;
            if c == 0 {
                // The name describes the value: without it, it is not listed any more.
                match ctx.client.remove_column(k, NAME_COLUMN, d).await {
                    Err(e) if !e.is_not_found() => return Err(e.into()),
                    _ => {}
                }
            }
        }
        None => ctx.client.remove_object(k, d).await?,
    }
    if let Some((record, space)) = indexed {
        ctx.client.remove_entries(&record, &space, d).await?;
    }
    println!("removed {}", shown(name, column));
    Ok(())
}

/// NAME's record and the namespace's space, if the record carries attributes.
async fn indexed_record(ctx: &Ctx, name: &str) -> Result<Option<(NameRecord, Space)>, Failure> {
    match ctx
        .client
        .name_record(&ctx.namespace, name.as_bytes())
        .await
    {
        Ok(Some(record)) if !record.attrs.is_empty() => {
            let space = ctx.client.attribute_space(&ctx.namespace).await?;
            Ok(Some((record, space)))
        }
        Ok(_) => Ok(None),
        // A damaged record does not stop the remove; its entries die with it.
        Err(ClientError::Input(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `space show|set`: a namespace's attribute space.
async fn space_cmd(ctx: &Ctx, cmd: SpaceCmd) -> Result<(), Failure> {
    match cmd {
        SpaceCmd::Show { space } => {
            let ns = space.unwrap_or_else(|| ctx.namespace.clone());
            let current = ctx.client.attribute_space(&ns).await?;
            let value: serde_json::Value =
                serde_json::from_str(&current.to_json()).map_err(|e| Failure(1, e.to_string()))?;
            println!("{}", pretty(&value));
            Ok(())
        }
        SpaceCmd::Set { space: ns, json } => {
            let text = match json.strip_prefix('@') {
                Some(path) => {
                    std::fs::read_to_string(path).map_err(|e| Failure(1, format!("{path}: {e}")))?
                }
                None => json,
            };
            let new = Space::from_json(&text).map_err(|e| Failure(1, e.to_string()))?;
            let old = ctx.client.attribute_space(&ns).await?;
            let o = PutOptions::default();
            ctx.client.set_attribute_space(&ns, &new, o).await?;
            let moved = match old == new {
                true => 0,
                false => ctx.client.reindex_namespace(&ns, &old, &new, o).await?,
            };
            println!(
                "stored the attribute space of {ns:?}; re-placed the entries of {moved} names"
            );
            Ok(())
        }
    }
}

/// `lookup`: the meta of one column, from the first group that has it with `--groups`.
async fn lookup(ctx: &Ctx, name: &str, column: u16, json: bool) -> Result<(), Failure> {
    let k = ctx.key(name);
    let id = Key(k.id());
    let meta = match ctx.groups.first() {
        Some(_) => lookup_replicated(&ctx.client, k.clone(), column, &ctx.groups).await?,
        None => ctx.client.lookup_column(k.clone(), column).await?,
    };
    let object = match (column, ctx.groups.is_empty()) {
        (0, true) => ctx.client.object_manifest(&k).await?,
        _ => None,
    };
    let record = match (column, ctx.groups.is_empty()) {
        (0, true) => ctx
            .client
            .name_record(&ctx.namespace, name.as_bytes())
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    let attrs = record.map(|r| r.attrs).unwrap_or_default();
    print_lookup(name, &id, &meta, (object.as_ref(), &attrs), json);
    Ok(())
}

/// `stat`: the node's statistics with every cluster node's.
async fn stat(ctx: &Ctx) -> Result<(), Failure> {
    let own = ctx.client.stat_value().await?;
    let table = ctx.client.route_table().await?;
    let all =
        ringblob_tools::cluster_stat::with_cluster(own, &table, ctx.timeout, &ctx.security).await;
    println!("{}", pretty(&all));
    Ok(())
}

/// `routes`: the route table as text, or as JSON with `--json`.
async fn routes(ctx: &Ctx, json: bool) -> Result<(), Failure> {
    let table = ctx.client.route_table().await?;
    if json {
        let value = serde_json::to_value(&table).map_err(|e| Failure(1, e.to_string()))?;
        println!("{}", pretty(&value));
    } else {
        print!("{}", ringblob_tools::routes_view::render_table(&table));
    }
    Ok(())
}

fn shown(name: &str, column: Option<u16>) -> String {
    match column {
        Some(c) => format!("{name} column {}", column_label(c)),
        None => name.to_string(),
    }
}

/// Streams the value to FILE (written to a temp file, renamed when complete) or stdout.
/// `at` is (key, column); `range` is (offset, size or `None` for to the end).
async fn get(
    client: &Client,
    (key, column): (Target, u16),
    range: (u64, Option<u64>),
    output: Option<PathBuf>,
    bar: Option<indicatif::ProgressBar>,
) -> Result<(), Failure> {
    let Some(path) = output else {
        let mut stdout = Counted::new(tokio::io::stdout(), bar);
        let r = fetch(client, (key, column), range, &mut stdout).await;
        stdout.finish();
        r?;
        return Ok(());
    };
    let tmp = temp_beside(&path);
    let io = |e: std::io::Error| Failure(1, format!("{}: {e}", path.display()));
    // create_new: never truncate someone else's file, even one with our temp name.
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .await
        .map_err(io)?;
    let mut file = Counted::new(file, bar);
    let result = fetch(client, (key, column), range, &mut file).await;
    file.finish();
    drop(file);
    let renamed = match result {
        Ok(_) => std::fs::rename(&tmp, &path).map_err(io),
        Err(e) => Err(e.into()),
    };
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

/// Column 0 (a plain value or a chunked object) or another column, streamed into `out`.
async fn fetch<W: tokio::io::AsyncWrite + Unpin>(
    client: &Client,
    (key, column): (Target, u16),
    range: (u64, Option<u64>),
    out: &mut W,
) -> Result<u64, ClientError> {
    match column {
        0 => client.get_object_to(key, range, out).await,
        c => client.get_column_to(key, c, range, out).await,
    }
}

/// A temp file name in the same directory as `path`, unique to this process and call.
fn temp_beside(path: &std::path::Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    path.with_file_name(format!(
        ".{name}.ringblob-part-{}-{nanos}",
        std::process::id()
    ))
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// The meta of a value; of a chunked object, its manifest's meta then the object's size,
/// chunks and checksum (`object`).
fn print_lookup(
    name: &str,
    key: &Key,
    m: &ringblob_protocol::wire::ValueMeta,
    (object, attrs): (Option<&ringblob_protocol::client::object::Manifest>, &Attrs),
    json: bool,
) {
    if json {
        let mut v = serde_json::json!({
            "name": name, "key": key.to_hex(), "column": m.column, "size": m.size,
            "stored_size": m.stored_size,
            "timestamp_ns": m.timestamp_ns, "checksum": format!("{:08x}", m.checksum),
            "blob": m.blob, "offset": m.offset,
        });
        if !attrs.is_empty() {
            v["attrs"] = find::attrs_json(attrs);
        }
        if let Some(o) = object {
            v["object"] = serde_json::json!({
                "size": o.size, "chunks": o.chunk_crcs.len(), "chunk_size": o.chunk_size,
                "checksum": format!("{:08x}", o.crc32),
            });
        }
        println!("{v}");
        return;
    }
    if let Some(o) = object {
        println!(
            "object       {} bytes in {} chunks of {} bytes",
            o.size,
            o.chunk_crcs.len(),
            o.chunk_size
        );
        println!("object crc   crc32 {:08x}", o.crc32);
    }
    println!("name         {name}");
    println!("key          {}", key.to_hex());
    println!("column       {}", column_text(m.column));
    println!("size         {}", m.size);
    println!("stored size  {}", m.stored_size);
    println!("timestamp    {} ns since the epoch", m.timestamp_ns);
    println!("checksum     crc32 {:08x}", m.checksum);
    if m.blob == 0 {
        // Blob ids start at 1: 0 means the backend keeps no blob files (fs, mem).
        println!("location     not in a blob file (fs or mem backend)");
    } else {
        println!("location     blob {} offset {}", m.blob, m.offset);
    }
    for (k, v) in attrs.iter() {
        println!("attribute    {k}={v}");
    }
}

/// "2 (thumb)" for a named column, the number alone for others.
fn column_text(column: u16) -> String {
    let label = column_label(column);
    if label == column.to_string() {
        label
    } else {
        format!("{column} ({label})")
    }
}

/// Groups a replicated write could not reach, on stderr (the write still met its quorum).
fn report_failed_groups(o: &ringblob_protocol::client::GroupOutcome) {
    for (g, e) in &o.failed {
        eprintln!("ringblob: group {g} failed: {e}");
    }
}

/// A replicated read (newest replica, fall-over, read repair), then the range asked for.
async fn get_replicated(
    client: &Client,
    (key, column): (Target, u16),
    groups: &[u32],
    (offset, size): (u64, Option<u64>),
    output: Option<PathBuf>,
) -> Result<(), Failure> {
    use tokio::io::AsyncWriteExt;
    let read = client.get_groups(key, column, groups).await?;
    for g in &read.repaired {
        eprintln!("ringblob: repaired group {g}");
    }
    let v = &read.value;
    let from = (offset as usize).min(v.len());
    let to = size.map_or(v.len(), |s| from.saturating_add(s as usize).min(v.len()));
    let bytes = v.slice(from..to);
    match output {
        Some(path) => std::fs::write(&path, &bytes)
            .map_err(|e| Failure(1, format!("{}: {e}", path.display()))),
        None => {
            let mut out = tokio::io::stdout();
            out.write_all(&bytes).await?;
            out.flush().await.map_err(Failure::from)
        }
    }
}

/// The meta of the first group (in preference order) that has the value.
async fn lookup_replicated(
    client: &Client,
    key: Target,
    column: u16,
    groups: &[u32],
) -> Result<ringblob_protocol::wire::ValueMeta, Failure> {
    let mut last = None;
    for &g in groups {
        match client.in_group(g).lookup_column(key.clone(), column).await {
            Ok(m) => return Ok(m),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(Failure(1, "no group given".into()), Failure::from))
}

/// Output cut short by its reader (`ringblob routes --json | head`) ends the process as it
/// ends any Unix filter (SIGPIPE), instead of a panic in `println!`. Sockets are unaffected:
/// Rust writes them with `MSG_NOSIGNAL`, so a peer that hangs up is still an error.
#[allow(unsafe_code)]
fn quiet_on_closed_pipe() {
    // SAFETY: called first in `main`, before any other thread exists, so nothing races the
    // change of disposition; SIG_DFL installs no handler code, and Rust's runtime only set
    // SIGPIPE to SIG_IGN at start. Tested by `cli::output::a_closed_pipe_ends_the_cli_quietly`.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    quiet_on_closed_pipe();
    ringblob_tools::alloc_tuning::fix_for_client();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ringblob: {e}");
            std::process::exit(1);
        }
    };
    if let Err(Failure(code, msg)) = rt.block_on(run(cli)) {
        eprintln!("ringblob: {msg}");
        std::process::exit(code);
    }
}
