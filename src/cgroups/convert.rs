//! Pure conversions of spec values to cgroup file values, as runc does them,
//! and the checks of values both `v1` and `v2` write.

use oci_spec::runtime::LinuxResources;

use super::CgroupError;

/// v1 `cpu.shares` to v2 `cpu.weight`: the non-linear mapping of runc 1.3+
/// and crun 1.23+ that keeps the defaults aligned (1024 → 100) and maps the
/// ends of the ranges onto each other (2 → 1, 262144 → 10000). 0 = unset.
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        s => {
            let l = (s as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
        }
    }
}

/// v1 `blkio.weight` (10..1000) to v2 `io.weight` (1..10000). 0 = unset.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// The spec's `memory.swap` (memory + swap, as v1's memsw) to v2's
/// `memory.swap.max` (swap alone). -1 = unlimited, 0 = unset.
pub fn swap_to_v2(swap: i64, limit: i64) -> Result<i64, CgroupError> {
    if limit == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if limit == 0 || limit == -1 {
        return Err(CgroupError::invalid(
            "memory.swap",
            swap,
            "a swap limit needs a memory limit",
        ));
    }
    if swap < limit {
        return Err(CgroupError::invalid(
            "memory.swap",
            swap,
            format!("memory+swap must be at least the memory limit {limit}"),
        ));
    }
    Ok(swap - limit)
}

/// A byte count: -1 (unlimited) or >= 0.
pub fn check_bytes(field: &'static str, v: i64) -> Result<i64, CgroupError> {
    if v < -1 {
        return Err(CgroupError::invalid(
            field,
            v,
            "must be -1 (unlimited) or at least 0",
        ));
    }
    Ok(v)
}

/// `pids.max` (both versions) from `pids.limit`: 0 and -1 are "max".
pub fn pids_max(limit: i64) -> Result<String, CgroupError> {
    match limit {
        ..-1 => Err(CgroupError::invalid(
            "pids.limit",
            limit,
            "must be -1 (unlimited) or more",
        )),
        1.. => Ok(limit.to_string()),
        _ => Ok("max".into()),
    }
}

/// v2 spelling of a limit: -1 is "max".
pub fn v2_limit(v: i64) -> String {
    if v == -1 { "max".into() } else { v.to_string() }
}

/// v2 `cpu.max` from quota and period (0 = unset), as runc writes it: a
/// missing period keeps the current one. `None` when neither is set.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let (q, p) = (quota.unwrap_or(0), period.unwrap_or(0));
    if q == 0 && p == 0 {
        return None;
    }
    let q = if q > 0 { q.to_string() } else { "max".into() };
    Some(if p == 0 { q } else { format!("{q} {p}") })
}

/// runc's `update` sizes: a number with an optional binary unit
/// (`512`, `64k`, `1.5g`, `2MiB`); `-1` is unlimited.
pub fn parse_size(s: &str) -> Result<i64, CgroupError> {
    let bad = || {
        CgroupError::invalid(
            "size",
            s,
            "expected a number with an optional unit (k, m, g, t)",
        )
    };
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0f64.powi(3),
        "t" => 1024.0f64.powi(4),
        "p" => 1024.0f64.powi(5),
        _ => return Err(bad()),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let v = n * mult;
    if !v.is_finite() || v > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(v as i64)
}

/// Controllers a `unified` key may name.
pub const V2_CONTROLLERS: &[&str] = &[
    "cgroup", "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc",
];

/// `MAJOR:MINOR` of a block device rule.
pub fn dev_numbers(major: i64, minor: i64) -> Result<String, CgroupError> {
    if major < 0 || minor < 0 {
        return Err(CgroupError::invalid(
            "block device",
            format!("{major}:{minor}"),
            "major and minor must not be negative",
        ));
    }
    Ok(format!("{major}:{minor}"))
}

/// A hugepage size as the kernel names its files (`2MB`, `1GB`, `64KB`).
pub fn check_page_size(size: &str) -> Result<&str, CgroupError> {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &size[digits.len()..];
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || !matches!(unit, "KB" | "MB" | "GB")
    {
        return Err(CgroupError::invalid(
            "hugepage size",
            format!("{size:?}"),
            "use e.g. 2MB or 1GB",
        ));
    }
    Ok(size)
}

