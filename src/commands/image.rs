//! `ferry image ...`: import, list, inspect, remove, history, bundle, run.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::cli::{GlobalOpts, ImageCommand, ImageOpts, ImageRunArgs, ListFormat};
use crate::image::bundle::{BundleOptions, make_bundle};
use crate::image::history::{self, human};
use crate::image::import::{ImportOptions, import};
use crate::image::{ImageRecord, Store};
use crate::launch::{self, RunOptions};
use crate::userns;

use crate::container::template::{default_spec, make_rootless};

pub fn image(g: &GlobalOpts, o: &ImageOpts) -> Result<i32> {
    let root = o.store.clone().unwrap_or_else(Store::default_root);
    let store = Store::open(&root)?;
    match &o.command {
        ImageCommand::Import {
            name,
            platform,
            insecure,
            cert_dir,
            creds,
            reference,
        } => {
            let opts = ImportOptions {
                name: name.clone(),
                platform: platform.clone(),
                insecure: *insecure,
                cert_dir: cert_dir.clone(),
                creds: creds.clone(),
                ..ImportOptions::default()
            };
            mapped(|| {
                let rec = import(&store, reference, &opts)?;
                println!("{} {}", rec.name, rec.config);
                Ok(())
            })?;
        }
        ImageCommand::Tag { .. }
        | ImageCommand::Push { .. }
        | ImageCommand::Save { .. }
        | ImageCommand::Load { .. } => super::image_dist::image_dist(&store, &o.command)?,
        ImageCommand::Ls { format, quiet } => list(&store, *format, *quiet)?,
        ImageCommand::Inspect { name } => {
            let rec = store.find(name)?;
            println!("{}", serde_json::to_string_pretty(&inspect(&store, &rec)?)?);
        }
        ImageCommand::Rm { names } => mapped(|| {
            for n in names {
                let (rec, c) = store.remove_image(n)?;
                println!(
                    "removed {} ({} layers, {} blobs freed)",
                    rec.name, c.layers, c.blobs
                );
            }
            Ok(())
        })?,
        ImageCommand::History { format, name } => mapped(|| {
            let rec = store.find(name)?;
            let h = history::history(&store, &rec)?;
            print_history(&h, *format)
        })?,
        ImageCommand::Bundle {
            flatten,
            tty,
            name,
            dir,
            command,
        } => {
            let _lock = store.lock(false)?;
            let rec = store.find(name)?;
            bundle(&store, &rec, dir, *flatten, *tty, command)?;
        }
        ImageCommand::Run(a) => return run(g, &store, a),
    }
    Ok(0)
}

/// Run `work` with the caller's subordinate ids when rootless (layer files
/// belong to them: see [`userns`]).
fn mapped(work: impl FnOnce() -> Result<()>) -> Result<()> {
    Ok(userns::run_mapped(|| {
        work().map_err(|e| super::error_message(&e))
    })?)
}

fn base_spec() -> (Value, bool) {
    let mut spec = default_spec();
    let rootless = userns::is_rootless();
    if rootless {
        let (uid, gid) = userns::own_ids();
        make_rootless(&mut spec, uid, gid);
    }
    (spec, rootless)
}

fn bundle(
    store: &Store,
    rec: &ImageRecord,
    dir: &Path,
    flatten: bool,
    terminal: bool,
    args: &[String],
) -> Result<()> {
    let (spec, rootless) = base_spec();
    let opts = BundleOptions {
        flatten,
        args: args.to_vec(),
        terminal,
        rootless,
    };
    make_bundle(store, rec, dir, spec, &opts)?;
    Ok(())
}

