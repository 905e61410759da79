//! `ferry image import`: choose the image in a source, verify its
//! manifest and config, and extract the layers the store lacks, in
//! parallel. Each layer blob is streamed once: hashed (its digest and size
//! checked against the manifest), decompressed (gzip or zstd, sniffed),
//! bounded, hashed again (the diff_id checked against the config) and
//! extracted, and copied as it came into `blobs/sha256/DIGEST` (push and
//! save send it byte-exact); a layer that fails any check never enters the
//! store. Progress shows on a terminal ([`super::progress`]).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ruzstd::decoding::FrameDecoder;
use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use serde_json::Value;

use super::ImageError;
use super::digest::{Digest, Verify};
use super::extract::{self, Report};
use super::progress::{Counting, Progress};
use super::registry::{Client, RegistryRef};
use super::source::{
    LayerSrc, Reference, Resolved, Source, Transport, resolve_docker, resolve_oci, resolve_registry,
};
use super::store::{ImageRecord, LayerRecord, Store, check_name};

/// Default bound on a layer's uncompressed size (`FERRY_MAX_LAYER_SIZE`
/// overrides it, in bytes).
pub const MAX_LAYER: u64 = 64 << 30;

pub struct ImportOptions {
    pub name: Option<String>,
    /// Registries: no certificate check; plain HTTP to any host.
    pub insecure: bool,
    /// Registries: a directory of CA certificates (`*.crt`).
    pub cert_dir: Option<std::path::PathBuf>,
    /// Registries: `USER:PASS`.
    pub creds: Option<String>,
    /// `os/arch[/variant]` chosen from image indexes.
    pub platform: String,
    pub max_layer: u64,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        let max_layer = std::env::var("FERRY_MAX_LAYER_SIZE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(MAX_LAYER);
        ImportOptions {
            name: None,
            insecure: false,
            cert_dir: None,
            creds: None,
            platform: "linux/amd64".into(),
            max_layer,
        }
    }
}

