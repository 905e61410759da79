//! A registry client (OCI distribution API) over HTTP/1.1 with TLS
//! ([`super::http`] says when plain HTTP is used). Anonymous access, basic
//! auth and bearer tokens (the registry's `WWW-Authenticate` challenge)
//! work; credentials come from `--creds` or `FERRY_REGISTRY_CREDS`
//! (`USER:PASS`). Blobs stream straight into the import pipeline, which
//! verifies each digest and size as it reads.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::Value;

use super::ImageError;
use super::digest::{Digest, read_verified};
use super::http::{Request, Response, Transport, Url};

const MAX_JSON: u64 = 8 << 20;

/// Docker Hub's names; its registry API is at `registry-1.docker.io`.
const DOCKER_HUB: [&str; 2] = ["docker.io", "index.docker.io"];

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
        // Docker Hub's official images live under library/.
        let repo = if DOCKER_HUB.contains(&host) && !repo.contains('/') {
            format!("library/{repo}")
        } else {
            repo.to_string()
        };
        ok.then(|| RegistryRef {
            host: host.to_string(),
            repo,
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

/// A registry: where, and how to authenticate.
pub struct Client {
    authority: String,
    http: Transport,
    creds: Option<String>,
    auth: Mutex<Option<String>>,
    /// Scopes asked for besides the challenge's (see [`Client::add_scope`]).
    scopes: Mutex<Vec<String>>,
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
    /// `insecure`: no certificate check, plain HTTP allowed; `cert_dir`:
    /// the registry's CA files (`*.crt`).
    pub fn new(
        host: &str,
        insecure: bool,
        cert_dir: Option<PathBuf>,
        creds: Option<String>,
    ) -> Client {
        let host = if DOCKER_HUB.contains(&host) {
            "registry-1.docker.io"
        } else {
            host
        };
        Client {
            authority: host.to_string(),
            http: Transport::new(host, insecure, cert_dir),
            creds: creds.or_else(|| std::env::var("FERRY_REGISTRY_CREDS").ok()),
            auth: Mutex::new(None),
            scopes: Mutex::new(Vec::new()),
        }
    }

    /// `path` on the registry (`/v2/...`), or an absolute URL it gave (an
    /// upload's `Location`).
    pub fn url(&self, path_or_url: &str) -> Result<Url, ImageError> {
        if path_or_url.starts_with('/') {
            return Ok(self.http.registry_url(path_or_url));
        }
        Url::parse(path_or_url)
    }

    /// Send `req` to `url` with the registry's credentials: a 401 is
    /// answered once (then the request is sent again, if its body allows),
    /// and GET and HEAD follow redirects. Any other status is returned.
    pub fn send(&self, mut url: Url, mut req: Request) -> Result<Response, ImageError> {
        let mut tried_auth = false;
        let follow = matches!(req.method, "GET" | "HEAD");
        for _ in 0..6 {
            let again = req.replay();
            let auth = self.auth.lock().expect("auth lock").clone();
            // Redirects to other hosts (blob storage) carry no credentials.
            if let Some(a) = auth.filter(|_| url.authority == self.authority) {
                req = req.header("authorization", a);
            }
            let resp = self.http.send(&mut url, req)?;
            match resp.status {
                301 | 302 | 303 | 307 | 308 if follow => {
                    let loc = resp
                        .header("location")
                        .ok_or_else(|| reg_err("redirect without a Location"))?;
                    url = url.join(loc)?;
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
                _ => return Ok(resp),
            }
            req = again.ok_or_else(|| {
                reg_err(format!(
                    "{}{}: the registry asked for credentials again in the middle of an upload",
                    self.authority, url.path
                ))
            })?;
        }
        Err(reg_err(format!(
            "{}{}: too many redirects",
            self.authority, url.path
        )))
    }

    /// Send `req`; a status other than `ok` is an error that quotes the
    /// registry's message.
    pub fn expect(&self, url: Url, req: Request, ok: &[u16]) -> Result<Response, ImageError> {
        let path = url.path.clone();
        let resp = self.send(url, req)?;
        if ok.contains(&resp.status) {
            return Ok(resp);
        }
        Err(self.status_error(&path, resp))
    }

    /// The error for an unexpected status: `HOST/PATH: HTTP N: message`.
    pub fn status_error(&self, path: &str, resp: Response) -> ImageError {
        let status = resp.status;
        let mut body = String::new();
        let _ = resp.body.take(4096).read_to_string(&mut body);
        let msg: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let detail = msg["errors"][0]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| body.trim().chars().take(200).collect());
        let path = path.split('?').next().unwrap_or(path);
        reg_err(format!("{}{path}: HTTP {status}: {detail}", self.authority))
    }

    /// GET `path` on the registry, authenticating and following redirects.
    pub fn get(&self, path: &str, accept: &str) -> Result<Response, ImageError> {
        let req = Request::new("GET").header("accept", accept);
        self.expect(self.http.registry_url(path), req, &[200])
    }

    /// Ask tokens for these scopes too (`repository:NAME:pull` of a
    /// repository blobs are mounted from).
    pub fn add_scope(&self, scope: String) {
        self.scopes.lock().expect("scopes lock").push(scope);
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
        let mut url = Url::parse(realm)?;
        let mut q = Vec::new();
        if let Some(s) = get("service") {
            q.push(format!("service={}", enc(s)));
        }
        if let Some(s) = get("scope") {
            q.push(format!("scope={}", enc(s)));
        }
        for s in self.scopes.lock().expect("scopes lock").iter() {
            q.push(format!("scope={}", enc(s)));
        }
        if !q.is_empty() {
            url.path
                .push(if url.path.contains('?') { '&' } else { '?' });
            url.path.push_str(&q.join("&"));
        }
        let resp = self
            .http
            .get(&mut url, "application/json", basic.as_deref())?;
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
    fn references_and_challenges() {
        let r = RegistryRef::parse("docker://127.0.0.1:5000/test/bb:v1").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repo.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "test/bb", "v1")
        );
        let r = RegistryRef::parse("localhost:5000/bb").unwrap();
        assert_eq!(r.reference, "latest");
        let r = RegistryRef::parse("docker.io/busybox:1.36").unwrap();
        assert_eq!(
            (r.repo.as_str(), r.name()),
            ("library/busybox", "docker.io/library/busybox:1.36".into())
        );
        assert!(RegistryRef::parse("busybox:latest").is_none());
        assert!(RegistryRef::parse("library/busybox").is_none());
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
