//! `linux.resources` on cgroup v1: one file per value, per controller.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::convert::{
    self, check_bytes, check_page_size, check_unified_key, check_weight, dev_numbers, rdma_lines,
};
use super::devices::Rule;
use super::fs::{self, write};
use super::{CgroupError, CgroupState};

/// Apply `r`. `devices` is the full rule list to install (create, or an
/// update that names devices); `fresh` means the cgroup was just made.
pub fn apply(
    state: &CgroupState,
    r: &LinuxResources,
    devices: Option<&[Rule]>,
    fresh: bool,
) -> Result<(), CgroupError> {
    let need = |c: &str| {
        state
            .dir(c)
            .ok_or_else(|| CgroupError::NoController(c.into()))
    };
    if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        for key in u.keys() {
            check_unified_key(key)?;
        }
        return Err(CgroupError::UnifiedOnV1);
    }
    if let Some(rules) = devices {
        let dir = need("devices")?;
        write(dir, "devices.deny", "a")?;
        for rule in rules {
            let file = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write(dir, file, rule.v1_line())?;
        }
    }
    if let Some(m) = r.memory() {
        memory(need("memory")?, m, fresh)?;
    }
    if let Some(c) = r.cpu() {
        cpu(state, c)?;
    }
    if let Some(p) = r.pids() {
        write(need("pids")?, "pids.max", convert::pids_max(p.limit())?)?;
    }
    if let Some(b) = r.block_io() {
        blkio(need("blkio")?, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        let size = check_page_size(h.page_size())?;
        let limit = check_bytes("hugepage limit", h.limit())?;
        let dir = need("hugetlb")?;
        write(
            dir,
            &format!("hugetlb.{size}.limit_in_bytes"),
            limit.to_string(),
        )?;
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            write(need("net_cls")?, "net_cls.classid", id.to_string())?;
        }
        for p in n.priorities().iter().flatten() {
            write(
                need("net_prio")?,
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    for line in rdma_lines(r) {
        write(need("rdma")?, "rdma.max", line)?;
    }
    Ok(())
}

fn memory(dir: &Path, m: &LinuxMemory, fresh: bool) -> Result<(), CgroupError> {
    let limit = m
        .limit()
        .map(|v| check_bytes("memory.limit", v))
        .transpose()?;
    let mut swap = m
        .swap()
        .map(|v| check_bytes("memory.swap", v))
        .transpose()?;
    let has_memsw = || dir.join("memory.memsw.limit_in_bytes").exists();
    // Unlimited memory with no swap given means unlimited swap too.
    if limit == Some(-1) && swap.is_none_or(|s| s == 0) && !fresh && has_memsw() {
        swap = Some(-1);
    }
    let set_limit = |v: i64| -> Result<(), CgroupError> {
        write(dir, "memory.limit_in_bytes", v.to_string())
            .map_err(|e| busy(dir, "memory.limit", v, e))
    };
    let set_swap = |v: i64| -> Result<(), CgroupError> {
        if !has_memsw() {
            return Err(CgroupError::NoFile(
                "memory.memsw.limit_in_bytes (swap accounting)".into(),
            ));
        }
        write(dir, "memory.memsw.limit_in_bytes", v.to_string())
            .map_err(|e| busy(dir, "memory.swap", v, e))
    };
    match (limit, swap.filter(|&s| s != 0)) {
        (Some(l), Some(s)) if l != 0 => {
            // The kernel wants memsw >= limit at every step: raise memsw
            // first when it grows.
            let cur = if fresh {
                u64::MAX
            } else {
                fs::read_u64(dir, "memory.limit_in_bytes")?
            };
            if s == -1 || cur < s as u64 {
                set_swap(s)?;
                set_limit(l)?;
            } else {
                set_limit(l)?;
                set_swap(s)?;
            }
        }
        (l, s) => {
            if let Some(l) = l.filter(|&l| l != 0) {
                set_limit(l)?;
            }
            if let Some(s) = s {
                set_swap(s)?;
            }
        }
    }
    if let Some(v) = m.reservation() {
        write(
            dir,
            "memory.soft_limit_in_bytes",
            check_bytes("memory.reservation", v)?.to_string(),
        )?;
    }
    if m.kernel().is_some() {
        log::debug!("memory.kernel is ignored: the kernel no longer limits kernel memory");
    }
    if let Some(v) = m.kernel_tcp() {
        let v = check_bytes("memory.kernelTCP", v)?;
        write(dir, "memory.kmem.tcp.limit_in_bytes", v.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(CgroupError::invalid(
                "memory.swappiness",
                s,
                "must be 0 to 100",
            ));
        }
        write(dir, "memory.swappiness", s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1")?;
    }
    if let Some(h) = m.use_hierarchy() {
        // Kernels since 5.16 always use the hierarchy and refuse 0.
        if let Err(e) = write(dir, "memory.use_hierarchy", if h { "1" } else { "0" }) {
            if h {
                return Err(e);
            }
            log::warn!("memory.useHierarchy false is not supported by this kernel; ignored");
        }
    }
    Ok(())
}

/// EBUSY from a memory limit means it is below the current usage.
fn busy(dir: &Path, field: &'static str, v: i64, e: CgroupError) -> CgroupError {
    match &e {
        CgroupError::Write { source, .. } if source.raw_os_error() == Some(libc::EBUSY) => {
            let usage = fs::read_u64(dir, "memory.usage_in_bytes").unwrap_or(0);
            CgroupError::invalid(field, v, format!("below the current usage ({usage} bytes)"))
        }
        _ => e,
    }
}

fn cpu(state: &CgroupState, c: &LinuxCpu) -> Result<(), CgroupError> {
    let need = |n: &str| {
        state
            .dir(n)
            .ok_or_else(|| CgroupError::NoController(n.into()))
    };
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        let dir = need("cpu")?;
        write(dir, "cpu.shares", s.to_string())
            .map_err(|_| CgroupError::invalid("cpu.shares", s, "the kernel accepts 2 to 262144"))?;
        let got = fs::read_u64(dir, "cpu.shares")?;
        if got != s {
            return Err(CgroupError::invalid(
                "cpu.shares",
                s,
                format!("the kernel set {got}: use 2 to 262144"),
            ));
        }
    }
    let rt_period = c.realtime_period().filter(|&p| p != 0);
    let rt_runtime = c.realtime_runtime().filter(|&r| r != 0);
    if rt_period.is_some() || rt_runtime.is_some() {
        rt_sched(need("cpu")?, rt_period, rt_runtime)?;
    }
    let quota = c.quota().filter(|&q| q != 0);
    if let Some(q) = quota
        && q < -1
    {
        return Err(CgroupError::invalid(
            "cpu.quota",
            q,
            "must be -1 (unlimited) or more",
        ));
    }
    if let Some(p) = c.period().filter(|&p| p != 0) {
        let dir = need("cpu")?;
        // A smaller period can conflict with the old quota: set the quota
        // first then.
        if write(dir, "cpu.cfs_period_us", p.to_string()).is_err() {
            if let Some(q) = quota {
                write(dir, "cpu.cfs_quota_us", q.to_string())?;
            }
            write(dir, "cpu.cfs_period_us", p.to_string())?;
        }
    }
    if let Some(q) = quota {
        write(need("cpu")?, "cpu.cfs_quota_us", q.to_string())?;
    }
    if let Some(b) = c.burst() {
        write(need("cpu")?, "cpu.cfs_burst_us", b.to_string())?;
    }
    if let Some(i) = c.idle() {
        write(need("cpu")?, "cpu.idle", i.to_string())?;
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write(need("cpuset")?, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write(need("cpuset")?, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// The real-time budget, as runc sets it: the period first (retried after
/// the runtime when the kernel refuses it), after raising the budget of
/// the parents that cannot give the runtime asked for.
fn rt_sched(dir: &Path, period: Option<u64>, runtime: Option<i64>) -> Result<(), CgroupError> {
    let mut late_period = None;
    if let Some(p) = period
        && let Err(e) = write(dir, "cpu.rt_period_us", p.to_string())
    {
        if runtime.is_none() || !is_einval(&e) {
            return Err(e);
        }
        late_period = Some(p);
    }
    let Some(r) = runtime else {
        return Ok(());
    };
    if r < -1 {
        return Err(CgroupError::invalid(
            "cpu.realtimeRuntime",
            r,
            "must be -1 (unlimited) or more",
        ));
    }
    if r > 0 {
        let own_period = period.map_or_else(|| fs::read_u64(dir, "cpu.rt_period_us"), Ok)?;
        raise_rt_parents(dir, rt_ratio(r as u64, own_period))?;
    }
    write(dir, "cpu.rt_runtime_us", r.to_string())?;
    if let Some(p) = late_period {
        write(dir, "cpu.rt_period_us", p.to_string())?;
    }
    Ok(())
}

fn is_einval(e: &CgroupError) -> bool {
    matches!(e, CgroupError::Write { source, .. } if source.raw_os_error() == Some(libc::EINVAL))
}

/// The kernel's fixed-point share of a period (`to_ratio`, 20 bits).
fn rt_ratio(runtime: u64, period: u64) -> u64 {
    if period == 0 {
        return 0;
    }
    ((u128::from(runtime) << 20) / u128::from(period)) as u64
}

/// A cgroup's real-time share: `None` for unlimited (-1).
fn rt_share(dir: &Path) -> Result<Option<u64>, CgroupError> {
    let runtime = fs::read(dir, "cpu.rt_runtime_us")?;
    let runtime = runtime.trim();
    if runtime == "-1" {
        return Ok(None);
    }
    let runtime = runtime.parse().unwrap_or(0);
    Ok(Some(rt_ratio(
        runtime,
        fs::read_u64(dir, "cpu.rt_period_us")?,
    )))
}

/// A child cgroup's real-time runtime must fit in what its parent has
/// left, and a new cgroup has none: walking up from `dir`, work out the
/// share each parent needs for its other children plus `need` for `dir`,
/// then raise those short of it, top-down. The hierarchy's root is never
/// written: if it cannot give the share, the kernel refuses the runtime.
fn raise_rt_parents(dir: &Path, mut need: u64) -> Result<(), CgroupError> {
    let mut raises: Vec<(&Path, u64)> = Vec::new();
    let mut child = dir;
    while let Some(parent) = child.parent() {
        if !parent
            .parent()
            .is_some_and(|gp| gp.join("cpu.rt_runtime_us").exists())
        {
            break;
        }
        let mut total = need;
        for sib in fs::subdirs(parent) {
            if sib != child {
                total = total.saturating_add(rt_share(&sib).ok().flatten().unwrap_or(0));
            }
        }
        match rt_share(parent)? {
            Some(have) if have < total => raises.push((parent, total)),
            _ => break,
        }
        need = total;
        child = parent;
    }
    for (parent, share) in raises.into_iter().rev() {
        let period = u128::from(fs::read_u64(parent, "cpu.rt_period_us")?);
        let runtime = (u128::from(share) * period).div_ceil(1 << 20);
        write(parent, "cpu.rt_runtime_us", runtime.to_string())?;
    }
    Ok(())
}

fn blkio(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // CFQ's files, or BFQ's where only that scheduler is in use.
    let pick = |cfq: &'static str, bfq: &'static str| {
        if dir.join(cfq).exists() || !dir.join(bfq).exists() {
            cfq
        } else {
            bfq
        }
    };
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        check_weight("blockIO.weight", w)?;
        write(dir, pick("blkio.weight", "blkio.bfq.weight"), w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        check_weight("blockIO.leafWeight", w)?;
        write(dir, "blkio.leaf_weight", w.to_string())?;
    }
    for d in b.weight_device().iter().flatten() {
        let dev = dev_numbers(d.major(), d.minor())?;
        if let Some(w) = d.weight() {
            check_weight("blockIO.weightDevice weight", w)?;
            write(
                dir,
                pick("blkio.weight_device", "blkio.bfq.weight_device"),
                format!("{dev} {w}"),
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            check_weight("blockIO.weightDevice leafWeight", w)?;
            write(dir, "blkio.leaf_weight_device", format!("{dev} {w}"))?;
        }
    }
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, list) in throttles {
        for t in list.iter().flatten() {
            let dev = dev_numbers(t.major(), t.minor())?;
            write(dir, file, format!("{dev} {}", t.rate()))?;
        }
    }
    Ok(())
}
