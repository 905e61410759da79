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

use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
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

fn cstr(s: &[u8]) -> Result<CString, (&'static str, Errno)> {
    CString::new(s).map_err(|_| ("path", Errno::EINVAL))
}

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

fn fd_result(r: libc::c_long, step: &'static str) -> Result<OwnedFd, (&'static str, Errno)> {
    if r < 0 {
        return Err((step, Errno::last()));
    }
    // SAFETY: the syscall returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

fn fsconfig(
    fd: &OwnedFd,
    cmd: libc::c_uint,
    key: Option<&CString>,
    value: Option<&CString>,
) -> Result<(), (&'static str, Errno)> {
    use std::os::fd::AsRawFd;
    let ptr = |c: Option<&CString>| c.map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: fd is an fs context fd; key and value are NUL-terminated
    // strings (or null where the command takes none) that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            cmd,
            ptr(key),
            ptr(value),
            0,
        )
    };
    if r < 0 {
        return Err(("fsconfig", Errno::last()));
    }
    Ok(())
}

/// fsopen + fsconfig per layer + fsmount + move_mount onto `target`.
fn mount_new_api(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<(), (&'static str, Errno)> {
    use std::os::fd::AsRawFd;
    let fstype = cstr(b"overlay")?;
    // SAFETY: fstype is NUL-terminated; the flags are valid.
    let ctx = fd_result(
        unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) },
        "fsopen",
    )?;
    let lower_key = cstr(b"lowerdir+")?;
    for l in layers {
        fsconfig(
            &ctx,
            FSCONFIG_SET_STRING,
            Some(&lower_key),
            Some(&cstr(l.as_os_str().as_bytes())?),
        )?;
    }
    fsconfig(
        &ctx,
        FSCONFIG_SET_STRING,
        Some(&cstr(b"upperdir")?),
        Some(&cstr(upper.as_os_str().as_bytes())?),
    )?;
    fsconfig(
        &ctx,
        FSCONFIG_SET_STRING,
        Some(&cstr(b"workdir")?),
        Some(&cstr(work.as_os_str().as_bytes())?),
    )?;
    fsconfig(&ctx, FSCONFIG_SET_FLAG, Some(&cstr(b"userxattr")?), None)?;
    fsconfig(&ctx, FSCONFIG_CMD_CREATE, None, None)?;
    // SAFETY: ctx is a created fs context fd; the flags are valid.
    let mnt = fd_result(
        unsafe { libc::syscall(libc::SYS_fsmount, ctx.as_raw_fd(), FSMOUNT_CLOEXEC, 0) },
        "fsmount",
    )?;
    let empty = cstr(b"")?;
    let to = cstr(target.as_os_str().as_bytes())?;
    // SAFETY: mnt is a detached mount fd, the paths are NUL-terminated.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(("move_mount", Errno::last()));
    }
    Ok(())
}
