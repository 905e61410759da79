//! A classic BPF interpreter for the instructions the compiler emits, to
//! run programs on made-up `seccomp_data` in unit tests.

/// `struct seccomp_data`.
#[derive(Debug, Clone, Copy)]
pub struct Data {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

impl Data {
    /// A native x86_64 call.
    pub fn call(nr: u32, args: &[u64]) -> Data {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        Data {
            nr,
            arch: 0xc000_003e,
            args: a,
        }
    }

    fn word(&self, off: u32) -> u32 {
        match off {
            0 => self.nr,
            4 => self.arch,
            16..=63 if off.is_multiple_of(4) => {
                let arg = self.args[(off as usize - 16) / 8];
                if off.is_multiple_of(8) {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            _ => panic!("load from unexpected offset {off}"),
        }
    }
}

/// Run `prog` on `data`; returns the filter's return value.
pub fn run(prog: &[libc::sock_filter], data: &Data) -> u32 {
    let mut acc = 0u32;
    let mut pc = 0usize;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps <= prog.len(), "program loops or runs off");
        let i = prog[pc];
        pc += 1;
        match i.code {
            0x20 => acc = data.word(i.k),
            0x54 => acc &= i.k,
            0x05 => pc += i.k as usize,
            0x15 | 0x25 | 0x35 => {
                let hit = match i.code {
                    0x15 => acc == i.k,
                    0x25 => acc > i.k,
                    _ => acc >= i.k,
                };
                pc += usize::from(if hit { i.jt } else { i.jf });
            }
            0x06 => return i.k,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}
