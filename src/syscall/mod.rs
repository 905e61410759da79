//! Thin, checked wrappers for the system calls nix does not cover, split by
//! concern.
//!
//! Every `unsafe` block of the ferry library lives here,
//! each with the reason it holds. The crate denies `unsafe_code` and
//! (clippy.toml) calls to `libc::syscall` everywhere else.

#![allow(clippy::disallowed_methods)]

mod bpf;
mod fd;
mod mount;
mod net;
mod process;
mod seccomp;
mod signal;
mod tty;
mod xattr;

pub use bpf::*;
pub use fd::*;
pub use mount::*;
pub use net::*;
pub use process::*;
pub use seccomp::*;
pub use signal::*;
pub use tty::*;
pub use xattr::*;
