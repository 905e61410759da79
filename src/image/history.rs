//! `ferry image history`: the config's history (one entry per build step;
//! the non-empty ones map to the layers in order), plus the files a later
//! layer deletes (a whiteout, or an opaque directory) that an earlier layer
//! still ships: bytes every pull pays for, and maybe secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::extract::is_whiteout;
use super::store::{ImageRecord, Store};
use super::{ImageError, show, xattr};

#[derive(Debug, Serialize)]
pub struct Step {
    pub created: Option<String>,
    pub created_by: String,
    pub comment: Option<String>,
    pub empty_layer: bool,
    /// The layer this step made (index, bottom first).
    pub layer: Option<usize>,
    /// Bytes of regular files in that layer.
    pub size: u64,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Wasted {
    pub path: String,
    pub size: u64,
    /// Layer (index) that ships the file.
    pub shipped_in: usize,
    /// Layer that deletes it.
    pub deleted_in: usize,
    /// `whiteout` or `opaque`.
    pub how: &'static str,
}

#[derive(Debug, Serialize)]
pub struct History {
    pub steps: Vec<Step>,
    pub wasted: Vec<Wasted>,
    pub wasted_bytes: u64,
}

pub fn history(store: &Store, rec: &ImageRecord) -> Result<History, ImageError> {
    let config: Value = serde_json::from_slice(&store.read_blob(&rec.config)?)
        .map_err(|e| ImageError::format("image config", e.to_string()))?;
    let mut sizes = Vec::new();
    for l in &rec.layers {
        let info = store.layer_info(&l.diff_id)?;
        sizes.push(info.map(|i| i.report.size).unwrap_or(0));
    }
    let mut steps = Vec::new();
    let mut layer = 0;
    for h in config["history"].as_array().into_iter().flatten() {
        let empty = h["empty_layer"].as_bool().unwrap_or(false);
        let this = (!empty && layer < rec.layers.len()).then_some(layer);
        if this.is_some() {
            layer += 1;
        }
        steps.push(Step {
            created: h["created"].as_str().map(str::to_string),
            created_by: h["created_by"].as_str().unwrap_or("").to_string(),
            comment: h["comment"].as_str().map(str::to_string),
            empty_layer: empty,
            layer: this,
            size: this.map(|i| sizes[i]).unwrap_or(0),
        });
    }
    // Layers the history does not describe (no history, or too short).
    for (i, size) in sizes.iter().enumerate().skip(layer) {
        steps.push(Step {
            created: None,
            created_by: String::new(),
            comment: None,
            empty_layer: false,
            layer: Some(i),
            size: *size,
        });
    }
    let roots: Vec<PathBuf> = rec
        .layers
        .iter()
        .map(|l| store.layer_root(&l.diff_id))
        .collect();
    let wasted = deleted_files(&roots)?;
    let wasted_bytes = wasted.iter().map(|w| w.size).sum();
    Ok(History {
        steps,
        wasted,
        wasted_bytes,
    })
}

/// What one layer directory holds.
#[derive(Default)]
struct Walk {
    files: Vec<(PathBuf, u64, (u64, u64))>,
    /// Directories: they hide a lower file of the same path.
    dirs: Vec<PathBuf>,
    /// Other entries (links, devices, ...): they hide what is below them.
    others: Vec<PathBuf>,
    whiteouts: Vec<PathBuf>,
    opaque: Vec<PathBuf>,
}

fn walk(root: &Path, rel: &Path, out: &mut Walk) -> Result<(), ImageError> {
    use std::os::unix::fs::MetadataExt;
    let dir = root.join(rel);
    let rd = std::fs::read_dir(&dir).map_err(ImageError::io(show(&dir)))?;
    for e in rd {
        let e = e.map_err(ImageError::io(show(&dir)))?;
        let r = rel.join(e.file_name());
        let m = e.metadata().map_err(ImageError::io(show(&e.path())))?;
        if is_whiteout(&m) {
            out.whiteouts.push(r);
        } else if m.is_dir() {
            if xattr::lget(&e.path(), xattr::OPAQUE)
                .ok()
                .flatten()
                .is_some_and(|v| v == b"y")
            {
                out.opaque.push(r.clone());
            }
            out.dirs.push(r.clone());
            walk(root, &r, out)?;
        } else if m.is_file() {
            out.files.push((r, m.len(), (m.dev(), m.ino())));
        } else {
            out.others.push(r);
        }
    }
    Ok(())
}

/// Files of lower layers that a higher one deletes, given the layer
/// directories bottom first.
fn deleted_files(layers: &[PathBuf]) -> Result<Vec<Wasted>, ImageError> {
    // Path -> (layer, size) of the regular files visible so far.
    let mut visible: BTreeMap<PathBuf, (usize, u64)> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, root) in layers.iter().enumerate() {
        let mut w = Walk::default();
        if root.exists() {
            walk(root, Path::new(""), &mut w)?;
        }
        for p in &w.whiteouts {
            drop_under(&mut visible, i, p, true, "whiteout", &mut out);
        }
        for p in &w.opaque {
            drop_under(&mut visible, i, p, false, "opaque", &mut out);
        }
        // Replaced, not deleted: forget them without reporting.
        for p in &w.dirs {
            visible.remove(p);
        }
        for p in w.others.iter().chain(w.files.iter().map(|f| &f.0)) {
            drop_under(&mut visible, i, p, true, "", &mut out);
        }
        let mut seen = std::collections::HashSet::new();
        for (p, size, ino) in w.files {
            // Hard links: count the bytes once per layer.
            let size = if seen.insert(ino) { size } else { 0 };
            visible.insert(p, (i, size));
        }
    }
    out.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    Ok(out)
}

/// Forget the visible files at or under `p`; report them as deleted by
/// layer `i` unless `how` is empty (replaced, not deleted).
fn drop_under(
    visible: &mut BTreeMap<PathBuf, (usize, u64)>,
    i: usize,
    p: &Path,
    self_too: bool,
    how: &'static str,
    out: &mut Vec<Wasted>,
) {
    let keys: Vec<PathBuf> = visible
        .range(p.to_path_buf()..)
        .take_while(|(k, _)| k.starts_with(p))
        .filter(|(k, _)| self_too || k.as_path() != p)
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        let (layer, size) = visible.remove(&k).expect("key just listed");
        if !how.is_empty() {
            out.push(Wasted {
                path: format!("/{}", k.display()),
                size,
                shipped_in: layer,
                deleted_in: i,
                how,
            });
        }
    }
}

/// Human-readable sizes, as `docker history` shows them.
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}
