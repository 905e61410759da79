//! Where an image comes from: an OCI image layout directory, or a tar
//! archive (an OCI archive, or a docker-archive) read in place by offset,
//! and the choice of one image in it (by tag, then by platform).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::digest::{Digest, read_verified};
use super::extract::clean;
use super::registry::{Client, RegistryRef};
use super::tar::{self, Kind};
use super::{ImageError, show};

/// Manifests, indexes and configs are small; bigger ones are refused.
const MAX_JSON: u64 = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Oci,
    OciArchive,
    DockerArchive,
}

#[derive(Debug, Clone)]
pub struct Reference {
    pub transport: Transport,
    pub path: PathBuf,
    pub tag: Option<String>,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, ImageError> {
        let (transport, rest) = if let Some(r) = s.strip_prefix("oci:") {
            (Transport::Oci, r)
        } else if let Some(r) = s.strip_prefix("oci-archive:") {
            (Transport::OciArchive, r)
        } else if let Some(r) = s.strip_prefix("docker-archive:") {
            (Transport::DockerArchive, r)
        } else if s.starts_with("docker://") {
            return Err(ImageError::Select(format!(
                "{s}: name the registry: docker://HOST[:PORT]/NAME[:TAG]"
            )));
        } else {
            return Err(ImageError::Reference(s.into()));
        };
        if rest.is_empty() {
            return Err(ImageError::Reference(s.into()));
        }
        // PATH[:TAG]; a path that exists as given wins (it may hold a ':').
        let (path, tag) = match rest.rsplit_once(':') {
            Some((p, t)) if !Path::new(rest).exists() && !t.contains('/') && !p.is_empty() => {
                (p, Some(t.to_string()))
            }
            _ => (rest, None),
        };
        Ok(Reference {
            transport,
            path: PathBuf::from(path),
            tag: tag.filter(|t| !t.is_empty()),
        })
    }
}

pub enum Member {
    File { offset: u64, size: u64 },
    Link(String),
}

/// Files of an image source, by their path inside it.
pub enum Source {
    Dir(PathBuf),
    Archive {
        file: PathBuf,
        members: HashMap<String, Member>,
    },
    /// A registry repository: only `blobs/sha256/HEX` paths.
    Registry {
        client: Client,
        repo: String,
    },
}

fn norm(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `target` of a symlink in directory `dir`, made a plain archive path.
fn join_link(dir: &Path, target: &str) -> Option<String> {
    let mut out: Vec<String> = if target.starts_with('/') {
        Vec::new()
    } else {
        dir.iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect()
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c.to_string()),
        }
    }
    Some(out.join("/"))
}

impl Source {
    pub fn open(r: &Reference) -> Result<Source, ImageError> {
        match r.transport {
            Transport::Oci => {
                if !r.path.is_dir() {
                    return Err(ImageError::format(
                        show(&r.path),
                        "not an OCI layout directory",
                    ));
                }
                Ok(Source::Dir(r.path.clone()))
            }
            _ => Source::index_archive(&r.path),
        }
    }

    /// Index the members of a tar archive (headers only; data is skipped).
    fn index_archive(path: &Path) -> Result<Source, ImageError> {
        let f = File::open(path).map_err(ImageError::io(format!("open {}", show(path))))?;
        let mut t = tar::Reader::new(BufReader::with_capacity(64 * 1024, f));
        let mut members = HashMap::new();
        while let Some(e) = t.next_entry()? {
            let Some(name) = clean(&e.path) else {
                log::warn!(
                    "{}: ignoring member {:?} with a `..`",
                    show(path),
                    String::from_utf8_lossy(&e.path)
                );
                continue;
            };
            let key = norm(&name);
            let m = match e.kind {
                Kind::File => Member::File {
                    offset: e.offset,
                    size: e.size,
                },
                Kind::Symlink => {
                    let dir = name.parent().unwrap_or(Path::new(""));
                    match join_link(dir, &String::from_utf8_lossy(&e.link)) {
                        Some(t) => Member::Link(t),
                        None => continue,
                    }
                }
                Kind::HardLink => match clean(&e.link) {
                    Some(t) => Member::Link(norm(&t)),
                    None => continue,
                },
                _ => continue,
            };
            members.insert(key, m);
        }
        Ok(Source::Archive {
            file: path.to_path_buf(),
            members,
        })
    }

