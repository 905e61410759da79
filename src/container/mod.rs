//! The on-disk state of containers: `ROOT/ID/state.json`, the exec fifo
//! that `start` opens, and a lock that serializes commands on one id.

mod id;
mod state;
mod store;

pub use id::validate_id;
pub use state::{State, StateDocument, Status, process_start_time};
pub use store::{ContainerDir, Store, StoreError, default_root};
