//! Running a new process in a container (`exec`): the status it needs,
//! the terminal and signals of a foreground exec, the sub-cgroup it joins.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::sys::signal::SigSet;
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};

use super::create::{connect, write_pid_file};
use super::rules::Op;
use super::{Container, ContainerError};
use crate::cgroups::CgroupState;
use crate::config;
use crate::process::exec_process::{self, ExecPlan};

/// How to run the process: the command line's `exec` options.
#[derive(Default)]
pub struct ExecOptions<'a> {
    pub console_socket: Option<&'a Path>,
    pub detach: bool,
    pub preserve_fds: u32,
    /// `--cgroup`: sub-cgroups to join.
    pub cgroup: &'a [String],
    pub pid_file: Option<&'a Path>,
}

/// A process that runs in the foreground: the signals ferry forwards to
/// it (blocked), and the pty master when ferry bridges its terminal.
pub struct Foreground {
    pub pid: Pid,
    pub signals: SigSet,
    pub master: Option<OwnedFd>,
}

impl Foreground {
    /// Relay signals (and the terminal) until the process exits; its exit
    /// code, or 128+N.
    pub fn wait(self) -> Result<i32, ContainerError> {
        match self.master {
            Some(master) => Ok(crate::tty::bridge(&master, &self.signals, self.pid)?),
            None => crate::signals::forward_until_exit(&self.signals, self.pid).map_err(|e| {
                ContainerError::Setup {
                    what: "wait for the container's process",
                    source: e.into(),
                }
            }),
        }
    }
}

impl Container {
    /// The container's `config.json`, once an exec may run (a paused
    /// container only with `ignore_paused`): the process an exec changes
    /// and the seccomp profile it gets come from there.
    pub fn exec_config(&self, ignore_paused: bool) -> Result<Spec, ContainerError> {
        self.require(if ignore_paused {
            Op::ExecPaused
        } else {
            Op::Exec
        })?;
        Ok(config::load(&self.state.bundle)?)
    }

    /// Start `process` in the container; in the foreground (not
    /// `detach`), what to wait on.
    pub fn exec(
        &self,
        spec: &Spec,
        process: &Process,
        o: &ExecOptions,
    ) -> Result<Option<Foreground>, ContainerError> {
        let state = &self.state;
        config::check_user(process.user())?;
        crate::process::finalize::lsm_labels(process).check()?;
        let mut console_socket = o.console_socket.map(connect).transpose()?;
        let signals = if o.detach {
            None
        } else {
            Some(
                crate::signals::block_forwarded().map_err(|e| ContainerError::Setup {
                    what: "block signals",
                    source: e.into(),
                })?,
            )
        };
        // `exec -t` in the foreground without a console socket: ferry takes
        // the pty master itself and bridges the caller's terminal, as `run`.
        let bridge =
            console_socket.is_none() && signals.is_some() && process.terminal() == Some(true);
        let bridge_end = if bridge {
            let (ours, theirs) = crate::tty::console_pair()?;
            console_socket = Some(theirs);
            Some(ours)
        } else {
            None
        };
        // The container's seccomp profile applies to exec'd processes too, as in runc.
        let seccomp = crate::seccomp::Seccomp::for_exec(spec, &state.id, &state.bundle, state.pid)?;
        let sub = sub_cgroup(state.cgroup.as_ref(), o.cgroup)?;
        log::debug!(
            "exec in {} (init {}): {:?}",
            state.id,
            state.pid,
            process.args().as_deref().unwrap_or_default()
        );
        let plan = ExecPlan {
            process,
            init_pid: Pid::from_raw(state.pid),
            console_socket,
            preserve_fds: o.preserve_fds,
            sigmask_reset: signals.is_some(),
            cgroup: sub.as_ref().or(state.cgroup.as_ref()),
            seccomp: seccomp.as_ref(),
        };
        let pid = exec_process::spawn(&plan)?;
        drop(plan);
        let master = bridge_end
            .map(|sock| crate::tty::recv_master(&sock))
            .transpose()
            .inspect_err(|_| crate::process::kill_and_reap(pid))?;
        log::debug!("exec in {}: process {pid} started", state.id);
        if let Some(pid_file) = o.pid_file {
            write_pid_file(pid_file, pid)?;
        }
        Ok(signals.map(|signals| Foreground {
            pid,
            signals,
            master,
        }))
    }
}

