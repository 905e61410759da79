//! bpf(2) for the cgroup v2 device controller: load a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program, attach it to a cgroup, list and
//! detach the ones there.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_MULTI`: attach beside the programs already there.
pub const BPF_F_ALLOW_MULTI: u32 = 2;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    /// Destination register in the low nibble, source in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// The leading fields of `union bpf_attr` for BPF_PROG_LOAD; the rest of
/// the 128 bytes we pass stays zero.
#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    pad: [u64; 7],
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    pad: [u32; 27],
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: [u32; 25],
}

/// `bpf(cmd, attr, sizeof attr)`. Private: `attr` must be one of the
/// `union bpf_attr` prefixes above, matching `cmd`, whose pointers (if
/// any) are live and sized as the fields beside them say.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<libc::c_long, Errno> {
    // SAFETY: every caller passes a zero-padded, repr(C) prefix of
    // `union bpf_attr` for `cmd`, valid for the size we pass; the kernel
    // reads (and for QUERY writes) only within it, and the pointers in it
    // point at live buffers of the lengths given beside them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    Errno::result(ret)
}

/// A bpf(2) return value that is a new fd.
fn own_fd(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// `BPF_PROG_LOAD` of a `BPF_PROG_TYPE_CGROUP_DEVICE` program named `name`
/// (at most 15 bytes are kept); the verifier's log goes into `log` unless
/// it is empty.
pub fn bpf_load_device_program(
    insns: &[BpfInsn],
    license: &CStr,
    name: &[u8],
    log: &mut [u8],
) -> Result<OwnedFd, Errno> {
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len()).map_err(|_| Errno::E2BIG)?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: u32::try_from(log.len()).map_err(|_| Errno::E2BIG)?,
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        ..Default::default()
    };
    let n = name.len().min(attr.prog_name.len() - 1);
    attr.prog_name[..n].copy_from_slice(&name[..n]);
    bpf(BPF_PROG_LOAD, &mut attr).map(own_fd)
}

/// `BPF_PROG_QUERY` of the device programs attached to the cgroup `cg`:
/// their ids fill `ids` from the start; returns how many there are (which
/// may exceed `ids.len()`).
pub fn bpf_query_device_programs(cg: BorrowedFd<'_>, ids: &mut [u32]) -> Result<usize, Errno> {
    let mut attr = QueryAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: u32::try_from(ids.len()).map_err(|_| Errno::E2BIG)?,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    Ok(attr.prog_cnt as usize)
}

/// `BPF_PROG_GET_FD_BY_ID`: an fd for the loaded program `id`.
pub fn bpf_program_by_id(id: u32) -> Result<OwnedFd, Errno> {
    let mut get = [id, 0, 0, 0, 0, 0, 0, 0];
    bpf(BPF_PROG_GET_FD_BY_ID, &mut get).map(own_fd)
}

/// `BPF_PROG_ATTACH` of the device program `prog` to the cgroup `cg`.
pub fn bpf_attach_device_program(
    cg: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    flags: u32,
) -> Result<(), Errno> {
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// `BPF_PROG_DETACH` of the device program `prog` from the cgroup `cg`.
pub fn bpf_detach_device_program(cg: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}
