//! Container networks: `private` (the default of `ferry image run` and of
//! `ferry build`'s `RUN` steps), `host` and `none`.
//!
//! - **private**: the container gets its own network namespace (loopback
//!   up, as for any new one) and a user-mode network stack, **pasta**
//!   (Debian's `passt` package, podman's default since 5.0), attached to
//!   that namespace between `create` and `start`. pasta makes a tap
//!   interface in the namespace and proxies its TCP/UDP/ICMP flows through
//!   ordinary sockets of the host, so it works rootless; it also binds the
//!   published ports (`-p`) on the host and forwards them in. Why pasta
//!   rather than slirp4netns (also installed): bookworm's pasta (2023-03)
//!   already has all we need, rootless and as root (joining a namespace by
//!   path, `-t`/`-u` port specs with an address, `--dns-forward`,
//!   `--no-map-gw`), sets the namespace up in one step and daemonizes
//!   only once its ports are bound, which is the readiness signal; a busy
//!   port makes it fail at once with a message. slirp4netns would need its
//!   JSON API socket for each port and a separate readiness fd.
//!   The container's address is 10.0.2.100/24 with gateway 10.0.2.2 and
//!   DNS 10.0.2.3 (slirp4netns' layout, which podman also used): a
//!   distinct address (pasta's default copies the host's), so the
//!   container reaches the host's own addresses like any other host, and
//!   10.0.2.3 is forwarded to the host's first resolver (a loopback
//!   resolver such as systemd-resolved's works too). `--no-map-gw` and
//!   `-T none -U none` keep the host's loopback services out of reach.
//! - **host**: no network namespace; the host's `/etc/resolv.conf`,
//!   `/etc/hosts` and hostname.
//! - **none**: a network namespace with loopback only.
//!
//! For every mode the bundle gets `hostname`, `hosts` (and `resolv.conf`
//! except for `none`), bind-mounted over the container's `/etc` files, as
//! podman does ([`configure`]).
//!
//! ## Lifetime of pasta
//!
//! pasta holds the namespace open and does not notice when the container
//! exits, so ferry stops it: its pid and start time are recorded in the
//! bundle ([`RECORD`]) and the spec carries the annotation [`ANNOTATION`];
//! `ferry delete` (also the foreground run's own delete) and `ferry kill`
//! with SIGKILL (the container certainly dies) call [`release`], which stops the recorded pasta (checked by pidfd, start
//! time and name, so a reused pid is never signalled) and waits until it
//! has exited, so the ports are free when `delete` returns. Until
//! recorded, a [`Guard`] stops it on drop.
//!
//! ## API for other callers (`ferry build`'s `RUN` steps)
//!
//! 1. [`configure`] the spec (`Mode::Private`, the bundle dir, a hostname);
//! 2. in `CreateOptions::on_clone`, open the init's namespaces with
//!    [`Namespaces::open`] (right after the clone: the init becomes
//!    non-dumpable later, and a rootless caller can no longer open them);
//! 3. after `create`, before `start`: [`attach`] (no ports for a build)
//!    with a directory for pasta's pid file; keep the [`Guard`] for the
//!    step and drop it after (or rely on `delete` when the spec has the
//!    annotation and the guard was [`Guard::keep`]'d).
//!
//! [`preflight`] checks what attaching needs (pasta installed,
//! `/dev/net/tun` usable, the ports free) before anything is made.

mod files;
mod pasta;
mod ports;

pub use files::configure;
pub use pasta::{Guard, Namespaces, attach, release};
pub use ports::{PortMap, Proto};

use std::str::FromStr;

/// The annotation that marks a spec whose container has a pasta to stop.
pub const ANNOTATION: &str = "org.ferry.network";
/// The record of the running pasta, in the bundle dir.
pub const RECORD: &str = "network.json";

/// Errors setting up a container's network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("unknown network {0:?}: use private, host or none")]
    UnknownMode(String),
    #[error("malformed -p {spec:?}: {why} (expected [IP:]HOSTPORT:CTRPORT[/tcp|udp])")]
    BadPort { spec: String, why: &'static str },
    #[error("port {port}/{proto} is already in use on {ip}")]
    PortInUse { ip: String, port: u16, proto: Proto },
    #[error("cannot publish port {port}/{proto} on {ip}: {source}")]
    PortBind {
        ip: String,
        port: u16,
        proto: Proto,
        source: std::io::Error,
    },
    #[error(
        "/dev/net/tun is not usable ({0}): the private network's pasta needs it readable and writable (Debian's default mode is 0666: chmod 0666 /dev/net/tun), or use --network host or none"
    )]
    Tun(String),
    #[error(
        "pasta is not installed (Debian package passt): the private network needs it, or use --network host or none"
    )]
    NoPasta,
    #[error("pasta failed: {0}")]
    Pasta(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl NetworkError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
        let what = what.into();
        move |source| NetworkError::Io { what, source }
    }
}

/// `--network`: which network a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Its own namespace with pasta (outbound access, published ports).
    #[default]
    Private,
    /// The host's network namespace.
    Host,
    /// Its own namespace with loopback only.
    None,
}

impl FromStr for Mode {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Mode, NetworkError> {
        match s {
            "private" | "pasta" => Ok(Mode::Private),
            "host" => Ok(Mode::Host),
            "none" => Ok(Mode::None),
            _ => Err(NetworkError::UnknownMode(s.into())),
        }
    }
}

impl Mode {
    /// The name `--network` takes.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Private => "private",
            Mode::Host => "host",
            Mode::None => "none",
        }
    }
}

/// Check, before anything is made, what a private network needs: pasta,
/// a usable `/dev/net/tun`, and each published port free on the host.
pub fn preflight(ports: &[PortMap]) -> Result<(), NetworkError> {
    pasta::check_installed()?;
    pasta::check_tun()?;
    ports::check_free(ports)
}
