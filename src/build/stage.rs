//! A stage's state ([`Stage`]: layers, image config, history, the cache
//! key of the chain), where it starts (`scratch`, an image), and the
//! [`Scope`] a step reads of the build around it. The steps themselves are
//! applied by [`super::builder`].

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::ast::{self, Command};
use super::{BuildError, BuildOptions, cache, vars};
use crate::image::store::LayerRecord;
use crate::image::{Digest, ImageRecord, Store};

/// Where a stage is: what its next step builds on.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The stage's index and `AS` name.
    pub index: usize,
    pub name: Option<String>,
    pub layers: Vec<LayerRecord>,
    /// The whole image config (`config`, `os`, `architecture`, ...), its
    /// `rootfs` and `history` made at the end from `layers` and `history`.
    pub config: Value,
    pub history: Vec<Value>,
    /// The cache key of the chain so far.
    pub key: Digest,
    /// The ARGs in scope and their values (unset ones absent).
    pub args: BTreeMap<String, String>,
    /// The Cmd came from the base image (an ENTRYPOINT here resets it).
    pub cmd_from_base: bool,
    /// When the last layer was made: the time of metadata steps after it,
    /// so an unchanged rebuild makes the same config (and image id).
    pub created: String,
    /// Which step made each layer of this stage (for warnings).
    pub layer_steps: Vec<String>,
    /// The Dockerfile's escape character (for substitution).
    pub escape: char,
}

impl Stage {
    /// `config.config`, made an object if it was not (indexing it inserts).
    pub fn cfg(&mut self) -> &mut Value {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        &mut self.config["config"]
    }

    /// The config's `Env` as pairs.
    pub fn env(&self) -> Vec<(String, String)> {
        self.config["config"]["Env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str()?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The variables a word is substituted with: ARGs, then ENV (which
    /// wins, as in Docker).
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut v = self.args.clone();
        v.extend(self.env());
        v
    }

    /// `word` substituted with [`Stage::vars`].
    pub fn expand(&self, word: &str) -> Result<String, BuildError> {
        vars::expand(word, &self.vars(), self.escape)
    }

    /// The environment of a `RUN`: ENV plus the ARGs ENV does not set.
    pub fn run_env(&self) -> Vec<String> {
        let env = self.env();
        let mut out: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for (k, v) in &self.args {
            if !env.iter().any(|(e, _)| e == k) {
                out.push(format!("{k}={v}"));
            }
        }
        out
    }

    pub fn workdir(&self) -> String {
        self.config["config"]["WorkingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    /// The SHELL (default `/bin/sh -c`).
    pub fn shell(&self) -> Vec<String> {
        let s: Vec<String> = self.config["config"]["Shell"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        if s.is_empty() {
            vec!["/bin/sh".into(), "-c".into()]
        } else {
            s
        }
    }

    /// A command in exec form (shell form through SHELL).
    pub fn argv(&self, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }

    /// A metadata step: its history entry and the next key.
    pub fn meta(&mut self, created_by: String) {
        self.key = cache::key(&self.key, &["meta", &created_by]);
        self.history.push(json!({
            "created": self.created,
            "created_by": created_by,
            "empty_layer": true,
        }));
    }

    /// A step that made `layer`, keyed `key`.
    pub fn add_layer(&mut self, key: Digest, e: cache::Entry) {
        self.key = key;
        self.created = e.created.clone();
        self.history.push(json!({
            "created": e.created,
            "created_by": e.created_by,
        }));
        self.layer_steps.push(e.created_by.clone());
        self.layers.push(e.layer);
    }

    /// The layer directories, top-most first.
    pub fn layer_roots(&self, store: &Store) -> Vec<std::path::PathBuf> {
        let mut out: Vec<std::path::PathBuf> = Vec::new();
        for l in self.layers.iter().rev() {
            let p = store.layer_root(&l.diff_id);
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}

/// What a step reads of the build around it: the store, the options, and
/// the stages finished before it (`COPY --from`, `RUN --mount=from=`).
pub(crate) struct Scope<'a> {
    pub store: &'a Store,
    pub opts: &'a BuildOptions,
    pub(super) df: &'a ast::Dockerfile,
    pub(super) done: &'a [Option<Stage>],
}

impl Scope<'_> {
    /// The index of the stage `name` (an `AS` name or an index) among the
    /// first `before` stages.
    pub fn stage_index(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.df.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().filter(|&i| i < before))
    }

    /// A finished stage.
    pub fn stage_done(&self, j: usize) -> Option<&Stage> {
        self.done.get(j)?.as_ref()
    }

    /// An image from the store, pulled if it is not there.
    pub fn image(&self, name: &str) -> Result<ImageRecord, BuildError> {
        match self.store.find(name) {
            Ok(r) => return Ok(r),
            Err(crate::image::ImageError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        println!("pulling {name}");
        let opts = crate::image::import::ImportOptions::default();
        let store = self.store;
        crate::userns::run_mapped(|| {
            crate::image::import::import(store, name, &opts)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .map_err(|e| BuildError::plan(format!("pull {name}: {e}")))?;
        Ok(self.store.find(name)?)
    }
}

/// `path` made absolute against `dir`, normalized (`..` stops at `/`).
pub fn join_abs(dir: &str, path: &str) -> String {
    let full = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{dir}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in full.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

pub fn scratch() -> Stage {
    Stage {
        index: 0,
        name: None,
        layers: Vec::new(),
        config: json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
        }),
        history: Vec::new(),
        key: cache::key(&cache::root_key(), &["scratch"]),
        args: BTreeMap::new(),
        cmd_from_base: false,
        created: crate::timefmt::now_rfc3339(),
        layer_steps: Vec::new(),
        escape: '\\',
    }
}

/// A stage starting from the image `rec`.
pub fn from_image(store: &Store, rec: &ImageRecord) -> Result<Stage, BuildError> {
    let mut config: Value = serde_json::from_slice(&store.read_blob(&rec.config)?)
        .map_err(|e| BuildError::plan(format!("{}: bad image config: {e}", rec.name)))?;
    let mut history = config["history"].as_array().cloned().unwrap_or_default();
    // One non-empty entry per layer (buildah refuses images without): the
    // layers the base's history does not describe get an entry of their own.
    let described = history.iter().filter(|h| h["empty_layer"] != true).count();
    for _ in described..rec.layers.len() {
        history.insert(0, json!({ "created_by": "" }));
    }
    let created = config["created"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(crate::timefmt::now_rfc3339);
    if let Some(o) = config.as_object_mut() {
        o.remove("history");
        o.remove("rootfs");
    }
    let steps = vec![String::new(); rec.layers.len()];
    Ok(Stage {
        index: 0,
        name: None,
        layers: rec.layers.clone(),
        config,
        history,
        key: cache::key(&cache::root_key(), &["image", &rec.config.to_string()]),
        args: BTreeMap::new(),
        cmd_from_base: false,
        created,
        layer_steps: steps,
        escape: '\\',
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdirs_join_and_normalize() {
        assert_eq!(join_abs("/", "app"), "/app");
        assert_eq!(join_abs("/app", "src/../lib"), "/app/lib");
        assert_eq!(join_abs("/app", "/opt"), "/opt");
        assert_eq!(join_abs("/", "../../x"), "/x");
    }
}
