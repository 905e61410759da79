//! `RUN`: a ferry container over the stage's layer stack with a fresh
//! upper directory (rootless when ferry runs as a normal user, as
//! `ferry image run`), its output streamed; the upper directory, minus the
//! mount points made only for the step's mounts, becomes the layer.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::ast::{Command, Run, RunMount};
use super::stage::{Scope, Stage};
use super::{BuildError, Network, cache, commit, copy};
use crate::container::template::{default_spec, make_rootless};
use crate::container::{self, CreateOptions};
use crate::image::bundle::{BundleOptions, make_bundle};
use crate::image::store::LayerRecord;
use crate::image::{Digest, ImageRecord, Store};
use crate::network::{self, Mode};

/// Docker's default capabilities for build steps.
const CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Run the step (or take it from the cache: returns true then).
pub fn run(b: &Scope, st: &mut Stage, r: &Run, label: &str) -> Result<bool, BuildError> {
    let argv = command(st, r);
    let network = match r.network.as_deref() {
        Some("none") => Network::None,
        Some("host") => Network::Host,
        _ => b.opts.network,
    };
    let created_by = format!("RUN {} # buildkit", shell_words(&argv));
    let mounts_key = serde_json::to_string(&mount_key(b, &r.mounts)?).expect("json");
    let key = cache::key(
        &st.key,
        &[
            "run",
            &created_by,
            &st.run_env().join("\0"),
            &mounts_key,
            &format!("{network:?}"),
        ],
    );
    let (e, hit) = cache::through(b.store, !b.opts.no_cache, &key, created_by, || {
        if st.layers.is_empty() {
            return Err(BuildError::plan(
                "RUN needs a base image with a shell (the stage has no layer)",
            ));
        }
        in_step_dir(b.store, |dir| run_in(b, st, &argv, r, network, label, dir))
    })?;
    st.add_layer(key, e);
    Ok(hit)
}

/// The command: exec form as is, shell form (and heredocs) through SHELL.
fn command(st: &Stage, r: &Run) -> Vec<String> {
    match (&r.command, r.heredocs.first()) {
        (Command::Shell(s), Some(h))
            if s.trim_start().starts_with("<<") && r.heredocs.len() == 1 =>
        {
            let mut v = st.shell();
            v.push(h.content.clone());
            v
        }
        (Command::Shell(s), Some(_)) => {
            let mut script = s.clone();
            for h in &r.heredocs {
                script.push('\n');
                script.push_str(&h.content);
                if !h.content.ends_with('\n') {
                    script.push('\n');
                }
                script.push_str(&h.name);
            }
            let mut v = st.shell();
            v.push(script);
            v
        }
        (c, _) => st.argv(c),
    }
}

/// The mounts as the cache key sees them (ids and targets, no content).
/// The mounts as the cache key sees them: ids and targets (never a
/// secret's content), and the content hash of a bound context path.
fn mount_key(b: &Scope, mounts: &[RunMount]) -> Result<Value, BuildError> {
    let mut out = Vec::new();
    for m in mounts {
        out.push(format!("{m:?}"));
        if let RunMount::Bind {
            source, from: None, ..
        } = m
        {
            out.push(copy::bind_source(b, source)?.1);
        }
    }
    Ok(json!(out))
}

fn shell_words(argv: &[String]) -> String {
    argv.join(" ")
}

/// The hostname of every step's container.
const HOSTNAME: &str = "ferry-build";

/// The runtime's network mode for the build's `--network`.
fn runtime_mode(n: Network) -> Mode {
    match n {
        Network::Private => Mode::Private,
        Network::Host => Mode::Host,
        Network::None => Mode::None,
    }
}

/// `f` with a fresh directory for the step, removed afterwards (its
/// mounts detached), whatever happens.
fn in_step_dir(
    store: &Store,
    f: impl FnOnce(&Path) -> Result<LayerRecord, BuildError>,
) -> Result<LayerRecord, BuildError> {
    let dir = commit::tmp_path(store, "run");
    let res = f(&dir);
    store.remove_ref(&dir);
    commit::remove_mapped(&dir);
    res
}

