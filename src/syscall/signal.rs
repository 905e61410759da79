//! Signals: dispositions and descriptions.

use nix::errno::Errno;

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

/// What the C library calls signal `sig` (`strsignal(3)`), in lower case as
/// it reads mid-sentence: "bad system call" for `SIGSYS`.
pub fn signal_description(sig: i32) -> String {
    // SAFETY: glibc's strsignal returns a constant string for a known
    // signal and a thread-local buffer otherwise, never NULL; it is copied
    // before anything else could change it.
    let text = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(sig)) };
    text.to_string_lossy().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_described_like_go_does() {
        assert_eq!(signal_description(libc::SIGSYS), "bad system call");
        assert_eq!(signal_description(libc::SIGKILL), "killed");
    }
}
