//! Thin, checked wrappers for the system calls nix does not cover.
//!
//! Every `unsafe` block in ferry that is not a plain nix call lives here,
//! each with the reason it holds.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// `CLONE_INTO_CGROUP` (linux/sched.h); libc's constant is an `i32`, too
/// narrow for this bit.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What `clone3` returned in the calling process.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// `clone3` without a new stack: like `fork`, but the child starts in the
/// namespaces named by `flags` (any `CLONE_NEW*` combination) and, with
/// `cgroup` (a cgroup v2 directory), in that cgroup (`CLONE_INTO_CGROUP`).
///
/// The caller must be single-threaded, as with `fork`.
pub fn clone3_fork(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> Result<Forked, Errno> {
    let (flags, cgroup) = match cgroup {
        Some(fd) => (flags | CLONE_INTO_CGROUP, fd.as_raw_fd() as u64),
        None => (flags, 0),
    };
    let mut args = libc::clone_args {
        flags,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup,
    };
    // SAFETY: `args` is a fully initialised clone_args of the size we pass;
    // with a zero stack the child resumes on a copy of our stack exactly as
    // after fork(2), which is sound because ferry is single-threaded here.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match Errno::result(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// `pidfd_open(2)`: a handle on a process that cannot be confused with a
/// later process reusing its pid.
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: on success the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_send_signal(2)`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> Result<(), Errno> {
    // SAFETY: a valid pidfd, a signal number, no siginfo (NULL) and no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// Mark every fd from `first` up close-on-exec, so nothing of ferry's
/// reaches the container: `close_range` with `CLOSE_RANGE_CLOEXEC`, or where
/// that fails (a kernel before 5.11, a seccomp filter without it), `F_SETFD`
/// on each open fd ([`cloexec_each_from`]).
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range only changes fd flags in our own table.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    match Errno::result(ret) {
        Ok(_) => Ok(()),
        Err(_) => cloexec_each_from(first),
    }
}

/// fd numbers [`cloexec_each_from`] asks `poll` about per call.
const POLL_CHUNK: i32 = 1024;

/// The fallback of [`cloexec_from`]: `F_SETFD` on each open fd from `first`
/// below the `RLIMIT_NOFILE` soft limit. `poll` finds the open ones
/// (`POLLNVAL` marks a number with no fd), [`POLL_CHUNK`] numbers a call,
/// several times faster than an `fcntl` per number; `/proc` is not used, as
/// the container's may be absent or hostile. An fd above the soft limit,
/// which exists only when the limit was lowered after it was opened, is not
/// reached.
fn cloexec_each_from(first: u32) -> Result<(), Errno> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`, which outlives the call.
    Errno::result(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    let end = i32::try_from(lim.rlim_cur).unwrap_or(i32::MAX);
    // poll refuses more entries than the soft limit.
    let chunk = POLL_CHUNK.min(end.max(1));
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(chunk as usize);
    let mut start = i32::try_from(first).unwrap_or(i32::MAX);
    while start < end {
        let stop = start.saturating_add(chunk).min(end);
        fds.clear();
        fds.extend((start..stop).map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        }));
        // SAFETY: `fds` holds `fds.len()` initialised pollfds that outlive
        // the call; poll only writes their `revents`; a zero timeout never
        // blocks.
        let ret = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
        Errno::result(ret)?;
        for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL == 0) {
            // SAFETY: F_SETFD changes only the flags of an fd in our own
            // table; one closed since the poll just returns EBADF.
            let _ = unsafe { libc::fcntl(p.fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        start = stop;
    }
    Ok(())
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
pub fn set_no_new_privs() -> Result<(), Errno> {
    // SAFETY: a prctl that takes integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// `prctl(PR_SET_KEEPCAPS, on)`: keep permitted capabilities across setuid.
pub fn set_keepcaps(on: bool) -> Result<(), Errno> {
    // SAFETY: a prctl that takes integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(on), 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// `prctl(PR_SET_PDEATHSIG, sig)`.
pub fn set_parent_death_signal(sig: i32) -> Result<(), Errno> {
    // SAFETY: a prctl that takes integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// `prctl(PR_SET_DUMPABLE, on)`.
pub fn set_dumpable(on: bool) -> Result<(), Errno> {
    // SAFETY: a prctl that takes integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) };
    Errno::result(ret).map(drop)
}

/// Join a new anonymous session keyring (`keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`).
pub fn join_new_session_keyring() -> Result<(), Errno> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a NULL name asks the kernel for a fresh anonymous keyring.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// `setrlimit(2)` with a raw resource number.
pub fn setrlimit(resource: libc::c_int, soft: u64, hard: u64) -> Result<(), Errno> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit for the duration of the call.
    let ret = unsafe { libc::setrlimit(resource as libc::__rlimit_resource_t, &lim) };
    Errno::result(ret).map(drop)
}

/// `umask(2)`; returns the previous mask.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail and touches only our own process.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// `_exit(2)`: leave the child without running Rust destructors or atexit
/// handlers that belong to the parent's copy of the process.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`: install a BPF filter on
/// the calling thread. With `SECCOMP_FILTER_FLAG_NEW_LISTENER` the kernel
/// returns the (close-on-exec) listener fd.
pub fn seccomp_set_filter(
    prog: &[libc::sock_filter],
    flags: libc::c_ulong,
) -> Result<Option<OwnedFd>, Errno> {
    let len = u16::try_from(prog.len()).map_err(|_| Errno::EINVAL)?;
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `len` initialised instructions that outlive
    // the call; the kernel copies them and never writes through the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    let ret = Errno::result(ret)?;
    if flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER a successful call returns a fresh fd
        // that nothing else owns.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }))
    } else {
        Ok(None)
    }
}

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

fn c_string(s: &str) -> Result<std::ffi::CString, Errno> {
    std::ffi::CString::new(s).map_err(|_| Errno::EINVAL)
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
    value: Option<&str>,
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

/// `fsconfig(FSCONFIG_SET_STRING, key, value)`.
pub fn fsconfig_set_string(ctx: BorrowedFd<'_>, key: &str, value: &str) -> Result<(), Errno> {
    fsconfig(ctx, FSCONFIG_SET_STRING, Some(key), Some(value))
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

/// `fcntl(fd, F_DUPFD_CLOEXEC, min)`: a close-on-exec copy of `fd` on the
/// lowest free number at least `min`.
pub fn dup_above(fd: BorrowedFd<'_>, min: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer argument and returns a new fd
    // or -1; `fd` is open for the duration of the call.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    let fd = Errno::result(ret)?;
    // SAFETY: on success the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Bring the `lo` interface of the calling process' network namespace up
/// (`SIOCGIFFLAGS` then `SIOCSIFFLAGS` with `IFF_UP`), as runc and crun do
/// in a new network namespace.
pub fn loopback_up() -> Result<(), Errno> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data, for which all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo") {
        *d = *s as libc::c_char;
    }
    // SAFETY: `sock` is an open socket and `req` a valid ifreq with a
    // NUL-terminated name, which the kernel reads and fills in (flags).
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) })?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the kernel wrote `ifru_flags`.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; the kernel only reads `req`.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) }).map(drop)
}