    pub fn exists(&self, rel: &str) -> bool {
        match self {
            Source::Dir(d) => clean(rel.as_bytes()).is_some_and(|p| d.join(p).is_file()),
            Source::Archive { members, .. } => self.find(members, rel).is_some(),
            Source::Registry { .. } => false,
        }
    }

    fn find(&self, members: &HashMap<String, Member>, rel: &str) -> Option<(u64, u64)> {
        let mut key = norm(&clean(rel.as_bytes())?);
        for _ in 0..16 {
            match members.get(&key)? {
                Member::File { offset, size } => return Some((*offset, *size)),
                Member::Link(t) => key = t.clone(),
            }
        }
        None
    }

    /// Open the file at `rel`; its reader and size (if known).
    pub fn open_file(&self, rel: &str) -> Result<(Box<dyn Read + Send>, Option<u64>), ImageError> {
        let missing = || ImageError::format(rel, "not in the image source");
        match self {
            Source::Dir(d) => {
                let p = d.join(clean(rel.as_bytes()).ok_or_else(missing)?);
                let f = File::open(&p).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => missing(),
                    _ => ImageError::Io {
                        what: format!("open {}", show(&p)),
                        source: e,
                    },
                })?;
                let size = f.metadata().map_err(ImageError::io(show(&p)))?.len();
                Ok((Box::new(f), Some(size)))
            }
            Source::Archive { file, members } => {
                let (offset, size) = self.find(members, rel).ok_or_else(missing)?;
                let mut f = File::open(file).map_err(ImageError::io(show(file)))?;
                f.seek(SeekFrom::Start(offset))
                    .map_err(ImageError::io(show(file)))?;
                Ok((Box::new(f.take(size)), Some(size)))
            }
            Source::Registry { client, repo } => {
                let hex = rel.strip_prefix("blobs/sha256/").ok_or_else(missing)?;
                let d = Digest::from_hex(hex).ok_or_else(missing)?;
                client.blob(repo, &d)
            }
        }
    }

    fn read_json(
        &self,
        rel: &str,
        digest: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<(Vec<u8>, Digest, Value), ImageError> {
        let (r, _) = self.open_file(rel)?;
        let (data, d) = read_verified(r, rel, digest, size, MAX_JSON)?;
        let v: Value = serde_json::from_slice(&data)
            .map_err(|e| ImageError::format(rel, format!("bad JSON: {e}")))?;
        Ok((data, d, v))
    }
}

/// A layer as the source has it.
#[derive(Debug, Clone)]
pub struct LayerSrc {
    pub path: String,
    pub digest: Option<Digest>,
    pub size: Option<u64>,
    pub media_type: String,
}

/// The image chosen in a source.
pub struct Resolved {
    pub manifest: Option<(Vec<u8>, Digest)>,
    pub config: (Vec<u8>, Digest, Value),
    pub layers: Vec<LayerSrc>,
    /// The name the source gives the image, if any.
    pub name: Option<String>,
}

pub fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

const CONFIG_TYPES: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

pub struct Desc {
    media_type: String,
    digest: Digest,
    size: u64,
}

pub fn desc(v: &Value, what: &str) -> Result<Desc, ImageError> {
    let digest = v["digest"]
        .as_str()
        .ok_or_else(|| ImageError::format(what, "descriptor has no digest"))?;
    Ok(Desc {
        media_type: v["mediaType"].as_str().unwrap_or("").to_string(),
        digest: Digest::parse(digest)?,
        size: v["size"]
            .as_u64()
            .ok_or_else(|| ImageError::format(what, "descriptor has no size"))?,
    })
}

fn ref_name(v: &Value) -> Option<&str> {
    v["annotations"]["org.opencontainers.image.ref.name"].as_str()
}

fn platform_of(v: &Value) -> String {
    let p = &v["platform"];
    let mut s = format!(
        "{}/{}",
        p["os"].as_str().unwrap_or("?"),
        p["architecture"].as_str().unwrap_or("?")
    );
    if let Some(var) = p["variant"].as_str() {
        s.push('/');
        s.push_str(var);
    }
    s
}

