//! Pulling from a registry (OCI distribution API) over plain HTTP/1.1.
//!
//! ferry has no TLS stack (it would be most of its dependencies), so it
//! talks plain HTTP, and only to a loopback registry (`127.0.0.0/8`,
//! `localhost`, `[::1]`) unless `--insecure` says otherwise; anything else is
//! refused with a pointer to `skopeo copy ... oci:DIR`. Anonymous access,
//! basic auth and bearer tokens (the registry's `WWW-Authenticate`
//! challenge) work; credentials come from `--creds` or
//! `FERRY_REGISTRY_CREDS` (`USER:PASS`). Blobs stream straight into the
//! import pipeline, which verifies each digest and size as it reads.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use super::ImageError;
use super::digest::{Digest, read_verified};

const MAX_HEAD: u64 = 64 * 1024;
const MAX_JSON: u64 = 8 << 20;
const TIMEOUT: Duration = Duration::from_secs(60);

pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// `HOST[:PORT]/NAME[:TAG|@DIGEST]`, with or without `docker://`.
#[derive(Debug, Clone)]
pub struct RegistryRef {
    pub host: String,
    pub repo: String,
    /// A tag or a digest (`sha256:...`).
    pub reference: String,
}

impl RegistryRef {
    pub fn parse(s: &str) -> Option<RegistryRef> {
        let s = s.strip_prefix("docker://").unwrap_or(s);
        let (host, rest) = s.split_once('/')?;
        // Docker's rule: the first component is a host if it has a dot or a
        // port, or is localhost.
        if !(host.contains('.') || host.contains(':') || host == "localhost") {
            return None;
        }
        let (repo, reference) = if let Some((r, d)) = rest.split_once('@') {
            (r, d.to_string())
        } else {
            match rest.rsplit_once(':') {
                Some((r, t)) if !t.contains('/') => (r, t.to_string()),
                _ => (rest, "latest".to_string()),
            }
        };
        let ok = !repo.is_empty()
            && repo
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b));
        let ok = ok
            && !reference.is_empty()
            && reference
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b));
        ok.then(|| RegistryRef {
            host: host.to_string(),
            repo: repo.to_string(),
            reference,
        })
    }

    /// The image's default name: `HOST/NAME:TAG` (or `@DIGEST`).
    pub fn name(&self) -> String {
        if self.reference.contains(':') {
            format!("{}/{}@{}", self.host, self.repo, self.reference)
        } else {
            format!("{}/{}:{}", self.host, self.repo, self.reference)
        }
    }
}

fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(r) => r.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn reg_err(msg: impl Into<String>) -> ImageError {
    ImageError::Select(msg.into())
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
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

/// A registry: where, and how to authenticate.
pub struct Client {
    authority: String,
    insecure: bool,
    creds: Option<String>,
    auth: Mutex<Option<String>>,
}

struct Url {
    authority: String,
    path: String,
}

fn parse_url(u: &str) -> Result<Url, ImageError> {
    let rest = u.strip_prefix("http://").ok_or_else(|| {
        reg_err(format!(
            "{u}: only http:// registries are supported (no TLS)"
        ))
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok(Url {
        authority: authority.to_string(),
        path: path.to_string(),
    })
}

fn challenge_params(v: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = v;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_lowercase();
        let after = &rest[eq + 1..];
        let (val, next) = match after.strip_prefix('"') {
            Some(q) => {
                let end = q.find('"').unwrap_or(q.len());
                (&q[..end], q.get(end + 1..).unwrap_or(""))
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        out.push((key, val.to_string()));
        rest = next;
    }
    out
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Client {
    pub fn new(host: &str, insecure: bool, creds: Option<String>) -> Result<Client, ImageError> {
        if !insecure && !is_loopback(host) {
            return Err(reg_err(format!(
                "{host}: ferry speaks plain HTTP only, to loopback registries (or with --insecure); \
                 for others, skopeo copy docker://... oci:DIR and import that"
            )));
        }
        Ok(Client {
            authority: host.to_string(),
            insecure,
            creds: creds.or_else(|| std::env::var("FERRY_REGISTRY_CREDS").ok()),
            auth: Mutex::new(None),
        })
    }

    fn send(&self, url: &Url, accept: &str, auth: Option<&str>) -> Result<Response, ImageError> {
        if !self.insecure && !is_loopback(&url.authority) {
            return Err(reg_err(format!(
                "{}: not a loopback address (use --insecure)",
                url.authority
            )));
        }
        let io = |what: &str| ImageError::io(format!("{what} {}", url.authority));
        let addr = url
            .authority
            .to_socket_addrs()
            .map_err(io("resolve"))?
            .next()
            .ok_or_else(|| reg_err(format!("{}: no address", url.authority)))?;
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(io("connect to"))?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(io("connect to"))?;
        stream
            .set_write_timeout(Some(TIMEOUT))
            .map_err(io("connect to"))?;
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
        (&stream).write_all(req.as_bytes()).map_err(io("send to"))?;
        let mut r = BufReader::with_capacity(64 * 1024, stream);
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            (&mut r)
                .take(MAX_HEAD)
                .read_until(b'\n', &mut line)
                .map_err(io("read from"))?;
            if line.is_empty() {
                return Err(reg_err(format!("{}: connection closed", url.authority)));
            }
            if line == b"\r\n" || line == b"\n" {
                break;
            }
            head.push(String::from_utf8_lossy(&line).trim_end().to_string());
            if head.len() > 200 {
                return Err(reg_err(format!(
                    "{}: response head too long",
                    url.authority
                )));
            }
        }
        let status = head
            .first()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| reg_err(format!("{}: bad HTTP response", url.authority)))?;
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

    /// GET `path` on the registry, authenticating and following redirects.
    pub fn get(&self, path: &str, accept: &str) -> Result<Response, ImageError> {
        let mut url = Url {
            authority: self.authority.clone(),
            path: path.to_string(),
        };
        let mut tried_auth = false;
        for _ in 0..6 {
            let auth = self.auth.lock().expect("auth lock").clone();
            // Redirects to other hosts (blob storage) carry no credentials.
            let auth = auth.filter(|_| url.authority == self.authority);
            let resp = self.send(&url, accept, auth.as_deref())?;
            match resp.status {
                200 => return Ok(resp),
                301 | 302 | 303 | 307 | 308 => {
                    let loc = resp
                        .header("location")
                        .ok_or_else(|| reg_err("redirect without a Location"))?;
                    url = if loc.starts_with('/') {
                        Url {
                            authority: url.authority.clone(),
                            path: loc.to_string(),
                        }
                    } else {
                        parse_url(loc)?
                    };
                }
                401 if !tried_auth => {
                    tried_auth = true;
                    let ch = resp
                        .header("www-authenticate")
                        .ok_or_else(|| reg_err("401 without a challenge"))?
                        .to_string();
                    let header = self.authenticate(&ch)?;
                    *self.auth.lock().expect("auth lock") = Some(header);
                }
                status => {
                    let mut body = String::new();
                    let _ = resp.body.take(4096).read_to_string(&mut body);
                    let msg: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let detail = msg["errors"][0]["message"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| body.trim().chars().take(200).collect());
                    return Err(reg_err(format!(
                        "{}{}: HTTP {status}: {detail}",
                        self.authority, url.path
                    )));
                }
            }
        }
        Err(reg_err(format!(
            "{}{}: too many redirects",
            self.authority, path
        )))
    }

    /// The `Authorization` header answering a `WWW-Authenticate` challenge.
    fn authenticate(&self, challenge: &str) -> Result<String, ImageError> {
        let basic = self
            .creds
            .as_ref()
            .map(|c| format!("Basic {}", base64(c.as_bytes())));
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return basic.ok_or_else(|| {
                reg_err("the registry wants credentials: --creds USER:PASS or FERRY_REGISTRY_CREDS")
            });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(reg_err(format!("unsupported auth scheme {scheme:?}")));
        }
        let params = challenge_params(params);
        let get = |k: &str| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.as_str());
        let realm = get("realm").ok_or_else(|| reg_err("bearer challenge without a realm"))?;
        let mut url = parse_url(realm)?;
        let mut q = Vec::new();
        if let Some(s) = get("service") {
            q.push(format!("service={}", enc(s)));
        }
        if let Some(s) = get("scope") {
            q.push(format!("scope={}", enc(s)));
        }
        if !q.is_empty() {
            url.path
                .push(if url.path.contains('?') { '&' } else { '?' });
            url.path.push_str(&q.join("&"));
        }
        let resp = self.send(&url, "application/json", basic.as_deref())?;
        if resp.status != 200 {
            return Err(reg_err(format!("token server: HTTP {}", resp.status)));
        }
        let mut body = Vec::new();
        resp.body
            .take(MAX_JSON)
            .read_to_end(&mut body)
            .map_err(ImageError::io("read token"))?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| reg_err(format!("token: {e}")))?;
        let token = v["token"]
            .as_str()
            .or_else(|| v["access_token"].as_str())
            .ok_or_else(|| reg_err("token server sent no token"))?;
        Ok(format!("Bearer {token}"))
    }

    /// A manifest or index by tag or digest: its bytes, digest and JSON.
    pub fn manifest(
        &self,
        repo: &str,
        reference: &str,
        expect: Option<&Digest>,
    ) -> Result<(Vec<u8>, Digest, Value), ImageError> {
        let resp = self.get(&format!("/v2/{repo}/manifests/{reference}"), MANIFEST_TYPES)?;
        let said = resp.header("docker-content-digest").map(str::to_string);
        let what = format!("manifest {repo}:{reference}");
        let (data, d) = read_verified(resp.body, &what, expect, None, MAX_JSON)?;
        if let Some(said) = said.filter(|s| *s != d.to_string()) {
            return Err(ImageError::DigestMismatch {
                what,
                expected: said,
                actual: d.to_string(),
            });
        }
        let v =
            serde_json::from_slice(&data).map_err(|e| ImageError::format(what, e.to_string()))?;
        Ok((data, d, v))
    }

    /// A blob's body and size (as the server says).
    pub fn blob(
        &self,
        repo: &str,
        d: &Digest,
    ) -> Result<(Box<dyn Read + Send>, Option<u64>), ImageError> {
        let resp = self.get(&format!("/v2/{repo}/blobs/{d}"), "")?;
        let n = resp.length();
        Ok((resp.body, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_policy() {
        let r = RegistryRef::parse("docker://127.0.0.1:5000/test/bb:v1").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repo.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "test/bb", "v1")
        );
        let r = RegistryRef::parse("localhost:5000/bb").unwrap();
        assert_eq!(r.reference, "latest");
        assert!(RegistryRef::parse("busybox:latest").is_none());
        assert!(RegistryRef::parse("library/busybox").is_none());
        assert!(
            is_loopback("127.0.0.1:5000") && is_loopback("localhost") && is_loopback("[::1]:80")
        );
        assert!(!is_loopback("10.0.0.1:5000") && !is_loopback("registry.example.com"));
        assert!(Client::new("example.com", false, None).is_err());
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"ab"), "YWI=");
        let p = challenge_params(
            r#"realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull""#,
        );
        assert_eq!(
            p[2],
            ("scope".to_string(), "repository:a/b:pull".to_string())
        );
    }
}
