//! The new mount API: open_tree, mount_setattr, move_mount, fsopen, fsconfig, fsmount.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC [| AT_RECURSIVE])`:
/// a detached copy of the mount tree at `path` (only its top mount unless
/// `recursive`), not yet attached anywhere.
pub fn open_tree_clone(path: &std::path::Path, recursive: bool) -> Result<OwnedFd, Errno> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `c_path` is a NUL-terminated string that outlives the call;
    // open_tree only reads it and returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c_path.as_ptr(), flags) };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: on success the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attr)`: change the
/// attributes of the mount `fd` refers to (and of its submounts).
pub fn mount_setattr_fd(
    fd: BorrowedFd<'_>,
    recursive: bool,
    attr: &libc::mount_attr,
) -> Result<(), Errno> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is an empty NUL-terminated string, `attr` points at a
    // fully initialised mount_attr whose size we pass; the kernel only reads
    // both during the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// `move_mount(from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)`:
/// attach the (detached) mount `from` on top of whatever `to` refers to.
pub fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: both paths are empty NUL-terminated strings and both fds are
    // open for the duration of the call; the kernel only reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

/// `fsconfig` commands (linux/mount.h); libc has them only as an enum.
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

fn c_string(s: impl AsRef<std::ffi::OsStr>) -> Result<std::ffi::CString, Errno> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(s.as_ref().as_bytes()).map_err(|_| Errno::EINVAL)
}

/// `fsopen(fstype, FSOPEN_CLOEXEC)`: a filesystem context to configure.
pub fn fsopen(fstype: &str) -> Result<OwnedFd, Errno> {
    let name = c_string(fstype)?;
    // SAFETY: `name` is NUL-terminated and outlives the call; fsopen only
    // reads it and returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), libc::FSOPEN_CLOEXEC) };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: on success the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fsconfig(ctx, cmd, key, value, 0)` with optional NUL-terminated strings.
fn fsconfig(
    ctx: BorrowedFd<'_>,
    cmd: libc::c_uint,
    key: Option<&str>,
    value: Option<&std::ffi::OsStr>,
) -> Result<(), Errno> {
    let key = key.map(c_string).transpose()?;
    let value = value.map(c_string).transpose()?;
    let ptr = |c: &Option<std::ffi::CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: `ctx` is an open fd; key and value are NUL-terminated strings
    // that outlive the call (or NULL where the command takes none); the
    // kernel only reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            cmd,
            ptr(&key),
            ptr(&value),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// `fsconfig(FSCONFIG_SET_STRING, key, value)`; `value` may be a path.
pub fn fsconfig_set_string(
    ctx: BorrowedFd<'_>,
    key: &str,
    value: impl AsRef<std::ffi::OsStr>,
) -> Result<(), Errno> {
    fsconfig(ctx, FSCONFIG_SET_STRING, Some(key), Some(value.as_ref()))
}

/// `fsconfig(FSCONFIG_SET_FLAG, key)`.
pub fn fsconfig_set_flag(ctx: BorrowedFd<'_>, key: &str) -> Result<(), Errno> {
    fsconfig(ctx, FSCONFIG_SET_FLAG, Some(key), None)
}

/// `fsconfig(FSCONFIG_CMD_CREATE)`: make the superblock.
pub fn fsconfig_create(ctx: BorrowedFd<'_>) -> Result<(), Errno> {
    fsconfig(ctx, FSCONFIG_CMD_CREATE, None, None)
}

/// `fsmount(ctx, FSMOUNT_CLOEXEC, attr)`: a detached mount of the created
/// superblock with the `MOUNT_ATTR_*` flags `attr`.
pub fn fsmount(ctx: BorrowedFd<'_>, attr: u64) -> Result<OwnedFd, Errno> {
    // SAFETY: fsmount takes an fd and two integer flag words and returns a
    // new fd or -1.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            ctx.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attr as libc::c_uint,
        )
    };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: on success the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH
/// [| AT_RECURSIVE])`: a detached copy of the mount tree at what `fd`
/// refers to, with no path lookup at all.
pub fn open_tree_clone_fd(fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno> {
    let mut flags =
        libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: the path is an empty NUL-terminated string and `fd` is open
    // for the duration of the call; open_tree returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: on success the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `move_mount(from, "", AT_FDCWD, to, MOVE_MOUNT_F_EMPTY_PATH)`: attach the
/// (detached) mount `from` on the path `to` (resolved from the cwd).
pub fn move_mount_to_path(from: BorrowedFd<'_>, to: &std::path::Path) -> Result<(), Errno> {
    let to = c_string(to)?;
    // SAFETY: the source path is an empty NUL-terminated string, `to` is
    // NUL-terminated and outlives the call, `from` is open; the kernel only
    // reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}