fn list(store: &Store, format: ListFormat, quiet: bool) -> Result<()> {
    let images = store.images()?;
    if quiet {
        for r in &images {
            println!("{}", r.name);
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    for r in &images {
        let mut size = 0;
        let mut seen = std::collections::HashSet::new();
        for l in &r.layers {
            if seen.insert(&l.diff_id) {
                size += store
                    .layer_info(&l.diff_id)?
                    .map(|i| i.report.size)
                    .unwrap_or(0);
            }
        }
        rows.push((r, size));
    }
    if format == ListFormat::Json {
        let v: Vec<Value> = rows
            .iter()
            .map(|(r, size)| {
                json!({ "name": r.name, "id": r.config.to_string(), "layers": r.layers.len(),
                        "size": size, "source": r.source, "imported": r.imported })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<32} {:<12} {:>6} {:>10}  IMPORTED",
        "NAME", "ID", "LAYERS", "SIZE"
    );
    for (r, size) in rows {
        println!(
            "{:<32} {:<12} {:>6} {:>10}  {}",
            r.name,
            r.config.short(),
            r.layers.len(),
            human(size),
            r.imported
        );
    }
    Ok(())
}

fn inspect(store: &Store, rec: &ImageRecord) -> Result<Value> {
    let config: Value =
        serde_json::from_slice(&store.read_blob(&rec.config)?).context("parse the image config")?;
    let mut layers = Vec::new();
    for l in &rec.layers {
        let info = store.layer_info(&l.diff_id)?;
        layers.push(json!({
            "digest": l.digest.to_string(),
            "diff_id": l.diff_id.to_string(),
            "media_type": l.media_type,
            "size": l.size,
            "unpacked_size": info.as_ref().map(|i| i.report.size),
            "entries": info.as_ref().map(|i| i.report.entries),
            "path": store.layer_root(&l.diff_id),
        }));
    }
    Ok(json!({
        "name": rec.name,
        "id": rec.config.to_string(),
        "source": rec.source,
        "manifest": rec.manifest.as_ref().map(|m| m.to_string()),
        "imported": rec.imported,
        "layers": layers,
        "config": config,
    }))
}

fn print_history(h: &history::History, format: ListFormat) -> Result<()> {
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string_pretty(h)?);
        return Ok(());
    }
    println!(
        "{:<6} {:>10}  {:<20}  CREATED BY",
        "LAYER", "SIZE", "CREATED"
    );
    for s in h.steps.iter().rev() {
        let layer = s.layer.map(|i| i.to_string()).unwrap_or_else(|| "-".into());
        let size = if s.empty_layer {
            "0B (empty)".to_string()
        } else {
            human(s.size)
        };
        let mut by = s.created_by.replace('\t', " ");
        if by.len() > 80 {
            let cut = (0..=77)
                .rev()
                .find(|&i| by.is_char_boundary(i))
                .unwrap_or(0);
            by.truncate(cut);
            by.push_str("...");
        }
        println!(
            "{layer:<6} {size:>10}  {:<20}  {by}",
            s.created.as_deref().unwrap_or("").get(..19).unwrap_or("")
        );
    }
    if h.wasted.is_empty() {
        println!("\nno file of a lower layer is deleted by a later one");
        return Ok(());
    }
    println!(
        "\n{} in {} files shipped but deleted by a later layer:",
        human(h.wasted_bytes),
        h.wasted.len()
    );
    println!("{:>10}  {:>7}  {:>7}  PATH", "SIZE", "SHIPPED", "DELETED");
    for w in &h.wasted {
        println!(
            "{:>10}  {:>7}  {:>7}  {} ({})",
            human(w.size),
            w.shipped_in,
            w.deleted_in,
            w.path,
            w.how
        );
    }
    Ok(())
}

/// `ferry image run`: the command line to [`launch::run`].
fn run(g: &GlobalOpts, store: &Store, a: &ImageRunArgs) -> Result<i32> {
    let o = RunOptions {
        image: a.image.clone(),
        command: a.command.clone(),
        name: a.name.clone(),
        rm: a.rm,
        detach: a.detach,
        interactive: a.interactive,
        tty: a.tty,
        publish: a.publish.clone(),
        volumes: a.volume.clone(),
        env: a.env.clone(),
        env_files: a.env_file.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        entrypoint: a.entrypoint.clone(),
        hostname: a.hostname.clone(),
        network: a.network.clone(),
        read_only: a.read_only,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        systemd_cgroup: g.systemd_cgroup,
    };
    Ok(launch::run(store, &super::store(g)?, &o)?)
}
