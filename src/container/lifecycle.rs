//! A container as a whole: its recorded state, its live status and (for
//! the commands that change it) the lock on its directory. Every operation
//! checks the status it needs through [`Container::require`], against the
//! table in [`super::rules`].

use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;

use super::rules::Op;
use super::signal::{self, open_init};
use super::{ContainerDir, ContainerError, State, StateDocument, StateStore, Status, StoreError};
use crate::cgroups::CgroupState;

/// One container, loaded from the store.
pub struct Container {
    pub(super) state: State,
    status: Status,
    path: PathBuf,
    /// The directory's lock, held by the commands that change the container.
    pub(super) dir: Option<ContainerDir>,
}

impl Container {
    /// Load container `id` and lock it against other commands until this
    /// value is dropped.
    pub fn load(store: &StateStore, id: &str) -> Result<Container, ContainerError> {
        let dir = store.open_container(id)?;
        let state = dir.load()?.ok_or_else(|| StoreError::NotFound(id.into()))?;
        Ok(Container::new(state, dir.path().to_path_buf(), Some(dir)))
    }

    /// Load container `id` without locking it (`state`, `list`, `exec`:
    /// readers see the old or the new state.json, never a partial one).
    pub fn peek(store: &StateStore, id: &str) -> Result<Container, ContainerError> {
        let state = store
            .peek(id)?
            .ok_or_else(|| StoreError::NotFound(id.into()))?;
        Ok(Container::new(state, store.container_path(id), None))
    }

    pub(super) fn new(state: State, path: PathBuf, dir: Option<ContainerDir>) -> Container {
        let status = state.status(&path);
        Container {
            state,
            status,
            path,
            dir,
        }
    }

