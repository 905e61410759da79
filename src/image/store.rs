//! The content-addressed image store (layout in the module doc of
//! `image`). Imports hold a shared lock on the store for their whole run,
//! `rm` an exclusive one to collect what no image or bundle uses any more;
//! each layer is extracted under its own lock into `tmp/` and renamed into
//! place when complete, so a layer directory that exists is whole and
//! verified, and two imports of the same layer extract it once.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::{Mode, fchmod, fstat};
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::extract::{Report, remove_tree};
use super::{ImageError, show, temp_name};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the blob as shipped (compressed).
    pub digest: Digest,
    /// Digest of the uncompressed tar: the layer directory's key.
    pub diff_id: Digest,
    /// Size of the blob.
    pub size: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    pub name: String,
    /// The reference it was imported from.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Digest>,
    /// The config's digest: the image id.
    pub config: Digest,
    pub layers: Vec<LayerRecord>,
    pub imported: String,
}

impl ImageRecord {
    pub fn id(&self) -> &str {
        self.config.hex()
    }
}

/// `layers/HEX/layer.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerInfo {
    pub diff_id: Digest,
    pub report: Report,
}

#[derive(Serialize, Deserialize)]
struct BundleRef {
    bundle: PathBuf,
    layers: Vec<Digest>,
}

pub struct Store {
    root: PathBuf,
}

/// What `rm` removed besides the image record.
#[derive(Debug, Default)]
pub struct Collected {
    pub layers: usize,
    pub blobs: usize,
}

