//! `ferry update`: change a running container's resource limits, from a
//! `linux.resources` JSON document (`--resources FILE`, `-` for stdin, as
//! podman and containerd pass it) and runc's per-resource flags on top.

use std::io::Read;

use anyhow::{Context, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::cgroups::parse_size;
use crate::cli::UpdateOpts;
use crate::container::{Container, StateStore};

pub fn update(store: &StateStore, o: &UpdateOpts) -> Result<()> {
    Container::load(store, &o.id)?.update(|| resources(o))
}

/// The resources to apply: the document, then the flags.
pub fn resources(o: &UpdateOpts) -> Result<LinuxResources> {
    let mut r: LinuxResources = match &o.resources {
        Some(path) => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("read resources from stdin")?;
            } else {
                text = std::fs::read_to_string(path)
                    .with_context(|| format!("read resources {}", path.display()))?;
            }
            serde_json::from_str(&text).context("invalid resources JSON")?
        }
        None => LinuxResources::default(),
    };
    let size = |v: &Option<String>| v.as_deref().map(parse_size).transpose();

    let mut mem = (*r.memory()).unwrap_or_default();
    let mem_flags = [
        (
            size(&o.memory)?,
            LinuxMemory::set_limit as fn(&mut LinuxMemory, Option<i64>) -> &mut LinuxMemory,
        ),
        (size(&o.memory_swap)?, LinuxMemory::set_swap),
        (size(&o.memory_reservation)?, LinuxMemory::set_reservation),
        (size(&o.kernel_memory)?, LinuxMemory::set_kernel),
        (size(&o.kernel_memory_tcp)?, LinuxMemory::set_kernel_tcp),
    ];
    if mem_flags.iter().any(|(v, _)| v.is_some()) {
        for (v, set) in mem_flags {
            if v.is_some() {
                set(&mut mem, v);
            }
        }
        r.set_memory(Some(mem));
    }

    let cpu_flags = o.cpu_shares.is_some()
        || o.cpu_quota.is_some()
        || o.cpu_period.is_some()
        || o.cpu_rt_period.is_some()
        || o.cpu_rt_runtime.is_some()
        || o.cpu_burst.is_some()
        || o.cpu_idle.is_some()
        || o.cpuset_cpus.is_some()
        || o.cpuset_mems.is_some();
    if cpu_flags {
        let mut cpu: LinuxCpu = r.cpu().clone().unwrap_or_default();
        if o.cpu_shares.is_some() {
            cpu.set_shares(o.cpu_shares);
        }
        if o.cpu_quota.is_some() {
            cpu.set_quota(o.cpu_quota);
        }
        if o.cpu_period.is_some() {
            cpu.set_period(o.cpu_period);
        }
        if o.cpu_rt_period.is_some() {
            cpu.set_realtime_period(o.cpu_rt_period);
        }
        if o.cpu_rt_runtime.is_some() {
            cpu.set_realtime_runtime(o.cpu_rt_runtime);
        }
        if o.cpu_burst.is_some() {
            cpu.set_burst(o.cpu_burst);
        }
        if o.cpu_idle.is_some() {
            cpu.set_idle(o.cpu_idle);
        }
        if o.cpuset_cpus.is_some() {
            cpu.set_cpus(o.cpuset_cpus.clone());
        }
        if o.cpuset_mems.is_some() {
            cpu.set_mems(o.cpuset_mems.clone());
        }
        r.set_cpu(Some(cpu));
    }
    if let Some(v) = o.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(v);
        r.set_pids(Some(p));
    }
    if let Some(v) = o.blkio_weight {
        let mut b: LinuxBlockIo = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(v));
        r.set_block_io(Some(b));
    }
    Ok(r)
}
