//! The runc-compatible command line.
//!
//! Flag names, short forms and defaults follow runc, because container
//! engines (conmon, containerd's shim, CRI-O) call every runtime the same way.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "ferry",
    about = "A rootless, runc-compatible OCI container runtime",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags that come before the subcommand.
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalOpts {
    /// Directory for container state (default: /run/ferry as root,
    /// $XDG_RUNTIME_DIR/ferry otherwise)
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Also write log messages to FILE
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of the --log file
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log debug messages
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd to manage cgroups
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility: rootless mode is detected (auto)
    #[arg(long, value_name = "true|false|auto")]
    pub rootless: Option<String>,
    /// Print version, commit and runtime-spec version
    #[arg(short = 'v', long)]
    pub version: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListFormat {
    #[default]
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container: set it up and leave its process waiting for `start`
    Create(CreateOpts),
    /// Run the process of a created container
    Start { id: String },
    /// Print the state of a container as JSON
    State { id: String },
    /// Send a signal to a container's init (or every process with --all)
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container and everything ferry made for it
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers
    #[command(alias = "ls")]
    List {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Create and start a container
    Run(RunOpts),
    /// Run a new process inside a running container
    Exec(ExecOpts),
    /// Write a default config.json
    Spec {
        #[arg(short, long, value_name = "DIR")]
        bundle: Option<PathBuf>,
        /// Write a config for a non-root user
        #[arg(long)]
        rootless: bool,
    },
}

#[derive(Args, Debug, Clone, Default)]
pub struct CreateOpts {
    /// Bundle directory (default: the current directory)
    #[arg(short, long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Write the container's host pid to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the terminal's master fd
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Do not use pivot_root (for ramfs roots)
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N extra fds (from fd 3) to the container
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunOpts {
    #[command(flatten)]
    pub create: CreateOpts,
    /// Return once the container is running
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container after it exits
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ExecOpts {
    /// A process.json (the runtime spec's `process`) to run
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Allocate a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket that receives the terminal's master fd
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Return once the process is running
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's host pid to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Working directory inside the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Add an environment variable
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// UID[:GID] to run as
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional group ids
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the bounding, effective and permitted sets
    #[arg(short, long = "cap", value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass N extra fds (from fd 3) to the process
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// AppArmor profile for the process
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// SELinux label for the process
    #[arg(long, value_name = "LABEL")]
    pub process_label: Option<String>,
    /// Exec even if the container is paused
    #[arg(long)]
    pub ignore_paused: bool,
    pub id: String,
    /// Command and arguments (default: those of --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
