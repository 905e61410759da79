//! `ferry state`: the runtime spec's state document.

use anyhow::Result;

use crate::container::{Status, Store, StoreError};

/// Print the state of container `id`. A container that is still being
/// created does not exist yet for `state`, as in runc and crun: pollers
/// that wait for it to appear then see `created`, never `creating`.
pub fn state(store: &Store, id: &str) -> Result<()> {
    let Some(state) = store.peek(id)? else {
        return Err(StoreError::NotFound(id.into()).into());
    };
    let status = state.status(&store.container_path(id));
    if status == Status::Creating {
        return Err(StoreError::NotFound(id.into()).into());
    }
    println!("{}", serde_json::to_string_pretty(&state.document(status))?);
    Ok(())
}
