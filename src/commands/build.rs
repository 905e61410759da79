//! `ferry build`: the command line to one [`crate::build::build`] call and
//! its final line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::build::{BuildOptions, Network, build as run_build};
use crate::cli::{BuildOpts, GlobalOpts};
use crate::container::default_root;
use crate::image::{Store, history::human};

pub fn build(g: &GlobalOpts, o: &BuildOpts) -> Result<()> {
    let root = o.store.clone().unwrap_or_else(Store::default_root);
    let store = Store::open(&root)?;
    let opts = BuildOptions {
        tag: o.tag.clone(),
        context: o.context.clone(),
        dockerfile: o.file.clone(),
        build_args: build_args(&o.build_args)?,
        target: o.target.clone(),
        no_cache: o.no_cache,
        secrets: secrets(&o.secret)?,
        network: network(&o.network)?,
        containers: g.root.clone().unwrap_or_else(default_root),
        systemd_cgroup: g.systemd_cgroup,
    };
    let b = run_build(&store, &opts)?;
    println!(
        "built {} {} ({} layers, {}, {} steps run, {} cached) in {:.2}s",
        b.record.name,
        b.record.config,
        b.record.layers.len(),
        human(b.size),
        b.ran,
        b.cached,
        b.elapsed.as_secs_f64()
    );
    Ok(())
}

/// `K=V` pairs; a bare `K` takes the value of the environment variable.
fn build_args(list: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in list {
        match a.split_once('=') {
            Some((k, v)) => out.insert(k.to_string(), v.to_string()),
            None => match std::env::var(a) {
                Ok(v) => out.insert(a.clone(), v),
                Err(_) => continue,
            },
        };
    }
    Ok(out)
}

/// `id=ID,src=PATH` (also `source=`); the file must exist.
fn secrets(list: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for s in list {
        let mut id = None;
        let mut src = None;
        for kv in s.split(',') {
            match kv.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("type", "file")) => {}
                _ => bail!("--secret {s:?}: expected id=ID,src=PATH"),
            }
        }
        let (Some(id), Some(src)) = (id, src) else {
            bail!("--secret {s:?}: expected id=ID,src=PATH");
        };
        let src = std::fs::canonicalize(&src)
            .map_err(|e| anyhow::anyhow!("--secret {id}: {}: {e}", src.display()))?;
        if !src.is_file() {
            bail!("--secret {id}: {} is not a file", src.display());
        }
        out.insert(id, src);
    }
    Ok(out)
}

fn network(s: &str) -> Result<Network> {
    Ok(match s {
        "none" => Network::None,
        "host" => Network::Host,
        "private" | "default" => Network::Private,
        other => bail!("--network {other}: use none, host or private"),
    })
}
