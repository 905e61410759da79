//! `ferry exec`: run a new process in a running container.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{Capability, Process};

use crate::cgroups::CgroupState;
use crate::cli::{ExecOpts, GlobalOpts};
use crate::config;
use crate::container::Status;
use crate::process::join::{self, ExecPlan};

use super::create::{connect, write_pid_file};
use super::run::{block_signals, forward_until_exit};

pub fn exec(g: &GlobalOpts, o: &ExecOpts) -> Result<i32> {
    let store = super::store(g)?;
    let Some(state) = store.peek(&o.id)? else {
        bail!("container {} is still being created", o.id)
    };
    match state.status(&store.container_path(&o.id)) {
        Status::Stopped => bail!("cannot exec in a stopped container"),
        Status::Creating => bail!("container {} is still being created", o.id),
        Status::Paused if !o.ignore_paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        _ => {}
    }
    let process = build_process(o, &state.bundle)?;
    config::check_user(process.user())?;
    crate::process::finalize::lsm_labels(&process).check()?;
    let mut console_socket = o.console_socket.as_deref().map(connect).transpose()?;
    let set = if o.detach {
        None
    } else {
        Some(block_signals()?)
    };
    // `exec -t` in the foreground without a console socket: ferry takes
    // the pty master itself and bridges the caller's terminal, as `run`.
    let bridge = console_socket.is_none() && set.is_some() && process.terminal() == Some(true);
    let bridge_end = if bridge {
        let (ours, theirs) = crate::tty::console_pair()?;
        console_socket = Some(theirs);
        Some(ours)
    } else {
        None
    };
    // The container's seccomp profile applies to exec'd processes too, as in runc.
    let spec = config::load(&state.bundle)?;
    let seccomp = crate::seccomp::Seccomp::for_exec(&spec, &o.id, &state.bundle, state.pid)?;
    let sub = sub_cgroup(state.cgroup.as_ref(), &o.cgroup)?;
    log::debug!(
        "exec in {} (init {}): {:?}",
        o.id,
        state.pid,
        process.args().as_deref().unwrap_or_default()
    );
    let plan = ExecPlan {
        process: &process,
        init_pid: nix::unistd::Pid::from_raw(state.pid),
        console_socket,
        preserve_fds: o.preserve_fds,
        sigmask_reset: set.is_some(),
        cgroup: sub.as_ref().or(state.cgroup.as_ref()),
        seccomp: seccomp.as_ref(),
    };
    let pid = join::spawn(&plan)?;
    drop(plan);
    let master = bridge_end
        .map(|sock| crate::tty::recv_master(&sock))
        .transpose()
        .inspect_err(|_| {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        })?;
    log::debug!("exec in {}: process {pid} started", o.id);
    if let Some(pid_file) = &o.pid_file {
        write_pid_file(pid_file, pid)?;
    }
    match (set, master) {
        (None, _) => Ok(0),
        (Some(set), Some(master)) => Ok(crate::tty::bridge(&master, &set, pid)?),
        (Some(set), None) => forward_until_exit(&set, pid),
    }
}

/// The process to run: `--process FILE`, or the container's own process
/// changed by the command line.
fn build_process(o: &ExecOpts, bundle: &std::path::Path) -> Result<Process> {
    let mut p: Process = match &o.process {
        Some(file) => {
            let data = std::fs::read(file)
                .with_context(|| format!("read process file {}", file.display()))?;
            config::parse_process(&data)
                .with_context(|| format!("invalid process file {}", file.display()))?
        }
        None => {
            let spec = config::load(bundle)?;
            let mut p = spec
                .process()
                .clone()
                .context("the container's config.json has no process")?;
            if o.command.is_empty() {
                bail!("exec needs a command or --process");
            }
            p.set_args(Some(o.command.clone()));
            p.set_terminal(Some(o.tty));
            p.set_console_size(None);
            p
        }
    };
    if !o.command.is_empty() && o.process.is_some() {
        p.set_args(Some(o.command.clone()));
    }
    if o.tty {
        p.set_terminal(Some(true));
    }
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    if !o.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &o.env {
            let key = kv.split('=').next().unwrap_or_default();
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    if let Some(user) = &o.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let mut u = p.user().clone();
        u.set_uid(
            uid.parse()
                .with_context(|| format!("invalid --user {user:?}"))?,
        );
        u.set_gid(
            gid.parse()
                .with_context(|| format!("invalid --user {user:?}"))?,
        );
        p.set_user(u);
    }
    if !o.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(o.additional_gids.clone()));
        p.set_user(u);
    }
    if !o.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let added: Vec<Capability> = o
            .cap
            .iter()
            .map(|c| {
                serde_json::from_value(serde_json::Value::String(c.to_uppercase()))
                    .map_err(|_| anyhow::anyhow!("unknown capability {c:?}"))
            })
            .collect::<Result<_>>()?;
        caps.set_bounding(extend(caps.bounding(), &added));
        caps.set_effective(extend(caps.effective(), &added));
        caps.set_permitted(extend(caps.permitted(), &added));
        p.set_capabilities(Some(caps));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &o.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &o.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
}

fn extend(
    set: &Option<oci_spec::runtime::Capabilities>,
    added: &[Capability],
) -> Option<oci_spec::runtime::Capabilities> {
    let mut s = set.clone().unwrap_or_default();
    s.extend(added.iter().copied());
    Some(s)
}

