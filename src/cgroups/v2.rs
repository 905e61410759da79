//! `linux.resources` on cgroup v2 (one directory, controllers enabled in
//! each ancestor's `cgroup.subtree_control`).

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::convert::{
    self, V2_CONTROLLERS, check_bytes, check_page_size, check_unified_key, check_weight,
    dev_numbers, rdma_lines, v2_limit,
};
use super::devices::{self, Rule};
use super::fs::{self, write};
use super::{CgroupError, bpf};

/// The controllers `r` needs enabled.
pub fn wanted(r: &LinuxResources) -> Vec<&'static str> {
    let mut out = vec!["memory", "pids"];
    if let Some(c) = r.cpu() {
        if c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.idle().is_some()
        {
            out.push("cpu");
        }
        if c.cpus().is_some() || c.mems().is_some() {
            out.push("cpuset");
        }
    }
    if r.block_io().is_some() {
        out.push("io");
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        out.push("hugetlb");
    }
    if r.rdma().as_ref().is_some_and(|h| !h.is_empty()) {
        out.push("rdma");
    }
    for key in r.unified().iter().flat_map(|u| u.keys()) {
        if let Some(c) = key
            .split('.')
            .next()
            .and_then(|c| V2_CONTROLLERS.iter().find(|k| **k == c))
            && *c != "cgroup"
            && !out.contains(c)
        {
            out.push(c);
        }
    }
    out
}

/// Enable `wanted` (those the host has) in every ancestor of `dir` below
/// `mount`, reading each `cgroup.subtree_control` first so that an
/// already-enabled tree costs no write.
pub fn enable(mount: &Path, dir: &Path, wanted: &[&str]) -> Result<(), CgroupError> {
    let Ok(rel) = dir.strip_prefix(mount) else {
        return Ok(());
    };
    let mut cur = mount.to_path_buf();
    let available = fs::read(mount, "cgroup.controllers").unwrap_or_default();
    let wanted: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| available.split_whitespace().any(|a| a == *w))
        .collect();
    let n = rel.components().count();
    for comp in rel
        .components()
        .take(n.saturating_sub(1))
        .map(Some)
        .chain([None])
    {
        let enabled = fs::read(&cur, "cgroup.subtree_control").unwrap_or_default();
        let missing: Vec<String> = wanted
            .iter()
            .filter(|w| !enabled.split_whitespace().any(|e| e == **w))
            .map(|w| format!("+{w}"))
            .collect();
        if !missing.is_empty() {
            write(&cur, "cgroup.subtree_control", missing.join(" "))?;
        }
        match comp {
            Some(c) => cur.push(c),
            None => break,
        }
    }
    Ok(())
}

