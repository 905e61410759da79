//! HTTP/1.1 for registries, on ureq: any method, bodies streamed with a
//! `Content-Length`, kept-alive connections (a push makes many requests),
//! `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY` from the
//! environment, TLS with rustls on ring ([`super::tls`] finds the CAs).
//! Redirects are followed by [`super::registry::Client`], which decides
//! where credentials go; this module applies the plain-HTTP policy to every
//! URL, redirect targets included.
//!
//! The policy is docker's for insecure registries, made stricter for
//! loopback: a registry is reached over HTTPS. A loopback registry
//! (`127.0.0.0/8`, `localhost`, `[::1]`) that does not speak TLS is reached
//! over plain HTTP instead; one whose certificate fails verification is
//! an error. `--insecure` skips verification and allows plain HTTP to any
//! host.
//!
//! Why ureq and not ferry's former GET-only client. Measured on this
//! 2-core machine with `cargo build --release` (LTO, stripped): 6,337,048
//! bytes before; 6,670,104 with only the client moved to ureq (+333 KB,
//! +5.3%); 6,923,152 with push, save, load and the `tar` crate too. The
//! new crates (ureq 18.9 s, ureq-proto 9.2 s, http 5.4 s, bytes 3.3 s,
//! httparse 2.1 s, base64 2.0 s, utf8-zero, percent-encoding: ~42 s of CPU,
//! built once, beside the rest) bring no C code and no second TLS stack:
//! rustls and ring are the ones ferry had. In exchange ferry drops ~200
//! lines of HTTP framing (chunked decoding, header parsing, TLS stream
//! glue) it had to keep correct against hostile servers, and gains what
//! push needs and a hand-written client did not have: request bodies,
//! kept-alive connections across the dozens of requests of a chunked
//! upload, and proxies with `NO_PROXY`.

use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::{Agent, SendBody};

use super::{ImageError, tls};

const TIMEOUT: Duration = Duration::from_secs(60);

pub fn is_loopback(authority: &str) -> bool {
    host(authority) == "localhost"
        || host(authority)
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The host of `HOST[:PORT]` or `[V6]:PORT`, without brackets.
fn host(authority: &str) -> &str {
    match authority.strip_prefix('[') {
        Some(r) => r.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
}

fn http_err(msg: impl Into<String>) -> ImageError {
    ImageError::Select(msg.into())
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    pub authority: String,
    /// Path and query.
    pub path: String,
}

impl Url {
    /// An absolute `http://` or `https://` URL.
    pub fn parse(u: &str) -> Result<Url, ImageError> {
        let (https, rest) = if let Some(r) = u.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = u.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(http_err(format!("{u}: not an http:// or https:// URL")));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        Ok(Url {
            https,
            authority: authority.to_string(),
            path: path.to_string(),
        })
    }

    /// `loc` (a `Location` header) relative to this URL.
    pub fn join(&self, loc: &str) -> Result<Url, ImageError> {
        if loc.starts_with('/') {
            return Ok(Url {
                path: loc.to_string(),
                ..self.clone()
            });
        }
        Url::parse(loc)
    }

    fn to_uri(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority, self.path)
    }
}

pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Box<dyn Read + Send>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }
}

/// What a request sends.
pub enum Body<'a> {
    Empty,
    /// Small and in memory: the request can be sent again (after a 401).
    Bytes(&'a [u8]),
    /// Streamed, with its exact length: sent once.
    Stream(Box<dyn Read + Send + 'a>, u64),
}

impl Body<'_> {
    /// Whether the request can be sent again.
    pub fn replayable(&self) -> bool {
        !matches!(self, Body::Stream(..))
    }
}

/// A request: method, extra headers and body.
pub struct Request<'a> {
    pub method: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
}