/// The uncompressed layer digests of an image config.
pub fn diff_ids(config: &Value) -> Result<Vec<Digest>, ImageError> {
    let list = config["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| ImageError::format("image config", "no rootfs.diff_ids"))?;
    list.iter()
        .map(|d| {
            d.as_str()
                .ok_or_else(|| ImageError::format("image config", "bad diff_id"))
                .and_then(Digest::parse)
        })
        .collect()
}

pub fn import(
    store: &Store,
    reference: &str,
    o: &ImportOptions,
) -> Result<ImageRecord, ImageError> {
    let local = ["oci:", "oci-archive:", "docker-archive:"]
        .iter()
        .any(|p| reference.starts_with(p));
    let (src, res, default) = match RegistryRef::parse(reference).filter(|_| !local) {
        Some(rr) => {
            let client = Client::new(&rr.host, o.insecure, o.cert_dir.clone(), o.creds.clone());
            let src = Source::Registry {
                client,
                repo: rr.repo.clone(),
            };
            let res = resolve_registry(&src, &rr, &o.platform)?;
            (src, res, rr.name())
        }
        None => {
            let r = Reference::parse(reference)?;
            let src = Source::open(&r)?;
            let res: Resolved = match r.transport {
                Transport::Oci | Transport::OciArchive => {
                    resolve_oci(&src, r.tag.as_deref(), &o.platform)?
                }
                Transport::DockerArchive => resolve_docker(&src, r.tag.as_deref())?,
            };
            let default = default_name(&r, res.name.as_deref(), &res.config.1);
            (src, res, default)
        }
    };
    let (config_data, config_digest, config) = &res.config;
    let diffs = diff_ids(config)?;
    if diffs.len() != res.layers.len() {
        return Err(ImageError::format(
            "image",
            format!(
                "the manifest has {} layers but the config {} diff_ids",
                res.layers.len(),
                diffs.len()
            ),
        ));
    }
    let name = o.name.clone().unwrap_or(default);
    check_name(&name)?;

    let _lock = store.lock(false)?;
    store.put_blob(config_digest, config_data)?;
    if let Some((data, d)) = &res.manifest {
        store.put_blob(d, data)?;
    }
    let digests = extract_all(store, &src, &res.layers, &diffs, o)?;
    let layers = res
        .layers
        .iter()
        .zip(&diffs)
        .zip(digests)
        .map(|((l, diff), (digest, size))| LayerRecord {
            digest,
            diff_id: diff.clone(),
            size,
            media_type: l.media_type.clone(),
        })
        .collect();
    let rec = ImageRecord {
        name,
        source: reference.to_string(),
        manifest: res.manifest.as_ref().map(|(_, d)| d.clone()),
        config: config_digest.clone(),
        layers,
        imported: crate::timefmt::now_rfc3339(),
    };
    store.save_image(&rec)?;
    Ok(rec)
}

fn default_name(r: &Reference, given: Option<&str>, config: &Digest) -> String {
    match (r.transport, given) {
        (Transport::DockerArchive, Some(n)) => n.to_string(),
        (_, Some(n)) if n.contains(':') || n.contains('/') => n.to_string(),
        (_, tag) => {
            let stem = r
                .path
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = stem
                .trim_end_matches(".tar")
                .trim_end_matches(".oci")
                .to_string();
            if stem.is_empty() {
                return config.short().to_string();
            }
            format!("{stem}:{}", tag.unwrap_or("latest"))
        }
    }
}

/// Extract every layer the store lacks, in parallel; the blob digest and
/// size of each layer (for layers already stored, those the source names).
fn extract_all(
    store: &Store,
    src: &Source,
    layers: &[LayerSrc],
    diffs: &[Digest],
    o: &ImportOptions,
) -> Result<Vec<(Digest, u64)>, ImageError> {
    type Slot = Option<Result<(Digest, u64), ImageError>>;
    let results: Mutex<Vec<Slot>> = Mutex::new((0..layers.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(layers.len())
        .max(1);
    let opts = super::extract_options();
    let progress = Progress::new("pulling");
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= layers.len() {
                break;
            }
            let r = one_layer(
                store,
                src,
                &layers[i],
                &diffs[i],
                &opts,
                o.max_layer,
                &progress,
            );
            results.lock().expect("results lock")[i] = Some(r);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..workers {
            s.spawn(work);
        }
        work();
    });
    progress.finish();
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every layer was handled"))
        .collect()
}

fn one_layer(
    store: &Store,
    src: &Source,
    l: &LayerSrc,
    diff: &Digest,
    opts: &extract::Options,
    max_layer: u64,
    progress: &Progress,
) -> Result<(Digest, u64), ImageError> {
    let mut blob = None;
    store.ensure_layer(diff, |dir| {
        let (digest, size, report) = unpack(store, src, l, diff, dir, opts, max_layer, progress)?;
        blob = Some((digest, size));
        Ok(report)
    })?;
    match (blob, &l.digest) {
        (Some(b), _) => Ok(b),
        // The layer is stored and so is this blob of it.
        (None, Some(d)) if store.blob_path(d).exists() => Ok((d.clone(), l.size.unwrap_or(0))),
        // The layer is stored but not this blob (another compression of
        // it, or a layer of an older ferry): keep the blob, verified, for
        // push and save (no extraction). A docker-archive layer is hashed
        // for the record the same way.
        (None, expect) => {
            let (r, _) = src.open_file(&l.path)?;
            let keep = BlobKeeper::new(store)?;
            let v = Verify::new(keep.tee(r)?, l.path.clone(), l.size.unwrap_or(u64::MAX - 1));
            let (d, n) = v.finish()?;
            if let Some(want) = expect.as_ref().filter(|w| **w != d) {
                return Err(ImageError::DigestMismatch {
                    what: l.path.clone(),
                    expected: want.to_string(),
                    actual: d.to_string(),
                });
            }
            keep.keep(&d);
            Ok((d, n))
        }
    }
}

/// Stream one layer blob into `dir`: digest, decompress, diff_id, extract;
/// the blob itself is kept in the store (for push and save).
#[allow(clippy::too_many_arguments)]
fn unpack(
    store: &Store,
    src: &Source,
    l: &LayerSrc,
    diff: &Digest,
    dir: &std::path::Path,
    opts: &extract::Options,
    max_layer: u64,
    progress: &Progress,
) -> Result<(Digest, u64, Report), ImageError> {
    let (raw, size) = src.open_file(&l.path)?;
    let index = progress.add(diff.short(), size.or(l.size).unwrap_or(0));
    let raw = Counting {
        inner: raw,
        progress,
        index,
    };
    let keep = BlobKeeper::new(store)?;
    let raw = keep.tee(raw)?;
    let size = size.or(l.size).unwrap_or(u64::MAX - 1);
    let what = match &l.digest {
        Some(d) => format!("layer blob {}", d.short()),
        None => format!("layer {}", l.path),
    };
    if let Some(want) = l.size.filter(|&s| s != size) {
        return Err(ImageError::SizeMismatch {
            what,
            expected: want,
            actual: size,
        });
    }
    let mut blob = Verify::new(raw, what, l.size.unwrap_or(u64::MAX - 1));
    let label = format!("layer {}", diff.short());
    let report = {
        let mut buf = BufReader::with_capacity(256 * 1024, &mut blob);
        let magic = buf
            .fill_buf()
            .map_err(|e| super::digest::too_large_or(e, &label, 0))?;
        let dec: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::MultiGzDecoder::new(buf))
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(Zstd::new(buf))
        } else {
            Box::new(buf)
        };
        let mut tar = Verify::new(dec, format!("{label} (uncompressed)"), max_layer);
        let report = extract::extract(&mut tar, dir, opts, &label)?;
        tar.check(Some(diff), None)?;
        report
    };
    let size = blob.count();
    let digest = blob.check(l.digest.as_ref(), l.size)?;
    keep.keep(&digest);
    progress.end(index, "pulled");
    Ok((digest, size.max(l.size.unwrap_or(0)), report))
}

