//! Start a container from an image (`ferry image run`): check the
//! options, make the bundle (the image's layers, its config with podman's
//! overrides: `-e`, `--env-file`, `-w`, `-u`, `--entrypoint`,
//! `--hostname`, `--read-only`, `--cap-add`/`--cap-drop`, `-v`), give it
//! its network ([`crate::network`]: namespace, `/etc` files, pasta and the
//! published ports), then create, attach the network, start, and wait (or
//! return at once with `-d`), and clean up.
//!
//! Everything that can be checked is checked before anything is made
//! (flags, host directories, the ports, pasta and `/dev/net/tun`), and any
//! later failure removes what was made: the container, its pasta, the
//! bundle. Tiers: launch sits between `commands` (and `build`) and
//! `container`, and may use `container`, `image`, `network` and below.

mod spec;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::container::{self, ContainerError, CreateOptions};
use crate::image::bundle::{BundleOptions, Overrides, make_bundle_with};
use crate::image::{ImageError, Store, extract::remove_tree};
use crate::network::{self, Mode, NetworkError, PortMap};
use crate::userns;

pub use spec::Volume;

/// Errors starting a container from an image.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Store(#[from] container::StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn invalid(msg: impl Into<String>) -> LaunchError {
    LaunchError::Invalid(msg.into())
}

/// `ferry image run`'s options, as podman reads them.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    pub image: String,
    pub command: Vec<String>,
    pub name: Option<String>,
    pub rm: bool,
    pub detach: bool,
    pub interactive: bool,
    pub tty: bool,
    pub publish: Vec<String>,
    pub volumes: Vec<String>,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Option<String>,
    pub hostname: Option<String>,
    pub network: String,
    pub read_only: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub systemd_cgroup: bool,
}

/// The options checked and parsed: nothing is made until all are.
struct Plan {
    id: String,
    mode: Mode,
    ports: Vec<PortMap>,
    volumes: Vec<Volume>,
    env: Vec<String>,
    overrides: Overrides,
    hostname: String,
}

/// Run the image as `o` says; the container's exit code (0 when detached).
pub fn run(
    images: &Store,
    containers: &container::StateStore,
    o: &RunOptions,
) -> Result<i32, LaunchError> {
    let plan = plan(o)?;
    if plan.mode == Mode::Private {
        network::preflight(&plan.ports)?;
    }
    let dir = images.root().join("bundles").join(&plan.id);
    if dir.exists() {
        return Err(invalid(format!(
            "a bundle for container {:?} exists in {}: pick another --name",
            plan.id,
            dir.display()
        )));
    }
    let mut bundle = BundleDir {
        store: images,
        dir: Some(dir.clone()),
    };
    make(images, o, &plan, &dir)?;
    if !o.interactive && !o.tty {
        stdin_from_null()?;
    }
    let code = start(containers, o, &plan, &dir)?;
    if !o.rm {
        bundle.keep();
    }
    Ok(code)
}

/// Check every option; the container id and hostname.
fn plan(o: &RunOptions) -> Result<Plan, LaunchError> {
    if o.rm && o.detach {
        return Err(invalid(
            "--rm and --detach cannot be combined: nothing would be left to clean up",
        ));
    }
    if o.detach && o.tty {
        return Err(invalid(
            "--tty and --detach cannot be combined: ferry keeps no terminal for a detached container",
        ));
    }
    let id = o
        .name
        .clone()
        .unwrap_or_else(|| spec::container_id(&o.image));
    container::validate_id(&id)?;
    let mode: Mode = o.network.parse()?;
    let ports = o
        .publish
        .iter()
        .map(|p| p.parse())
        .collect::<Result<Vec<PortMap>, _>>()?;
    if !ports.is_empty() && mode != Mode::Private {
        return Err(invalid(format!(
            "-p needs the private network, not --network {}",
            mode.name()
        )));
    }
    let volumes = o
        .volumes
        .iter()
        .map(|v| v.parse())
        .collect::<Result<Vec<Volume>, _>>()?;
    let env = spec::environment(&o.env, &o.env_files)?;
    if let Some(w) = &o.workdir
        && !w.starts_with('/')
    {
        return Err(invalid(format!("-w {w:?}: the directory must be absolute")));
    }
    spec::check_caps(&o.cap_add, &o.cap_drop)?;
    let hostname = match (&o.hostname, mode) {
        (Some(h), _) => spec::check_hostname(h)?,
        (None, Mode::Host) => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| id.clone()),
        (None, _) => id.chars().take(63).collect(),
    };
    Ok(Plan {
        id,
        mode,
        ports,
        volumes,
        env,
        overrides: Overrides {
            user: o.user.clone(),
            entrypoint: o.entrypoint.as_deref().map(spec::entrypoint),
        },
        hostname,
    })
}

