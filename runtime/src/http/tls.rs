//! TLS client settings for `https://` URLs: rustls with the ring provider, the system's
//! trust store plus any `--ca-cert` PEM.
//!
//! The system store (`rustls-native-certs`: `/etc/ssl/certs`, `SSL_CERT_FILE`,
//! `SSL_CERT_DIR`) is what AIPerf's aiohttp trusts, and it carries the private CAs that
//! in-cluster inference servers are usually signed by; a compiled-in Mozilla list would
//! not. A `FROM scratch` image has no store: mount one, set `SSL_CERT_FILE`, or pass
//! `--ca-cert`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

/// Why a TLS client configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read CA certificates from {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("{path} holds no PEM certificate")]
    CaFileEmpty { path: PathBuf },
    #[error(
        "no trusted CA certificates: the system store is empty or unreadable ({0}); pass --ca-cert"
    )]
    NoRoots(String),
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS setup failed: {0}")]
    Rustls(String),
}

/// A client configuration trusting the system store and `ca_cert` (a PEM file of one or
/// more certificates). Built once per distinct `ca_cert` and shared: reading the system
/// store takes milliseconds, and every worker asks for the same configuration.
pub fn client_config(ca_cert: Option<&Path>) -> Result<Arc<ClientConfig>, TlsSetupError> {
    type Cache = Mutex<Vec<(Option<PathBuf>, Arc<ClientConfig>)>>;
    static CACHE: Cache = Mutex::new(Vec::new());
    let key = ca_cert.map(Path::to_path_buf);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, config)) = cache.iter().find(|(k, _)| *k == key) {
        return Ok(config.clone());
    }
    let config = Arc::new(build_client_config(ca_cert)?);
    cache.push((key, config.clone()));
    Ok(config)
}

fn build_client_config(ca_cert: Option<&Path>) -> Result<ClientConfig, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 && ca_cert.is_none() {
        let why = native
            .errors
            .first()
            .map_or_else(|| "no certificates found".to_owned(), ToString::to_string);
        return Err(TlsSetupError::NoRoots(why));
    }
    if !native.errors.is_empty() {
        tracing::debug!(
            errors = native.errors.len(),
            "some system CA certificates could not be loaded"
        );
    }
    let mut pinned = Vec::new();
    if let Some(path) = ca_cert {
        let file_error = |reason: String| TlsSetupError::CaFile {
            path: path.to_path_buf(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| file_error(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| file_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(TlsSetupError::CaFileEmpty {
                path: path.to_path_buf(),
            });
        }
        for cert in &certs {
            roots.add(cert.clone()).map_err(|e| match e {
                // rustls words every bad certificate as the peer's; here it is the CA's.
                rustls::Error::InvalidCertificate(why) => {
                    file_error(format!("not a valid CA certificate ({why:?})"))
                }
                other => file_error(format!("not a valid CA certificate ({other})")),
            })?;
        }
        pinned = certs;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Rustls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier { webpki, pinned }))
        .with_no_client_auth();
    Ok(config)
}

/// rustls' own checks, and one thing they refuse that every other TLS client accepts: a
/// server presenting, as its own certificate, one of the `--ca-cert` certificates
/// itself. That is what `openssl req -x509` makes (a self-signed certificate marked as a
/// CA), the usual way to put TLS in front of a test server; curl, Python and so AIPerf
/// trust it when told to. It must still name the server.
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// The `--ca-cert` certificates, as a server may present them.
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(ref other)))
                if other.0.downcast_ref::<webpki::Error>()
                    == Some(&webpki::Error::CaUsedAsEndEntity)
                    && self
                        .pinned
                        .iter()
                        .any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                let cert = ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&cert, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The name a certificate must match: a DNS name or an IP address (`127.0.0.1`, `::1`;
/// the URL's brackets around an IPv6 address are removed).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsSetupError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(bare.to_owned()).map_err(|_| TlsSetupError::ServerName(host.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/tls")
            .join(name)
    }

    #[test]
    fn server_names() {
        assert_eq!(
            server_name("localhost").unwrap(),
            ServerName::try_from("localhost").unwrap()
        );
        assert!(matches!(
            server_name("127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert_eq!(
            server_name("bad name").unwrap_err(),
            TlsSetupError::ServerName("bad name".into())
        );
    }

    #[test]
    fn ca_cert_files() {
        let config = client_config(Some(&fixture("ca.pem"))).unwrap();
        // The same file gives the same shared configuration.
        assert!(Arc::ptr_eq(
            &config,
            &client_config(Some(&fixture("ca.pem"))).unwrap()
        ));
        let missing = fixture("missing.pem");
        assert!(matches!(
            client_config(Some(&missing)),
            Err(TlsSetupError::CaFile { path, .. }) if path == missing
        ));
        // A key file holds no certificate.
        let key = fixture("server.key");
        assert_eq!(
            client_config(Some(&key)).unwrap_err(),
            TlsSetupError::CaFileEmpty { path: key }
        );
        // A certificate block whose bytes are no certificate is named as the CA's.
        let dir = std::env::temp_dir().join(format!("aiperf-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert_eq!(
            client_config(Some(&bad)).unwrap_err().to_string(),
            format!(
                "cannot read CA certificates from {}: not a valid CA certificate (BadEncoding)",
                bad.display()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
