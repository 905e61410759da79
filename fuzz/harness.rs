//! What the fuzz targets (`fuzz/fuzz_targets/*.rs`, cargo-fuzz) and the
//! bounded property test (`tests/hostile_input.rs`, run by `make test`)
//! feed hostile bytes into: config.json parsing and every pure translation
//! of its parts, signal names, container ids, and the image layer tar
//! reader. Each function must return (an error is fine) without panicking
//! and without allocating without bound; none may make a syscall with a
//! lasting effect.
#![allow(dead_code)]

use std::io::Read;

/// config.json bytes: parse, then translate what parsed.
pub fn config(data: &[u8]) {
    let Ok(spec) = ferry::config::parse(data) else {
        return;
    };
    let _ = ferry::config::check_sysctls(&spec, |_| true);
    let _ = ferry::config::check_sysctls(&spec, |_| false);
    for m in spec.mounts().iter().flatten() {
        let opts =
            ferry::rootfs::options::MountOptions::parse(m.options().as_deref().unwrap_or_default());
        let _ = opts.data_string();
        let _ = opts.remount_flags();
        let _ = opts.is_bind();
    }
    if let Some(process) = spec.process() {
        let _ = ferry::capabilities::CapSets::from_spec(process.capabilities().as_ref());
    }
    if let Some(linux) = spec.linux() {
        if let Some(seccomp) = linux.seccomp() {
            let _ = ferry::seccomp::Filter::compile(seccomp);
        }
        // Namespace paths are opened by the plan: only pure lists here.
        if let Some(ns) = linux.namespaces()
            && ns.iter().all(|n| n.path().is_none())
        {
            let _ = ferry::namespaces::Namespaces::plan(ns);
        }
        if let Some(r) = linux.resources() {
            if let Some(cpu) = r.cpu()
                && let Some(shares) = cpu.shares()
            {
                let _ = ferry::cgroups::shares_to_weight(shares);
            }
            if let Some(mem) = r.memory()
                && let (Some(swap), Some(limit)) = (mem.swap(), mem.limit())
            {
                let _ = ferry::cgroups::swap_to_v2(swap, limit);
            }
            if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()) {
                let _ = ferry::cgroups::blkio_weight_to_io_weight(w);
            }
            for v in r.unified().iter().flat_map(|u| u.values()) {
                let _ = ferry::cgroups::parse_size(v);
            }
        }
    }
}

/// A short string: signal names, container ids, sizes, mount options.
pub fn strings(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let _ = ferry::signals::parse(&s);
    let _ = ferry::container::validate_id(&s);
    let _ = ferry::cgroups::parse_size(&s);
    let _ = ferry::image::digest::Digest::parse(&s);
    let _ = ferry::image::extract::clean(data);
    let opts: Vec<&str> = s.split(',').collect();
    let _ = ferry::rootfs::options::MountOptions::parse(&opts).data_string();
}

/// An image layer: read every entry and its data, clean every path.
pub fn tar(data: &[u8]) {
    let mut r = ferry::image::tar::Reader::new(data);
    // A hostile archive may hold many tiny entries; each costs a header.
    for _ in 0..100_000 {
        match r.next_entry() {
            Ok(Some(e)) => {
                let _ = ferry::image::extract::clean(&e.path);
                let _ = ferry::image::extract::clean(&e.link);
                let _ = std::io::copy(&mut r.data().take(1 << 24), &mut std::io::sink());
            }
            Ok(None) | Err(_) => return,
        }
    }
}
