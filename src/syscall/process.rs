//! Processes: clone3, pidfds, prctl, limits, scheduling and exit.

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
        // With CLONE_PARENT the kernel takes the caller's own exit signal
        // and refuses any other.
        exit_signal: if flags & libc::CLONE_PARENT as u64 == 0 {
            libc::SIGCHLD as u64
        } else {
            0
        },
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

/// `setdomainname(2)`: the NIS domain name of the calling process' UTS
/// namespace.
pub fn set_domainname(name: &str) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive
    // the call; the kernel only reads them.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}

/// A plain child process, like `fork`: `clone3` where the kernel and the
/// seccomp filter in force allow it, else `fork` (a container's profile may
/// refuse `clone3` with ENOSYS, as docker's does, so that libc falls back).
///
/// The caller must be single-threaded, as with `fork`.
pub fn fork_child() -> Result<Forked, Errno> {
    match clone3_fork(0, None) {
        Err(Errno::ENOSYS | Errno::EPERM) => {}
        other => return other,
    }
    fork()
}

/// `fork(2)`, glibc's (its `atfork` handlers run). As with
/// [`clone3_fork`], the caller must be single-threaded, or the child must
/// make only async-signal-safe calls before it execs or exits.
pub fn fork() -> Result<Forked, Errno> {
    // SAFETY: fork's only precondition is the one this function documents
    // and its callers uphold (single-threaded, or async-signal-safe calls
    // in the child).
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
    }
}
