//! A small HTTP/1.1 client for registries: one GET per connection, over
//! TLS ([`super::tls`]) or, where allowed, plain TCP.
//!
//! The policy is docker's for insecure registries, made stricter for
//! loopback: a registry is reached over HTTPS. A loopback registry
//! (`127.0.0.0/8`, `localhost`, `[::1]`) that does not speak TLS is reached
//! over plain HTTP instead; one whose certificate fails verification is
//! an error. `--insecure` skips verification and allows plain HTTP to any
//! host.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::ClientConfig;

use super::{ImageError, tls};

const MAX_HEAD: u64 = 64 * 1024;
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

/// A `Transfer-Encoding: chunked` body.
struct Chunked<R> {
    inner: R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            (&mut self.inner).take(1024).read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
        }
        Ok(n)
    }
}

/// A connection, plain or TLS.
trait Conn: Read + Write + Send {}
impl Conn for TcpStream {}
impl Conn for tls::TlsStream {}

/// How to reach one registry (and the hosts it redirects to).
pub struct Transport {
    /// The registry's `HOST[:PORT]`.
    registry: String,
    insecure: bool,
    cert_dir: Option<PathBuf>,
    /// Set once the registry turned out not to speak TLS.
    plain: AtomicBool,
    tls: OnceLock<Arc<ClientConfig>>,
}

impl Transport {
    pub fn new(registry: &str, insecure: bool, cert_dir: Option<PathBuf>) -> Transport {
        Transport {
            registry: registry.to_string(),
            insecure,
            cert_dir,
            plain: AtomicBool::new(false),
            tls: OnceLock::new(),
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

    fn tls_config(&self) -> Result<Arc<ClientConfig>, ImageError> {
        if let Some(c) = self.tls.get() {
            return Ok(c.clone());
        }
        let c = if self.insecure {
            tls::unverified()?
        } else {
            tls::verified(&self.registry, self.cert_dir.as_deref())?
        };
        Ok(self.tls.get_or_init(|| c).clone())
    }

    fn tcp(&self, url: &Url) -> Result<TcpStream, ImageError> {
        let io = |what: &str| ImageError::io(format!("{what} {}", url.authority));
        let port = if url.https { 443 } else { 80 };
        let addr = if url.authority.ends_with(']') || !url.authority.contains(':') {
            format!("{}:{port}", url.authority)
        } else {
            url.authority.clone()
        };
        let addr = addr
            .to_socket_addrs()
            .map_err(io("resolve"))?
            .next()
            .ok_or_else(|| http_err(format!("{}: no address", url.authority)))?;
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(io("connect to"))?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(io("connect to"))?;
        stream
            .set_write_timeout(Some(TIMEOUT))
            .map_err(io("connect to"))?;
        Ok(stream)
    }

    /// A connection to `url`'s host; `url.https` is cleared when the
    /// registry turns out to be a loopback (or `--insecure`) one without
    /// TLS.
    fn connect(&self, url: &mut Url) -> Result<Box<dyn Conn>, ImageError> {
        let may_be_plain = self.insecure || is_loopback(&url.authority);
        if !url.https {
            if !may_be_plain {
                return Err(http_err(format!(
                    "{}: plain HTTP to a host other than loopback needs --insecure",
                    url.authority
                )));
            }
            return Ok(Box::new(self.tcp(url)?));
        }
        let tcp = self.tcp(url)?;
        match tls::connect(self.tls_config()?, host(&url.authority), tcp) {
            Ok(s) => Ok(Box::new(s)),
            Err(e)
                if may_be_plain
                    && url.authority == self.registry
                    && !tls::is_certificate_error(&e) =>
            {
                log::info!("{}: no TLS ({e}): plain HTTP", url.authority);
                self.plain.store(true, Ordering::Relaxed);
                url.https = false;
                Ok(Box::new(self.tcp(url)?))
            }
            Err(e) if tls::is_certificate_error(&e) => Err(http_err(format!(
                "TLS to {}: {e} (trust its CA with --cert-dir, or skip the check with --insecure)",
                url.authority
            ))),
            Err(e) => Err(http_err(format!("TLS to {}: {e}", url.authority))),
        }
    }

    /// One GET; `url` may change from HTTPS to HTTP (see [`Self::connect`]).
    pub fn get(
        &self,
        url: &mut Url,
        accept: &str,
        auth: Option<&str>,
    ) -> Result<Response, ImageError> {
        let mut conn = self.connect(url)?;
        let io = |what: &str| ImageError::io(format!("{what} {}", url.authority));
        let mut req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ferry/{}\r\nConnection: close\r\n",
            url.path,
            url.authority,
            env!("CARGO_PKG_VERSION")
        );
        if !accept.is_empty() {
            req.push_str(&format!("Accept: {accept}\r\n"));
        }
        if let Some(a) = auth {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        req.push_str("\r\n");
        conn.write_all(req.as_bytes()).map_err(io("send to"))?;
        conn.flush().map_err(io("send to"))?;
        let mut r = BufReader::with_capacity(64 * 1024, conn);
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            (&mut r)
                .take(MAX_HEAD)
                .read_until(b'\n', &mut line)
                .map_err(io("read from"))?;
            if line.is_empty() {
                return Err(http_err(format!("{}: connection closed", url.authority)));
            }
            if line == b"\r\n" || line == b"\n" {
                break;
            }
            head.push(String::from_utf8_lossy(&line).trim_end().to_string());
            if head.len() > 200 {
                return Err(http_err(format!(
                    "{}: response head too long",
                    url.authority
                )));
            }
        }
        let status = head
            .first()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| http_err(format!("{}: bad HTTP response", url.authority)))?;
        let headers: Vec<(String, String)> = head[1..]
            .iter()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut resp = Response {
            status,
            headers,
            body: Box::new(io::empty()),
        };
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        resp.body = if chunked {
            Box::new(Chunked {
                inner: r,
                left: 0,
                done: false,
            })
        } else if let Some(n) = resp.length() {
            Box::new(r.take(n))
        } else {
            Box::new(r)
        };
        Ok(resp)
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
