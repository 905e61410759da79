//! `ferry delete`: remove a container and everything ferry made for it.

use anyhow::Result;

use crate::container::{Container, StateStore};

pub fn delete(store: &StateStore, id: &str, force: bool) -> Result<()> {
    if force {
        return Ok(Container::force_delete(store, id)?);
    }
    Ok(Container::load(store, id)?.delete()?)
}
