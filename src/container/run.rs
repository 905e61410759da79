//! `run`: create and start a container; in the foreground, forward
//! signals to it and return its exit status; with `process.terminal` and
//! no console socket, bridge the caller's terminal to the container's pty.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::unistd::Pid;

use super::{Bundle, Container, ContainerError, CreateOptions, Foreground, StateStore};

/// Create and start the container of the bundle at `bundle` (parsed once);
/// unless `detach`, wait for its init and remove the container (unless
/// `keep`). The exit code: 0 when detached, else the init's status.
pub fn run(
    store: &StateStore,
    bundle: Option<&Path>,
    options: CreateOptions,
    detach: bool,
    keep: bool,
) -> Result<i32, ContainerError> {
    run_with(store, bundle, options, detach, keep, &mut |_| Ok(()))
}

/// [`run`], calling `before_start` between create and start (to attach a
/// network to the created container, for one); if it fails, the container
/// is removed.
pub fn run_with(
    store: &StateStore,
    bundle: Option<&Path>,
    mut options: CreateOptions,
    detach: bool,
    keep: bool,
    before_start: &mut dyn FnMut(&super::State) -> Result<(), ContainerError>,
) -> Result<i32, ContainerError> {
    let id = options.id;
    if detach {
        let created = Container::create(store, Bundle::load(bundle)?, options)?;
        prepare_or_remove(store, &created, before_start)?;
        return start_or_remove(store, id).map(|()| 0);
    }
    let signals = crate::signals::block_forwarded().map_err(|e| ContainerError::Setup {
        what: "block signals",
        source: e.into(),
    })?;
    options.forward_signals = true;
    let bundle = Bundle::load(bundle)?;
    let mut bridge_end: Option<OwnedFd> = None;
    if options.console_socket.is_none() && bundle.wants_terminal() {
        let (ours, theirs) = crate::tty::console_pair()?;
        options.console = Some(theirs);
        bridge_end = Some(ours);
    }
    let created = Container::create(store, bundle, options)?;
    let master = match bridge_end.map(|sock| crate::tty::recv_master(&sock)) {
        Some(Err(e)) => {
            let _ = Container::force_delete(store, id);
            return Err(e.into());
        }
        other => other.transpose()?,
    };
    prepare_or_remove(store, &created, before_start)?;
    start_or_remove(store, id)?;
    let foreground = Foreground {
        pid: Pid::from_raw(created.state().pid),
        signals,
        master,
    };
    let code = foreground.wait()?;
    if !keep {
        Container::force_delete(store, id)?;
    }
    Ok(code)
}

/// Run `before_start` on the created container; remove it if that fails.
fn prepare_or_remove(
    store: &StateStore,
    created: &Container,
    before_start: &mut dyn FnMut(&super::State) -> Result<(), ContainerError>,
) -> Result<(), ContainerError> {
    if let Err(e) = before_start(created.state()) {
        let _ = Container::force_delete(store, &created.state().id);
        return Err(e);
    }
    Ok(())
}

/// Start container `id`; remove it if that fails.
fn start_or_remove(store: &StateStore, id: &str) -> Result<(), ContainerError> {
    if let Err(e) = Container::load(store, id).and_then(Container::start) {
        let _ = Container::force_delete(store, id);
        return Err(e);
    }
    Ok(())
}
