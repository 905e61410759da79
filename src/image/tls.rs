//! TLS to registries, with rustls.
//!
//! Trusted roots are the system's (`rustls-native-certs`: /etc/ssl/certs,
//! or `SSL_CERT_FILE`/`SSL_CERT_DIR`) plus the registry's own CA files,
//! found as podman and docker find them: every `*.crt` in `--cert-dir`, or
//! else in `certs.d/HOST[:PORT]/` under /etc/containers, /etc/docker and
//! (for a non-root caller) `$XDG_CONFIG_HOME/containers` (see
//! containers-certs.d(5)). `--insecure` skips verification. The
//! connections themselves are ureq's ([`super::http`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::ImageError;

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

/// The CA certificates trusted for the registry `authority`: the system's
/// and its own (`--cert-dir`, or `certs.d/HOST[:PORT]/`), in DER.
pub fn roots(
    authority: &str,
    cert_dir: Option<&Path>,
) -> Result<Vec<CertificateDer<'static>>, ImageError> {
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        log::debug!("system CA certificates: {e}");
    }
    let mut roots = native.certs;
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
            log::debug!("{}: {} CA certificates", path.display(), certs.len());
            roots.extend(certs);
        }
    }
    if roots.is_empty() {
        return Err(tls_err(
            "no CA certificates: install ca-certificates or give --cert-dir",
        ));
    }
    Ok(roots)
}

/// The crypto of every TLS connection: rustls on ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
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