/// Make the bundle: the layers, then the config edited for the options.
fn make(images: &Store, o: &RunOptions, plan: &Plan, dir: &Path) -> Result<(), LaunchError> {
    let rootless = crate::userns::is_rootless();
    let mut base = crate::container::template::default_spec();
    if rootless {
        let (uid, gid) = crate::userns::own_ids();
        crate::container::template::make_rootless(&mut base, uid, gid);
    }
    let opts = BundleOptions {
        flatten: false,
        args: o.command.clone(),
        terminal: o.tty,
        rootless,
    };
    {
        let _lock = images.lock(false)?;
        let rec = images.find(&o.image)?;
        make_bundle_with(images, &rec, dir, base, &opts, &plan.overrides)?;
    }
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(io(format!("read {}", path.display())))?;
    let mut config: Value =
        serde_json::from_slice(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    spec::apply(&mut config, o, plan);
    network::configure(&mut config, plan.mode, dir, &plan.hostname)?;
    let text = serde_json::to_string_pretty(&config).expect("spec serializes") + "\n";
    std::fs::write(&path, text).map_err(io(format!("write {}", path.display())))?;
    Ok(())
}

/// Create the container, attach its network, start it; wait for it
/// unless detached.
fn start(
    containers: &container::StateStore,
    o: &RunOptions,
    plan: &Plan,
    dir: &Path,
) -> Result<i32, LaunchError> {
    let private = plan.mode == Mode::Private;
    let user_ns = crate::userns::is_rootless();
    let namespaces: RefCell<Option<network::Namespaces>> = RefCell::new(None);
    let open = |pid: i32| -> std::io::Result<()> {
        *namespaces.borrow_mut() = Some(network::Namespaces::open(pid, user_ns)?);
        Ok(())
    };
    let options = CreateOptions {
        id: &plan.id,
        systemd_cgroup: o.systemd_cgroup,
        on_clone: private.then_some(&open as &dyn Fn(i32) -> std::io::Result<()>),
        ..CreateOptions::default()
    };
    let mut guard = None;
    let mut attach = |_: &container::State| -> Result<(), ContainerError> {
        if let Some(ns) = namespaces.borrow_mut().take() {
            guard = Some(network::attach(&ns, &plan.ports, dir)?);
        }
        Ok(())
    };
    let code = container::run_with(containers, Some(dir), options, o.detach, false, &mut attach)?;
    if o.detach
        && let Some(g) = guard
    {
        g.keep();
    }
    Ok(code)
}

/// Without `-i`, the container reads an empty standard input, as with
/// podman (it inherits ferry's).
fn stdin_from_null() -> Result<(), LaunchError> {
    let null = std::fs::File::open("/dev/null").map_err(io("open /dev/null"))?;
    nix::unistd::dup2_stdin(&null).map_err(|e| io("redirect standard input")(e.into()))
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LaunchError {
    let what = what.into();
    move |source| LaunchError::Io { what, source }
}

/// The bundle directory, removed on drop unless kept.
struct BundleDir<'a> {
    store: &'a Store,
    dir: Option<PathBuf>,
}

impl BundleDir<'_> {
    fn keep(&mut self) {
        self.dir = None;
    }
}

impl Drop for BundleDir<'_> {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        if !dir.exists() {
            return;
        }
        self.store.remove_ref(&dir);
        // The upper directory holds files of the container's users.
        if let Err(e) = userns::run_mapped(|| remove_tree(&dir).map_err(|e| e.to_string())) {
            log::warn!("remove {}: {e}", dir.display());
        }
    }
}
