//! An image of the store as the blobs a push or a save sends: a manifest,
//! the config and the layer blobs.
//!
//! Layers go out byte-exact: import keeps each layer blob as it came
//! (`blobs/sha256/DIGEST`), so the digests in the manifest and the config's
//! diff_ids are the ones the image was pulled with, and so is the manifest
//! when it was kept too. A layer imported by an older ferry has no blob:
//! its directory is packed into a new tar ([`pack_layer`]), whose digest
//! becomes the layer's diff_id, so the config (the image id) and the
//! manifest change; a warning says so.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::digest::Digest;
use super::store::{ImageRecord, Store};
use super::{ImageError, show, temp_name, xattr};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// A blob in a file.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub path: PathBuf,
}

/// An image as blobs.
pub struct Exported {
    pub manifest: Vec<u8>,
    pub manifest_type: String,
    pub manifest_digest: Digest,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub layers: Vec<Blob>,
    /// Layer tars packed for this export, removed on drop.
    temp: Vec<PathBuf>,
}

impl Drop for Exported {
    fn drop(&mut self) {
        for p in &self.temp {
            let _ = fs::remove_file(p);
        }
    }
}

/// The compression of a blob, from its first bytes: `""`, `gzip`, `zstd`.
fn compression(path: &Path) -> Result<&'static str, ImageError> {
    let mut magic = [0u8; 4];
    let mut f = File::open(path).map_err(ImageError::io(format!("open {}", show(path))))?;
    let n = f
        .read(&mut magic)
        .map_err(ImageError::io(format!("read {}", show(path))))?;
    Ok(if magic[..n].starts_with(&[0x1f, 0x8b]) {
        "gzip"
    } else if magic[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zstd"
    } else {
        ""
    })
}

/// The layer media type for a compression, in docker's or OCI's naming.
fn layer_type(docker: bool, comp: &str) -> String {
    match (docker, comp) {
        (true, "gzip") => "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
        (true, _) => "application/vnd.docker.image.rootfs.diff.tar".into(),
        (false, "") => "application/vnd.oci.image.layer.v1.tar".into(),
        (false, c) => format!("application/vnd.oci.image.layer.v1.tar+{c}"),
    }
}

/// `rec` as blobs, packing the layers that have no kept blob.
pub fn export(store: &Store, rec: &ImageRecord) -> Result<Exported, ImageError> {
    let mut config = store.read_blob(&rec.config)?;
    let mut layers = Vec::new();
    let mut temp = Vec::new();
    let mut packed = Vec::new();
    for (i, l) in rec.layers.iter().enumerate() {
        let path = store.blob_path(&l.digest);
        if let Ok(meta) = fs::metadata(&path) {
            layers.push(Blob {
                digest: l.digest.clone(),
                size: meta.len(),
                media_type: l.media_type.clone(),
                path,
            });
            continue;
        }
        let tmp = store.root().join("tmp").join(temp_name("layer.tar"));
        temp.push(tmp.clone());
        let (digest, size) = pack_to(&store.layer_root(&l.diff_id), &tmp)?;
        packed.push((i, l.diff_id.clone(), digest.clone()));
        layers.push(Blob {
            digest,
            size,
            media_type: String::new(),
            path: tmp,
        });
    }
    let mut reuse = rec.manifest.clone().filter(|_| packed.is_empty());
    if !packed.is_empty() {
        config = new_diff_ids(&config, &packed)?;
        log::warn!(
            "{}: {} of its layers were imported without their blob (by an older ferry): \
             they go out as tars made from their files, so the image id changes to {}",
            rec.name,
            packed.len(),
            Digest::of(&config)
        );
    }
    let docker = rec
        .layers
        .iter()
        .any(|l| l.media_type.starts_with("application/vnd.docker"))
        || (rec.manifest.is_none() && rec.source.starts_with("docker-archive:"));
    for l in &mut layers {
        if l.media_type.is_empty() {
            l.media_type = layer_type(docker, compression(&l.path)?);
        }
    }
    // A docker manifest cannot name a zstd layer.
    let docker = docker && !layers.iter().any(|l| l.media_type.ends_with("+zstd"));
    let config_digest = Digest::of(&config);
    let kept = reuse
        .take()
        .and_then(|d| store.read_blob(&d).ok().map(|m| (m, d)));
    let (manifest, manifest_type) = match kept {
        Some((m, _)) => {
            let v: Value = serde_json::from_slice(&m)
                .map_err(|e| ImageError::format("stored manifest", e.to_string()))?;
            let t = v["mediaType"].as_str().unwrap_or(OCI_MANIFEST).to_string();
            (m, t)
        }
        None => make_manifest(docker, &config, &config_digest, &layers),
    };
    Ok(Exported {
        manifest_digest: Digest::of(&manifest),
        manifest,
        manifest_type,
        config,
        config_digest,
        layers,
        temp,
    })
}

