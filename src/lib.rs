//! ferry: a rootless, runc-compatible OCI container runtime.
//!
//! The modules follow a container's lifecycle: `cli` parses the runc-style
//! command line, `commands` holds one file per subcommand, `container` is the
//! on-disk state store, `process` is the clone/sync choreography that turns a
//! config into a blocked container init, and `rootfs` builds the container's
//! filesystem view before `pivot_root`.
//!
//! `unsafe` is denied everywhere but in `syscall`, the system-call
//! boundary, where each block says why it holds.

#![deny(unsafe_code)]

pub mod build;
pub mod capabilities;
pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod config;
pub mod container;
pub mod fs;
pub mod hooks;
pub mod image;
pub mod launch;
pub mod logger;
pub mod lsm;
pub mod namespaces;
pub mod network;
pub mod path_lookup;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod signals;
#[allow(unsafe_code)]
pub mod syscall;
pub mod timefmt;
pub mod tty;
pub mod userns;