pub fn apply(dir: &Path, r: &LinuxResources, devices: Option<&[Rule]>) -> Result<(), CgroupError> {
    if let Some(rules) = devices {
        if devices::allows_all(rules) {
            bpf::remove(dir)?;
        } else {
            bpf::install(dir, rules)?;
        }
    }
    if let Some(m) = r.memory() {
        memory(dir, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(p) = r.pids() {
        let v = convert::pids_max(p.limit())?;
        need(dir, "pids", "pids.max")?;
        write(dir, "pids.max", v)?;
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        let size = check_page_size(h.page_size())?;
        let file = format!("hugetlb.{size}.max");
        need(dir, "hugetlb", &file)?;
        write(
            dir,
            &file,
            v2_limit(check_bytes("hugepage limit", h.limit())?),
        )?;
    }
    if r.network().is_some() {
        return Err(CgroupError::Unsupported(
            "linux.resources.network (net_cls, net_prio)".into(),
            "v2",
        ));
    }
    for line in rdma_lines(r) {
        need(dir, "rdma", "rdma.max")?;
        write(dir, "rdma.max", line)?;
    }
    for (key, value) in r.unified().iter().flatten() {
        let ctrl = check_unified_key(key)?;
        need(dir, ctrl, key)?;
        write(dir, key, value)?;
    }
    Ok(())
}

/// A missing controller file means the controller is not enabled here.
fn need(dir: &Path, controller: &str, file: &str) -> Result<(), CgroupError> {
    if dir.join(file).exists() {
        return Ok(());
    }
    let available = fs::read(dir, "cgroup.controllers").unwrap_or_default();
    if controller != "cgroup" && !available.split_whitespace().any(|c| c == controller) {
        return Err(CgroupError::NoController(controller.into()));
    }
    Err(CgroupError::NoFile(file.into()))
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = m
        .limit()
        .map(|v| check_bytes("memory.limit", v))
        .transpose()?;
    let swap = m
        .swap()
        .map(|v| check_bytes("memory.swap", v))
        .transpose()?;
    if let Some(s) = swap {
        let v = convert::swap_to_v2(s, limit.unwrap_or(0))?;
        if v != 0 || s != 0 {
            need(dir, "memory", "memory.swap.max")?;
            write(dir, "memory.swap.max", v2_limit(v))?;
        }
    }
    if let Some(l) = limit.filter(|&l| l != 0) {
        need(dir, "memory", "memory.max")?;
        write(dir, "memory.max", v2_limit(l)).map_err(|e| match e {
            CgroupError::Write { source, .. } if source.raw_os_error() == Some(libc::EBUSY) => {
                CgroupError::invalid("memory.limit", l, "below the current usage")
            }
            e => e,
        })?;
    }
    if let Some(v) = m.reservation() {
        need(dir, "memory", "memory.low")?;
        write(
            dir,
            "memory.low",
            v2_limit(check_bytes("memory.reservation", v)?),
        )?;
    }
    if m.swappiness().is_some() {
        log::warn!("memory.swappiness is not supported on cgroup v2; ignored");
    }
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        log::debug!("kernel memory limits are not supported on cgroup v2; ignored");
    }
    if m.disable_oom_killer() == Some(true) {
        log::warn!("memory.disableOOMKiller is not supported on cgroup v2; ignored");
    }
    Ok(())
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
        return Err(CgroupError::Unsupported(
            "cpu realtime scheduling".into(),
            "v2",
        ));
    }
    if let Some(w) = c
        .shares()
        .map(convert::shares_to_weight)
        .filter(|&w| w != 0)
    {
        need(dir, "cpu", "cpu.weight")?;
        write(dir, "cpu.weight", w.to_string())?;
    }
    if let Some(q) = c.quota().filter(|&q| q < -1) {
        return Err(CgroupError::invalid(
            "cpu.quota",
            q,
            "must be -1 (unlimited) or more",
        ));
    }
    if let Some(v) = convert::cpu_max(c.quota(), c.period()) {
        need(dir, "cpu", "cpu.max")?;
        write(dir, "cpu.max", v)?;
    }
    if let Some(b) = c.burst() {
        need(dir, "cpu", "cpu.max.burst")?;
        write(dir, "cpu.max.burst", b.to_string())?;
    }
    if let Some(i) = c.idle() {
        need(dir, "cpu", "cpu.idle")?;
        write(dir, "cpu.idle", i.to_string())?;
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        need(dir, "cpuset", "cpuset.cpus")?;
        write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        need(dir, "cpuset", "cpuset.mems")?;
        write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

fn io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        check_weight("blockIO.weight", w)?;
        if bfq {
            write(dir, "io.bfq.weight", w.to_string())?;
        } else {
            need(dir, "io", "io.weight")?;
            let v = convert::blkio_weight_to_io_weight(w);
            write(dir, "io.weight", format!("default {v}"))?;
        }
    }
    if b.leaf_weight().is_some_and(|w| w != 0) {
        return Err(CgroupError::Unsupported("blockIO.leafWeight".into(), "v2"));
    }
    for d in b.weight_device().iter().flatten() {
        let dev = dev_numbers(d.major(), d.minor())?;
        if let Some(w) = d.weight() {
            check_weight("blockIO.weightDevice weight", w)?;
            if !bfq {
                return Err(CgroupError::NoFile(
                    "io.bfq.weight (per-device weights need BFQ)".into(),
                ));
            }
            write(dir, "io.bfq.weight", format!("{dev} {w}"))?;
        }
        if d.leaf_weight().is_some() {
            return Err(CgroupError::Unsupported(
                "blockIO.weightDevice leafWeight".into(),
                "v2",
            ));
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in throttles {
        for t in list.iter().flatten() {
            need(dir, "io", "io.max")?;
            let dev = dev_numbers(t.major(), t.minor())?;
            let rate = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            write(dir, "io.max", format!("{dev} {key}={rate}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_controllers_follow_resources() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"cpu":{"shares":512,"cpus":"0"},"unified":{"io.weight":"50"}}"#,
        )
        .unwrap();
        assert_eq!(wanted(&r), ["memory", "pids", "cpu", "cpuset", "io"]);
    }
}
