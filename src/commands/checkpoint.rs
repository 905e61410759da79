//! `ferry checkpoint` and `ferry restore`: they fail with the reason they
//! cannot work on this host (see [`crate::container::criu`]).

use anyhow::Result;

use crate::cli::{CheckpointOpts, RestoreOpts};
use crate::container::{Container, StateStore};

/// `ferry checkpoint ID`: the container must exist and run.
pub fn checkpoint(store: &StateStore, o: &CheckpointOpts) -> Result<()> {
    Ok(Container::load(store, &o.id)?.checkpoint()?)
}

/// `ferry restore ID`.
pub fn restore(store: &StateStore, o: &RestoreOpts) -> Result<i32> {
    Container::restore(store, &o.id)?;
    Ok(0)
}
