//! TLS on every link (rustls with the `ring` provider; no OpenSSL): the node's listener, the
//! client, and node-to-node connections (mutual TLS when a client CA is configured).
//! `docs/SECURITY.md` says how to set it up.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tokio::net::TcpStream;

mod movable;
mod stream;
pub use movable::MovableTcp;
pub use stream::Stream;

/// Where roots come from for `--tls` without `--tls-ca`: `SSL_CERT_FILE`, else the
/// distribution's bundle.
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn file_error(path: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.into(),
        why: why.to_string(),
    }
}

/// The `ring` provider: pure Rust and assembly, so builds need no C toolchain or cmake
/// (aws-lc-rs does). rustls deprecates it only because it lacks post-quantum key exchange;
/// the classical suites it offers are the ones TLS 1.3 peers negotiate today.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for c in certs(path)? {
        store.add(c).map_err(|e| file_error(path, e))?;
    }
    Ok(store)
}

fn config_error(e: impl std::fmt::Display) -> TlsError {
    TlsError::Config(e.to_string())
}

/// A listener's TLS: its certificate and key, and optionally the CA its clients'
/// certificates must chain to (then every client must present one: mutual TLS).
#[derive(Clone)]
pub struct TlsServer {
    acceptor: tokio_rustls::TlsAcceptor,
    mutual: bool,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsServer(mutual: {})", self.mutual)
    }
}

impl TlsServer {
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<TlsServer, TlsError> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?;
        let builder = match client_ca {
            Some(ca) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                        .build()
                        .map_err(|e| file_error(ca, e))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(certs(cert)?, private_key(key)?)
            .map_err(|e| file_error(key, e))?;
        Ok(TlsServer {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            mutual: client_ca.is_some(),
        })
    }

    /// Whether clients must present a certificate from the client CA.
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }

    /// Completes the server side of a TLS handshake.
    pub async fn accept(
        &self,
        tcp: TcpStream,
    ) -> io::Result<tokio_rustls::server::TlsStream<MovableTcp>> {
        self.acceptor.accept(MovableTcp::new(tcp)).await
    }
}

/// A client's TLS: the roots it trusts, optionally its own certificate (for a node that
/// requires one), and the name it expects the node's certificate to carry.
#[derive(Clone)]
pub struct TlsClient {
    connector: tokio_rustls::TlsConnector,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsClient(server name: {:?})", self.server_name)
    }
}

impl TlsClient {
    /// `ca`: the CA file (`None`: the system's roots). `identity`: certificate and key
    /// files to present. `server_name`: the name to verify (`None`: the host of the
    /// address connected to, a DNS name or an IP address).
    pub fn load(
        ca: Option<&Path>,
        identity: Option<(&Path, &Path)>,
        server_name: Option<String>,
    ) -> Result<TlsClient, TlsError> {
        let roots = match ca {
            Some(ca) => roots(ca)?,
            None => {
                let bundle = std::env::var_os("SSL_CERT_FILE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(SYSTEM_BUNDLE));
                roots(&bundle)?
            }
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(certs(cert)?, private_key(key)?)
                .map_err(|e| file_error(key, e))?,
            None => builder.with_no_client_auth(),
        };
        Ok(TlsClient {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// Completes the client side of a TLS handshake with the node at `addr` (host:port).
    pub async fn connect(
        &self,
        tcp: TcpStream,
        addr: &str,
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => host_of(addr).to_string(),
        };
        let name = ServerName::try_from(name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.connector.connect(name, tcp).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "TLS handshake failed: {e} (is the node serving TLS, and does its \
                     certificate chain to the CA given?)"
                ),
            )
        })
    }
}

/// The host part of `host:port` (brackets of an IPv6 address removed).
pub fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Whether the first bytes a TLS listener received are a plaintext ringblob frame (its
/// magic) rather than a TLS ClientHello.
pub fn looks_like_plaintext_frame(first: &[u8]) -> bool {
    first.first() == Some(&crate::wire::MAGIC[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_cut_from_addresses() {
        assert_eq!(host_of("127.0.0.1:1025"), "127.0.0.1");
        assert_eq!(host_of("[::1]:1025"), "::1");
        assert_eq!(host_of("node-a.example:7"), "node-a.example");
        assert!(looks_like_plaintext_frame(b"RBWP"));
        assert!(!looks_like_plaintext_frame(&[0x16, 3, 1]));
    }
}