/// Pick the entry of an index for `platform` (`os/arch[/variant]`).
pub fn pick_platform<'a>(list: &'a [Value], platform: &str) -> Result<&'a Value, ImageError> {
    let want: Vec<&str> = platform.split('/').collect();
    let found = list.iter().find(|m| {
        let got = platform_of(m);
        let got: Vec<&str> = got.split('/').collect();
        got.len() >= 2 && got[..2] == want[..2.min(want.len())] && {
            want.len() < 3 || got.get(2) == want.get(2)
        }
    });
    if let Some(m) = found {
        return Ok(m);
    }
    if let [only] = list
        && only.get("platform").is_none()
    {
        return Ok(only);
    }
    let have: Vec<String> = list.iter().map(platform_of).collect();
    Err(ImageError::Select(format!(
        "no image for platform {platform} (there are: {})",
        have.join(", ")
    )))
}

/// Follow indexes (by platform) down to an image manifest.
fn descend(
    src: &Source,
    mut d: Desc,
    platform: &str,
) -> Result<(Vec<u8>, Digest, Value), ImageError> {
    for _ in 0..8 {
        let (data, digest, v) =
            src.read_json(&blob_path(&d.digest), Some(&d.digest), Some(d.size))?;
        let is_index = INDEX_TYPES.contains(&d.media_type.as_str()) || v.get("manifests").is_some();
        if !is_index {
            return Ok((data, digest, v));
        }
        let list = v["manifests"].as_array().cloned().unwrap_or_default();
        d = desc(pick_platform(&list, platform)?, "index")?;
    }
    Err(ImageError::Select("indexes nested too deep".into()))
}

/// Choose the image of an OCI layout (directory or archive).
pub fn resolve_oci(
    src: &Source,
    tag: Option<&str>,
    platform: &str,
) -> Result<Resolved, ImageError> {
    if !src.exists("oci-layout") {
        log::warn!("the image source has no oci-layout file");
    }
    let (_, _, index) = src.read_json("index.json", None, None)?;
    let list = index["manifests"].as_array().cloned().unwrap_or_default();
    let tags: Vec<&str> = list.iter().filter_map(ref_name).collect();
    let chosen: Desc = match tag {
        Some(t) => {
            let m = list
                .iter()
                .find(|m| ref_name(m).is_some_and(|r| r == t || r.ends_with(&format!(":{t}"))))
                .ok_or_else(|| {
                    ImageError::Select(format!(
                        "no tag {t:?} in the layout (tags: {})",
                        tags.join(", ")
                    ))
                })?;
            desc(m, "index.json")?
        }
        None if list.len() == 1 => desc(&list[0], "index.json")?,
        None if tags.is_empty() && !list.is_empty() => {
            desc(pick_platform(&list, platform)?, "index.json")?
        }
        None => {
            let latest = list.iter().find(|m| ref_name(m) == Some("latest"));
            match latest {
                Some(m) => desc(m, "index.json")?,
                None => {
                    return Err(ImageError::Select(format!(
                        "the layout holds {} images: give a tag (tags: {})",
                        list.len(),
                        tags.join(", ")
                    )));
                }
            }
        }
    };
    let chosen_tag = tag.map(str::to_string).or_else(|| {
        list.iter()
            .find(|m| m["digest"].as_str() == Some(&chosen.digest.to_string()))
            .and_then(ref_name)
            .map(str::to_string)
    });
    let (mdata, mdigest, manifest) = descend(src, chosen, platform)?;
    from_manifest(src, (mdata, mdigest), &manifest, chosen_tag)
}

/// The config and layers of an image manifest.
pub fn from_manifest(
    src: &Source,
    manifest_blob: (Vec<u8>, Digest),
    manifest: &Value,
    name: Option<String>,
) -> Result<Resolved, ImageError> {
    let cdesc = desc(&manifest["config"], "manifest config")?;
    if !cdesc.media_type.is_empty() && !CONFIG_TYPES.contains(&cdesc.media_type.as_str()) {
        return Err(ImageError::Select(format!(
            "not a container image (config media type {})",
            cdesc.media_type
        )));
    }
    let config = src.read_json(
        &blob_path(&cdesc.digest),
        Some(&cdesc.digest),
        Some(cdesc.size),
    )?;
    let mut layers = Vec::new();
    for l in manifest["layers"].as_array().into_iter().flatten() {
        let d = desc(l, "manifest layer")?;
        if !d.media_type.is_empty() && !LAYER_TYPES.contains(&d.media_type.as_str()) {
            return Err(ImageError::MediaType(d.media_type));
        }
        layers.push(LayerSrc {
            path: blob_path(&d.digest),
            digest: Some(d.digest),
            size: Some(d.size),
            media_type: d.media_type,
        });
    }
    Ok(Resolved {
        manifest: Some(manifest_blob),
        config,
        layers,
        name,
    })
}

