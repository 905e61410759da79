//! `ferry image push`: an image of the store to a registry, by the OCI
//! distribution spec.
//!
//! Each layer blob and the config: `HEAD` (the registry has it: skipped),
//! else a cross-repository mount (`POST ?mount=DIGEST&from=REPO`) when
//! ferry knows a repository of the same registry that has it (the one the
//! image was pulled from, or one it was pushed to before, recorded in
//! `pushed/CONFIGHEX.json`), else an upload: `POST` then one `PUT
//! ?digest=` with the whole blob (monolithic), or, for blobs over the chunk
//! size, `PATCH`es of one chunk each (`Content-Range`) and a closing `PUT`.
//! Then the manifest is `PUT` by tag. Blobs go up in parallel (3 at a
//! time, as skopeo); tokens are asked with the push scope the registry's
//! challenge names (plus pull on the repositories mounted from).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::digest::Digest;
use super::export::{Blob, Exported, export};
use super::http::{Body, Request, Url};
use super::progress::{Counting, Progress};
use super::registry::{Client, RegistryRef};
use super::store::Store;
use super::{ImageError, show};

/// Blobs larger than this go up in chunks of this size (`--chunk-size`).
pub const CHUNK: u64 = 64 << 20;
/// Blobs moved at the same time.
const PARALLEL: usize = 3;

pub struct PushOptions {
    pub insecure: bool,
    pub cert_dir: Option<PathBuf>,
    pub creds: Option<String>,
    pub chunk_size: u64,
}

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions {
            insecure: false,
            cert_dir: None,
            creds: None,
            chunk_size: CHUNK,
        }
    }
}

/// How a blob got to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Existed,
    Mounted,
    Uploaded,
}

impl Sent {
    fn word(self) -> &'static str {
        match self {
            Sent::Existed => "exists",
            Sent::Mounted => "mounted",
            Sent::Uploaded => "pushed",
        }
    }
}

/// What a push did.
#[derive(Debug)]
pub struct Pushed {
    /// `HOST/REPO:TAG`.
    pub reference: String,
    pub digest: Digest,
    /// Per blob (layers, then the config).
    pub blobs: Vec<(Digest, Sent)>,
}

fn err(msg: impl Into<String>) -> ImageError {
    ImageError::Select(msg.into())
}

/// Parse the destination `[docker://]HOST[:PORT]/REPO[:TAG]`.
pub fn destination(dest: &str) -> Result<RegistryRef, ImageError> {
    let r = RegistryRef::parse(dest).ok_or_else(|| {
        err(format!(
            "bad destination {dest:?}: use [docker://]HOST[:PORT]/NAME[:TAG]"
        ))
    })?;
    if r.reference.contains(':') {
        return Err(err(format!(
            "bad destination {dest:?}: push to a tag, not a digest"
        )));
    }
    Ok(r)
}

pub fn push(store: &Store, name: &str, dest: &str, o: &PushOptions) -> Result<Pushed, ImageError> {
    let dst = destination(dest)?;
    // Held to the end: `rm` (exclusive) must not collect the blobs, or the
    // packed layers in tmp/, while they go up.
    let _lock = store.lock(false)?;
    let rec = store.find(name)?;
    let image = export(store, &rec)?;
    let client = Client::new(&dst.host, o.insecure, o.cert_dir.clone(), o.creds.clone());
    let mut sources = mount_sources(store, &rec.source, &rec.config, &dst);
    sources.retain(|r| *r != dst.repo);
    for s in &sources {
        client.add_scope(format!("repository:{s}:pull"));
    }
    let progress = Progress::new("pushing");
    let config = Blob {
        digest: image.config_digest.clone(),
        size: image.config.len() as u64,
        media_type: String::new(),
        path: PathBuf::new(),
    };
    let mut all: Vec<&Blob> = image.layers.iter().collect();
    all.push(&config);
    let ctx = Ctx {
        client: &client,
        repo: &dst.repo,
        sources: &sources,
        progress: &progress,
        chunk: o.chunk_size.max(1),
        config: &image.config,
    };
    let sent = send_all(&ctx, &all)?;
    put_manifest(&client, &dst, &image)?;
    progress.finish();
    remember(store, &rec.config, &dst);
    Ok(Pushed {
        reference: format!("{}/{}:{}", dst.host, dst.repo, dst.reference),
        digest: image.manifest_digest.clone(),
        blobs: all.iter().map(|b| b.digest.clone()).zip(sent).collect(),
    })
}

