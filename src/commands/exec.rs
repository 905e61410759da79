//! `ferry exec`: run a new process in a running container.

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{Capability, Process};

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
    let plan = ExecPlan {
        process: &process,
        init_pid: nix::unistd::Pid::from_raw(state.pid),
        console_socket,
        preserve_fds: o.preserve_fds,
        sigmask_reset: set.is_some(),
        cgroup: state.cgroup.as_ref(),
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
