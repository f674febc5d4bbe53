//! The security options every client tool takes: `--key ID:SECRET` (or `RINGBLOB_KEY`),
//! `--tls`, `--tls-ca FILE`, and a client certificate for nodes that require one.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use ringblob_protocol::auth::AccessKey;
use ringblob_protocol::client::{ClientSecurity, Credentials};
use ringblob_protocol::tls::TlsClient;

/// How a client proves who it is and protects the connection.
#[derive(Args, Debug, Clone, Default)]
pub struct SecurityArgs {
    /// Access key, ID:SECRET (as `ringblob-node keys add` printed it); proved, never sent
    #[arg(long, env = "RINGBLOB_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
    /// Connect with TLS (roots: --tls-ca, else SSL_CERT_FILE or the system bundle)
    #[arg(long, env = "RINGBLOB_TLS", global = true)]
    pub tls: bool,
    /// CA certificate (PEM) the node's certificate must chain to; implies --tls
    #[arg(long, env = "RINGBLOB_TLS_CA", value_name = "FILE", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), for a node that requires one (mutual TLS); implies --tls
    #[arg(long, value_name = "FILE", requires = "tls_key", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert", global = true)]
    pub tls_key: Option<PathBuf>,
    /// The name the node's certificate must carry [default: the host of the address];
    /// implies --tls
    #[arg(long, value_name = "NAME", global = true)]
    pub tls_server_name: Option<String>,
}

impl SecurityArgs {
    /// The client settings these options describe.
    pub fn security(&self) -> anyhow::Result<ClientSecurity> {
        let key = self
            .key
            .as_deref()
            .map(AccessKey::parse)
            .transpose()
            .context("--key (or RINGBLOB_KEY)")?;
        let wants_tls = self.tls
            || self.tls_ca.is_some()
            || self.tls_cert.is_some()
            || self.tls_server_name.is_some();
        let tls = if wants_tls {
            let identity = self.tls_cert.as_deref().zip(self.tls_key.as_deref());
            let tls = TlsClient::load(
                self.tls_ca.as_deref(),
                identity,
                self.tls_server_name.clone(),
            )
            .context("TLS settings")?;
            Some(tls)
        } else {
            None
        };
        Ok(ClientSecurity {
            credentials: Credentials::new(key),
            tls,
        })
    }
}
