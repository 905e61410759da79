//! `ferry exec`: run a new process in a running container.

use anyhow::{Context, Result, bail};
use oci_spec::runtime::{Capability, Process, Spec};

use crate::cli::{ExecOpts, GlobalOpts};
use crate::config;
use crate::container::{Container, ExecOptions};

pub fn exec(g: &GlobalOpts, o: &ExecOpts) -> Result<i32> {
    let container = Container::peek(&super::store(g)?, &o.id)?;
    let spec = container.exec_config(o.ignore_paused)?;
    let process = build_process(o, &spec)?;
    let options = ExecOptions {
        console_socket: o.console_socket.as_deref(),
        detach: o.detach,
        preserve_fds: o.preserve_fds,
        cgroup: &o.cgroup,
        pid_file: o.pid_file.as_deref(),
    };
    match container.exec(&spec, &process, &options)? {
        Some(foreground) => Ok(foreground.wait()?),
        None => Ok(0),
    }
}

/// The process to run: `--process FILE`, or the container's own process
/// changed by the command line.
fn build_process(o: &ExecOpts, spec: &Spec) -> Result<Process> {
    let mut p: Process = match &o.process {
        Some(file) => {
            let data = std::fs::read(file)
                .with_context(|| format!("read process file {}", file.display()))?;
            config::parse_process(&data)
                .with_context(|| format!("invalid process file {}", file.display()))?
        }
        None => {
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
