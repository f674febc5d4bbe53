//! `ringblob`: the command-line client.
//!
//! Exit status: 0 on success, 2 when the key does not exist, 1 on any other error (with a
//! one-line message on stderr).

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use ringblob_engine::Key;
use ringblob_protocol::client::{Client, ClientConfig, ClientError, PutOptions};
use ringblob_protocol::wire::Durability;

/// Talk to a ringblob node.
#[derive(Parser, Debug)]
#[command(name = "ringblob", version, about)]
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
    },
    /// Remove NAME
    Rm {
        name: String,
        #[arg(long)]
        durability: Option<String>,
    },
    /// Size, timestamp, checksum and location of NAME
    Lookup {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The node's statistics (JSON)
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

async fn run(cli: Cli) -> Result<(), Failure> {
    let config = ClientConfig {
        timeout: Duration::from_secs(cli.timeout),
        ..ClientConfig::default()
    };
    // A put's input is read (and size-checked) before connecting: fail fast, and never hold
    // a connection open while stdin trickles in.
    let mut input = match &cli.command {
        Cmd::Put { file, .. } => Some(read_input(file.as_ref())?),
        _ => None,
    };
    let client = Client::connect(&cli.remote, config).await?;
    let key = |name: &str| Key::from_name(cli.namespace.as_bytes(), name.as_bytes()).0;
    match cli.command {
        Cmd::Put {
            name,
            file: _,
            compress,
            durability: d,
            append,
            offset,
        } => {
            let opts = PutOptions {
                compress,
                durability: durability(d.as_deref())?,
            };
            let data = Bytes::from(input.take().unwrap_or_default());
            let size = match (append, offset) {
                (true, _) => client.append(key(&name), data, opts).await?,
                (false, Some(at)) => client.write_at(key(&name), at, data, opts).await?,
                (false, None) => client.put(key(&name), data, opts).await?,
            };
            println!("stored {name}: {size} bytes");
        }
        Cmd::Get {
            name,
            offset,
            size,
            output,
        } => get(&client, key(&name), offset, size, output).await?,
        Cmd::Rm {
            name,
            durability: d,
        } => {
            client.remove(key(&name), durability(d.as_deref())?).await?;
            println!("removed {name}");
        }
        Cmd::Lookup { name, json } => print_lookup(
            &name,
            &Key(key(&name)),
            &client.lookup(key(&name)).await?,
            json,
        ),
        Cmd::Defrag { wait } => println!("{}", pretty(&client.defrag(wait).await?)),
        Cmd::Stat => println!("{}", pretty(&client.stat().await?)),
        Cmd::Routes { json } => print_routes(&client.routes().await?, json),
    }
    Ok(())
}

/// Streams the value to FILE (written to a temp file, renamed when complete) or stdout.
async fn get(
    client: &Client,
    key: [u8; 32],
    offset: u64,
    size: Option<u64>,
    output: Option<PathBuf>,
) -> Result<(), Failure> {
    let Some(path) = output else {
        let mut stdout = tokio::io::stdout();
        client.get_to(key, offset, size, &mut stdout).await?;
        return Ok(());
    };
    let tmp = temp_beside(&path);
    let io = |e: std::io::Error| Failure(1, format!("{}: {e}", path.display()));
    // create_new: never truncate someone else's file, even one with our temp name.
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .await
        .map_err(io)?;
    let result = client.get_to(key, offset, size, &mut file).await;
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

fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| json.to_string())
}

fn print_lookup(name: &str, key: &Key, m: &ringblob_protocol::wire::ValueMeta, json: bool) {
    if json {
        let v = serde_json::json!({
            "name": name, "key": key.to_hex(), "size": m.size, "stored_size": m.stored_size,
            "timestamp_ns": m.timestamp_ns, "checksum": format!("{:08x}", m.checksum),
            "blob": m.blob, "offset": m.offset,
        });
        println!("{v}");
        return;
    }
    println!("name         {name}");
    println!("key          {}", key.to_hex());
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
}

fn print_routes(json: &str, as_json: bool) {
    let parsed: Result<Vec<serde_json::Value>, _> = serde_json::from_str(json);
    let (Ok(routes), false) = (parsed, as_json) else {
        println!("{}", pretty(json));
        return;
    };
    println!(
        "{:<24} {:<22} {:>5} {:>7}  ranges",
        "node", "address", "group", "share"
    );
    for r in routes {
        let ranges: Vec<String> = r["ranges"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| format!("{}..{}", short(&x["from"]), short(&x["to"])))
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "{:<24} {:<22} {:>5} {:>6.1}%  {}",
            r["node"].as_str().unwrap_or("?"),
            r["addr"].as_str().unwrap_or("?"),
            r["group"].as_u64().unwrap_or(0),
            r["share"].as_f64().unwrap_or(0.0) * 100.0,
            ranges.join(", ")
        );
    }
}

fn short(v: &serde_json::Value) -> String {
    v.as_str()
        .map(|s| s.chars().take(8).collect())
        .unwrap_or_default()
}

fn main() {
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
