//! `ferry image save` and `ferry image load`: an image of the store as an
//! OCI archive (an OCI image layout in a tar: `oci-layout`, `index.json`,
//! `blobs/sha256/...`) or a docker-archive (`docker save`'s format:
//! `manifest.json`, the config and one uncompressed tar per layer, what
//! `docker load` and `podman load` read), and back.
//!
//! Archives are written with the `tar` crate (plain ustar/GNU headers for
//! regular files); they are read by ferry's own reader
//! ([`super::tar`]) through [`super::source`], as every import is.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde_json::json;

use super::export::{Blob, Exported, export};
use super::import::{ImportOptions, Zstd, import};
use super::source::{Reference, Source, Transport};
use super::store::{ImageRecord, Store};
use super::{ImageError, show, temp_name};

/// The archive formats of `save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OciArchive,
    DockerArchive,
}

/// Save the image `name` to the file `out`, written whole to a temporary
/// file beside it and renamed (a failed save leaves nothing).
pub fn save(store: &Store, name: &str, out: &Path, format: Format) -> Result<(), ImageError> {
    // Held to the end: `rm` must not collect the blobs being written.
    let _lock = store.lock(false)?;
    let rec = store.find(name)?;
    let image = export(store, &rec)?;
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty());
    let tmp = dir.unwrap_or(Path::new(".")).join(temp_name(".ferry-save"));
    let res = (|| {
        let f = File::create(&tmp).map_err(ImageError::io(format!("create {}", show(&tmp))))?;
        let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 20, f));
        match format {
            Format::OciArchive => write_oci(&mut b, &rec, &image)?,
            Format::DockerArchive => write_docker(&mut b, store, &rec, &image)?,
        }
        let w = b.into_inner().map_err(ImageError::io(show(&tmp)))?;
        let f = w
            .into_inner()
            .map_err(|e| ImageError::io(show(&tmp))(e.into_error()))?;
        f.sync_all().map_err(ImageError::io(show(&tmp)))?;
        fs::rename(&tmp, out).map_err(ImageError::io(format!("write {}", show(out))))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

type Tar = tar::Builder<BufWriter<File>>;

fn put(b: &mut Tar, path: &str, size: u64, data: impl Read) -> Result<(), ImageError> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    b.append_data(&mut h, path, data)
        .map_err(ImageError::io(format!("write {path} into the archive")))
}

fn put_bytes(b: &mut Tar, path: &str, data: &[u8]) -> Result<(), ImageError> {
    put(b, path, data.len() as u64, data)
}

fn put_file(b: &mut Tar, path: &str, blob: &Blob) -> Result<(), ImageError> {
    let f = File::open(&blob.path).map_err(ImageError::io(format!("open {}", show(&blob.path))))?;
    put(b, path, blob.size, BufReader::with_capacity(1 << 20, f))
}

/// The tag part of an image name (`latest` if it has none).
fn tag_of(name: &str) -> &str {
    match name.rsplit_once(':') {
        Some((_, t)) if !t.contains('/') => t,
        _ => "latest",
    }
}

fn write_oci(b: &mut Tar, rec: &ImageRecord, image: &Exported) -> Result<(), ImageError> {
    put_bytes(b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": image.manifest_type,
            "digest": image.manifest_digest.to_string(),
            "size": image.manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag_of(&rec.name)},
        }],
    });
    put_bytes(
        b,
        "index.json",
        &serde_json::to_vec(&index).expect("index serializes"),
    )?;
    let blob = |d: &super::Digest| format!("blobs/sha256/{}", d.hex());
    put_bytes(b, &blob(&image.manifest_digest), &image.manifest)?;
    put_bytes(b, &blob(&image.config_digest), &image.config)?;
    let mut seen = std::collections::HashSet::new();
    for l in &image.layers {
        if seen.insert(l.digest.clone()) {
            put_file(b, &blob(&l.digest), l)?;
        }
    }
    Ok(())
}

/// A name `docker load` accepts as a tag: `NAME:TAG`.
fn repo_tag(name: &str) -> String {
    match name.rsplit_once(':') {
        Some((_, t)) if !t.contains('/') => name.to_string(),
        _ => format!("{name}:latest"),
    }
}

fn write_docker(
    b: &mut Tar,
    store: &Store,
    rec: &ImageRecord,
    image: &Exported,
) -> Result<(), ImageError> {
    let config_name = format!("{}.json", image.config_digest.hex());
    put_bytes(b, &config_name, &image.config)?;
    let mut names = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in &image.layers {
        let tar = uncompressed(store, l)?;
        let name = format!("{}.tar", tar.digest.hex());
        if seen.insert(name.clone()) {
            put_file(b, &name, &tar)?;
        }
        if tar.path != l.path {
            let _ = fs::remove_file(&tar.path);
        }
        names.push(name);
    }
    let manifest = json!([{
        "Config": config_name,
        "RepoTags": [repo_tag(&rec.name)],
        "Layers": names,
    }]);
    put_bytes(
        b,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("manifest serializes"),
    )
}

/// A layer blob as an uncompressed tar: the blob itself, or a temporary
/// file of the store it was decompressed into.
fn uncompressed(store: &Store, l: &Blob) -> Result<Blob, ImageError> {
    let what = format!("decompress layer {}", l.digest.short());
    let f = File::open(&l.path).map_err(ImageError::io(format!("open {}", show(&l.path))))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let magic = io::BufRead::fill_buf(&mut r).map_err(ImageError::io(what.clone()))?;
    let dec: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(Zstd::new(r))
    } else {
        return Ok(l.clone());
    };
    let tmp = store.root().join("tmp").join(temp_name("layer.tar"));
    let mut v = super::digest::Verify::new(dec, what.clone(), u64::MAX - 1);
    let res = File::create(&tmp).and_then(|f| {
        let mut w = BufWriter::with_capacity(1 << 20, f);
        io::copy(&mut v, &mut w)?;
        w.flush()
    });
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(ImageError::io(what)(e));
    }
    let (digest, size) = v.finish()?;
    Ok(Blob {
        digest,
        size,
        media_type: String::new(),
        path: tmp,
    })
}

/// `ferry image load FILE`: import an OCI archive or a docker-archive,
/// whichever `FILE` is.
pub fn load(store: &Store, file: &Path, o: &ImportOptions) -> Result<ImageRecord, ImageError> {
    let probe = Reference {
        transport: Transport::OciArchive,
        path: file.to_path_buf(),
        tag: None,
    };
    let src = Source::open(&probe).map_err(|e| match e {
        ImageError::Tar(m) => ImageError::format(show(file), format!("not an image archive ({m})")),
        e => e,
    })?;
    let kind = if src.exists("index.json") {
        "oci-archive"
    } else if src.exists("manifest.json") {
        "docker-archive"
    } else {
        return Err(ImageError::format(
            show(file),
            "neither an OCI archive (index.json) nor a docker-archive (manifest.json)",
        ));
    };
    drop(src);
    import(store, &format!("{kind}:{}", file.display()), o)
}