/// Choose the image of a docker-archive (`docker save`): `manifest.json`
/// lists each image's config and layer tars (legacy `ID/layer.tar` members
/// may be symlinks to one another).
pub fn resolve_docker(src: &Source, tag: Option<&str>) -> Result<Resolved, ImageError> {
    let (_, _, list) = src.read_json("manifest.json", None, None)?;
    let list = list.as_array().cloned().unwrap_or_default();
    let tags_of = |m: &Value| -> Vec<String> {
        m["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect()
    };
    let entry = match tag {
        Some(t) => list.iter().find(|m| {
            tags_of(m)
                .iter()
                .any(|r| r == t || r.ends_with(&format!(":{t}")))
        }),
        None if list.len() == 1 => list.first(),
        None => None,
    };
    let Some(entry) = entry else {
        let all: Vec<String> = list.iter().flat_map(tags_of).collect();
        return Err(ImageError::Select(format!(
            "choose one of the {} images of the archive by tag (tags: {})",
            list.len(),
            all.join(", ")
        )));
    };
    let cpath = entry["Config"]
        .as_str()
        .ok_or_else(|| ImageError::format("manifest.json", "no Config"))?;
    // The config's name is its digest (ID.json or blobs/sha256/ID).
    let stem = Path::new(cpath)
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".json").to_string())
        .unwrap_or_default();
    let cdigest = Digest::from_hex(&stem);
    let config = src.read_json(cpath, cdigest.as_ref(), None)?;
    let mut layers = Vec::new();
    for l in entry["Layers"].as_array().into_iter().flatten() {
        let p = l
            .as_str()
            .ok_or_else(|| ImageError::format("manifest.json", "bad Layers"))?;
        layers.push(LayerSrc {
            path: p.to_string(),
            digest: None,
            size: None,
            media_type: String::new(),
        });
    }
    Ok(Resolved {
        manifest: None,
        config,
        layers,
        name: tags_of(entry).into_iter().next(),
    })
}

/// Choose the image of a registry repository: the manifest (or index, then
/// the manifest for `platform`) by tag or digest, verified.
pub fn resolve_registry(
    src: &Source,
    r: &RegistryRef,
    platform: &str,
) -> Result<Resolved, ImageError> {
    let Source::Registry { client, repo } = src else {
        return Err(ImageError::Select("not a registry".into()));
    };
    let pinned = r
        .reference
        .contains(':')
        .then(|| Digest::parse(&r.reference))
        .transpose()?;
    let (mut data, mut digest, mut v) = client.manifest(repo, &r.reference, pinned.as_ref())?;
    for _ in 0..4 {
        if v.get("manifests").is_none() {
            return from_manifest(src, (data, digest), &v, Some(r.name()));
        }
        let list = v["manifests"].as_array().cloned().unwrap_or_default();
        let d = desc(pick_platform(&list, platform)?, "index")?;
        (data, digest, v) = client.manifest(repo, &d.digest.to_string(), Some(&d.digest))?;
        if data.len() as u64 != d.size {
            return Err(ImageError::SizeMismatch {
                what: format!("manifest {}", d.digest),
                expected: d.size,
                actual: data.len() as u64,
            });
        }
    }
    Err(ImageError::Select("indexes nested too deep".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse() {
        let r = Reference::parse("oci:/nonexistent/dir:v1").unwrap();
        assert_eq!(r.transport, Transport::Oci);
        assert_eq!(r.path, Path::new("/nonexistent/dir"));
        assert_eq!(r.tag.as_deref(), Some("v1"));
        let r = Reference::parse("docker-archive:/x/a.tar").unwrap();
        assert_eq!(r.tag, None);
        let r = Reference::parse("oci-archive:img.tar:latest").unwrap();
        assert_eq!(r.transport, Transport::OciArchive);
        assert!(Reference::parse("busybox").is_err());
    }

    #[test]
    fn links_stay_in_the_archive() {
        assert_eq!(
            join_link(Path::new("a/b"), "../c/layer.tar").unwrap(),
            "a/c/layer.tar"
        );
        assert_eq!(join_link(Path::new("a"), "/x").unwrap(), "x");
        assert!(join_link(Path::new("a"), "../../x").is_none());
    }
}
