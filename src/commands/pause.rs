//! `ferry pause` / `ferry resume`: freeze and thaw the container's cgroup
//! (v1 `freezer.state`, v2 `cgroup.freeze`).

use anyhow::{Result, bail};

use crate::container::{State, Status, Store};

pub fn pause(store: &Store, id: &str) -> Result<()> {
    let (state, status) = load(store, id)?;
    match status {
        Status::Running | Status::Created => {}
        Status::Paused => bail!("container {id} is already paused"),
        _ => bail!("container {id} is not running"),
    }
    freezable(&state)?.freeze()?;
    Ok(())
}

pub fn resume(store: &Store, id: &str) -> Result<()> {
    let (state, status) = load(store, id)?;
    if status != Status::Paused {
        bail!("container {id} is not paused");
    }
    freezable(&state)?.thaw()?;
    Ok(())
}

fn load(store: &Store, id: &str) -> Result<(State, Status)> {
    let dir = store.open_container(id)?;
    let Some(state) = dir.load()? else {
        bail!("container {id} is still being created")
    };
    let status = state.status(dir.path());
    Ok((state, status))
}

fn freezable(state: &State) -> Result<&crate::cgroups::CgroupState> {
    match &state.cgroup {
        Some(cg) if cg.can_freeze() => Ok(cg),
        Some(_) => bail!(
            "container {}: the freezer cgroup controller is not available",
            state.id
        ),
        None => bail!(
            "container {} has no cgroup of its own: cannot pause it",
            state.id
        ),
    }
}
