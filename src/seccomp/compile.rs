//! Translating `linux.seccomp` into one classic BPF program.
//!
//! Layout: a prologue checks the ABI and loads the syscall number; a
//! binary tree of `JGE`s on the number jumps to one of up to 64 *buckets*
//! of 16 consecutive (profile) syscalls; each bucket decides its calls and
//! ends with the default action. Short linear chains matter: the kernel
//! runs a filter once per syscall number at load time to find the calls it
//! may allow without running it, and verifies, converts and JITs every
//! instruction. Podman's default profile (about 420 syscalls) is about 550
//! instructions per ABI (about 1150 with its i386 section) and loads in
//! about 0.3 ms; one seccompiler chain over the x86_64 part alone was 1800
//! instructions and took 0.8 to 1.2 ms.
//!
//! Inside a bucket, syscalls with a single unconditional action are a table
//! of `JEQ nr → RET action`. Those with argument conditions go through
//! seccompiler, whose [`SeccompFilter`] has a single match action and a
//! single mismatch action while a syscall may have rules with different
//! actions; ferry therefore compiles one seccompiler filter per *(layer,
//! action)* and splices the fragments:
//!
//! * For each syscall, its rules keep their profile order, except that rules
//!   with argument conditions go before an unconditional one (the specific
//!   case wins; anything after the first unconditional rule is dead). The
//!   first rule whose conditions all hold decides. Runs of rules with the
//!   same action form a *segment*.
//! * Layer *n* holds every syscall's *n*-th segment, one fragment per action.
//!   A syscall appears at most once per layer, so fragments of a layer never
//!   compete, and layers run in order.
//! * Each fragment's mismatch action is a placeholder `CONTINUE` return; it
//!   is rewritten into a jump to the end of the fragment, i.e. into the
//!   next fragment, whose first instruction reloads the syscall number.
//!   seccompiler's own architecture check at the head of each fragment is
//!   dropped: ferry's prologue does it once.
//! * seccompiler has no user-notify action: `SCMP_ACT_NOTIFY` is emitted as
//!   a second placeholder and those returns are rewritten to
//!   `SECCOMP_RET_USER_NOTIF`. Both placeholders are `SECCOMP_RET_TRACE`
//!   values that no action of the profile uses, and only `BPF_RET`
//!   instructions are rewritten, never comparison constants.
//!
//! As runc does: rules whose action equals the default action are dropped,
//! unknown syscall names are skipped (with a debug log), and when a rule has
//! several conditions on the same argument each condition becomes a rule of
//! its own (they are ORed); otherwise conditions are ANDed. Arguments are
//! compared as 64-bit values. `SCMP_CMP_MASKED_EQ` is `(arg & value) ==
//! valueTwo`; a `valueTwo` with bits outside the mask never matches.
//!
//! Architectures: the native ABI (x86_64) is always filtered, and i386
//! (32-bit programs) when the profile lists `SCMP_ARCH_X86`: its calls go
//! through a second section built the same way from the i386 numbers, so
//! the prologue checks the architecture and jumps to the right section.
//! ferry has no x32 table: an x32 call gets the default action when that
//! denies, and ENOSYS when the default would allow (fail closed), if the
//! profile lists `SCMP_ARCH_X32`. A call through an ABI the profile does not
//! list kills the process, like libseccomp's bad-architecture action.
//!
//! New syscalls: as runc's `-ENOSYS` stub does, when the default action
//! denies (anything but allow, log or trace, and not already `ENOSYS`), a
//! call numbered above the newest syscall the profile names for that ABI
//! (counting every rule, whatever its action) fails with `ENOSYS` instead,
//! so that glibc falls back from `clone3`, `faccessat2`, `openat2`,
//! `close_range` and the like to the older calls, and `syscall(1000)` gets
//! `ENOSYS` as on a kernel without it. Every such call lands in the last
//! bucket of its section, whose tail checks it: listed calls pay nothing.
//! Unlike runc 1.1, which adds the stub only for the ABIs listed in
//! `architectures`, ferry also adds it for the native ABI when the profile
//! lists no architecture at all (the native ABI is filtered either way).