/// The cgroup an exec'd process joins with `--cgroup` (runc's flag): the
/// container's, with each directory replaced by its existing sub-cgroup.
/// `PATH` alone applies to every hierarchy (the only form on cgroup v2);
/// `CONTROLLER[,CONTROLLER...]:PATH` to the named controllers' (and the
/// controllers co-mounted with them, which share their directory).
fn sub_cgroup(cg: Option<&CgroupState>, args: &[String]) -> Result<Option<CgroupState>> {
    if args.is_empty() {
        return Ok(None);
    }
    let Some(cg) = cg else {
        bail!("--cgroup: the container has no cgroup of its own")
    };
    let subs = parse_sub_cgroups(args)?;
    if cg.v2 && subs.keys().any(|k| !k.is_empty()) {
        bail!("--cgroup: on cgroup v2 give PATH without a controller");
    }
    if let Some(ctrl) = subs.keys().find(|k| !k.is_empty() && cg.dir(k).is_none()) {
        bail!("--cgroup: the container has no cgroup for controller {ctrl}");
    }
    let mut paths = BTreeMap::new();
    for (ctrl, dir) in &cg.paths {
        let shared = cg.paths.iter().filter(|(_, d)| *d == dir);
        let sub = shared
            .filter_map(|(c, _)| subs.get(c))
            .next()
            .or_else(|| subs.get(""));
        let target = match sub {
            Some(sub) => dir.join(sub),
            None => dir.clone(),
        };
        if !target.is_dir() {
            bail!("--cgroup: sub-cgroup {} does not exist", target.display());
        }
        paths.insert(ctrl.clone(), target);
    }
    Ok(Some(CgroupState {
        v2: cg.v2,
        paths,
        created: Vec::new(),
    }))
}

/// `--cgroup` values as a map controller → sub-path (`""`: every
/// hierarchy), checked as runc does, and each path kept inside the
/// container's cgroup (relative, no `..`).
fn parse_sub_cgroups(args: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for arg in args {
        let (ctrls, path) = match arg.split_once(':') {
            Some((c, p)) => (Some(c), p),
            None => (None, arg.as_str()),
        };
        let path = sub_path(arg, path)?;
        let Some(ctrls) = ctrls else {
            if args.len() != 1 {
                bail!("invalid --cgroup {arg:?}: give a CONTROLLER: prefix when there are several");
            }
            out.insert(String::new(), path);
            continue;
        };
        for ctrl in ctrls.split(',') {
            if ctrl.is_empty() {
                bail!("invalid --cgroup {arg:?}: empty controller name");
            }
            if out.insert(ctrl.to_string(), path.clone()).is_some() {
                bail!("invalid --cgroup: controller {ctrl} given more than once");
            }
        }
    }
    Ok(out)
}

/// A sub-cgroup path: relative, without `..`, not empty.
fn sub_path(arg: &str, path: &str) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::CurDir => {}
            _ => {
                bail!("invalid --cgroup {arg:?}: the path must stay inside the container's cgroup")
            }
        }
    }
    if out.as_os_str().is_empty() {
        bail!("invalid --cgroup {arg:?}: empty path");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sub_cgroup_arguments_as_runc() {
        let m = parse_sub_cgroups(&args(&["sub/leaf"])).unwrap();
        assert_eq!(m.get(""), Some(&PathBuf::from("sub/leaf")));
        let m = parse_sub_cgroups(&args(&["cpu,cpuacct:a", "pids:/b"])).unwrap();
        assert_eq!(m.get("cpu"), Some(&PathBuf::from("a")));
        assert_eq!(m.get("cpuacct"), Some(&PathBuf::from("a")));
        assert_eq!(m.get("pids"), Some(&PathBuf::from("b")));
        for bad in [
            &["a", "b"][..],
            &["pids:a", "pids:b"],
            &[":a"],
            &["pids:"],
            &["../escape"],
            &["pids:a/../../x"],
        ] {
            assert!(parse_sub_cgroups(&args(bad)).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sub_cgroup_replaces_each_directory() {
        let base = std::env::temp_dir().join(format!("ferry-subcg-{}", std::process::id()));
        let (cpu, pids) = (base.join("cpu"), base.join("pids"));
        std::fs::create_dir_all(cpu.join("s")).unwrap();
        std::fs::create_dir_all(&pids).unwrap();
        let cg = CgroupState {
            v2: false,
            paths: BTreeMap::from([
                ("cpu".into(), cpu.clone()),
                ("cpuacct".into(), cpu.clone()),
                ("pids".into(), pids.clone()),
            ]),
            created: vec![cpu.clone()],
        };
        let got = sub_cgroup(Some(&cg), &args(&["cpuacct:s"]))
            .unwrap()
            .unwrap();
        assert_eq!(got.paths["cpu"], cpu.join("s"), "co-mounted: same dir");
        assert_eq!(got.paths["cpuacct"], cpu.join("s"));
        assert_eq!(got.paths["pids"], pids);
        assert!(got.created.is_empty(), "exec never removes cgroups");
        assert!(
            sub_cgroup(Some(&cg), &args(&["s"])).is_err(),
            "pids/s missing"
        );
        assert!(sub_cgroup(Some(&cg), &args(&["memory:s"])).is_err());
        assert!(sub_cgroup(None, &args(&["s"])).is_err());
        let _ = std::fs::remove_dir_all(&base);
    }
}
