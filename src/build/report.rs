//! The warnings at the end of a build: files a layer ships and a later one
//! deletes (`image history`'s analysis: the bytes stay in the image), and
//! files that look like secrets, each with the instruction that added it.

use std::path::Path;

use super::secrets::{looks_like_secret, read_head};
use super::stage::Stage;
use crate::image::{ImageRecord, Store, history};

/// Print the warnings (stderr) for the built image.
pub fn warn_about_files(store: &Store, rec: &ImageRecord, st: &Stage) {
    let step = |i: usize| {
        st.layer_steps
            .get(i)
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("base layer {i}"))
    };
    match history::history(store, rec) {
        Ok(h) => {
            for w in &h.wasted {
                eprintln!(
                    "warning: {} ({} bytes) is added by `{}` and deleted by `{}`: it still ships in the image",
                    w.path,
                    w.size,
                    step(w.shipped_in),
                    step(w.deleted_in)
                );
            }
        }
        Err(e) => log::warn!("cannot analyse the layers: {e}"),
    }
    let base = st.layer_steps.iter().take_while(|s| s.is_empty()).count();
    for (i, l) in rec.layers.iter().enumerate().skip(base) {
        let root = store.layer_root(&l.diff_id);
        let mut found = Vec::new();
        scan(&root, Path::new(""), &mut found);
        for p in found {
            eprintln!(
                "warning: /{} looks like a secret, added by `{}`",
                p,
                step(i)
            );
        }
    }
}

fn scan(root: &Path, rel: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(root.join(rel)) else {
        return;
    };
    for e in rd.flatten() {
        let r = rel.join(e.file_name());
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            scan(root, &r, out);
        } else if m.is_file() {
            let rel = r.display().to_string();
            let abs = e.path();
            if let Some(kind) = looks_like_secret(&rel, || read_head(&abs)) {
                out.push(format!("{rel} ({kind})"));
            }
        }
    }
}
