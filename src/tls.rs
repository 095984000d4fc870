//! TLS for the server and the bundled client (rustls through tonic): the server's
//! certificate and key (`--tls-cert`, `--tls-key`), and optionally the CA whose client
//! certificates it requires (`--tls-client-ca`, mutual TLS).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The server's TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates: when set, clients must present a certificate signed by one.
    pub client_ca: Option<PathBuf>,
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        bail!(
            "the {what} {} is not PEM (no -----BEGIN line)",
            path.display()
        );
    }
    Ok(bytes)
}

impl TlsFiles {
    /// The tonic server configuration; the files are read now, so a missing or unreadable
    /// one stops the server from starting with a message naming it.
    pub fn server_config(&self) -> anyhow::Result<ServerTlsConfig> {
        let cert = read(&self.cert, "TLS certificate (--tls-cert)")?;
        let key = read(&self.key, "TLS private key (--tls-key)")?;
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        if let Some(ca) = &self.client_ca {
            let ca = read(ca, "client CA certificate (--tls-client-ca)")?;
            config = config.client_ca_root(Certificate::from_pem(ca));
        }
        Ok(config)
    }
}

/// The client's TLS options (`aws-flightsql sql` / `health` over `grpc+tls://`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM CA certificates to trust instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// PEM client certificate and key, for servers that require one (mutual TLS).
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl ClientTls {
    /// The tonic client configuration for `domain`.
    pub fn config(&self, domain: &str) -> anyhow::Result<ClientTlsConfig> {
        let mut config = ClientTlsConfig::new().domain_name(domain);
        config = match &self.ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read(ca, "CA certificate")?)),
            None => config.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(
                read(cert, "client certificate")?,
                read(key, "client private key")?,
            ));
        }
        Ok(config)
    }
}
