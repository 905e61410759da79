//! Seccomp: the spec's `linux.seccomp` as a BPF filter on the container.
//!
//! * [`Filter::compile`] compiles the profile in the parent, before the
//!   clone, so a bad profile fails `create` before anything exists (see
//!   [`compile`] for the translation). Podman's default profile (about 420
//!   syscalls, about 550 instructions) compiles in 0.1 to 0.2 ms and loads in
//!   about 0.15 ms, so unlike crun (libseccomp takes milliseconds) ferry
//!   keeps no cache of compiled programs: reading and checking a cache file
//!   would save less than it costs in code and state.
//! * The init loads it with `seccomp(2)` itself ([`Filter::load`]) to pass
//!   the profile's flags: with `noNewPrivileges` after every other set-up
//!   step, just before the init reports ready (like runc since 1.1: the fifo
//!   wait and `execve` then run under the filter); without it while the init
//!   still has CAP_SYS_ADMIN, before the user switch and capability drop.
//! * With `SCMP_ACT_NOTIFY` rules the load asks for a listener fd; the init
//!   hands it to the parent over the sync socket and the parent sends it to
//!   the seccomp agent at `listenerPath` ([`agent`]).

pub mod action;
pub mod agent;
pub mod compile;
pub mod syscalls;
mod syscalls_i386;

#[cfg(test)]
mod bpf_eval;
#[cfg(test)]
mod tests;

use std::os::fd::OwnedFd;
use std::path::Path;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, Spec,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::syscall;

pub use agent::Agent;

/// Why a seccomp profile cannot be compiled, loaded or handed over.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// An action name the runtime spec does not define.
    #[error("unknown seccomp action {0:?}")]
    UnknownAction(String),
    /// A comparison operator the runtime spec does not define.
    #[error("unknown seccomp operator {0:?}")]
    UnknownOperator(String),
    /// A filter flag the runtime spec does not define.
    #[error("unknown seccomp flag {0:?}")]
    UnknownFlag(String),
    /// An architecture name the runtime spec does not define.
    #[error("unknown seccomp architecture {0:?}")]
    UnknownArch(String),
    /// `SCMP_ACT_NOTIFY` as `defaultAction`: every call, even the runtime's
    /// own, would wait for the agent.
    #[error("SCMP_ACT_NOTIFY cannot be the default seccomp action")]
    NotifyDefault,
    /// A notify rule without an agent to answer it.
    #[error("SCMP_ACT_NOTIFY rules need linux.seccomp.listenerPath")]
    NotifyWithoutListener,
    /// A syscall argument index beyond the six a syscall has.
    #[error("seccomp argument index {0} is out of range (0 to 5)")]
    ArgIndex(usize),
    /// An `errnoRet` that does not fit the filter's 16-bit data.
    #[error("seccomp errnoRet {0} is out of range")]
    ErrnoRet(u32),
    /// The program exceeds the kernel's limit.
    #[error("seccomp filter needs {0} BPF instructions, more than the kernel's 4096")]
    TooLarge(usize),
    /// ferry has no syscall table for this architecture.
    #[error("seccomp is not supported on {0}")]
    UnsupportedArch(&'static str),
    /// seccompiler refused a rule.
    #[error("compile seccomp filter: {0}")]
    Backend(String),
    /// The kernel refused the filter.
    #[error("load seccomp filter: {0}")]
    Load(nix::Error),
    /// Nothing listens at `listenerPath` (the wording of runc's error).
    #[error("failed to connect with seccomp agent at {path}: {error}")]
    AgentUnreachable { path: String, error: nix::Error },
    /// The seccomp agent did not take the fd.
    #[error("send seccomp fd to {path}: {error}")]
    Agent { path: String, error: std::io::Error },
}

/// A compiled filter, ready to load.
#[derive(Clone, PartialEq, Eq)]
pub struct Filter {
    program: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
    notify: bool,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &self.flags)
            .field("notify", &self.notify)
            .finish()
    }
}

impl Filter {
    /// Compile `spec` for the native architecture.
    pub fn compile(spec: &LinuxSeccomp) -> Result<Filter, SeccompError> {
        let c = compile::compile(spec)?;
        let program = c
            .program
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        Ok(Filter {
            program,
            flags: c.flags,
            notify: c.notify,
        })
    }

