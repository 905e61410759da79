//! `ferry delete`: remove a container and everything ferry made for it.

use anyhow::{Result, bail};

use crate::container::{Status, Store, StoreError};

use super::kill::{open_init, signal_init, wait_exit};

pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let dir = match store.open_container(id) {
        Err(StoreError::NotFound(_)) if force => return Ok(()),
        other => other?,
    };
    let Some(state) = dir.load()? else {
        // A create that was killed half-way: nothing runs, remove the rest.
        if force {
            return Ok(dir.remove()?);
        }
        bail!("container {id} is still being created");
    };
    match state.status(dir.path()) {
        Status::Stopped => {}
        Status::Created => stop(&state)?,
        // A `create` killed half-way: its init (if any) still waits.
        Status::Creating if !force => bail!("container {id} is still being created"),
        status if force => {
            let _ = status;
            stop(&state)?
        }
        status => bail!("cannot delete container {id} that is not stopped: {status}"),
    }
    if let Some(cg) = &state.cgroup {
        cg.destroy()?;
    }
    dir.remove()?;
    log::debug!("delete {id}: state and cgroup removed");
    if state.creating {
        // Never created: no poststop hooks.
        return Ok(());
    }
    let hooks = state.hooks.as_ref().and_then(|h| h.poststop().as_ref());
    crate::hooks::run_logged("poststop", hooks, &state.hook_json(Status::Stopped));
    Ok(())
}

/// SIGKILL everything in the container and wait for the init to exit.
fn stop(state: &crate::container::State) -> Result<()> {
    let Some(pidfd) = open_init(state) else {
        return Ok(());
    };
    // The pidfd opened above: the init exiting on its own meanwhile is fine.
    signal_init(state, &pidfd, libc::SIGKILL, true)?;
    if !wait_exit(&pidfd, 10_000) {
        bail!(
            "container {}: init {} did not exit after SIGKILL",
            state.id,
            state.pid
        );
    }
    Ok(())
}