/// Set every signal's disposition back to `SIG_DFL` (all but SIGKILL and
/// SIGSTOP, real-time ones included). Ignored dispositions survive
/// `execve`; the Rust runtime ignores SIGPIPE, and a caller's `nohup` or
/// service manager may ignore SIGHUP or SIGPIPE, none of which a
/// container's process should inherit. The raw syscall also reaches the
/// signals glibc reserves for itself (32, 33).
pub fn reset_signal_dispositions() -> Result<(), Errno> {
    // The kernel's `struct sigaction`, all zero: SIG_DFL, no flags, empty mask.
    let dfl = [0u64; 4];
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `dfl` is a readable, zeroed kernel sigaction (handler
        // SIG_DFL = 0) at least as large as the kernel's struct; the old
        // action pointer is null; the size is that of the kernel's sigset_t.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                std::mem::size_of::<u64>(),
            )
        };
        Errno::result(ret)?;
    }
    Ok(())
}

/// `struct sched_attr` as `sched_setattr(2)` takes it (with the
/// utilisation clamps, SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// `sched_setattr(0, attr, 0)`: the calling thread's scheduling policy.
pub fn sched_setattr(attr: &SchedAttr) -> Result<(), Errno> {
    let mut attr = *attr;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `attr` is a fully initialised sched_attr whose `size` field is
    // its own size; the kernel only reads it during the call.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    Errno::result(ret).map(drop)
}

/// What the C library calls signal `sig` (`strsignal(3)`), in lower case as
/// it reads mid-sentence: "bad system call" for `SIGSYS`.
pub fn signal_description(sig: i32) -> String {
    // SAFETY: glibc's strsignal returns a constant string for a known
    // signal and a thread-local buffer otherwise, never NULL; it is copied
    // before anything else could change it.
    let text = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(sig)) };
    text.to_string_lossy().to_lowercase()
}

/// Whether `path` (not followed if a symlink) is the root of a mount
/// (`statx` with `STATX_ATTR_MOUNT_ROOT`, Linux 5.8).
pub fn is_mount_root(path: &std::path::Path) -> Result<bool, Errno> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: an all-zero statx is a valid value of the plain C struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and `stx` is writable for the
    // call; the kernel reads the one and fills the other.
    let ret = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            0,
            &mut stx,
        )
    };
    Errno::result(ret)?;
    if stx.stx_attributes_mask & libc::STATX_ATTR_MOUNT_ROOT as u64 == 0 {
        return Err(Errno::ENOSYS);
    }
    Ok(stx.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `F_GETFD` of `fd`, or the error.
    fn fd_flags(fd: RawFd) -> Result<i32, Errno> {
        // SAFETY: F_GETFD only reads the flags of an fd in our table.
        Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFD) })
    }

    /// A non-close-on-exec copy of `src` at number `at`.
    fn inheritable_copy(src: &std::fs::File, at: RawFd) -> OwnedFd {
        // SAFETY: dup2 onto a number this test owns; on success `at` is a
        // fresh fd (dup2 leaves FD_CLOEXEC clear) that nothing else owns.
        Errno::result(unsafe { libc::dup2(src.as_raw_fd(), at) }).expect("dup2");
        // SAFETY: see above.
        unsafe { OwnedFd::from_raw_fd(at) }
    }

    #[test]
    fn the_fallback_marks_open_fds_from_first_only() {
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let below = inheritable_copy(&file, 700);
        let at = inheritable_copy(&file, 701);
        let above = inheritable_copy(&file, 1000);
        assert_eq!(fd_flags(701), Ok(0));
        cloexec_each_from(701).unwrap();
        assert_eq!(fd_flags(700), Ok(0), "below `first` must stay inheritable");
        assert_eq!(fd_flags(701), Ok(libc::FD_CLOEXEC));
        assert_eq!(fd_flags(1000), Ok(libc::FD_CLOEXEC));
        drop((below, at, above));
    }

    #[test]
    fn signals_are_described_like_go_does() {
        assert_eq!(signal_description(libc::SIGSYS), "bad system call");
        assert_eq!(signal_description(libc::SIGKILL), "killed");
    }
}