    /// Whether loading yields a listener fd for the seccomp agent.
    pub fn notify(&self) -> bool {
        self.notify
    }

    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    /// Whether the program is empty (never, for a compiled filter).
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    /// Install the filter on the calling thread. Needs no_new_privs or
    /// CAP_SYS_ADMIN. Returns the listener fd when the filter notifies.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let mut flags = self.flags;
        if self.notify {
            flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        }
        match syscall::seccomp_set_filter(&self.program, flags) {
            // Kernels before 5.19 lack WAIT_KILLABLE_RECV: go on without it.
            Err(nix::Error::EINVAL)
                if flags & libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 =>
            {
                flags &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
                syscall::seccomp_set_filter(&self.program, flags).map_err(SeccompError::Load)
            }
            other => other.map_err(SeccompError::Load),
        }
    }
}

/// Check the names in a raw `linux.seccomp` before serde sees them, so an
/// unknown action, operator, flag or architecture gets a clear error.
pub fn precheck(config: &Value) -> Result<(), SeccompError> {
    let Some(s) = config.pointer("/linux/seccomp") else {
        return Ok(());
    };
    let strs = |ptr: &str| -> Vec<String> {
        s.pointer(ptr)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let known = |name: &str, kind: fn(String) -> SeccompError, ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(kind(name.to_owned()))
        }
    };
    if let Some(a) = s.get("defaultAction").and_then(Value::as_str) {
        known(
            a,
            SeccompError::UnknownAction,
            parses::<LinuxSeccompAction>(a),
        )?;
    }
    for f in strs("/flags") {
        known(
            &f,
            SeccompError::UnknownFlag,
            parses::<LinuxSeccompFilterFlag>(&f),
        )?;
    }
    for a in strs("/architectures") {
        known(&a, SeccompError::UnknownArch, parses::<Arch>(&a))?;
    }
    for call in s
        .get("syscalls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(a) = call.get("action").and_then(Value::as_str) {
            known(
                a,
                SeccompError::UnknownAction,
                parses::<LinuxSeccompAction>(a),
            )?;
        }
        for arg in call
            .get("args")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(op) = arg.get("op").and_then(Value::as_str) {
                known(
                    op,
                    SeccompError::UnknownOperator,
                    parses::<LinuxSeccompOperator>(op),
                )?;
            }
        }
    }
    Ok(())
}

fn parses<T: DeserializeOwned>(name: &str) -> bool {
    serde_json::from_value::<T>(Value::String(name.to_owned())).is_ok()
}

/// A container's seccomp set-up, prepared by the parent before the clone.
#[derive(Debug, Clone)]
pub struct Seccomp {
    pub filter: Filter,
    /// Where the listener fd goes, when the filter notifies.
    pub agent: Option<Agent>,
}

impl Seccomp {
    /// Compile the container's `linux.seccomp`, if it has one.
    pub fn for_container(
        spec: &Spec,
        id: &str,
        bundle: &Path,
    ) -> Result<Option<Seccomp>, SeccompError> {
        let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
            return Ok(None);
        };
        let filter = Filter::compile(profile)?;
        let agent = match profile.listener_path() {
            Some(path) if filter.notify() => Some(Agent::new(
                path,
                profile.listener_metadata().as_deref(),
                id,
                bundle,
                spec.version(),
                &spec
                    .annotations()
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            )),
            _ => None,
        };
        Ok(Some(Seccomp { filter, agent }))
    }

    /// The container's filter for a process `exec`'d into it; the agent
    /// learns the init's pid as the container's.
    pub fn for_exec(
        spec: &Spec,
        id: &str,
        bundle: &Path,
        init_pid: i32,
    ) -> Result<Option<Seccomp>, SeccompError> {
        let mut seccomp = Seccomp::for_container(spec, id, bundle)?;
        if let Some(s) = seccomp.as_mut() {
            s.agent = s.agent.take().map(|a| a.for_exec(init_pid));
        }
        Ok(seccomp)
    }
}
