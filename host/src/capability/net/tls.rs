//! TLS for outbound requests: rustls, the platform's root certificates plus an optional extra
//! CA per connection. There is no way for a connector to turn verification off.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

fn invalid(path: &Path, reason: String) -> TlsError {
    TlsError::Invalid {
        path: path.to_path_buf(),
        reason,
    }
}

/// The platform's roots, read once per process.
fn platform_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!("skipping a platform root certificate: {e}");
        }
        found.certs
    })
}

/// Why a client TLS config could not be built: an extra CA file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read CA file {}: {reason}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// Not PEM, no certificate in it, or a certificate rustls refuses.
    #[error("CA file {}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the protocol versions (a build without TLS 1.2/1.3 support).
    #[error("TLS cannot be set up: {0}")]
    Setup(String),
}

/// A client config trusting the platform's roots and, if given, the CA certificates in
/// `extra_ca` (a PEM file).
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    let (_added, _ignored) = roots.add_parsable_certificates(platform_roots().iter().cloned());
    if let Some(path) = extra_ca {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| TlsError::Read {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(path, format!("not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(invalid(path, "holds no CERTIFICATE block".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| invalid(path, e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
