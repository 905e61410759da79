//! `ferry checkpoint` and `ferry restore`: CRIU through
//! [`crate::container::criu`] (root, plain rootfs, cgroupfs driver).

use anyhow::Result;

use crate::cli::{CheckpointOpts, CriuOpts, RestoreOpts};
use crate::container::criu::CriuFlags;
use crate::container::{CheckpointOptions, Container, RestoreOptions, StateStore};

/// The CRIU flags both commands share.
fn flags(o: &CriuOpts) -> CriuFlags {
    CriuFlags {
        tcp_established: o.tcp_established,
        ext_unix_sk: o.ext_unix_sk,
        shell_job: o.shell_job,
        file_locks: o.file_locks,
    }
}

/// `ferry checkpoint ID`: the container must exist and run.
pub fn checkpoint(store: &StateStore, o: &CheckpointOpts) -> Result<()> {
    let opts = CheckpointOptions {
        image_path: o.criu.image_path.as_deref(),
        work_path: o.criu.work_path.as_deref(),
        leave_running: o.leave_running,
        flags: flags(&o.criu),
    };
    Ok(Container::load(store, &o.id)?.checkpoint(&opts)?)
}

/// `ferry restore ID`: a new container from the images.
pub fn restore(store: &StateStore, o: &RestoreOpts) -> Result<i32> {
    let opts = RestoreOptions {
        id: &o.id,
        bundle: o.bundle.as_deref(),
        image_path: o.criu.image_path.as_deref(),
        work_path: o.criu.work_path.as_deref(),
        detach: o.detach,
        pid_file: o.pid_file.as_deref(),
        flags: flags(&o.criu),
    };
    Ok(Container::restore(store, &opts)?)
}
