//! The build cache: `cache/KEY.json` in the store maps a step's key (the
//! chain before it, the instruction after substitution, the build args it
//! sees, the content of what it copies) to the layer it made. An entry
//! keeps its layer and blob alive (the store's collection reads them).

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::image::store::LayerRecord;
use crate::image::{Digest, Store};

/// What a cached step made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub layer: LayerRecord,
    /// The history entry's time and text.
    pub created: String,
    pub created_by: String,
}

/// The key every chain starts from (changes when the key's recipe does).
pub fn root_key() -> Digest {
    Digest::of(b"ferry build cache v1")
}

/// The key of a step after `prev`, made of `parts`.
pub fn key(prev: &Digest, parts: &[&str]) -> Digest {
    let mut h = Sha256::new();
    h.update(prev.hex().as_bytes());
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Digest::from_hex(&hex).expect("sha256 hex")
}

fn path(store: &Store, key: &Digest) -> PathBuf {
    store
        .root()
        .join("cache")
        .join(format!("{}.json", key.hex()))
}

/// The cached result of `key`, if its layer is still in the store.
pub fn lookup(store: &Store, key: &Digest) -> Option<Entry> {
    let data = fs::read(path(store, key)).ok()?;
    let e: Entry = serde_json::from_slice(&data).ok()?;
    store.layer_info(&e.layer.diff_id).ok().flatten().map(|_| e)
}

/// Remember that `key` made `e`.
pub fn record(store: &Store, key: &Digest, e: &Entry) {
    let dir = store.root().join("cache");
    let res = fs::create_dir_all(&dir).and_then(|()| {
        let tmp = dir.join(format!(".{}.tmp", key.hex()));
        fs::write(
            &tmp,
            serde_json::to_vec_pretty(e).expect("entry serializes"),
        )?;
        fs::rename(&tmp, path(store, key))
    });
    if let Err(e) = res {
        log::warn!("cannot record the build cache: {e}");
    }
}

/// A step through the cache: the entry recorded under `key` when the cache
/// is used and holds one (with `true`); else the layer `make` writes,
/// recorded under `key` with `created_by` as its history text (with
/// `false`).
pub fn through<E>(
    store: &Store,
    use_cache: bool,
    key: &Digest,
    created_by: String,
    make: impl FnOnce() -> Result<LayerRecord, E>,
) -> Result<(Entry, bool), E> {
    if use_cache && let Some(e) = lookup(store, key) {
        return Ok((e, true));
    }
    let e = Entry {
        layer: make()?,
        created: crate::timefmt::now_rfc3339(),
        created_by,
    };
    record(store, key, &e);
    Ok((e, false))
}