/// A fresh container for the step in `dir`, run to completion; its upper
/// directory committed as a layer.
#[allow(clippy::too_many_arguments)]
fn run_in(
    b: &Scope,
    st: &Stage,
    argv: &[String],
    r: &Run,
    network: Network,
    label: &str,
    dir: &Path,
) -> Result<LayerRecord, BuildError> {
    let store = b.store;
    let step_err = |msg: String| BuildError::Step {
        step: label.to_string(),
        msg,
    };
    let mode = runtime_mode(network);
    if mode == Mode::Private {
        network::preflight(&[]).map_err(|e| step_err(e.to_string()))?;
    }
    // The config the container runs: the stage's, with the command.
    let mut cfg = st.config.clone();
    cfg["config"]["Entrypoint"] = json!([]);
    cfg["config"]["Cmd"] = json!(argv);
    cfg["config"]["Env"] = json!(st.run_env());
    let data = serde_json::to_vec(&cfg).expect("config serializes");
    let digest = Digest::of(&data);
    store.put_blob(&digest, &data)?;
    let rec = ImageRecord {
        name: "build-step".into(),
        source: String::new(),
        manifest: None,
        config: digest,
        layers: st.layers.clone(),
        imported: String::new(),
    };
    let rootless = crate::userns::is_rootless();
    let mut spec = default_spec();
    if rootless {
        let (uid, gid) = crate::userns::own_ids();
        make_rootless(&mut spec, uid, gid);
    }
    let opts = BundleOptions {
        flatten: false,
        args: Vec::new(),
        terminal: false,
        rootless,
    };
    let layers = make_bundle(store, &rec, dir, spec, &opts)?;
    let config_path = dir.join("config.json");
    let mut spec: Value = serde_json::from_slice(
        &std::fs::read(&config_path)
            .map_err(crate::image::ImageError::io("read the step's config"))?,
    )
    .map_err(|e| step_err(format!("step config: {e}")))?;
    adjust_spec(&mut spec);
    network::configure(&mut spec, mode, dir, HOSTNAME).map_err(|e| step_err(e.to_string()))?;
    for m in mounts(b, r).map_err(step_err)? {
        spec["mounts"].as_array_mut().expect("mounts").push(m);
    }
    let stubs: Vec<String> = spec["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["destination"].as_str().map(str::to_string))
        .collect();
    std::fs::write(
        &config_path,
        serde_json::to_vec_pretty(&spec).expect("json"),
    )
    .map_err(crate::image::ImageError::io("write the step's config"))?;

    let containers = crate::container::StateStore::open(&b.opts.containers)
        .map_err(|e| step_err(e.to_string()))?;
    let id = format!(
        "ferry-build-{}",
        &crate::image::temp_name("s").to_string_lossy()[2..]
    )
    .replace('.', "-");
    // `run` blocks the signals it forwards to the container; the build
    // takes them back afterwards (a Ctrl-C during a COPY still stops it).
    let mask = nix::sys::signal::SigSet::thread_get_mask().ok();
    let res = run_networked(&containers, &id, b.opts.systemd_cgroup, mode, dir);
    if let Some(m) = mask {
        let _ = m.thread_set_mask();
    }
    let code = res.map_err(|e| step_err(e.to_string()))?;
    if code != 0 {
        return Err(BuildError::RunFailed {
            step: label.to_string(),
            code,
        });
    }
    let upper = dir.join("upper");
    commit::commit_dir(store, &upper, move |u| remove_stubs(u, &layers, &stubs))
}

/// Run the step's container to completion; with a private network,
/// pasta is attached to its namespace between create and start and
/// stopped when the step ends, whatever its outcome (the container's
/// delete stops it too: the spec has [`network::ANNOTATION`]).
fn run_networked(
    containers: &container::StateStore,
    id: &str,
    systemd_cgroup: bool,
    mode: Mode,
    dir: &Path,
) -> Result<i32, container::ContainerError> {
    let user_ns = crate::userns::is_rootless();
    let namespaces: RefCell<Option<network::Namespaces>> = RefCell::new(None);
    let open = |pid: i32| -> std::io::Result<()> {
        *namespaces.borrow_mut() = Some(network::Namespaces::open(pid, user_ns)?);
        Ok(())
    };
    let options = CreateOptions {
        id,
        systemd_cgroup,
        on_clone: (mode == Mode::Private).then_some(&open as &dyn Fn(i32) -> std::io::Result<()>),
        ..CreateOptions::default()
    };
    let mut guard = None;
    let mut attach = |_: &container::State| -> Result<(), container::ContainerError> {
        if let Some(ns) = namespaces.borrow_mut().take() {
            guard = Some(network::attach(&ns, &[], dir)?);
        }
        Ok(())
    };
    let res = container::run_with(containers, Some(dir), options, false, false, &mut attach);
    drop(guard);
    res
}

/// Build steps run with Docker's capabilities, may gain privileges (sudo,
/// setuid tools) and have no terminal; [`network::configure`] gives them
/// their network, hostname and `/etc` files.
fn adjust_spec(spec: &mut Value) {
    let p = &mut spec["process"];
    p["capabilities"] = json!({ "bounding": CAPS, "effective": CAPS, "permitted": CAPS });
    p["noNewPrivileges"] = json!(false);
    p["terminal"] = json!(false);
}

/// The step's `--mount`s as runtime mounts.
fn mounts(b: &Scope, r: &Run) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for m in &r.mounts {
        match m {
            RunMount::Secret {
                id,
                target,
                required,
                ..
            } => {
                let Some(src) = b.opts.secrets.get(id) else {
                    if *required {
                        return Err(format!(
                            "secret {id:?} is required: give it with --secret id={id},src=PATH"
                        ));
                    }
                    continue;
                };
                let dest = target
                    .clone()
                    .unwrap_or_else(|| format!("/run/secrets/{id}"));
                out.push(json!({
                    "destination": dest, "type": "bind", "source": src,
                    "options": ["rbind", "ro", "nosuid", "nodev", "noexec"],
                }));
            }
            RunMount::Cache { target, id, .. } => {
                let id = id.clone().unwrap_or_else(|| target.clone());
                let dir = cache_mount_dir(b, &id)?;
                out.push(json!({
                    "destination": target, "type": "bind", "source": dir,
                    "options": ["rbind", "rw", "nosuid", "nodev"],
                }));
            }
            RunMount::Tmpfs { target, size } => {
                let mut opts = vec!["nosuid".to_string(), "nodev".into()];
                if let Some(s) = size {
                    opts.push(format!("size={s}"));
                }
                out.push(json!({
                    "destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts,
                }));
            }
            RunMount::Bind {
                source,
                target,
                from: None,
                rw,
            } => {
                if *rw {
                    log::warn!(
                        "RUN --mount=type=bind,rw: bound read-only (writes would be dropped anyway)"
                    );
                }
                let (src, _) = copy::bind_source(b, source).map_err(|e| e.to_string())?;
                out.push(json!({
                    "destination": target, "type": "bind", "source": src,
                    "options": ["rbind", "ro", "nosuid", "nodev"],
                }));
            }
            RunMount::Bind { from: Some(f), .. } => {
                return Err(format!(
                    "RUN --mount=type=bind,from={f} is not supported yet: COPY --from the files instead"
                ));
            }
        }
    }
    Ok(out)
}

