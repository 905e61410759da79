//! TLS to registries, with rustls.
//!
//! Trusted roots are the system's (`rustls-native-certs`: /etc/ssl/certs,
//! or `SSL_CERT_FILE`/`SSL_CERT_DIR`) plus the registry's own CA files,
//! found as podman and docker find them: every `*.crt` in `--cert-dir`, or
//! else in `certs.d/HOST[:PORT]/` under /etc/containers, /etc/docker and
//! (for a non-root caller) `$XDG_CONFIG_HOME/containers` (see
//! containers-certs.d(5)). `--insecure` skips verification.

use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};

use super::ImageError;

/// A TLS connection to a registry.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn tls_err(msg: impl Into<String>) -> ImageError {
    ImageError::Format {
        what: "TLS".into(),
        msg: msg.into(),
    }
}

/// The directories whose `*.crt` files are the registry's CAs.
fn cert_dirs(authority: &str, cert_dir: Option<&Path>) -> Vec<PathBuf> {
    if let Some(d) = cert_dir {
        return vec![d.to_path_buf()];
    }
    let mut bases = vec![
        PathBuf::from("/etc/containers/certs.d"),
        PathBuf::from("/etc/docker/certs.d"),
    ];
    if !nix::unistd::geteuid().is_root() {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")));
        if let Some(c) = config {
            bases.insert(0, c.join("containers/certs.d"));
        }
    }
    bases.into_iter().map(|b| b.join(authority)).collect()
}

/// A client configuration that verifies the registry `authority` against
/// the system's roots and its own CA files.
pub fn verified(authority: &str, cert_dir: Option<&Path>) -> Result<Arc<ClientConfig>, ImageError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        log::debug!("system CA certificates: {e}");
    }
    roots.add_parsable_certificates(native.certs);
    for dir in cert_dirs(authority, cert_dir) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            if cert_dir.is_some() {
                return Err(tls_err(format!("cannot read --cert-dir {}", dir.display())));
            }
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if path.extension().is_none_or(|x| x != "crt") {
                continue;
            }
            let certs = CertificateDer::pem_file_iter(&path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| tls_err(format!("{}: {e}", path.display())))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            log::debug!("{}: {added} CA certificates", path.display());
        }
    }
    if roots.is_empty() {
        return Err(tls_err(
            "no CA certificates: install ca-certificates or give --cert-dir",
        ));
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client configuration that accepts any certificate (`--insecure`).
pub fn unverified() -> Result<Arc<ClientConfig>, ImageError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Whether a failed handshake was about the certificate (as opposed to a
/// server that does not speak TLS at all).
pub fn is_certificate_error(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| {
            matches!(
                r,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        })
}

/// Handshake over `tcp` with the server `host` (a name or an address).
pub fn connect(config: Arc<ClientConfig>, host: &str, mut tcp: TcpStream) -> io::Result<TlsStream> {
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .to_owned();
    let mut conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(StreamOwned::new(conn, tcp))
}

/// The verifier of `--insecure`: every certificate passes; signatures are
/// still checked so the handshake itself stays sound.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