impl<'a> Request<'a> {
    pub fn new(method: &'a str) -> Request<'a> {
        Request {
            method,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Request<'a> {
        let value = value.into();
        if !value.is_empty() {
            self.headers.push((name, value));
        }
        self
    }

    pub fn body(mut self, body: Body<'a>) -> Request<'a> {
        self.body = body;
        self
    }

    /// A copy to send again, unless the body is a stream.
    pub fn replay(&self) -> Option<Request<'a>> {
        let body = match &self.body {
            Body::Empty => Body::Empty,
            Body::Bytes(b) => Body::Bytes(b),
            Body::Stream(..) => return None,
        };
        Some(Request {
            method: self.method,
            headers: self.headers.clone(),
            body,
        })
    }
}

/// How to reach one registry (and the hosts it redirects to).
pub struct Transport {
    /// The registry's `HOST[:PORT]`.
    registry: String,
    insecure: bool,
    cert_dir: Option<PathBuf>,
    /// Set once the registry turned out not to speak TLS.
    plain: AtomicBool,
    agent: OnceLock<Agent>,
}

/// Whether a ureq error is a certificate that failed verification.
fn is_certificate_error(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Io(io) => tls::is_certificate_error(io),
        ureq::Error::Rustls(r) => matches!(
            r,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        ),
        _ => false,
    }
}

/// Whether a ureq error came from the TLS layer (a handshake with a server
/// that does not speak TLS, for one).
fn is_tls_error(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>()),
        ureq::Error::Rustls(_) | ureq::Error::Tls(_) => true,
        _ => false,
    }
}

impl Transport {
    pub fn new(registry: &str, insecure: bool, cert_dir: Option<PathBuf>) -> Transport {
        Transport {
            registry: registry.to_string(),
            insecure,
            cert_dir,
            plain: AtomicBool::new(false),
            agent: OnceLock::new(),
        }
    }

    /// `path` on the registry, over HTTPS unless it has no TLS.
    pub fn registry_url(&self, path: &str) -> Url {
        Url {
            https: !self.plain.load(Ordering::Relaxed),
            authority: self.registry.clone(),
            path: path.to_string(),
        }
    }

    /// The agent (connection pool) of this registry, made on first use.
    fn agent(&self) -> Result<&Agent, ImageError> {
        if let Some(a) = self.agent.get() {
            return Ok(a);
        }
        let roots = if self.insecure {
            Vec::new()
        } else {
            tls::roots(&self.registry, self.cert_dir.as_deref())?
        };
        let certs: Vec<Certificate<'static>> = roots
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(certs)))
            .disable_verification(self.insecure)
            .unversioned_rustls_crypto_provider(tls::provider())
            .build();
        let config = Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(format!("ferry/{}", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(TIMEOUT))
            .timeout_per_read(Some(TIMEOUT))
            .timeout_per_write(Some(TIMEOUT))
            .input_buffer_size(256 * 1024)
            .output_buffer_size(256 * 1024)
            .build();
        Ok(self.agent.get_or_init(|| config.new_agent()))
    }

    /// Refuse plain HTTP to a host other than loopback without `--insecure`.
    fn check_plain(&self, url: &Url) -> Result<(), ImageError> {
        if url.https || self.insecure || is_loopback(&url.authority) {
            return Ok(());
        }
        Err(http_err(format!(
            "{}: plain HTTP to a host other than loopback needs --insecure",
            url.authority
        )))
    }

    /// Send `req` to `url`; `url` may change from HTTPS to HTTP, for a
    /// loopback (or `--insecure`) registry that turns out not to speak TLS.
    pub fn send(&self, url: &mut Url, req: Request) -> Result<Response, ImageError> {
        self.check_plain(url)?;
        let may_be_plain = (self.insecure || is_loopback(&url.authority))
            && url.authority == self.registry
            && url.https
            && req.body.replayable();
        let agent = self.agent()?;
        if !may_be_plain {
            return send_fresh(agent, url, req).map_err(|e| self.error(url, e));
        }
        let retry = req.replay().expect("replayable: checked above");
        match send_fresh(agent, url, req) {
            Ok(r) => Ok(r),
            Err(e) if is_certificate_error(&e) => Err(self.error(url, e)),
            Err(e) => {
                log::info!("{}: no TLS ({e}): plain HTTP", url.authority);
                url.https = false;
                let r = send_fresh(agent, url, retry).map_err(|e| self.error(url, e))?;
                self.plain.store(true, Ordering::Relaxed);
                Ok(r)
            }
        }
    }
}

