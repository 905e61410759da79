//! The runc-compatible command line.
//!
//! Flag names, short forms and defaults follow runc, because container
//! engines (conmon, containerd's shim, CRI-O) call every runtime the same way.

use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
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

/// Parse the command line (exiting on a usage error, or after printing
/// help): an unknown command says `No help topic for 'NAME'`, as runc.
pub fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.kind() == ErrorKind::InvalidSubcommand => {
            let name = match e.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(name)) => name.clone(),
                _ => String::new(),
            };
            eprintln!("ferry: No help topic for '{name}'");
            std::process::exit(2);
        }
        Err(e) => e.exit(),
    }
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
    /// List the processes of a container
    Ps {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
        /// Options for ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Suspend every process of a container
    Pause { id: String },
    /// Resume a paused container
    Resume { id: String },
    /// Change a running container's resource limits
    Update(UpdateOpts),
    /// Print a container's resource usage and OOM events as JSON lines
    Events {
        /// Print the stats once and exit
        #[arg(long)]
        stats: bool,
        /// Time between stats events
        #[arg(long, default_value = "5s", value_name = "DURATION")]
        interval: String,
        id: String,
    },
    /// Print the features this runtime supports, as JSON
    Features,
    /// Import images and make bundles from them (ferry image --help)
    Image(ImageOpts),
    /// Checkpoint a running container with CRIU
    Checkpoint(CheckpointOpts),
    /// Restore a container from a CRIU checkpoint
    Restore(RestoreOpts),
    /// Write a default config.json
    Spec {
        #[arg(short, long, value_name = "DIR")]
        bundle: Option<PathBuf>,
        /// Write a config for a non-root user
        #[arg(long)]
        rootless: bool,
    },
    /// Build an image from a Dockerfile into the image store
    Build(BuildOpts),
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
    /// Run the process in an existing sub-cgroup of the container's
    /// (PATH in every hierarchy, or only in the named controllers' ones)
    #[arg(long, value_name = "[CONTROLLER[,CONTROLLER...]:]PATH")]
    pub cgroup: Vec<String>,
    pub id: String,
    /// Command and arguments (default: those of --process)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// CRIU options `checkpoint` and `restore` share (runc's flags; the
/// cgroups mode, empty namespaces, dedup and lazy pages are accepted and
/// ignored).
#[derive(Args, Debug, Clone, Default)]
pub struct CriuOpts {
    /// Directory of the CRIU image files
    #[arg(long, value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// Directory for CRIU's work files and logs
    #[arg(long, value_name = "DIR")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long)]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long)]
    pub shell_job: bool,
    /// Handle file locks
    #[arg(long)]
    pub file_locks: bool,
    /// Cgroups mode: soft, full or strict
    #[arg(long, value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace of this type but do not restore its properties
    #[arg(long, value_name = "NS")]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images
    #[arg(long)]
    pub auto_dedup: bool,
    /// Restore memory pages lazily (userfaultfd)
    #[arg(long)]
    pub lazy_pages: bool,
}

/// `ferry checkpoint`: runc's flags.
#[derive(Args, Debug, Clone, Default)]
pub struct CheckpointOpts {
    #[command(flatten)]
    pub criu: CriuOpts,
    /// Directory of the previous (pre-dump) images
    #[arg(long, value_name = "DIR")]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint
    #[arg(long)]
    pub leave_running: bool,
    /// FD that receives a byte once lazy pages are ready
    #[arg(long, value_name = "FD", allow_hyphen_values = true)]
    pub status_fd: Option<i32>,
    /// ADDRESS:PORT of the page server
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub page_server: Option<String>,
    /// Dump memory only and leave the container running
    #[arg(long)]
    pub pre_dump: bool,
    pub id: String,
}

/// `ferry restore`: runc's flags.
#[derive(Args, Debug, Clone, Default)]
pub struct RestoreOpts {
    #[command(flatten)]
    pub criu: CriuOpts,
    /// Bundle directory (default: the current directory)
    #[arg(short, long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Unix socket that receives the terminal's master fd
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Return once the container is running
    #[arg(short, long)]
    pub detach: bool,
    /// Write the container's host pid to FILE
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Do not make ferry a subreaper
    #[arg(long)]
    pub no_subreaper: bool,
    /// Do not use pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// LSM profile to restore with (TYPE:NAME)
    #[arg(long, value_name = "TYPE:NAME")]
    pub lsm_profile: Option<String>,
    /// LSM mount context to restore with
    #[arg(long, value_name = "CONTEXT")]
    pub lsm_mount_context: Option<String>,
    pub id: String,
}

/// `ferry update`: runc's flags; sizes take units (`512m`, `1g`), -1 is
/// unlimited.
#[derive(Args, Debug, Clone, Default)]
pub struct UpdateOpts {
    /// JSON file with the new linux.resources ("-" for stdin)
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Memory limit
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Kernel memory limit (ignored by current kernels)
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit
    #[arg(long, value_name = "BYTES", allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share", alias = "cpu-shares", value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per period (-1: none)
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<u64>,
    /// Realtime period in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_rt_period: Option<u64>,
    /// Realtime runtime in microseconds
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CFS burst in microseconds
    #[arg(long, value_name = "US")]
    pub cpu_burst: Option<u64>,
    /// SCHED_IDLE for the cgroup (0 or 1)
    #[arg(long, value_name = "0|1")]
    pub cpu_idle: Option<i64>,
    /// CPUs to run on (e.g. 0-3,5)
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use (e.g. 0)
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (-1: none)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10 to 1000)
    #[arg(long, value_name = "N")]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

/// `ferry image ...`: the image store and bundles made from images.
#[derive(Args, Debug)]
pub struct ImageOpts {
    /// Image store (default: /var/lib/ferry as root, $XDG_DATA_HOME/ferry
    /// or ~/.local/share/ferry otherwise)
    #[arg(long, global = true, value_name = "DIR")]
    pub store: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Import or pull an image: oci:DIR[:TAG], oci-archive:FILE[:TAG],
    /// docker-archive:FILE[:TAG], [docker://]HOST[:PORT]/NAME[:TAG]
    #[command(alias = "pull")]
    Import {
        /// Name it NAME (default: the name or tag the source gives)
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Platform to pick from a multi-platform image
        #[arg(long, value_name = "OS/ARCH[/VARIANT]", default_value = "linux/amd64")]
        platform: String,
        /// Registries: skip the TLS certificate check, allow plain HTTP
        #[arg(long)]
        insecure: bool,
        /// Registries: trust the CA certificates (*.crt) in DIR
        #[arg(long, value_name = "DIR")]
        cert_dir: Option<std::path::PathBuf>,
        /// Registries: credentials (or FERRY_REGISTRY_CREDS)
        #[arg(long, value_name = "USER:PASS")]
        creds: Option<String>,
        reference: String,
    },
    /// List images
    #[command(alias = "list")]
    Ls {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Print names only
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print an image's record, layers and config as JSON
    Inspect { name: String },
    /// Give an image another name (NEWNAME becomes that image)
    Tag { name: String, new_name: String },
    /// Push an image to a registry: [docker://]HOST[:PORT]/NAME[:TAG]
    /// (default: the image's own name)
    Push {
        /// Skip the TLS certificate check, allow plain HTTP
        #[arg(long)]
        insecure: bool,
        /// Trust the CA certificates (*.crt) in DIR
        #[arg(long, value_name = "DIR")]
        cert_dir: Option<std::path::PathBuf>,
        /// Credentials (or FERRY_REGISTRY_CREDS)
        #[arg(long, value_name = "USER:PASS")]
        creds: Option<String>,
        /// Upload blobs larger than BYTES in chunks of BYTES
        #[arg(long, value_name = "BYTES", default_value_t = 64 << 20)]
        chunk_size: u64,
        name: String,
        destination: Option<String>,
    },
    /// Write an image to an archive file
    Save {
        /// The archive to write
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        #[arg(long, value_enum, default_value_t = SaveFormat::DockerArchive)]
        format: SaveFormat,
        name: String,
    },
    /// Import an image from an archive (OCI or docker-archive)
    Load {
        /// The archive (or give it as an argument)
        #[arg(short, long, value_name = "FILE")]
        input: Option<PathBuf>,
        /// Name it NAME (default: the name the archive gives)
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        file: Option<PathBuf>,
    },
    /// Remove images, and the layers no other image or bundle uses
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show how an image was built, and the bytes it ships for files a
    /// later layer deletes
    History {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        name: String,
    },
    /// Make a bundle (config.json and rootfs) in DIR from an image
    Bundle {
        /// Copy the layers into a plain rootfs (for other runtimes) instead
        /// of mounting them with overlayfs
        #[arg(long)]
        flatten: bool,
        /// Give the process a terminal
        #[arg(short, long)]
        tty: bool,
        name: String,
        dir: PathBuf,
        /// Command and arguments, replacing the image's Cmd
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Run an image in a new container, in the foreground
    Run(Box<ImageRunArgs>),
}

/// `ferry image run`: podman's flags, with podman's meaning.
#[derive(Args, Debug, Clone, Default)]
pub struct ImageRunArgs {
    /// Remove the container's bundle (and its writes) when it exits
    #[arg(long)]
    pub rm: bool,
    /// Return once the container is running
    #[arg(short, long)]
    pub detach: bool,
    /// Keep standard input open (otherwise the container reads /dev/null)
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the container a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Container id (default: derived from the image name)
    #[arg(long, value_name = "ID")]
    pub name: Option<String>,
    /// Publish a container port: [IP:]HOSTPORT:CTRPORT[/tcp|udp]
    #[arg(short, long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Bind a host directory: HOSTDIR:CTRDIR[:ro|rw]
    #[arg(short, long = "volume", value_name = "SPEC")]
    pub volume: Vec<String>,
    /// Set an environment variable: KEY=VALUE (KEY alone: the caller's value)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from FILE (KEY=VALUE lines)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User (and group) to run as: USER[:GROUP], names or ids
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,
    /// Replace the image's entrypoint (a JSON array or one command)
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// The container's hostname (default: its id)
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Network: private (own namespace through pasta), host, none
    #[arg(long, value_name = "MODE", default_value = "private")]
    pub network: String,
    /// Mount the root filesystem read-only (tmpfs on /tmp, /var/tmp, /run)
    #[arg(long)]
    pub read_only: bool,
    /// Add a capability (e.g. NET_ADMIN, or ALL)
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability (e.g. CHOWN, or ALL)
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    pub image: String,
    /// Command and arguments, replacing the image's Cmd
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The archive formats of `ferry image save`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// An OCI image layout in a tar
    OciArchive,
    /// `docker save`'s format, for `docker load` and `podman load`
    DockerArchive,
}

/// `ferry build`: a Dockerfile to an image in the store.
#[derive(Args, Debug)]
pub struct BuildOpts {
    /// Image store (default: as `ferry image`)
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Name of the image
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tag: String,
    /// The Dockerfile (default: CONTEXT/Dockerfile)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A build argument (repeatable)
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_args: Vec<String>,
    /// Build this stage (and what it needs) only
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Run every step, ignoring the cache
    #[arg(long)]
    pub no_cache: bool,
    /// A secret for `RUN --mount=type=secret` (repeatable)
    #[arg(long, value_name = "id=ID,src=PATH")]
    pub secret: Vec<String>,
    /// The network of RUN steps: none, host or private
    #[arg(long, value_name = "MODE", default_value = "private")]
    pub network: String,
    /// The build context directory
    pub context: PathBuf,
}
