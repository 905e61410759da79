//! `ferry state`: the runtime spec's state document.

use anyhow::Result;

use crate::container::{Status, Store};

pub fn state(store: &Store, id: &str) -> Result<()> {
    let json = match store.peek(id)? {
        Some(state) => state.to_json(state.status(&store.container_path(id))),
        None => {
            serde_json::json!({ "ociVersion": "1.2.1", "id": id, "pid": 0, "status": Status::Creating })
        }
    };
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}