/// What every blob upload needs.
struct Ctx<'a> {
    client: &'a Client,
    repo: &'a str,
    /// Repositories of the same registry that may have the blobs.
    sources: &'a [String],
    progress: &'a Progress,
    chunk: u64,
    /// The config's bytes (the blob with an empty path).
    config: &'a [u8],
}

/// Send every blob, [`PARALLEL`] at a time; how each went.
fn send_all(ctx: &Ctx, blobs: &[&Blob]) -> Result<Vec<Sent>, ImageError> {
    type Slot = Option<Result<Sent, ImageError>>;
    let results: Mutex<Vec<Slot>> = Mutex::new((0..blobs.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let ids: Vec<usize> = blobs
        .iter()
        .map(|b| ctx.progress.add(b.digest.short(), b.size))
        .collect();
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= blobs.len() {
                break;
            }
            let r = send_blob(ctx, blobs[i], ids[i]);
            if let Ok(s) = &r {
                ctx.progress.end(ids[i], s.word());
            }
            let failed = r.is_err();
            results.lock().expect("results lock")[i] = Some(r);
            if failed {
                // Stop handing out work: the push fails anyway.
                next.store(blobs.len(), Ordering::Relaxed);
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..PARALLEL.min(blobs.len()) {
            s.spawn(work);
        }
        work();
    });
    let results = results.into_inner().expect("results lock");
    // The first failure is the error (blobs after it were not tried).
    let mut out = Vec::new();
    for r in results.into_iter().flatten() {
        out.push(r?);
    }
    if out.len() != blobs.len() {
        return Err(err("push stopped"));
    }
    Ok(out)
}

/// One blob: exists, mounted, or uploaded.
fn send_blob(ctx: &Ctx, b: &Blob, id: usize) -> Result<Sent, ImageError> {
    let c = ctx.client;
    let head = c.send(
        c.url(&format!("/v2/{}/blobs/{}", ctx.repo, b.digest))?,
        Request::new("HEAD"),
    )?;
    match head.status {
        200 => return Ok(Sent::Existed),
        404 => {}
        _ => return Err(c.status_error(&format!("/v2/{}/blobs/{}", ctx.repo, b.digest), head)),
    }
    let mut location = None;
    // The first repository that may have it (a refused mount opens an
    // upload session, used below).
    if let Some(from) = ctx.sources.first() {
        let path = format!(
            "/v2/{}/blobs/uploads/?mount={}&from={}",
            ctx.repo, b.digest, from
        );
        let resp = c.expect(c.url(&path)?, Request::new("POST"), &[201, 202])?;
        if resp.status == 201 {
            return Ok(Sent::Mounted);
        }
        location = resp.header("location").map(str::to_string);
    }
    let start = format!("/v2/{}/blobs/uploads/", ctx.repo);
    let location = match location {
        Some(l) => l,
        None => upload_location(
            &start,
            c.expect(c.url(&start)?, Request::new("POST"), &[202])?,
        )?,
    };
    let url = c.url(&location)?;
    if b.size > ctx.chunk {
        upload_chunked(ctx, b, id, url)
    } else {
        upload_whole(ctx, b, id, url)
    }
}

/// The `Location` of a started upload.
fn upload_location(path: &str, resp: super::http::Response) -> Result<String, ImageError> {
    resp.header("location").map(str::to_string).ok_or_else(|| {
        err(format!(
            "{path}: the registry answered an upload without a Location"
        ))
    })
}

/// `url` with `?digest=` (or `&digest=`) added.
fn with_digest(mut url: Url, d: &Digest) -> Url {
    url.path
        .push(if url.path.contains('?') { '&' } else { '?' });
    url.path
        .push_str(&format!("digest={}", d).replace(':', "%3A"));
    url
}

/// The blob's bytes, streamed from its file (or the config in memory).
fn open_blob<'a>(ctx: &Ctx<'a>, b: &Blob) -> Result<Box<dyn Read + Send + 'a>, ImageError> {
    if b.path.as_os_str().is_empty() {
        return Ok(Box::new(ctx.config));
    }
    let f = File::open(&b.path).map_err(ImageError::io(format!("open {}", show(&b.path))))?;
    Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
}