use std::collections::{BTreeMap, HashSet};

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompArg, LinuxSeccompOperator};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::action::{Action, flag_bits};
use super::{SeccompError, syscalls, syscalls_i386};

/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;
/// x32 syscall numbers have this bit set (`__X32_SYSCALL_BIT`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// `AUDIT_ARCH_X86_64`.
const AUDIT_ARCH_NATIVE: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`.
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// Length of the architecture check seccompiler puts at a fragment's head.
const BACKEND_ARCH_CHECK: usize = 3;
/// `offsetof(struct seccomp_data, nr)` and `arch`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

// Classic BPF opcodes (linux/bpf_common.h).
/// `BPF_LD | BPF_W | BPF_ABS`
const LD_W_ABS: u16 = 0x20;
/// `BPF_JMP | BPF_JA`
const JMP_JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`
const JMP_JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGE | BPF_K`
const JMP_JGE_K: u16 = 0x35;
/// `BPF_JMP | BPF_JGT | BPF_K`
const JMP_JGT_K: u16 = 0x25;
/// `BPF_RET | BPF_K`
const RET_K: u16 = 0x06;

/// The outcome of [`compile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub program: BpfProgram,
    /// `SECCOMP_FILTER_FLAG_*` asked by the profile (the listener flag is
    /// added at load time when `notify` is set).
    pub flags: libc::c_ulong,
    /// Some rule uses `SCMP_ACT_NOTIFY`.
    pub notify: bool,
}

/// One rule of one syscall; no conditions means unconditional.
#[derive(Debug, Clone)]
struct Rule {
    action: Action,
    conds: Vec<SeccompCondition>,
}

/// Translate a profile into a BPF program for the native architecture.
pub fn compile(spec: &LinuxSeccomp) -> Result<Compiled, SeccompError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(SeccompError::UnsupportedArch(std::env::consts::ARCH));
    }
    let default = Action::from_spec(spec.default_action(), spec.default_errno_ret())?;
    if default == Action::Notify {
        return Err(SeccompError::NotifyDefault);
    }
    let archs = spec.architectures().as_deref().unwrap_or_default();
    let mut native = Calls::new();
    let mut i386 = archs.contains(&Arch::ScmpArchX86).then(Calls::new);
    let (mut newest, mut newest_i386) = Newest::wanted(default, archs);
    for entry in spec.syscalls().iter().flatten() {
        let action = Action::from_spec(entry.action(), entry.errno_ret())?;
        let rules = condition_sets(entry.args().as_deref().unwrap_or_default())?;
        // Dropped, but runc counts its names for the newest syscall.
        let keep = action != default;
        if !keep && !newest.wanted && !newest_i386.wanted {
            continue;
        }
        for name in entry.names() {
            let nr = syscalls::number(name);
            newest.see(nr);
            if keep {
                add(&mut native, nr, name, action, &rules);
            }
            if let Some(calls) = i386.as_mut() {
                let nr = syscalls_i386::number(name);
                newest_i386.see(nr);
                if keep {
                    add(calls, nr, name, action, &rules);
                }
            }
        }
    }
    let notify = native
        .values()
        .flatten()
        .any(|r| r.action == Action::Notify);
    if notify && spec.listener_path().is_none() {
        return Err(SeccompError::NotifyWithoutListener);
    }
    let mut flags = spec
        .flags()
        .iter()
        .flatten()
        .fold(0, |acc, f| acc | flag_bits(*f));
    if !notify && flags & libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 {
        // The kernel only takes it together with a listener.
        log::debug!(
            "seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored without a notify rule"
        );
        flags &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    let enosys = EnosysAbove {
        native: newest.above(),
        i386: newest_i386.above(),
    };
    let program = assemble(default, native, i386, archs, enosys)?;
    Ok(Compiled {
        program,
        flags,
        notify,
    })
}