/// Image names go into file names: any byte but `[A-Za-z0-9._-]` is
/// percent-encoded.
fn encode(name: &str) -> String {
    let mut s = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

pub fn check_name(name: &str) -> Result<(), ImageError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('-')
        && name.chars().all(|c| !c.is_control() && !c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(ImageError::Name(name.into()))
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(temp_name(".tmp"));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map_err(ImageError::io(format!("write {}", show(path))))
}

impl Store {
    /// `/var/lib/ferry` for root; `$XDG_DATA_HOME/ferry` (or
    /// `~/.local/share/ferry`) for a rootless user.
    pub fn default_root() -> PathBuf {
        if !crate::userns::is_rootless() {
            return PathBuf::from("/var/lib/ferry");
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("ferry");
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
        PathBuf::from(home).join(".local/share/ferry")
    }

    /// Open (or make) the store at `root`. The root and every directory
    /// below it that ferry makes are private ([`private_dir`]): layers hold
    /// setuid files and device nodes of their owners, which no other host
    /// user may reach.
    pub fn open(root: &Path) -> Result<Store, ImageError> {
        private_dir(root)?;
        for sub in [
            "blobs",
            "blobs/sha256",
            "layers",
            "images",
            "refs",
            "tmp",
            "bundles",
        ] {
            private_dir(&root.join(sub))?;
        }
        let root = fs::canonicalize(root).map_err(ImageError::io(show(root)))?;
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn flock(&self, path: &Path, exclusive: bool) -> Result<Flock<File>, ImageError> {
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(ImageError::io(format!("open {}", show(path))))?;
        let arg = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        Flock::lock(f, arg).map_err(|(_, e)| ImageError::Sys {
            what: format!("lock {}", show(path)),
            source: e,
        })
    }

    /// Held by imports and bundles (shared) and by removals (exclusive).
    pub fn lock(&self, exclusive: bool) -> Result<Flock<File>, ImageError> {
        self.flock(&self.root.join("lock"), exclusive)
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn put_blob(&self, d: &Digest, data: &[u8]) -> Result<(), ImageError> {
        let p = self.blob_path(d);
        if p.exists() {
            return Ok(());
        }
        write_atomic(&p, data)
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let p = self.blob_path(d);
        let data = fs::read(&p).map_err(ImageError::io(format!("read {}", show(&p))))?;
        if Digest::of(&data) != *d {
            return Err(ImageError::format(
                show(&p),
                "blob does not match its digest",
            ));
        }
        Ok(data)
    }

    pub fn layer_dir(&self, diff: &Digest) -> PathBuf {
        self.root.join("layers").join(diff.hex())
    }

    /// The extracted tree of a layer: an overlay lower directory.
    pub fn layer_root(&self, diff: &Digest) -> PathBuf {
        self.layer_dir(diff).join("root")
    }

    pub fn layer_info(&self, diff: &Digest) -> Result<Option<LayerInfo>, ImageError> {
        let p = self.layer_dir(diff).join("layer.json");
        match fs::read(&p) {
            Ok(data) => serde_json::from_slice(&data)
                .map(Some)
                .map_err(|e| ImageError::format(show(&p), e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io(show(&p))(e)),
        }
    }

    /// The layer `diff`, extracted by `fill` (into the empty directory it
    /// is given) unless the store has it already.
    pub fn ensure_layer(
        &self,
        diff: &Digest,
        fill: impl FnOnce(&Path) -> Result<Report, ImageError>,
    ) -> Result<LayerInfo, ImageError> {
        if let Some(info) = self.layer_info(diff)? {
            return Ok(info);
        }
        let lock_path = self
            .root
            .join("layers")
            .join(format!("{}.lock", diff.hex()));
        let _lock = self.flock(&lock_path, true)?;
        if let Some(info) = self.layer_info(diff)? {
            return Ok(info);
        }
        let tmp = self.root.join("tmp").join(temp_name(diff.short()));
        let tmp_root = tmp.join("root");
        fs::create_dir_all(&tmp_root).map_err(ImageError::io(format!("create {}", show(&tmp))))?;
        let res = fill(&tmp_root).and_then(|report| {
            let info = LayerInfo {
                diff_id: diff.clone(),
                report,
            };
            let data = serde_json::to_vec_pretty(&info).expect("layer info serializes");
            write_atomic(&tmp.join("layer.json"), &data)?;
            fs::rename(&tmp, self.layer_dir(diff))
                .map_err(ImageError::io(format!("store layer {}", diff.short())))?;
            Ok(info)
        });
        if res.is_err() {
            let _ = remove_tree(&tmp);
        }
        res
    }

    fn image_path(&self, name: &str) -> PathBuf {
        self.root
            .join("images")
            .join(format!("{}.json", encode(name)))
    }

    pub fn save_image(&self, rec: &ImageRecord) -> Result<(), ImageError> {
        check_name(&rec.name)?;
        let data = serde_json::to_vec_pretty(rec).expect("image record serializes");
        write_atomic(&self.image_path(&rec.name), &data)
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let dir = self.root.join("images");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(ImageError::io(show(&dir)))? {
            let p = e.map_err(ImageError::io(show(&dir)))?.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let data = fs::read(&p).map_err(ImageError::io(show(&p)))?;
            match serde_json::from_slice(&data) {
                Ok(r) => out.push(r),
                Err(e) => log::warn!("skipping {}: {e}", show(&p)),
            }
        }
        out.sort_by(|a: &ImageRecord, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// An image by name (`NAME` also finds `NAME:latest`) or id prefix.
    pub fn find(&self, name: &str) -> Result<ImageRecord, ImageError> {
        let all = self.images()?;
        if let Some(r) = all.iter().find(|r| r.name == name) {
            return Ok(r.clone());
        }
        // Docker's short forms: `NAME` is `NAME:latest`, `busybox` is
        // `docker.io/library/busybox`.
        let tagged = if name.rsplit('/').next().is_some_and(|l| l.contains(':')) {
            name.to_string()
        } else {
            format!("{name}:latest")
        };
        for full in [
            tagged.clone(),
            format!("docker.io/{tagged}"),
            format!("docker.io/library/{tagged}"),
        ] {
            if let Some(r) = all.iter().find(|r| r.name == full) {
                return Ok(r.clone());
            }
        }
        let prefix = name.strip_prefix("sha256:").unwrap_or(name);
        if prefix.len() >= 6 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<&ImageRecord> =
                all.iter().filter(|r| r.id().starts_with(prefix)).collect();
            if let [one] = hits[..] {
                return Ok(one.clone());
            }
            if hits.len() > 1 && hits.iter().all(|h| h.config == hits[0].config) {
                return Ok(hits[0].clone());
            }
        }
        Err(ImageError::NotFound(name.into()))
    }

    /// Remove an image, then every layer and blob nothing uses any more.
    pub fn remove_image(&self, name: &str) -> Result<(ImageRecord, Collected), ImageError> {
        let _lock = self.lock(true)?;
        let rec = self.find(name)?;
        let p = self.image_path(&rec.name);
        fs::remove_file(&p).map_err(ImageError::io(format!("remove {}", show(&p))))?;
        let c = self.collect()?;
        Ok((rec, c))
    }

    fn ref_path(&self, bundle: &Path) -> PathBuf {
        let key = Digest::of(bundle.as_os_str().as_encoded_bytes());
        self.root
            .join("refs")
            .join(format!("{}.json", &key.hex()[..32]))
    }

    /// Record that `bundle` uses `layers` (until the bundle is gone).
    pub fn add_ref(&self, bundle: &Path, layers: &[Digest]) -> Result<(), ImageError> {
        let r = BundleRef {
            bundle: bundle.to_path_buf(),
            layers: layers.to_vec(),
        };
        let data = serde_json::to_vec_pretty(&r).expect("ref serializes");
        write_atomic(&self.ref_path(bundle), &data)
    }

    pub fn remove_ref(&self, bundle: &Path) {
        let _ = fs::remove_file(self.ref_path(bundle));
    }

    /// Remove what no image and no existing bundle uses; needs the
    /// exclusive lock (so no import is running).
    fn collect(&self) -> Result<Collected, ImageError> {
        let mut layers = std::collections::HashSet::new();
        let mut blobs = std::collections::HashSet::new();
        for r in self.images()? {
            layers.extend(r.layers.iter().map(|l| l.diff_id.hex().to_string()));
            blobs.extend(r.layers.iter().map(|l| l.digest.hex().to_string()));
            blobs.insert(r.config.hex().to_string());
            if let Some(m) = &r.manifest {
                blobs.insert(m.hex().to_string());
            }
            // Layers ferry built keep their tar as a blob.
            blobs.extend(r.layers.iter().map(|l| l.digest.hex().to_string()));
        }
        for (diff, blob) in self.cached_layers() {
            layers.insert(diff);
            blobs.insert(blob);
        }
        let refs = self.root.join("refs");
        for e in fs::read_dir(&refs)
            .map_err(ImageError::io(show(&refs)))?
            .flatten()
        {
            let live = fs::read(e.path())
                .ok()
                .and_then(|d| serde_json::from_slice::<BundleRef>(&d).ok())
                .filter(|r| r.bundle.join("config.json").exists());
            match live {
                Some(r) => layers.extend(r.layers.iter().map(|l| l.hex().to_string())),
                None => {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let mut c = Collected::default();
        let ldir = self.root.join("layers");
        for e in fs::read_dir(&ldir)
            .map_err(ImageError::io(show(&ldir)))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let hex = name.trim_end_matches(".lock");
            if layers.contains(hex) {
                continue;
            }
            if name.ends_with(".lock") {
                let _ = fs::remove_file(e.path());
                continue;
            }
            // Out of sight first, so a half-removed layer is never used.
            let gone = self.root.join("tmp").join(temp_name(&name));
            fs::rename(e.path(), &gone).map_err(ImageError::io(format!("remove layer {name}")))?;
            remove_tree(&gone).map_err(ImageError::sys(format!("remove layer {name}")))?;
            c.layers += 1;
        }
        let bdir = self.root.join("blobs/sha256");
        for e in fs::read_dir(&bdir)
            .map_err(ImageError::io(show(&bdir)))?
            .flatten()
        {
            if !blobs.contains(&*e.file_name().to_string_lossy()) {
                let _ = fs::remove_file(e.path());
                c.blobs += 1;
            }
        }
        // Left by interrupted imports (none runs: we hold the lock).
        let tdir = self.root.join("tmp");
        for e in fs::read_dir(&tdir)
            .map_err(ImageError::io(show(&tdir)))?
            .flatten()
        {
            let _ = remove_tree(&e.path());
        }
        Ok(c)
    }
}

/// Mode of the store's directories and of bundles: the owner only.
/// Rootless, the owner is also root of the user namespaces that extract
/// layers and mount them (0 maps to the caller), so they still get in;
/// the subordinate ids never need to: container processes reach layer files
/// through overlayfs, which checks the lower layers with the mounter's
/// credentials.
const PRIVATE: u32 = 0o700;

/// Make `dir` (and its missing parents, which get the umask's mode) a
/// directory only its owner can enter: created 0700, or an existing one
/// (a store or bundle made by an older ferry) tightened to 0700. A
/// directory owned by someone else is refused: its owner could change it
/// under us.
pub(crate) fn private_dir(dir: &Path) -> Result<(), ImageError> {
    let what = || format!("create {}", show(dir));
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(ImageError::io(what()))?;
    }
    match fs::DirBuilder::new().mode(PRIVATE).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(ImageError::io(what())(e)),
    }
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(ImageError::sys(format!("open {}", show(dir))))?;
    let st = fstat(&fd).map_err(ImageError::sys(format!("stat {}", show(dir))))?;
    let me = nix::unistd::geteuid().as_raw();
    if st.st_uid != me {
        return Err(ImageError::NotOwned {
            path: show(dir),
            owner: st.st_uid,
        });
    }
    if st.st_mode & 0o077 != 0 {
        fchmod(&fd, Mode::from_bits_truncate(PRIVATE))
            .map_err(ImageError::sys(format!("make {} private", show(dir))))?;
    }
    Ok(())
}

impl Store {
    /// The layers (diff_id and blob hex) the build cache (`cache/*.json`,
    /// each with a `layer` record) keeps alive.
    fn cached_layers(&self) -> Vec<(String, String)> {
        let Ok(rd) = fs::read_dir(self.root.join("cache")) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let v: serde_json::Value =
                    serde_json::from_slice(&fs::read(e.path()).ok()?).ok()?;
                let l: LayerRecord = serde_json::from_value(v["layer"].clone()).ok()?;
                Some((l.diff_id.hex().to_string(), l.digest.hex().to_string()))
            })
            .collect()
    }
}