/// A copy of a layer blob as it streams by, in `tmp/`, renamed to
/// `blobs/sha256/DIGEST` once verified (removed otherwise).
struct BlobKeeper<'a> {
    store: &'a Store,
    tmp: std::path::PathBuf,
}

impl<'a> BlobKeeper<'a> {
    fn new(store: &'a Store) -> Result<BlobKeeper<'a>, ImageError> {
        Ok(BlobKeeper {
            store,
            tmp: store.root().join("tmp").join(super::temp_name("blob")),
        })
    }

    /// `r`, copying what is read from it into the temporary file.
    fn tee<R: Read>(&self, r: R) -> Result<Tee<R>, ImageError> {
        let f = std::fs::File::create(&self.tmp)
            .map_err(ImageError::io(format!("create {}", super::show(&self.tmp))))?;
        Ok(Tee {
            inner: r,
            out: io::BufWriter::with_capacity(256 * 1024, f),
        })
    }

    /// The copy is the blob `d`: move it into place.
    fn keep(&self, d: &Digest) {
        let dest = self.store.blob_path(d);
        if !dest.exists() && std::fs::rename(&self.tmp, &dest).is_ok() {
            return;
        }
        let _ = std::fs::remove_file(&self.tmp);
    }
}

impl Drop for BlobKeeper<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Copies what is read through it into `out`.
struct Tee<R> {
    inner: R,
    out: io::BufWriter<std::fs::File>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.out.flush()?;
        }
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A zstd stream of one or more frames (skippable frames skipped), over
/// the pure-Rust decoder.
pub(crate) struct Zstd<R> {
    src: R,
    dec: FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> Zstd<R> {
    pub(crate) fn new(src: R) -> Zstd<R> {
        Zstd {
            src,
            dec: FrameDecoder::new(),
            in_frame: false,
        }
    }
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.in_frame {
                if self.dec.can_collect() > 0 {
                    return self.dec.read(buf);
                }
                if !self.dec.is_finished() {
                    self.dec
                        .decode_blocks(
                            &mut self.src,
                            ruzstd::decoding::BlockDecodingStrategy::UptoBlocks(1),
                        )
                        .map_err(io::Error::other)?;
                    continue;
                }
                self.in_frame = false;
            }
            if self.src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            match self.dec.reset(&mut self.src) {
                Ok(()) => self.in_frame = true,
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let n = io::copy(
                        &mut (&mut self.src).take(u64::from(length)),
                        &mut io::sink(),
                    )?;
                    if n != u64::from(length) {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "truncated zstd skippable frame",
                        ));
                    }
                }
                Err(e) => return Err(io::Error::other(e)),
            }
        }
    }
}