/// The directory kept across builds for the cache mount `id`.
fn cache_mount_dir(b: &Scope, id: &str) -> Result<PathBuf, String> {
    let key = Digest::of(id.as_bytes());
    let dir = b.store.root().join("cache-mounts").join(&key.hex()[..32]);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Drop from the upper directory the mount points the runtime made for
/// this step's mounts (an empty file or directory the lower layers lack),
/// and their parents made for them.
fn remove_stubs(upper: &Path, lowers: &[PathBuf], dests: &[String]) -> Result<(), String> {
    // The upper directory was written by the container: resolved inside
    // it, never through a symlink the container left there.
    let root =
        crate::fs::Root::open(upper).map_err(|e| format!("open {}: {e}", upper.display()))?;
    let in_lower = |rel: &Path| {
        lowers
            .iter()
            .any(|l| crate::fs::Root::open(l).is_ok_and(|r| r.resolve_no_symlinks(rel).is_ok()))
    };
    let mut dests: Vec<&String> = dests.iter().collect();
    // Deepest first, so parents are empty when their turn comes.
    dests.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    for d in dests {
        let rel = PathBuf::from(d.trim_start_matches('/'));
        let mut cur: Option<&Path> = Some(rel.as_path());
        while let Some(p) = cur.filter(|p| !p.as_os_str().is_empty()) {
            if in_lower(p) || !remove_if_empty(&root, p) {
                break;
            }
            cur = p.parent();
        }
    }
    Ok(())
}

/// Remove `rel` (in `root`, reached without following any symlink) if it
/// is an empty directory or an empty regular file; whether it is gone.
fn remove_if_empty(root: &crate::fs::Root, rel: &Path) -> bool {
    use nix::fcntl::AtFlags;
    use nix::sys::stat::{SFlag, fstatat};
    use nix::unistd::{UnlinkatFlags, unlinkat};
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return false;
    };
    let dir = match root.resolve_no_symlinks(parent) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return true,
        Err(_) => return false,
    };
    let st = match fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(nix::errno::Errno::ENOENT) => return true,
        Err(_) => return false,
    };
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let how = if kind == SFlag::S_IFDIR {
        UnlinkatFlags::RemoveDir
    } else if kind == SFlag::S_IFREG && st.st_size == 0 {
        UnlinkatFlags::NoRemoveDir
    } else {
        return false;
    };
    unlinkat(&dir, name, how).is_ok()
}