/// Per ABI, the number above which calls fail with `ENOSYS` (see the
/// module docs); `None`: no such check.
#[derive(Debug, Clone, Copy, Default)]
struct EnosysAbove {
    native: Option<u32>,
    i386: Option<u32>,
}

/// For one ABI: whether calls newer than the profile get `ENOSYS`, and the
/// newest syscall the profile names so far.
#[derive(Debug, Clone, Copy, Default)]
struct Newest {
    wanted: bool,
    max: Option<u32>,
}

impl Newest {
    /// Whether the native and the i386 ABI want the check: the default must
    /// deny (not allow, log or trace, and not already `ENOSYS`), and the ABI
    /// be listed (the native one also when nothing is).
    fn wanted(default: Action, archs: &[Arch]) -> (Newest, Newest) {
        let denies = !(default.permits()
            || matches!(default, Action::Trace(_))
            || default == Action::Errno(libc::ENOSYS as u16));
        let listed = |abi: &[Arch]| archs.iter().any(|a| abi.contains(a));
        let native = archs.is_empty() || listed(&[Arch::ScmpArchX86_64, Arch::ScmpArchNative]);
        let abi = |wanted: bool| Newest {
            wanted: denies && wanted,
            max: None,
        };
        (abi(native), abi(listed(&[Arch::ScmpArchX86])))
    }

    /// Count a named syscall (`None`: unknown in this ABI).
    fn see(&mut self, nr: Option<u32>) {
        if self.wanted {
            self.max = self.max.max(nr);
        }
    }

    /// The number above which calls get `ENOSYS`; none when the profile
    /// names no syscall of this ABI but 0, as runc.
    fn above(self) -> Option<u32> {
        self.max.filter(|nr| *nr > 0)
    }
}

/// Rules per syscall number, for one ABI.
type Calls = BTreeMap<u32, Vec<Rule>>;

/// Add the rules of syscall `name` (number `nr` in the ABI of `calls`).
fn add(
    calls: &mut Calls,
    nr: Option<u32>,
    name: &str,
    action: Action,
    rules: &[Vec<SeccompCondition>],
) {
    let Some(nr) = nr else {
        log::debug!("seccomp: unknown syscall {name:?} skipped");
        return;
    };
    calls
        .entry(nr)
        .or_default()
        .extend(rules.iter().map(|conds| Rule {
            action,
            conds: conds.clone(),
        }));
}

/// The rules one `syscalls` entry makes: each a list of ANDed conditions
/// (empty: unconditional). Several conditions on one argument are split
/// into one rule each, as runc does.
fn condition_sets(args: &[LinuxSeccompArg]) -> Result<Vec<Vec<SeccompCondition>>, SeccompError> {
    let conds = args.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
    let mut seen = [false; 6];
    let repeated = args
        .iter()
        .any(|a| std::mem::replace(&mut seen[a.index()], true));
    Ok(if repeated {
        conds.into_iter().flatten().map(|c| vec![c]).collect()
    } else if conds.iter().all(Option::is_some) {
        vec![conds.into_iter().flatten().collect()]
    } else {
        // A condition that can never hold: the rule never matches.
        vec![]
    })
}

/// One argument comparison; `None` when it can never hold.
fn condition(arg: &LinuxSeccompArg) -> Result<Option<SeccompCondition>, SeccompError> {
    use LinuxSeccompOperator::*;
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|i| *i <= 5)
        .ok_or(SeccompError::ArgIndex(arg.index()))?;
    let (op, value) = match arg.op() {
        ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        ScmpCmpMaskedEq => {
            let (mask, want) = (arg.value(), arg.value_two().unwrap_or(0));
            if want & !mask != 0 {
                return Ok(None);
            }
            (SeccompCmpOp::MaskedEq(mask), want)
        }
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
        .map(Some)
        .map_err(backend)
}

/// A run of rules of one syscall with the same action; no rules means
/// unconditional.
struct Segment {
    action: Action,
    rules: Vec<SeccompRule>,
}

