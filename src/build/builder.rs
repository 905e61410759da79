//! The build of a whole Dockerfile: the stages the target needs, each
//! built from its `FROM` with its steps in order. Metadata instructions
//! only change the config and add an `empty_layer` history entry; `RUN`,
//! `COPY` and `ADD` add a layer, from the cache when their key is there.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::ast::{self, Instruction, Step};
use super::stage::{Scope, Stage, from_image, scratch};
use super::{BuildError, BuildOptions, cache, copy, meta, step_run, vars};
use crate::image::Store;

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

    /// What a step reads of the build around it.
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            store: self.store,
            opts: self.opts,
            df: self.df,
            done: &self.done,
        }
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
            if let Some(j) = self.scope().stage_index(&base, i) {
                todo.push(j);
            }
            for step in &s.steps {
                for from in step_sources(step) {
                    if let Some(j) = self.scope().stage_index(&from, i) {
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
                .scope()
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
        let mut st = if let Some(j) = self.scope().stage_index(&base, i) {
            self.done[j].clone().expect("stages built in order")
        } else if base == "scratch" {
            scratch()
        } else {
            let rec = self.scope().image(&base)?;
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

    fn step(&mut self, st: &mut Stage, step: &Step, label: &str) -> Result<(), BuildError> {
        let hit = match &step.instruction {
            Instruction::Run(run) => step_run::run(&self.scope(), st, run, label)?,
            Instruction::Copy(c) => copy::copy(&self.scope(), st, c, false, label)?,
            Instruction::Add(c) => copy::copy(&self.scope(), st, c, true, label)?,
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