/// A schema 2 manifest (docker's or OCI's) for these blobs.
fn make_manifest(
    docker: bool,
    config: &[u8],
    config_digest: &Digest,
    layers: &[Blob],
) -> (Vec<u8>, String) {
    let (mt, ct) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    } else {
        (OCI_MANIFEST, OCI_CONFIG)
    };
    let layers: Vec<Value> = layers
        .iter()
        .map(|l| json!({"mediaType": l.media_type, "size": l.size, "digest": l.digest.to_string()}))
        .collect();
    let m = json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": ct, "size": config.len(), "digest": config_digest.to_string()},
        "layers": layers,
    });
    (
        serde_json::to_vec(&m).expect("manifest serializes"),
        mt.to_string(),
    )
}

/// The config with the diff_ids of packed layers replaced.
fn new_diff_ids(config: &[u8], packed: &[(usize, Digest, Digest)]) -> Result<Vec<u8>, ImageError> {
    let mut v: Value = serde_json::from_slice(config)
        .map_err(|e| ImageError::format("image config", e.to_string()))?;
    let ids = v["rootfs"]["diff_ids"]
        .as_array_mut()
        .ok_or_else(|| ImageError::format("image config", "no rootfs.diff_ids"))?;
    for (i, _, new) in packed {
        if let Some(slot) = ids.get_mut(*i) {
            *slot = Value::String(new.to_string());
        }
    }
    Ok(serde_json::to_vec(&v).expect("config serializes"))
}

/// A writer that hashes and counts what goes through it.
struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
    count: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Pack the layer directory `root` into the file `out`: its digest and
/// size.
fn pack_to(root: &Path, out: &Path) -> Result<(Digest, u64), ImageError> {
    use sha2::Digest as _;
    let what = format!("pack {}", show(root));
    let f = File::create(out).map_err(ImageError::io(format!("create {}", show(out))))?;
    let mut w = Hashing {
        inner: BufWriter::with_capacity(256 * 1024, f),
        hasher: sha2::Sha256::new(),
        count: 0,
    };
    pack_layer(root, &mut w).map_err(ImageError::io(what.clone()))?;
    w.flush().map_err(ImageError::io(what))?;
    let hex: String = w
        .hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let d = Digest::from_hex(&hex).expect("sha256 hex");
    Ok((d, w.count))
}

/// Write a layer directory in overlay's format as a layer tar: a 0:0
/// character device is the whiteout `.wh.NAME`, an opaque directory gets
/// `.wh..wh..opq`; hard links stay links. Extended attributes other than
/// overlay's are not kept.
pub fn pack_layer(root: &Path, out: impl Write) -> io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    let mut links = std::collections::HashMap::new();
    pack_dir(&mut b, root, Path::new(""), &mut links)?;
    b.into_inner()?.flush()
}

fn header(meta: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    h.set_size(0);
    h
}

fn pack_dir(
    b: &mut tar::Builder<impl Write>,
    dir: &Path,
    rel: &Path,
    links: &mut std::collections::HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let opaque = xattr::lget(dir, xattr::OPAQUE)
        .ok()
        .flatten()
        .is_some_and(|v| v == b"y");
    if opaque {
        let meta = fs::symlink_metadata(dir)?;
        let mut h = header(&meta, tar::EntryType::Regular);
        h.set_mode(0o644);
        b.append_data(&mut h, rel.join(".wh..wh..opq"), io::empty())?;
    }
    let mut names: Vec<_> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let r = rel.join(&name);
        let meta = fs::symlink_metadata(&path)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            let mut h = header(&meta, tar::EntryType::Directory);
            b.append_data(&mut h, &r, io::empty())?;
            pack_dir(b, &path, &r, links)?;
        } else if ft.is_char_device() && meta.rdev() == 0 {
            let mut h = header(&meta, tar::EntryType::Regular);
            let wh = rel.join(format!(".wh.{}", name.to_string_lossy()));
            b.append_data(&mut h, wh, io::empty())?;
        } else if ft.is_symlink() {
            let mut h = header(&meta, tar::EntryType::Symlink);
            b.append_link(&mut h, &r, fs::read_link(&path)?)?;
        } else if meta.nlink() > 1
            && !ft.is_dir()
            && let Some(first) = links.get(&(meta.dev(), meta.ino()))
        {
            let mut h = header(&meta, tar::EntryType::Link);
            b.append_link(&mut h, &r, first)?;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                links.insert((meta.dev(), meta.ino()), r.clone());
            }
            let mut h = header(&meta, tar::EntryType::Regular);
            h.set_size(meta.len());
            b.append_data(&mut h, &r, File::open(&path)?)?;
        } else {
            let kind = if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            };
            let mut h = header(&meta, kind);
            let dev = meta.rdev();
            h.set_device_major(nix::sys::stat::major(dev) as u32)?;
            h.set_device_minor(nix::sys::stat::minor(dev) as u32)?;
            b.append_data(&mut h, &r, io::empty())?;
        }
    }
    Ok(())
}