/// Order a syscall's rules (conditional first, nothing after the first
/// unconditional one) and cut them into segments.
fn segments(mut rules: Vec<Rule>) -> Result<Vec<Segment>, SeccompError> {
    rules.sort_by_key(|r| r.conds.is_empty());
    if let Some(i) = rules.iter().position(|r| r.conds.is_empty()) {
        rules.truncate(i + 1);
    }
    let mut out: Vec<Segment> = Vec::new();
    for rule in rules {
        if out.last().is_none_or(|s| s.action != rule.action) {
            out.push(Segment {
                action: rule.action,
                rules: Vec::new(),
            });
        }
        let seg = out.last_mut().expect("pushed above");
        if rule.conds.is_empty() {
            seg.rules.clear();
        } else {
            seg.rules
                .push(SeccompRule::new(rule.conds).map_err(backend)?);
        }
    }
    Ok(out)
}

/// One fragment's syscalls and their rules.
type Group = BTreeMap<i64, Vec<SeccompRule>>;

/// Syscalls per bucket (see [`assemble`]).
const BUCKET: usize = 16;

/// The placeholder returns, as `SECCOMP_RET_TRACE` data.
#[derive(Clone, Copy)]
struct Placeholders {
    cont: u16,
    notify: u16,
}

/// One ABI's syscalls, each cut into segments.
type Section = Vec<(u32, Vec<Segment>)>;

fn sections(calls: Calls, used: &mut HashSet<u32>) -> Result<Section, SeccompError> {
    let mut all = Vec::with_capacity(calls.len());
    for (nr, rules) in calls {
        let segs = segments(rules)?;
        used.extend(segs.iter().map(|s| s.action.ret()));
        all.push((nr, segs));
    }
    Ok(all)
}

/// Build the whole program: prologue, then for each filtered ABI its
/// dispatch tree and buckets (see the module docs).
fn assemble(
    default: Action,
    native: Calls,
    i386: Option<Calls>,
    archs: &[Arch],
    enosys: EnosysAbove,
) -> Result<BpfProgram, SeccompError> {
    let mut used: HashSet<u32> = HashSet::from([default.ret()]);
    let native = sections(native, &mut used)?;
    let i386 = i386.map(|c| sections(c, &mut used)).transpose()?;
    let mut free = (0..=u16::MAX)
        .rev()
        .filter(|d| !used.contains(&Action::Trace(*d).ret()));
    let ph = match (free.next(), free.next()) {
        (Some(cont), Some(notify)) => Placeholders { cont, notify },
        _ => return Err(SeccompError::Backend("no free placeholder action".into())),
    };
    let (mut prog, ja) = prologue(default, archs, i386.is_some());
    emit_section(&mut prog, native, default, enosys.native, ph)?;
    if let (Some(section), Some(ja)) = (i386, ja) {
        prog[ja].k = (prog.len() - ja - 1) as u32;
        prog.push(stmt(LD_W_ABS, DATA_NR));
        emit_section(&mut prog, section, default, enosys.i386, ph)?;
    }
    if prog.len() > MAX_INSNS {
        return Err(SeccompError::TooLarge(prog.len()));
    }
    Ok(prog)
}

/// One ABI's dispatch tree and buckets, entered with the syscall number in A;
/// calls numbered above `enosys_above` fail with `ENOSYS`.
fn emit_section(
    prog: &mut BpfProgram,
    all: Section,
    default: Action,
    enosys_above: Option<u32>,
    ph: Placeholders,
) -> Result<(), SeccompError> {
    let size = BUCKET.max(all.len().div_ceil(MAX_BUCKETS));
    let mut buckets = Vec::new();
    let mut it = all.into_iter().peekable();
    while it.peek().is_some() {
        buckets.push(it.by_ref().take(size).collect::<Vec<_>>());
    }
    // Bucket i covers numbers from its first syscall up to the next bucket's.
    let lows: Vec<u32> = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| if i == 0 { 0 } else { b[0].0 })
        .collect();
    let mut leaves = Vec::new();
    if buckets.len() > 1 {
        dispatch(prog, &lows, 0, &mut leaves);
    }
    let last = buckets.len().saturating_sub(1);
    let mut starts = Vec::with_capacity(buckets.len());
    for (i, bucket) in buckets.into_iter().enumerate() {
        starts.push(prog.len());
        emit_bucket(prog, bucket, ph)?;
        if i == last {
            emit_enosys_above(prog, enosys_above);
        }
        prog.push(stmt(RET_K, default.ret()));
    }
    if starts.is_empty() {
        emit_enosys_above(prog, enosys_above);
        prog.push(stmt(RET_K, default.ret()));
    }
    for (pc, i) in leaves {
        prog[pc].k = (starts[i] - pc - 1) as u32;
    }
    Ok(())
}

