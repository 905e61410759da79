//! The build of each stage: its state ([`Stage`]: layers, image config,
//! history, the cache key of the chain) and the steps applied to it in
//! order. Metadata instructions only change the config and add an
//! `empty_layer` history entry; `RUN`, `COPY` and `ADD` add a layer, from
//! the cache when their key is there.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::ast::{self, Command, Instruction, Step};
use super::{BuildError, BuildOptions, cache, copy, meta, step_run, vars};
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

/// The build of a whole Dockerfile.
pub(crate) struct Builder<'a> {
    pub store: &'a Store,
    pub opts: &'a BuildOptions,
    df: &'a ast::Dockerfile,
    /// Finished stages, by index.
    done: Vec<Option<Stage>>,
    /// Global ARGs with their values.
    global: BTreeMap<String, String>,
    step: usize,
    total: usize,
    pub ran: usize,
    pub cached: usize,
    used_args: BTreeSet<String>,
}

impl<'a> Builder<'a> {
    pub fn new(
        store: &'a Store,
        opts: &'a BuildOptions,
        df: &'a ast::Dockerfile,
    ) -> Result<Builder<'a>, BuildError> {
        if df.stages.is_empty() {
            return Err(BuildError::plan("the Dockerfile has no FROM"));
        }
        let mut global = BTreeMap::new();
        for a in &df.global_args {
            let v = opts.build_args.get(&a.name).cloned().or_else(|| {
                a.default
                    .as_ref()
                    .and_then(|d| vars::expand(d, &global, df.escape).ok())
            });
            if let Some(v) = v {
                global.insert(a.name.clone(), v);
            }
        }
        Ok(Builder {
            store,
            opts,
            df,
            done: vec![None; df.stages.len()],
            global,
            step: 0,
            total: 0,
            ran: 0,
            cached: 0,
            used_args: df.global_args.iter().map(|a| a.name.clone()).collect(),
        })
    }

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

    /// The stages the target needs, in file order.
    fn needed(&self, target: usize) -> Vec<usize> {
        let mut need = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !need.insert(i) {
                continue;
            }
            let s = &self.df.stages[i];
            let base = vars::expand(&s.base, &self.global, self.df.escape).unwrap_or_default();
            if let Some(j) = self.stage_index(&base, i) {
                todo.push(j);
            }
            for step in &s.steps {
                for from in step_sources(step) {
                    if let Some(j) = self.stage_index(&from, i) {
                        todo.push(j);
                    }
                }
            }
        }
        need.into_iter().collect()
    }

    /// Build the target stage (and what it needs); its final state.
    pub fn run_all(&mut self) -> Result<Stage, BuildError> {
        let target = match &self.opts.target {
            None => self.df.stages.len() - 1,
            Some(t) => self
                .stage_index(t, self.df.stages.len())
                .ok_or_else(|| BuildError::plan(format!("no stage named {t:?}")))?,
        };
        let needed = self.needed(target);
        self.total = needed
            .iter()
            .map(|&i| 1 + self.df.stages[i].steps.len())
            .sum();
        for i in needed {
            let st = self.build_stage(i)?;
            self.done[i] = Some(st);
        }
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| !self.used_args.contains(*k))
            .collect();
        if !unused.is_empty() {
            log::warn!("build args not used by any ARG: {unused:?}");
        }
        Ok(self.done[target].take().expect("target built"))
    }

    fn progress(&mut self, text: &str) -> String {
        self.step += 1;
        let label = format!("[{}/{}] {}", self.step, self.total, one_line(text));
        println!("{label}");
        label
    }

    fn build_stage(&mut self, i: usize) -> Result<Stage, BuildError> {
        let s = &self.df.stages[i];
        let label = self.progress(&format!("FROM {}", s.base));
        let mut st = self.base(i).map_err(|e| BuildError::Step {
            step: label.clone(),
            msg: e.to_string(),
        })?;
        for step in &s.steps {
            let label = self.progress(&step.text);
            self.step(&mut st, step, &label).map_err(|e| match e {
                BuildError::Step { .. } | BuildError::RunFailed { .. } => e,
                other => BuildError::Step {
                    step: label.clone(),
                    msg: other.to_string(),
                },
            })?;
        }
        Ok(st)
    }

    /// The state a stage starts from: its `FROM`.
    fn base(&mut self, i: usize) -> Result<Stage, BuildError> {
        let s = &self.df.stages[i];
        let base = vars::expand(&s.base, &self.global, self.df.escape)?;
        let mut st = if let Some(j) = self.stage_index(&base, i) {
            self.done[j].clone().expect("stages built in order")
        } else if base == "scratch" {
            scratch()
        } else {
            let rec = self.image(&base)?;
            from_image(self.store, &rec)?
        };
        st.index = i;
        st.name = s.name.clone();
        st.escape = self.df.escape;
        st.args = BTreeMap::new();
        st.cmd_from_base = st.config["config"]["Cmd"].is_array();
        if let Some(onbuild) = st.config["config"]["OnBuild"].as_array()
            && !onbuild.is_empty()
        {
            log::warn!("the base image's ONBUILD triggers are not run");
        }
        Ok(st)
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
        crate::image::userns::run_mapped(|| {
            crate::image::import::import(store, name, &opts)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .map_err(|e| BuildError::plan(format!("pull {name}: {e}")))?;
        Ok(self.store.find(name)?)
    }

    fn step(&mut self, st: &mut Stage, step: &Step, label: &str) -> Result<(), BuildError> {
        let hit = match &step.instruction {
            Instruction::Run(run) => step_run::run(self, st, run, label)?,
            Instruction::Copy(c) => copy::copy(self, st, c, false, label)?,
            Instruction::Add(c) => copy::copy(self, st, c, true, label)?,
            Instruction::Arg(decls) => {
                self.arg(st, decls);
                return Ok(());
            }
            other => {
                meta::apply(st, other)?;
                return Ok(());
            }
        };
        self.count(hit, label);
        Ok(())
    }

    fn count(&mut self, hit: bool, label: &str) {
        if hit {
            println!("{label} CACHED");
            self.cached += 1;
        } else {
            self.ran += 1;
        }
    }

    /// `ARG`: a build arg's value, else the global one (for a bare
    /// re-declaration), else the default.
    fn arg(&mut self, st: &mut Stage, decls: &[ast::ArgDecl]) {
        let mut text = Vec::new();
        for a in decls {
            self.used_args.insert(a.name.clone());
            let v = self
                .opts
                .build_args
                .get(&a.name)
                .cloned()
                .or_else(|| a.default.as_ref().and_then(|d| st.expand(d).ok()))
                .or_else(|| self.global.get(&a.name).cloned());
            if let Some(v) = v {
                st.args.insert(a.name.clone(), v);
            }
            text.push(a.name.clone());
        }
        // Values stay out of the history (they may be tokens) but in the
        // cache key.
        let vals: Vec<String> = decls
            .iter()
            .map(|a| format!("{}={:?}", a.name, st.args.get(&a.name)))
            .collect();
        st.key = cache::key(&st.key, &["arg", &vals.join("\0")]);
        st.history.push(json!({
            "created": st.created,
            "created_by": format!("ARG {}", text.join(" ")),
            "empty_layer": true,
        }));
    }
}

/// The stages or images a step reads from (`COPY --from`, `RUN --mount
/// from=`).
fn step_sources(step: &Step) -> Vec<String> {
    match &step.instruction {
        Instruction::Copy(c) | Instruction::Add(c) => c.from.iter().cloned().collect(),
        Instruction::Run(r) => r
            .mounts
            .iter()
            .filter_map(|m| match m {
                ast::RunMount::Bind { from, .. } => from.clone(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
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

/// The first line of a step for progress lines (heredocs and continuations
/// shortened).
fn one_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    if text.lines().nth(1).is_some() {
        format!("{first} ...")
    } else {
        first.to_string()
    }
}

fn scratch() -> Stage {
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
fn from_image(store: &Store, rec: &ImageRecord) -> Result<Stage, BuildError> {
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
