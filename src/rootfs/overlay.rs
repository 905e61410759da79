//! The rootfs of an image bundle (`ferry image bundle`): the layer
//! directories listed by the annotation `org.ferry.layers` (a JSON array,
//! top-most first) mounted with overlayfs on the bundle's rootfs, with the
//! bundle's `upper/` and `work/` as the writable layer. The mount is made in
//! the container's own mount namespace (a user namespace's, rootless), so
//! nothing is left on the host.
//!
//! Always with `userxattr`: ferry's layer directories carry
//! `user.overlay.opaque`, for root and rootless alike (inside a user
//! namespace the option is required anyway: without it the mount succeeds
//! and lower directories fail later with EIO). mount(2) takes one page of
//! options, enough for about 60 layers; past that (or for paths overlay's
//! option syntax cannot carry) the new mount API adds layers one by one
//! (`fsconfig(FSCONFIG_SET_STRING, "lowerdir+")`, Linux 6.8+).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

use super::{Plan, RootfsError};

pub const LAYERS_ANNOTATION: &str = "org.ferry.layers";

/// Longest option string handed to mount(2) (it takes one page).
const MAX_DATA: usize = 3800;

fn layers_err(msg: impl Into<String>) -> RootfsError {
    RootfsError::Layers(msg.into())
}

/// Mount the bundle's layers on its rootfs, if it lists any.
pub fn mount_layers(plan: &Plan) -> Result<(), RootfsError> {
    let Some(list) = plan
        .spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(LAYERS_ANNOTATION))
    else {
        return Ok(());
    };
    let layers: Vec<PathBuf> = serde_json::from_str(list)
        .map_err(|e| layers_err(format!("bad {LAYERS_ANNOTATION} annotation: {e}")))?;
    if layers.is_empty() {
        return Err(layers_err(format!("{LAYERS_ANNOTATION} lists no layer")));
    }
    if let Some(bad) = layers.iter().find(|p| !p.is_absolute()) {
        return Err(layers_err(format!(
            "layer path {} is not absolute",
            bad.display()
        )));
    }
    let upper = plan.bundle.join("upper");
    let work = plan.bundle.join("work");
    for d in [&upper, &work] {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(layers_err(format!("create {}: {e}", d.display())));
            }
        }
    }
    let plain = |p: &Path| {
        !p.as_os_str()
            .as_bytes()
            .iter()
            .any(|b| matches!(b, b',' | b':' | b'\\' | b'\n'))
    };
    let lower: Vec<String> = layers.iter().map(|p| p.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    let simple = data.len() <= MAX_DATA && layers.iter().chain([&upper, &work]).all(|p| plain(p));
    if simple {
        return mount(
            Some("overlay"),
            plan.rootfs,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|source| RootfsError::Mount {
            what: format!("overlay of {} layers", layers.len()),
            dest: plan.rootfs.to_path_buf(),
            source,
        });
    }
    mount_new_api(&layers, &upper, &work, plan.rootfs).map_err(|(step, source)| {
        RootfsError::Mount {
            what: format!("overlay of {} layers ({step})", layers.len()),
            dest: plan.rootfs.to_path_buf(),
            source,
        }
    })
}

/// fsopen + fsconfig per layer + fsmount + move_mount onto `target`.
fn mount_new_api(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), (&'static str, Errno)> {
    use crate::syscall::{fsconfig_create, fsconfig_set_flag, fsconfig_set_string};
    use std::os::fd::AsFd;
    let step = |name: &'static str| move |e: Errno| (name, e);
    let ctx = crate::syscall::fsopen("overlay").map_err(step("fsopen"))?;
    let ctx = ctx.as_fd();
    for l in layers {
        fsconfig_set_string(ctx, "lowerdir+", l).map_err(step("fsconfig"))?;
    }
    fsconfig_set_string(ctx, "upperdir", upper).map_err(step("fsconfig"))?;
    fsconfig_set_string(ctx, "workdir", work).map_err(step("fsconfig"))?;
    fsconfig_set_flag(ctx, "userxattr").map_err(step("fsconfig"))?;
    fsconfig_create(ctx).map_err(step("fsconfig"))?;
    let mnt = crate::syscall::fsmount(ctx, 0).map_err(step("fsmount"))?;
    crate::syscall::move_mount_to_path(mnt.as_fd(), target).map_err(step("move_mount"))
}