/// Where a section's last bucket ends: fail calls numbered above `max`
/// with `ENOSYS` (a fragment may have left an argument in A: reload the
/// number). Emits nothing without `max`.
fn emit_enosys_above(prog: &mut BpfProgram, max: Option<u32>) {
    if let Some(max) = max {
        prog.extend([
            stmt(LD_W_ABS, DATA_NR),
            jump(JMP_JGT_K, max, 0, 1),
            stmt(RET_K, Action::Errno(libc::ENOSYS as u16).ret()),
        ]);
    }
}

/// At most this many buckets, so the tree's jumps fit in 8 bits.
const MAX_BUCKETS: usize = 64;

/// Instructions of a dispatch tree over `n` buckets.
fn tree_len(n: usize) -> usize {
    if n == 1 {
        1
    } else {
        1 + tree_len(n / 2) + tree_len(n - n / 2)
    }
}

/// Emit a binary search on the syscall number (in A) over bucket lower
/// bounds `lows`; leaves are `JA`s recorded in `leaves` as (pc, bucket),
/// patched once the buckets are placed.
fn dispatch(prog: &mut BpfProgram, lows: &[u32], first: usize, leaves: &mut Vec<(usize, usize)>) {
    if lows.len() == 1 {
        leaves.push((prog.len(), first));
        prog.push(stmt(JMP_JA, 0));
        return;
    }
    let half = lows.len() / 2;
    let left = u8::try_from(tree_len(half)).expect("at most MAX_BUCKETS buckets");
    prog.push(jump(JMP_JGE_K, lows[half], left, 0));
    dispatch(prog, &lows[..half], first, leaves);
    dispatch(prog, &lows[half..], first + half, leaves);
}