    /// Every container whose `create` is done, by id.
    pub fn list(store: &StateStore) -> Result<Vec<Container>, ContainerError> {
        let mut out = Vec::new();
        for id in store.ids()? {
            if let Ok(c) = Container::peek(store, &id)
                && c.require(Op::Show).is_ok()
            {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Fail unless `op` may run in the container's status.
    pub fn require(&self, op: Op) -> Result<(), ContainerError> {
        if op.allows(self.status) {
            return Ok(());
        }
        Err(ContainerError::Refused {
            id: self.state.id.clone(),
            op,
            status: self.status,
        })
    }

    pub fn id(&self) -> &str {
        &self.state.id
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// The recorded state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The runtime spec's state document (a container still being created
    /// does not exist yet, as in runc and crun: pollers that wait for it to
    /// appear then see `created`, never `creating`).
    pub fn document(&self) -> Result<StateDocument<'_>, ContainerError> {
        self.require(Op::Show)?;
        Ok(self.state.document(self.status))
    }

    /// Release the created init (exactly once), then run `poststart`.
    pub fn start(self) -> Result<(), ContainerError> {
        self.require(Op::Start)?;
        let fifo_path = self.path.join(super::state::EXEC_FIFO);
        let io = |what| {
            let id = self.state.id.clone();
            move |source| ContainerError::Io { id, what, source }
        };
        // Non-blocking open: it succeeds without a writer, so a dead init
        // cannot hang us; the init's blocked open for writing completes now.
        let fifo = nix::fcntl::open(
            &fifo_path,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io("open exec fifo")(e.into()))?;
        loop {
            let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(n) if n > 0 => {
                    let mut b = [0u8; 1];
                    let n = nix::unistd::read(&fifo, &mut b)
                        .map_err(|e| io("read exec fifo")(e.into()))?;
                    if n == 1 {
                        break;
                    }
                }
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(io("wait for the init")(e.into())),
            }
            if !self.state.init_alive() {
                return Err(ContainerError::InitExited(self.state.id.clone()));
            }
        }
        std::fs::remove_file(&fifo_path).map_err(io("remove exec fifo"))?;
        log::debug!("start {}: init {} released", self.id(), self.state.pid);
        let hooks = self
            .state
            .hooks
            .as_ref()
            .and_then(|h| h.poststart().as_ref());
        crate::hooks::run_logged("poststart", hooks, &self.state.hook_json(Status::Running));
        Ok(())
    }

    /// Send `sig` (0: only ask whether the init is alive), with runc's
    /// rules: `all` signals every process of the container; `all` of a
    /// stopped container signals what is left in its cgroup and succeeds;
    /// SIGKILL to a container that shares the host's pid namespace kills
    /// every process of its cgroup (killing its init would not take the
    /// others with it), even once the init is gone.
    pub fn kill(&self, sig: i32, all: bool) -> Result<(), ContainerError> {
        let st = &self.state;
        let kill_cgroup = sig == libc::SIGKILL && !st.own_pid_ns && st.cgroup.is_some();
        let all = all || kill_cgroup;
        log::debug!("kill {} ({}): signal {sig}, all: {all}", st.id, self.status);
        // What containerd relies on: a plain kill of a stopped container
        // fails with the phrase engines read as "already gone".
        self.require(if all { Op::KillAll } else { Op::Kill })?;
        if self.status == Status::Stopped {
            if let Some(cg) = st.cgroup.as_ref().filter(|_| sig != 0) {
                let _ = cg.signal_all(sig);
            }
            return Ok(());
        }
        let Some(pidfd) = open_init(st) else {
            return Err(ContainerError::Refused {
                id: st.id.clone(),
                op: Op::Kill,
                status: Status::Stopped,
            });
        };
        signal::signal_init(st, &pidfd, sig, all)?;
        if sig == libc::SIGKILL && st.own_pid_ns {
            // The whole container dies: its published ports go now.
            release_network(st);
        }
        Ok(())
    }

    /// Remove a stopped or created container (`delete`).
    pub fn delete(self) -> Result<(), ContainerError> {
        self.remove(Op::Delete)
    }

    /// `delete --force`: kill and remove container `id` whatever its
    /// status, also what a `create` killed half-way left (no state.json
    /// yet, or a provisional one); a missing container is no error.
    pub fn force_delete(store: &StateStore, id: &str) -> Result<(), ContainerError> {
        let dir = match store.open_container(id) {
            Err(StoreError::NotFound(_)) => return Ok(()),
            other => other?,
        };
        match dir.load()? {
            Some(state) => {
                let path = dir.path().to_path_buf();
                Container::new(state, path, Some(dir)).remove(Op::ForceDelete)
            }
            // A create killed before its first record: nothing runs.
            None => Ok(dir.remove()?),
        }
    }

    /// Stop what still runs, remove the cgroup and the state, then run
    /// `poststop` (not for a container whose create never finished).
    fn remove(mut self, op: Op) -> Result<(), ContainerError> {
        self.require(op)?;
        let st = &self.state;
        if self.status != Status::Stopped {
            signal::stop(st)?;
        }
        if let Some(cg) = &st.cgroup {
            cg.destroy()?;
        }
        release_network(st);
        if let Some(dir) = self.dir.take() {
            dir.remove()?;
        }
        log::debug!("delete {}: state and cgroup removed", st.id);
        if st.creating {
            return Ok(());
        }
        let hooks = st.hooks.as_ref().and_then(|h| h.poststop().as_ref());
        crate::hooks::run_logged("poststop", hooks, &st.hook_json(Status::Stopped));
        Ok(())
    }

    /// Freeze the container's cgroup.
    pub fn pause(&self) -> Result<(), ContainerError> {
        self.require(Op::Pause)?;
        Ok(self.freezer()?.freeze()?)
    }

    /// Thaw the container's cgroup.
    pub fn resume(&self) -> Result<(), ContainerError> {
        self.require(Op::Resume)?;
        Ok(self.freezer()?.thaw()?)
    }

    fn freezer(&self) -> Result<&CgroupState, ContainerError> {
        match &self.state.cgroup {
            Some(cg) if cg.can_freeze() => Ok(cg),
            Some(_) => Err(ContainerError::NoFreezer(self.state.id.clone())),
            None => Err(self.no_cgroup("cannot pause it")),
        }
    }

    fn no_cgroup(&self, consequence: &'static str) -> ContainerError {
        ContainerError::NoCgroup {
            id: self.state.id.clone(),
            consequence,
        }
    }

    /// The host pids of the container's processes (none once it has
    /// stopped); the lock is released.
    pub fn processes(self) -> Result<Vec<i32>, ContainerError> {
        self.require(Op::Processes)?;
        if self.status == Status::Stopped {
            return Ok(Vec::new());
        }
        Ok(signal::container_pids(&self.state))
    }

    /// Change the container's resource limits to what `resources` reads
    /// (only once the container is known to run and have a cgroup, so a
    /// refused update does not read its input).
    pub fn update<E: From<ContainerError>>(
        &self,
        resources: impl FnOnce() -> Result<oci_spec::runtime::LinuxResources, E>,
    ) -> Result<(), E> {
        self.require(Op::Update)?;
        let cg = self.cgroup("cannot update its resources")?;
        let resources = resources()?;
        crate::cgroups::update(cg, &resources).map_err(|e| ContainerError::from(e).into())
    }

    fn cgroup(&self, consequence: &'static str) -> Result<&CgroupState, ContainerError> {
        self.state
            .cgroup
            .as_ref()
            .ok_or_else(|| self.no_cgroup(consequence))
    }
}

/// Stop the network helper (pasta) of a container that has one (see
/// [`crate::network`]).
fn release_network(st: &State) {
    if st.annotations.contains_key(crate::network::ANNOTATION) {
        crate::network::release(&st.bundle);
    }
}
