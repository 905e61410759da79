//! The exec trampoline: how a container's program is started without the
//! container ever reaching ferry's binary (CVE-2019-5736).
//!
//! ferry does not re-exec itself: a container's init and an `exec`'d process
//! are `clone3` children of the ferry process, so until their `execve` their
//! `/proc/self/exe` is ferry's binary on the host. Non-dumpable keeps other
//! container processes out of `/proc/PID/exe`, but the `execve` itself
//! resolves the program inside the container: `process.args =
//! ["/proc/self/exe"]`, or a `#!/proc/self/exe` script, makes the kernel run
//! ferry's (dynamically linked) binary again, with the container's
//! `/lib64/ld-linux-x86-64.so.2` as its loader. That loader runs as a fresh,
//! dumpable process whose `/proc/self/exe` is the host binary, opens it, and
//! rewrites it once no ferry process keeps it busy.
//!
//! So the init never `execve`s the container's program itself. It executes a
//! tiny static program (`trampoline.S`, about 1.2 KB, no libc, no loader)
//! from a sealed memfd with `execveat(memfd, "", [PATH, ARGV...], ENVP,
//! AT_EMPTY_PATH)`, and the trampoline does `execve(PATH, ARGV, ENVP)`. While
//! the kernel resolves the container's program (its `PT_INTERP`, a `#!`
//! interpreter, `/proc/self/exe`), the process's executable is the memfd:
//! `/proc/self/exe` leads to the trampoline, which is static (a container
//! loader never runs in it) and sealed (`F_SEAL_WRITE | F_SEAL_GROW |
//! F_SEAL_SHRINK | F_SEAL_SEAL`: nobody can change it, not even through a
//! writable fd). After the trampoline's `execve` nothing of ferry is left.
//!
//! Why this and not a copy of ferry or a read-only mount of its binary:
//! runc 1.1 and crun copy the whole runtime (megabytes) into a memfd and
//! re-exec it, which costs milliseconds per container; runc 1.2 mounts an
//! overlayfs or read-only bind over its binary and re-execs, which costs a
//! mount per container and needs a re-exec ferry does not otherwise do.
//! The trampoline costs a `memfd_create`, a 1.2 KB write, one `fcntl` and
//! one `execve` of a one-page static binary: tens of microseconds.
//!
//! What the second `execve` changes, and why it is harmless:
//! - capabilities: the transformation is idempotent when the file has no
//!   file capabilities and no set-id bits (the memfd has neither). As root,
//!   permitted becomes inheritable | bounding both times; otherwise only the
//!   ambient set survives, both times. A program with file capabilities or
//!   set-id bits is exec'd by the trampoline exactly as ferry exec'd it.
//! - no_new_privs and the seccomp filter are already in force: the
//!   trampoline needs `execve`, `write` and `exit_group`, and `execve` is what
//!   ferry always used. ferry itself uses `execveat`; if a profile refuses it,
//!   ferry falls back to `execve("/proc/self/fd/N")`. (A profile that kills
//!   on `execveat` but allows `execve` is not supported.)
//! - fds: the memfd is close-on-exec, and kept out of `--preserve-fds`.
//! - LSM exec labels (`process.apparmorProfile`, `process.selinuxLabel`) are
//!   applied by the first `execve`, so the trampoline already runs with the
//!   container's label, and the container's program is exec'd from it, as
//!   any exec inside the container. Under SELinux the container domain must
//!   be allowed to enter through the memfd (runc's runc-dmz met the same
//!   requirement).
//! - the memfd is created before rlimits (`RLIMIT_FSIZE` could refuse the
//!   write) and before the seccomp filter (which may refuse `memfd_create`).
//!   Where executable memfds are forbidden (`vm.memfd_noexec = 2`) ferry
//!   refuses to start the process rather than run it unprotected.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

/// The static program, assembled by build.rs from `trampoline.S`.
static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trampoline"));

/// Errors preparing the trampoline.
#[derive(Debug, thiserror::Error)]
pub enum TrampolineError {
    #[error("create the exec trampoline: {0}")]
    Create(Errno),
    #[error("create the exec trampoline: executable memfds are forbidden (vm.memfd_noexec)")]
    NoExecMemfd,
    #[error("write the exec trampoline: {0}")]
    Write(std::io::Error),
    #[error("seal the exec trampoline: {0}")]
    Seal(Errno),
}

/// A sealed, close-on-exec memfd holding the trampoline.
pub struct Trampoline {
    fd: OwnedFd,
}

impl Trampoline {
    /// Create, fill and seal the memfd.
    pub fn new() -> Result<Trampoline, TrampolineError> {
        let mut file = File::from(create_memfd()?);
        file.write_all(IMAGE).map_err(TrampolineError::Write)?;
        let fd = OwnedFd::from(file);
        let seals = SealFlag::F_SEAL_SEAL
            | SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_WRITE;
        fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).map_err(TrampolineError::Seal)?;
        Ok(Trampoline { fd })
    }

    /// The memfd's number (to keep it out of the preserved fds).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Run `path` with `args` and `env` through the trampoline. Returns only
    /// when the trampoline itself could not be started, with a sentence
    /// saying why.
    pub fn exec(&self, path: &CStr, args: &[CString], env: &[CString]) -> String {
        let mut argv: Vec<&CStr> = Vec::with_capacity(args.len() + 1);
        argv.push(path);
        argv.extend(args.iter().map(CString::as_c_str));
        let Err(at) = nix::unistd::execveat(&self.fd, c"", &argv, env, AtFlags::AT_EMPTY_PATH);
        // A seccomp profile may refuse execveat: the execve of our own fd
        // through the container's /proc gives the same result.
        let proc_path = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        let c_proc_path = CString::new(proc_path.as_str()).unwrap_or_default();
        let Err(plain) = nix::unistd::execve(&c_proc_path, &argv, env);
        format!("cannot run the exec trampoline: execveat: {at}; execve {proc_path}: {plain}")
    }
}

/// `memfd_create` with `MFD_EXEC` where the kernel knows it (6.3+), so that
/// `vm.memfd_noexec = 1` does not make the memfd non-executable.
fn create_memfd() -> Result<OwnedFd, TrampolineError> {
    let base = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
    let exec = MFdFlags::from_bits_retain(libc::MFD_EXEC);
    match memfd_create(c"ferry-trampoline", base | exec) {
        Ok(fd) => Ok(fd),
        Err(Errno::EINVAL) => {
            memfd_create(c"ferry-trampoline", base).map_err(TrampolineError::Create)
        }
        Err(Errno::EACCES) => Err(TrampolineError::NoExecMemfd),
        Err(e) => Err(TrampolineError::Create(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_is_a_small_static_elf() {
        assert!(IMAGE.starts_with(b"\x7fELF"));
        assert!(IMAGE.len() <= 4096, "{} bytes", IMAGE.len());
    }

    #[test]
    fn memfd_is_sealed_and_close_on_exec() {
        let t = Trampoline::new().unwrap();
        let seals = fcntl(&t.fd, FcntlArg::F_GET_SEALS).unwrap();
        let want = SealFlag::F_SEAL_SEAL
            | SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_WRITE;
        assert_eq!(SealFlag::from_bits_retain(seals) & want, want);
        let flags = fcntl(&t.fd, FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
        let mut f = File::from(t.fd.try_clone().unwrap());
        assert!(f.write_all(b"x").is_err(), "a sealed memfd took a write");
        assert_eq!(f.metadata().unwrap().len(), IMAGE.len() as u64);
    }
}