/// Whether an error is a kept-alive connection the server had closed
/// (it may close an idle one at any time, or after any response).
fn is_stale_connection(e: &ureq::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e, ureq::Error::Io(io)
        if matches!(io.kind(), ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof))
}

/// One request, sent again once (on a new connection) if it met a stale
/// kept-alive connection and its body allows.
fn send_fresh(agent: &Agent, url: &Url, req: Request) -> Result<Response, ureq::Error> {
    let again = req.replay();
    match send_once(agent, url, req) {
        Err(e) if is_stale_connection(&e) && again.is_some() => {
            log::debug!("{}: {e}: sending again", url.authority);
            send_once(agent, url, again.expect("checked"))
        }
        r => r,
    }
}

/// One request, no retry.
fn send_once(agent: &Agent, url: &Url, req: Request) -> Result<Response, ureq::Error> {
    let mut b = ureq::http::Request::builder()
        .method(req.method)
        .uri(url.to_uri());
    for (k, v) in &req.headers {
        b = b.header(*k, v.as_str());
    }
    let resp = match req.body {
        Body::Empty => {
            let b = if matches!(req.method, "POST" | "PUT" | "PATCH") {
                b.header("content-length", "0")
            } else {
                b
            };
            agent.run(b.body(())?)?
        }
        Body::Bytes(data) => agent.run(
            b.header("content-length", data.len().to_string())
                .body(data)?,
        )?,
        Body::Stream(mut r, n) => agent.run(
            b.header("content-length", n.to_string())
                .body(SendBody::from_reader(&mut r))?,
        )?,
    };
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let status = resp.status().as_u16();
    let body = resp.into_body().into_reader();
    Ok(Response {
        status,
        headers,
        body: Box::new(body),
    })
}

impl Transport {
    /// One sentence for a failed request.
    fn error(&self, url: &Url, e: ureq::Error) -> ImageError {
        if is_certificate_error(&e) {
            return http_err(format!(
                "TLS to {}: {e} (trust its CA with --cert-dir, or skip the check with --insecure)",
                url.authority
            ));
        }
        if url.https && is_tls_error(&e) {
            return http_err(format!("TLS to {}: {e}", url.authority));
        }
        http_err(format!("{}: {e}", url.authority))
    }

    /// One GET (see [`Self::send`]).
    pub fn get(
        &self,
        url: &mut Url,
        accept: &str,
        auth: Option<&str>,
    ) -> Result<Response, ImageError> {
        let req = Request::new("GET")
            .header("accept", accept)
            .header("authorization", auth.unwrap_or(""));
        self.send(url, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_loopback() {
        assert!(
            is_loopback("127.0.0.1:5000") && is_loopback("localhost") && is_loopback("[::1]:80")
        );
        assert!(!is_loopback("10.0.0.1:5000") && !is_loopback("registry.example.com"));
        let u = Url::parse("https://r.example/v2/?a=b").unwrap();
        assert_eq!(
            (u.https, u.authority.as_str(), u.path.as_str()),
            (true, "r.example", "/v2/?a=b")
        );
        assert_eq!(u.join("/x").unwrap().authority, "r.example");
        assert!(!u.join("http://h:1/y").unwrap().https);
        assert!(Url::parse("ftp://x/").is_err());
        assert_eq!(host("[::1]:443"), "::1");
        assert_eq!(host("h.example:5000"), "h.example");
    }

    #[test]
    fn plain_http_elsewhere_needs_insecure() {
        let t = Transport::new("registry.example.com", false, None);
        let mut u = Url::parse("http://registry.example.com/v2/").unwrap();
        let err = t.get(&mut u, "", None).err().unwrap().to_string();
        assert!(err.contains("needs --insecure"), "{err}");
    }
}
