//! `ringblob-node keys add|list|remove`: the node's keys file (`docs/SECURITY.md`). A new key
//! is printed once as `ID:SECRET`; the file keeps only its verifier, written atomically
//! (temporary file, fsync, rename) with mode 0600.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use rand::RngCore;
use ringblob_protocol::auth::{
    valid_namespace, AccessKey, KeyEntry, KeysFile, Role, KEYS_FILE, SECRET_LEN,
};
use ringblob_protocol::wire::payload::auth::MAX_AUTH_NAMESPACES;

/// Manage the access keys a node accepts, and make cluster secrets (docs/SECURITY.md).
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a key; prints it once as ID:SECRET.
    Add {
        /// read, write or admin.
        #[arg(long)]
        role: Role,
        /// A namespace the key may touch; repeat for more [default: * (all)].
        #[arg(long = "namespace", value_name = "NAME")]
        namespaces: Vec<String>,
        #[command(flatten)]
        file: KeysFileArg,
    },
    /// List keys: id, role, namespaces (never secrets).
    List {
        #[command(flatten)]
        file: KeysFileArg,
    },
    /// Remove a key.
    Remove {
        id: String,
        #[command(flatten)]
        file: KeysFileArg,
    },
    /// Make a cluster secret (256 random bits as 64 hex digits): printed, or written to a
    /// new file (mode 0600) to give every node with --cluster-secret-file.
    ClusterSecret {
        /// Write it to this new file instead of printing it (an existing file is kept).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

/// Where the keys file is.
#[derive(Args, Debug)]
pub struct KeysFileArg {
    /// The node's data directory (the file is keys.json in it) [default: ./data]
    #[arg(long, conflicts_with = "keys_file")]
    data_dir: Option<PathBuf>,
    /// The keys file itself.
    #[arg(long)]
    keys_file: Option<PathBuf>,
}

impl KeysFileArg {
    fn path(&self) -> PathBuf {
        match (&self.keys_file, &self.data_dir) {
            (Some(f), _) => f.clone(),
            (None, Some(d)) => d.join(KEYS_FILE),
            (None, None) => Path::new("data").join(KEYS_FILE),
        }
    }
}

/// Runs a `keys` command, writing what it shows to `out`.
pub fn run(cmd: KeysCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Add {
            role,
            namespaces,
            file,
        } => add(&file.path(), role, namespaces, out),
        KeysCommand::List { file } => list(&file.path(), out),
        KeysCommand::ClusterSecret { file } => cluster_secret(file.as_deref(), out),
        KeysCommand::Remove { id, file } => {
            let path = file.path();
            let mut keys = load(&path)?;
            if !keys.remove(&id) {
                bail!("no key {id:?} in {}", path.display());
            }
            store(&path, &keys)?;
            writeln!(out, "removed {id}")?;
            Ok(())
        }
    }
}

fn add(
    path: &Path,
    role: Role,
    namespaces: Vec<String>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if role == Role::Node {
        bail!("the node role belongs to the cluster secret, not to access keys");
    }
    let namespaces = if namespaces.is_empty() {
        vec!["*".to_string()]
    } else {
        namespaces
    };
    if let Some(bad) = namespaces.iter().find(|n| !valid_namespace(n)) {
        bail!("namespace {bad:?}: a namespace is 1 to 255 bytes (or * for all)");
    }
    if namespaces.len() > MAX_AUTH_NAMESPACES {
        bail!("at most {MAX_AUTH_NAMESPACES} namespaces per key");
    }
    let mut keys = load(path)?;
    let mut id = [0u8; 8];
    let mut secret = [0u8; SECRET_LEN];
    rand::rngs::OsRng.fill_bytes(&mut id);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let key = AccessKey::generate(id, secret);
    keys.add(KeyEntry::new(&key, role, namespaces))?;
    store(path, &keys)?;
    writeln!(out, "{}", key.to_text())?;
    eprintln!(
        "for S3 clients of the HTTP gateway: access key id {}, secret access key {}",
        key.id,
        key.s3_secret()
    );
    Ok(())
}

fn cluster_secret(file: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut secret = [0u8; SECRET_LEN];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let line = format!("{}\n", ringblob_protocol::auth::hex(&secret));
    let Some(path) = file else {
        out.write_all(line.as_bytes())?;
        return Ok(());
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "creating {} (an existing file is never replaced)",
                path.display()
            )
        })?;
    f.write_all(line.as_bytes())?;
    f.sync_all()?;
    writeln!(out, "wrote a new cluster secret to {}", path.display())?;
    Ok(())
}

fn list(path: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    for k in load(path)?.keys {
        writeln!(out, "{}\t{}\t{}", k.id, k.role, k.namespaces.join(","))?;
    }
    Ok(())
}

/// The keys file at `path` (empty if there is none).
pub fn load(path: &Path) -> anyhow::Result<KeysFile> {
    match std::fs::read_to_string(path) {
        Ok(text) => KeysFile::parse(&text).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeysFile::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes the keys file: `path.tmp` (mode 0600) written and synced, renamed over `path`,
/// the directory synced.
pub fn store(path: &Path, keys: &KeysFile) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(keys.to_text().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming over {}", path.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn run_text(cmd: KeysCommand) -> anyhow::Result<String> {
        let mut out = Vec::new();
        run(cmd, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    fn file_arg(path: &Path) -> KeysFileArg {
        KeysFileArg {
            data_dir: None,
            keys_file: Some(path.to_path_buf()),
        }
    }

    #[test]
    fn add_list_remove_and_the_file_holds_no_secret() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("k").join(KEYS_FILE);
        let printed = run_text(KeysCommand::Add {
            role: Role::Write,
            namespaces: vec!["photos".into()],
            file: file_arg(&path),
        })?;
        let key = AccessKey::parse(&printed)?;
        let text = std::fs::read_to_string(&path)?;
        assert!(
            !text.contains(&printed.trim()[key.id.len() + 1..]),
            "secret stored"
        );
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let listed = run_text(KeysCommand::List {
            file: file_arg(&path),
        })?;
        assert_eq!(listed, format!("{}\twrite\tphotos\n", key.id));
        let entry = load(&path)?;
        assert_eq!(entry.keys[0].verifier, key.verifier());
        run_text(KeysCommand::Remove {
            id: key.id.clone(),
            file: file_arg(&path),
        })?;
        assert!(load(&path)?.keys.is_empty());
        let again = run_text(KeysCommand::Remove {
            id: key.id,
            file: file_arg(&path),
        });
        assert!(again.is_err(), "removing a missing key is an error");
        let secret_file = dir.path().join("cluster.secret");
        let said = run_text(KeysCommand::ClusterSecret {
            file: Some(secret_file.clone()),
        })?;
        assert!(said.starts_with("wrote"));
        let secrets = ringblob_protocol::node::access::load_secrets(&secret_file)?;
        assert_eq!(secrets.len(), 1);
        let mode = std::fs::metadata(&secret_file)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let twice = run_text(KeysCommand::ClusterSecret {
            file: Some(secret_file),
        });
        assert!(twice.is_err(), "an existing secret file is never replaced");
        Ok(())
    }

    #[test]
    fn a_damaged_keys_file_is_an_error_never_an_empty_list() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(KEYS_FILE);
        std::fs::write(&path, "{not json")?;
        assert!(load(&path).is_err());
        assert!(run_text(KeysCommand::Add {
            role: Role::Read,
            namespaces: vec![],
            file: file_arg(&path),
        })
        .is_err());
        assert_eq!(
            std::fs::read_to_string(&path)?,
            "{not json",
            "left as it was"
        );
        Ok(())
    }
}
