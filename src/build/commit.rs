//! A layer from a directory already in the store's layer format (a RUN
//! container's upper directory, a COPY's fresh directory): packed into the
//! layer tar (its digest is the diff_id; the tar is kept as the layer's
//! blob) and renamed into `layers/DIFF/root`. And the final image record.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::BuildError;
use super::stage::Stage;
use crate::image::extract::remove_tree;
use crate::image::pack::{LAYER_TAR, Packed, pack_to_file};
use crate::image::store::LayerRecord;
use crate::image::{Digest, ImageError, ImageRecord, Store};
use crate::userns;

/// Run `work` with the caller's subordinate ids (rootless: layer files
/// belong to them), handing back its JSON result through `out`.
pub fn mapped<T: serde::Serialize + serde::de::DeserializeOwned>(
    out: &Path,
    work: impl FnOnce() -> Result<T, String>,
) -> Result<T, BuildError> {
    let res = userns::run_mapped(|| {
        let v = work()?;
        fs::write(out, serde_json::to_vec(&v).expect("result serializes"))
            .map_err(|e| format!("write {}: {e}", out.display()))
    });
    let data = res
        .map_err(ImageError::from)
        .and_then(|()| fs::read(out).map_err(ImageError::io(out.display().to_string())));
    let _ = fs::remove_file(out);
    let data = data?;
    serde_json::from_slice(&data).map_err(|e| BuildError::plan(format!("internal result: {e}")))
}

/// Remove `path` (with the subordinate ids when rootless); best effort.
pub fn remove_mapped(path: &Path) {
    if !path.exists() {
        return;
    }
    let p = path.to_path_buf();
    if let Err(e) = userns::run_mapped(|| remove_tree(&p).map_err(|e| e.to_string())) {
        log::warn!("remove {}: {e}", path.display());
    }
}

/// A temporary path in the store's `tmp/`.
pub fn tmp_path(store: &Store, prefix: &str) -> PathBuf {
    store
        .root()
        .join("tmp")
        .join(crate::image::temp_name(prefix))
}

/// Make `dir` a layer: `prepare` runs first on it (with the subordinate
/// ids, e.g. to drop mount stubs), then it is packed and moved into the
/// store (or dropped if the store has that layer already).
pub fn commit_dir(
    store: &Store,
    dir: &Path,
    prepare: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<LayerRecord, BuildError> {
    let started = std::time::Instant::now();
    let tar = tmp_path(store, "layer");
    let tar_file = tar.with_extension("tar");
    let d = dir.to_path_buf();
    let tf = tar_file.clone();
    let packed: Result<(Packed, f64), BuildError> =
        mapped(&tar.with_extension("json"), move || {
            prepare(&d)?;
            let t = std::time::Instant::now();
            let p = pack_to_file(&d, &tf).map_err(|e| e.to_string())?;
            Ok((p, t.elapsed().as_secs_f64()))
        });
    let (packed, pack_secs) = match packed {
        Ok(p) => p,
        Err(e) => {
            let _ = fs::remove_file(&tar_file);
            return Err(e);
        }
    };
    let diff = packed.diff_id.clone();
    let res = store.ensure_layer(&diff, |tmp_root| {
        fs::remove_dir(tmp_root).map_err(ImageError::io("prepare the layer directory"))?;
        fs::rename(dir, tmp_root).map_err(ImageError::io("move the layer into the store"))?;
        Ok(packed.report.clone())
    });
    if let Err(e) = res {
        let _ = fs::remove_file(&tar_file);
        return Err(e.into());
    }
    let blob = store.blob_path(&diff);
    if blob.exists() {
        let _ = fs::remove_file(&tar_file);
    } else {
        fs::rename(&tar_file, &blob).map_err(ImageError::io("store the layer tar"))?;
    }
    println!(
        "  layer {} ({}, {} entries) committed in {:.3}s (tar written in {:.3}s)",
        diff.short(),
        crate::image::history::human(packed.tar_size),
        packed.report.entries,
        started.elapsed().as_secs_f64(),
        pack_secs
    );
    Ok(LayerRecord {
        digest: diff.clone(),
        diff_id: diff,
        size: packed.tar_size,
        media_type: LAYER_TAR.into(),
    })
}

/// The final config of a stage: its config with `rootfs` and `history`.
pub fn final_config(st: &Stage) -> Value {
    let mut c = st.config.clone();
    c["created"] = json!(st.created);
    c["rootfs"] = json!({
        "type": "layers",
        "diff_ids": st.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
    });
    c["history"] = json!(st.history);
    c
}

/// Save the stage as the image `name` (config and manifest blobs, record).
pub fn save_image(store: &Store, name: &str, st: &Stage) -> Result<ImageRecord, BuildError> {
    crate::image::store::check_name(name)?;
    let config = serde_json::to_vec(&final_config(st)).expect("config serializes");
    let config_digest = Digest::of(&config);
    store.put_blob(&config_digest, &config)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": st.layers.iter().map(|l| json!({
            "mediaType": if l.media_type.is_empty() { LAYER_TAR } else { &l.media_type },
            "digest": l.digest.to_string(),
            "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest serializes");
    let manifest_digest = Digest::of(&manifest);
    store.put_blob(&manifest_digest, &manifest)?;
    let rec = ImageRecord {
        name: name.to_string(),
        source: "ferry build".into(),
        manifest: Some(manifest_digest),
        config: config_digest,
        layers: st.layers.clone(),
        imported: crate::timefmt::now_rfc3339(),
    };
    store.save_image(&rec)?;
    Ok(rec)
}

/// Bytes of regular files in the image's layers (each layer once).
pub fn image_size(store: &Store, rec: &ImageRecord) -> Result<u64, BuildError> {
    let mut seen = std::collections::HashSet::new();
    let mut size = 0;
    for l in &rec.layers {
        if seen.insert(&l.diff_id) {
            size += store
                .layer_info(&l.diff_id)?
                .map(|i| i.report.size)
                .unwrap_or(0);
        }
    }
    Ok(size)
}