/// `rdma.max` lines: `DEVICE hca_handle=N hca_object=M`.
pub fn rdma_lines(r: &LinuxResources) -> Vec<String> {
    let mut out: Vec<String> = r
        .rdma()
        .iter()
        .flatten()
        .map(|(dev, l)| {
            let mut line = dev.clone();
            if let Some(h) = l.hca_handles() {
                line.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = l.hca_objects() {
                line.push_str(&format!(" hca_object={o}"));
            }
            line
        })
        .collect();
    out.sort();
    out
}

/// A `unified` key: `CONTROLLER.FILE`, a known controller, no path tricks.
/// Returns the controller.
pub fn check_unified_key(key: &str) -> Result<&str, CgroupError> {
    let bad = |reason: String| CgroupError::invalid("unified key", format!("{key:?}"), reason);
    if key.contains('/') || key.starts_with('.') {
        return Err(bad("must be a file name".into()));
    }
    let Some((ctrl, rest)) = key.split_once('.') else {
        return Err(bad("expected CONTROLLER.FILE".into()));
    };
    if rest.is_empty() {
        return Err(bad("expected CONTROLLER.FILE".into()));
    }
    if !V2_CONTROLLERS.contains(&ctrl) {
        return Err(bad(format!("unknown controller {ctrl:?}")));
    }
    Ok(ctrl)
}

/// A `blockIO` weight: 10 to 1000, as the runtime spec allows.
pub fn check_weight(field: &'static str, w: u16) -> Result<(), CgroupError> {
    if !(10..=1000).contains(&w) {
        return Err(CgroupError::invalid(field, w, "must be 10 to 1000"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_map_to_weight_like_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1 << 20), 10_000);
        let mut last = 0;
        for s in [3, 10, 100, 512, 1024, 2048, 10_000, 100_000, 262_143] {
            let w = shares_to_weight(s);
            assert!(w >= last && (1..=10_000).contains(&w), "{s} -> {w}");
            last = w;
        }
    }

    #[test]
    fn pids_limit_zero_and_minus_one_are_max() {
        assert_eq!(pids_max(-1).unwrap(), "max");
        assert_eq!(pids_max(0).unwrap(), "max");
        assert_eq!(pids_max(32).unwrap(), "32");
        assert!(pids_max(-2).is_err());
    }

    #[test]
    fn blkio_weight_maps_to_io_weight() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 1 + 490 * 9999 / 990);
    }

    #[test]
    fn swap_is_memsw_minus_limit() {
        assert_eq!(swap_to_v2(0, -1).unwrap(), -1);
        assert_eq!(swap_to_v2(-1, 100).unwrap(), -1);
        assert_eq!(swap_to_v2(0, 100).unwrap(), 0);
        assert_eq!(swap_to_v2(300, 100).unwrap(), 200);
        assert_eq!(swap_to_v2(100, 100).unwrap(), 0);
        assert!(swap_to_v2(50, 100).is_err());
        assert!(swap_to_v2(50, 0).is_err());
    }

    #[test]
    fn cpu_max_defaults_the_period() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(cpu_max(Some(50_000), None).unwrap(), "50000");
        assert_eq!(
            cpu_max(Some(50_000), Some(100_000)).unwrap(),
            "50000 100000"
        );
        assert_eq!(cpu_max(Some(-1), Some(20_000)).unwrap(), "max 20000");
        assert_eq!(cpu_max(None, Some(20_000)).unwrap(), "max 20000");
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64k").unwrap(), 65_536);
        assert_eq!(parse_size("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("-1").unwrap(), -1);
        for bad in ["", "x", "-5", "1q", "1..2m"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bytes_below_minus_one_are_rejected() {
        assert!(check_bytes("memory.limit", -2).is_err());
        assert_eq!(check_bytes("memory.limit", -1).unwrap(), -1);
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(4096), "4096");
    }

    #[test]
    fn unified_keys_are_checked() {
        assert_eq!(check_unified_key("memory.high").unwrap(), "memory");
        assert_eq!(check_unified_key("cgroup.max.depth").unwrap(), "cgroup");
        let e = check_unified_key("foo.bar").unwrap_err().to_string();
        assert!(e.contains("unknown controller \"foo\""), "{e}");
        assert!(check_unified_key("../memory.max").is_err());
        assert!(check_unified_key("memory").is_err());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(check_page_size("2MB").unwrap(), "2MB");
        assert!(check_page_size("2M").is_err());
        assert!(check_page_size("MB").is_err());
    }
}
