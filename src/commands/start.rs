//! `ferry start`: release a created container's init (exactly once).

use std::os::fd::AsFd;

use anyhow::{Result, bail};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;

use crate::container::{Status, Store};

pub fn start(store: &Store, id: &str) -> Result<()> {
    let dir = store.open_container(id)?;
    let Some(state) = dir.load()? else {
        bail!("container {id} is still being created")
    };
    match state.status(dir.path()) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start container {id}: it has stopped"),
        Status::Creating => bail!("container {id} is still being created"),
        other => bail!("cannot start container {id}: it is already {other}"),
    }
    // Non-blocking open: it succeeds without a writer, so a dead init cannot
    // hang us; the init's blocked open for writing completes now.
    let fifo = nix::fcntl::open(
        &dir.fifo_path(),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(n) if n > 0 => {
                let mut b = [0u8; 1];
                if nix::unistd::read(&fifo, &mut b)? == 1 {
                    break;
                }
            }
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        if !state.init_alive() {
            bail!("cannot start container {id}: its init exited before start");
        }
    }
    std::fs::remove_file(dir.fifo_path())?;
    log::debug!("start {id}: init {} released", state.pid);
    let hooks = state.hooks.as_ref().and_then(|h| h.poststart().as_ref());
    crate::hooks::run_logged("poststart", hooks, &state.hook_json(Status::Running));
    Ok(())
}