/// One bucket, entered with the syscall number in A: a table of `JEQ`s for
/// the syscalls with a single unconditional action, then the layered
/// seccompiler fragments for those with argument conditions (see the module
/// docs). A call that nothing decides falls off the end.
fn emit_bucket(
    prog: &mut BpfProgram,
    bucket: Vec<(u32, Vec<Segment>)>,
    ph: Placeholders,
) -> Result<(), SeccompError> {
    let (simple, conditional): (Vec<_>, Vec<_>) = bucket
        .into_iter()
        .partition(|(_, segs)| segs.len() == 1 && segs[0].rules.is_empty());
    if !simple.is_empty() {
        let mut rets: Vec<Action> = Vec::new();
        for (_, segs) in &simple {
            if !rets.contains(&segs[0].action) {
                rets.push(segs[0].action);
            }
        }
        // JEQ i jumps to its RET after the rest of the table and the JA.
        let n = simple.len();
        for (i, (nr, segs)) in simple.iter().enumerate() {
            let ret = rets.iter().position(|a| *a == segs[0].action).unwrap_or(0);
            let jt = u8::try_from(n - i + ret)
                .map_err(|_| SeccompError::Backend("syscall table too long".into()))?;
            prog.push(jump(JMP_JEQ_K, *nr, jt, 0));
        }
        prog.push(stmt(JMP_JA, rets.len() as u32));
        prog.extend(rets.iter().map(|a| stmt(RET_K, a.ret())));
    }
    let mut layers: Vec<Vec<(Action, Group)>> = Vec::new();
    for (nr, segs) in conditional {
        for (depth, seg) in segs.into_iter().enumerate() {
            if layers.len() <= depth {
                layers.push(Vec::new());
            }
            let layer = &mut layers[depth];
            let i = match layer.iter().position(|(a, _)| *a == seg.action) {
                Some(i) => i,
                None => {
                    layer.push((seg.action, Group::new()));
                    layer.len() - 1
                }
            };
            layer[i].1.insert(i64::from(nr), seg.rules);
        }
    }
    let (cont, notify) = (Action::Trace(ph.cont).ret(), Action::Trace(ph.notify).ret());
    for (action, group) in layers.into_iter().flatten() {
        let matched = match action {
            Action::Notify => SeccompAction::Trace(u32::from(ph.notify)),
            other => backend_action(other),
        };
        let filter = SeccompFilter::new(
            group,
            SeccompAction::Trace(u32::from(ph.cont)),
            matched,
            TargetArch::x86_64,
        )
        .map_err(backend)?;
        let bpf: BpfProgram = filter.try_into().map_err(backend)?;
        debug_assert_eq!(
            bpf.first().map(|i| (i.code, i.k)),
            Some((LD_W_ABS, DATA_ARCH))
        );
        let body = bpf.get(BACKEND_ARCH_CHECK..).unwrap_or_default();
        let end = prog.len() + body.len();
        for ins in body {
            let here = prog.len();
            let mut ins = ins.clone();
            if ins.code == RET_K && ins.k == cont {
                ins = stmt(JMP_JA, (end - here - 1) as u32);
            } else if ins.code == RET_K && ins.k == notify {
                ins.k = libc::SECCOMP_RET_USER_NOTIF;
            }
            prog.push(ins);
        }
    }
    Ok(())
}

/// Check the ABI: native calls go on with the syscall number loaded; with
/// `i386`, i386 calls take a `JA` (returned: its pc, for [`assemble`] to
/// aim); x32 calls get their fixed action, other ABIs kill (see the module
/// docs).
fn prologue(default: Action, archs: &[Arch], i386: bool) -> (BpfProgram, Option<usize>) {
    let x32 = if !archs.contains(&Arch::ScmpArchX32) {
        Action::KillProcess
    } else if default.permits() {
        Action::Errno(libc::ENOSYS as u16)
    } else {
        default
    };
    let kill = stmt(RET_K, Action::KillProcess.ret());
    let mut prog = vec![stmt(LD_W_ABS, DATA_ARCH)];
    let mut ja = None;
    if i386 {
        prog.push(jump(JMP_JEQ_K, AUDIT_ARCH_NATIVE, 3, 0));
        prog.push(jump(JMP_JEQ_K, AUDIT_ARCH_I386, 0, 1));
        ja = Some(prog.len());
        prog.extend([stmt(JMP_JA, 0), kill]);
    } else {
        prog.extend([jump(JMP_JEQ_K, AUDIT_ARCH_NATIVE, 1, 0), kill]);
    }
    prog.extend([
        stmt(LD_W_ABS, DATA_NR),
        jump(JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(RET_K, x32.ret()),
    ]);
    (prog, ja)
}

fn backend_action(a: Action) -> SeccompAction {
    match a {
        Action::Allow => SeccompAction::Allow,
        Action::Errno(e) => SeccompAction::Errno(u32::from(e)),
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
        Action::Trap => SeccompAction::Trap,
        Action::Trace(d) => SeccompAction::Trace(u32::from(d)),
        Action::Log => SeccompAction::Log,
        Action::Notify => unreachable!("notify is emitted as a placeholder"),
    }
}

fn backend(e: seccompiler::BackendError) -> SeccompError {
    match e {
        seccompiler::BackendError::FilterTooLarge(n) => SeccompError::TooLarge(n),
        other => SeccompError::Backend(other.to_string()),
    }
}

fn stmt(code: u16, k: u32) -> seccompiler::sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> seccompiler::sock_filter {
    seccompiler::sock_filter { code, jt, jf, k }
}