/// POST was done: one PUT with the whole blob.
fn upload_whole(ctx: &Ctx, b: &Blob, id: usize, url: Url) -> Result<Sent, ImageError> {
    let c = ctx.client;
    let body = Counting {
        inner: open_blob(ctx, b)?,
        progress: ctx.progress,
        index: id,
    };
    let req = Request::new("PUT")
        .header("content-type", "application/octet-stream")
        .body(Body::Stream(Box::new(body), b.size));
    c.expect(with_digest(url, &b.digest), req, &[201])?;
    Ok(Sent::Uploaded)
}

/// PATCH one chunk at a time, then PUT `?digest=` with no body.
fn upload_chunked(ctx: &Ctx, b: &Blob, id: usize, mut url: Url) -> Result<Sent, ImageError> {
    let c = ctx.client;
    let mut r = open_blob(ctx, b)?;
    let mut offset = 0;
    while offset < b.size {
        let n = ctx.chunk.min(b.size - offset);
        let body = Counting {
            inner: (&mut r).take(n),
            progress: ctx.progress,
            index: id,
        };
        let req = Request::new("PATCH")
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{offset}-{}", offset + n - 1))
            .body(Body::Stream(Box::new(body), n));
        let resp = c.expect(url.clone(), req, &[202])?;
        let loc = upload_location(&url.path, resp)?;
        url = c.url(&loc)?;
        offset += n;
    }
    c.expect(with_digest(url, &b.digest), Request::new("PUT"), &[201])?;
    Ok(Sent::Uploaded)
}

fn put_manifest(c: &Client, dst: &RegistryRef, image: &Exported) -> Result<(), ImageError> {
    let path = format!("/v2/{}/manifests/{}", dst.repo, dst.reference);
    let req = Request::new("PUT")
        .header("content-type", image.manifest_type.clone())
        .body(Body::Bytes(&image.manifest));
    let resp = c.expect(c.url(&path)?, req, &[201, 200])?;
    if let Some(said) = resp.header("docker-content-digest")
        && said != image.manifest_digest.to_string()
    {
        return Err(err(format!(
            "{}: the registry stored the manifest as {said}, not {}",
            dst.name(),
            image.manifest_digest
        )));
    }
    Ok(())
}

/// `pushed/CONFIGHEX.json`: the `HOST/REPO`s this image went to.
fn pushed_path(store: &Store, config: &Digest) -> PathBuf {
    store
        .root()
        .join("pushed")
        .join(format!("{}.json", config.hex()))
}

/// Repositories of `dst`'s registry that should have the image's blobs:
/// where it came from, and where it was pushed before.
fn mount_sources(store: &Store, source: &str, config: &Digest, dst: &RegistryRef) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(r) = RegistryRef::parse(source).filter(|r| r.host == dst.host) {
        out.push(r.repo);
    }
    let before: Vec<String> = std::fs::read(pushed_path(store, config))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default();
    for hr in before {
        if let Some((h, r)) = hr.split_once('/')
            && h == dst.host
            && !out.iter().any(|o| o == r)
        {
            out.push(r.to_string());
        }
    }
    out
}

/// Record that the image is now in `dst`'s repository (best effort: it
/// only saves uploads later).
fn remember(store: &Store, config: &Digest, dst: &RegistryRef) {
    let p = pushed_path(store, config);
    let mut list: Vec<String> = std::fs::read(&p)
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_default();
    let me = format!("{}/{}", dst.host, dst.repo);
    if list.contains(&me) {
        return;
    }
    list.push(me);
    let _ = super::store::private_dir(&store.root().join("pushed"));
    let data = serde_json::to_vec(&list).expect("list serializes");
    let tmp = p.with_extension(super::temp_name("tmp").to_string_lossy().into_owned());
    if std::fs::write(&tmp, data).is_ok() && std::fs::rename(&tmp, &p).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_and_digest_queries() {
        let d = destination("docker://127.0.0.1:5000/a/b:v2").unwrap();
        assert_eq!((d.repo.as_str(), d.reference.as_str()), ("a/b", "v2"));
        assert!(destination("busybox").is_err());
        assert!(destination("127.0.0.1:5000/a@sha256:00").is_err());
        let u = Url::parse("http://h:1/v2/a/blobs/uploads/x?_state=s").unwrap();
        let dg = Digest::of(b"");
        assert!(
            with_digest(u, &dg)
                .path
                .ends_with(&format!("&digest=sha256%3A{}", dg.hex()))
        );
    }
}
