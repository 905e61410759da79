//! Thin, checked wrappers for the system calls nix does not cover, split by
//! concern.
//!
//! Every `unsafe` block in ferry that is not a plain nix call lives here,
//! each with the reason it holds.

mod fd;
mod mount;
mod net;
mod process;
mod seccomp;
mod signal;

pub use fd::*;
pub use mount::*;
pub use net::*;
pub use process::*;
pub use seccomp::*;
pub use signal::*;
