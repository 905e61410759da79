//! Containers: the on-disk state (`ROOT/ID/state.json`, the exec fifo
//! that `start` opens, a lock that serializes commands on one id) and the
//! [`Container`] type that owns the lifecycle, its status rules in one
//! table ([`Op`]).

mod checkpoint;
mod create;
pub mod criu;
mod error;
mod events;
mod exec;
mod lifecycle;
mod rules;
mod run;
mod signal;
mod state;
mod store;
pub mod template;

pub use checkpoint::{CheckpointOptions, RestoreOptions};
pub use create::{Bundle, CreateOptions};
pub use error::ContainerError;
pub use events::Event;
pub use exec::{ExecOptions, Foreground};
pub use lifecycle::Container;
pub use rules::Op;
pub use run::{run, run_with};
pub use state::{State, StateDocument, Status, process_start_time};
pub use store::{ContainerDir, StateStore, StoreError, default_root, validate_id};
