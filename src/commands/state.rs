//! `ferry state`: the runtime spec's state document.

use anyhow::Result;

use crate::container::{Container, StateStore};

/// Print the state of container `id`.
pub fn state(store: &StateStore, id: &str) -> Result<()> {
    let container = Container::peek(store, id)?;
    println!("{}", serde_json::to_string_pretty(&container.document()?)?);
    Ok(())
}
