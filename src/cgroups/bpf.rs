//! The cgroup v2 device controller: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the container's cgroup.
//!
//! The program checks the rules after the last "all devices" rule, last
//! first (the last matching rule decides, as the v1 list would), and
//! otherwise returns that "all devices" rule's verdict (deny when none).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::CgroupError;
use super::devices::Rule;
use crate::syscall;

/// One eBPF instruction.
pub use crate::syscall::BpfInsn as Insn;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54;
const RSH32_K: u8 = 0x74;
const MOV32_X: u8 = 0xbc;
const MOV64_K: u8 = 0xb7;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |acc, c| {
        acc | match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        }
    })
}

/// Compile `rules` into the program's instructions.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    // r2 = device type, r3 = access, r4 = major, r5 = minor.
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    let last_all = rules.iter().rposition(|r| r.kind == 'a');
    let default = last_all.is_some_and(|i| rules[i].allow && access_bits(&rules[i].access) == 7);
    let start = last_all.map_or(0, |i| i + 1);
    for r in rules[start..].iter().rev() {
        let acc = access_bits(&r.access);
        let mut block: Vec<Insn> = Vec::new();
        // Each check jumps past the block's end on a mismatch; offsets are
        // patched once the block length is known.
        match r.kind {
            'b' => block.push(insn(JNE_K, 2, 0, 0, 1)),
            'c' => block.push(insn(JNE_K, 2, 0, 0, 2)),
            _ => {}
        }
        if r.allow && acc != 7 {
            // Some requested access is outside the rule: no match.
            block.push(insn(MOV32_X, 1, 3, 0, 0));
            block.push(insn(AND32_K, 1, 0, 0, !acc & 7));
            block.push(insn(JNE_K, 1, 0, 0, 0));
        } else if !r.allow && acc != 7 {
            // No requested access is denied by the rule: no match.
            block.push(insn(MOV32_X, 1, 3, 0, 0));
            block.push(insn(AND32_K, 1, 0, 0, acc));
            block.push(insn(JEQ_K, 1, 0, 0, 0));
        }
        if let Some(m) = r.major {
            block.push(insn(JNE_K, 4, 0, 0, m as i32));
        }
        if let Some(m) = r.minor {
            block.push(insn(JNE_K, 5, 0, 0, m as i32));
        }
        block.push(insn(MOV64_K, 0, 0, 0, i32::from(r.allow)));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JNE_K || ins.code == JEQ_K {
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(insn(MOV64_K, 0, 0, 0, i32::from(default)));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

fn load(rules: &[Rule]) -> Result<OwnedFd, CgroupError> {
    let insns = program(rules);
    let license = c"Apache";
    let attempt = |log: &mut [u8]| {
        syscall::bpf_load_device_program(&insns, license, b"ferry", log)
            .map_err(std::io::Error::from)
    };
    // No verifier log on the normal path (a log that overflows its buffer
    // fails the load); ask for one only to explain a failure.
    let err = match attempt(&mut []) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let mut log = vec![0u8; 1 << 16];
    let _ = attempt(&mut log);
    let end = log.iter().position(|&b| b == 0).unwrap_or(0);
    let detail = String::from_utf8_lossy(&log[..end])
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .to_string();
    Err(CgroupError::Bpf(
        format!("load: {err} {detail}").trim().to_string(),
    ))
}

fn open_dir(dir: &Path) -> Result<OwnedFd, CgroupError> {
    nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| super::fs::io_err("open", dir, e.into()))
}

/// Programs attached to `cg` now.
fn attached(cg: &OwnedFd) -> Vec<u32> {
    let mut ids = [0u32; 64];
    match syscall::bpf_query_device_programs(cg.as_fd(), &mut ids) {
        Ok(n) => ids[..n.min(ids.len())].to_vec(),
        Err(_) => Vec::new(),
    }
}

fn detach(cg: &OwnedFd, ids: &[u32]) -> Result<(), CgroupError> {
    for &id in ids {
        let Ok(prog) = syscall::bpf_program_by_id(id) else {
            continue;
        };
        syscall::bpf_detach_device_program(cg.as_fd(), prog.as_fd())
            .map_err(|e| CgroupError::Bpf(format!("detach: {}", std::io::Error::from(e))))?;
    }
    Ok(())
}

/// Attach a program for `rules` to `dir`, replacing the ones there.
pub fn install(dir: &Path, rules: &[Rule]) -> Result<(), CgroupError> {
    let prog = load(rules)?;
    let cg = open_dir(dir)?;
    let old = attached(&cg);
    syscall::bpf_attach_device_program(cg.as_fd(), prog.as_fd(), syscall::BPF_F_ALLOW_MULTI)
        .map_err(|e| CgroupError::Bpf(format!("attach: {}", std::io::Error::from(e))))?;
    detach(&cg, &old)
}

/// Detach every device program from `dir` (allow all devices).
pub fn remove(dir: &Path) -> Result<(), CgroupError> {
    let cg = open_dir(dir)?;
    let old = attached(&cg);
    detach(&cg, &old)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(allow: bool, kind: char, major: Option<u32>, minor: Option<u32>, access: &str) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    /// Run the program on (type, access, major, minor) in a tiny
    /// interpreter of the instructions it uses.
    fn eval(p: &[Insn], ty: u32, acc: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(acc << 16) | ty, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => r[dst] = u64::from(ctx[(i.off / 4) as usize]),
                AND32_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                RSH32_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                MOV32_X => r[dst] = r[src] as u32 as u64,
                MOV64_K => r[dst] = i.imm as i64 as u64,
                JEQ_K if r[dst] == i.imm as i64 as u64 => pc += i.off as usize,
                JNE_K if r[dst] != i.imm as i64 as u64 => pc += i.off as usize,
                JEQ_K | JNE_K => {}
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn deny_all_with_defaults() {
        let rules = vec![
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'c', Some(136), None, "rwm"),
            rule(true, 'c', None, None, "m"),
        ];
        let p = program(&rules);
        let (chr, blk) = (2, 1);
        assert_eq!(eval(&p, chr, 2 | 4, 1, 3), 1, "/dev/null rw");
        assert_eq!(eval(&p, chr, 2, 1, 5), 0, "/dev/zero not listed");
        assert_eq!(eval(&p, chr, 2, 136, 7), 1, "pts wildcard minor");
        assert_eq!(eval(&p, chr, 1, 8, 0), 1, "mknod any char");
        assert_eq!(eval(&p, blk, 1, 8, 0), 0, "mknod block denied");
        assert_eq!(eval(&p, blk, 2, 8, 0), 0);
    }

    /// Where a cgroup2 hierarchy is mounted (the unified one of a hybrid
    /// host counts: device programs act on cgroup2 membership).
    fn cgroup2_mount() -> Option<std::path::PathBuf> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        info.lines().find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            if !post.starts_with("cgroup2 ") {
                return None;
            }
            pre.split(' ').nth(4).map(std::path::PathBuf::from)
        })
    }

    #[test]
    fn program_is_enforced_by_the_kernel() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let Some(base) = cgroup2_mount() else { return };
        let dir = base.join(format!("ferry-bpf-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(5), "rwm"),
        ];
        let installed = install(&dir, &rules);
        let procs = std::ffi::CString::new(
            dir.join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        let code = installed.as_ref().ok().map(|()| {
            use nix::fcntl::{OFlag, open};
            use nix::sys::stat::Mode;
            // The child makes only async-signal-safe calls on memory
            // prepared before the fork, then _exits.
            match syscall::fork().unwrap() {
                syscall::Forked::Child => {
                    let joined = open(procs.as_c_str(), OFlag::O_WRONLY, Mode::empty())
                        .and_then(|fd| nix::unistd::write(&fd, b"0"));
                    if joined != Ok(1) {
                        syscall::exit_now(10);
                    }
                    let null = open(c"/dev/null", OFlag::O_RDONLY, Mode::empty());
                    let zero = open(c"/dev/zero", OFlag::O_RDONLY, Mode::empty());
                    let bad_null = null.err() != Some(nix::errno::Errno::EPERM);
                    syscall::exit_now(i32::from(bad_null) | (i32::from(zero.is_err()) << 1));
                }
                syscall::Forked::Parent(pid) => match nix::sys::wait::waitpid(pid, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => code,
                    _ => -1,
                },
            }
        });
        let removed = remove(&dir);
        let _ = std::fs::remove_dir(&dir);
        installed.unwrap();
        removed.unwrap();
        assert_eq!(
            code,
            Some(0),
            "1: /dev/null not denied, 2: /dev/zero denied, 10: join failed"
        );
    }

    #[test]
    fn allow_all_with_a_deny_exception() {
        let rules = vec![
            rule(true, 'a', None, None, "rwm"),
            rule(false, 'c', Some(1), Some(3), "w"),
        ];
        let p = program(&rules);
        assert_eq!(eval(&p, 2, 2, 1, 3), 1, "read allowed");
        assert_eq!(eval(&p, 2, 4, 1, 3), 0, "write denied");
        assert_eq!(eval(&p, 1, 4, 8, 1), 1);
    }
}