/// The cgroup an exec'd process joins with `--cgroup` (runc's flag): the
/// container's, with each directory replaced by its existing sub-cgroup.
/// `PATH` alone applies to every hierarchy (the only form on cgroup v2);
/// `CONTROLLER[,CONTROLLER...]:PATH` to the named controllers' (and the
/// controllers co-mounted with them, which share their directory).
fn sub_cgroup(
    cg: Option<&CgroupState>,
    args: &[String],
) -> Result<Option<CgroupState>, ContainerError> {
    if args.is_empty() {
        return Ok(None);
    }
    let Some(cg) = cg else {
        return Err(ContainerError::ExecCgroup(
            "--cgroup: the container has no cgroup of its own".into(),
        ));
    };
    let subs = parse_sub_cgroups(args)?;
    if cg.v2 && subs.keys().any(|k| !k.is_empty()) {
        return Err(ContainerError::ExecCgroup(
            "--cgroup: on cgroup v2 give PATH without a controller".into(),
        ));
    }
    if let Some(ctrl) = subs.keys().find(|k| !k.is_empty() && cg.dir(k).is_none()) {
        return Err(ContainerError::ExecCgroup(format!(
            "--cgroup: the container has no cgroup for controller {ctrl}"
        )));
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
            return Err(ContainerError::ExecCgroup(format!(
                "--cgroup: sub-cgroup {} does not exist",
                target.display()
            )));
        }
        paths.insert(ctrl.clone(), target);
    }
    Ok(Some(CgroupState {
        v2: cg.v2,
        paths,
        created: Vec::new(),
        systemd: None,
    }))
}

/// `--cgroup` values as a map controller → sub-path (`""`: every
/// hierarchy), checked as runc does, and each path kept inside the
/// container's cgroup (relative, no `..`).
fn parse_sub_cgroups(args: &[String]) -> Result<BTreeMap<String, PathBuf>, ContainerError> {
    let mut out = BTreeMap::new();
    for arg in args {
        let (ctrls, path) = match arg.split_once(':') {
            Some((c, p)) => (Some(c), p),
            None => (None, arg.as_str()),
        };
        let path = sub_path(arg, path)?;
        let Some(ctrls) = ctrls else {
            if args.len() != 1 {
                return Err(ContainerError::ExecCgroup(format!(
                    "invalid --cgroup {arg:?}: give a CONTROLLER: prefix when there are several"
                )));
            }
            out.insert(String::new(), path);
            continue;
        };
        for ctrl in ctrls.split(',') {
            if ctrl.is_empty() {
                return Err(ContainerError::ExecCgroup(format!(
                    "invalid --cgroup {arg:?}: empty controller name"
                )));
            }
            if out.insert(ctrl.to_string(), path.clone()).is_some() {
                return Err(ContainerError::ExecCgroup(format!(
                    "invalid --cgroup: controller {ctrl} given more than once"
                )));
            }
        }
    }
    Ok(out)
}

/// A sub-cgroup path: relative, without `..`, not empty.
fn sub_path(arg: &str, path: &str) -> Result<PathBuf, ContainerError> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::CurDir => {}
            _ => {
                return Err(ContainerError::ExecCgroup(format!(
                    "invalid --cgroup {arg:?}: the path must stay inside the container's cgroup"
                )));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(ContainerError::ExecCgroup(format!(
            "invalid --cgroup {arg:?}: empty path"
        )));
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
            systemd: None,
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
