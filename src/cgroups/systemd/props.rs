//! `linux.resources` and `org.systemd.property.*` annotations as systemd
//! unit properties, translated as runc's systemd driver does
//! (libcontainer/cgroups/systemd/v2.go and devices/systemd.go). Pure: the
//! D-Bus encoding is in [`super::dbus`].

use std::collections::HashMap;

use oci_spec::runtime::LinuxResources;

use super::super::convert::{shares_to_weight, swap_to_v2};
use super::super::devices::{Rule, allows_all};
use super::super::{CgroupError, fs::parse_u64};

/// systemd's "infinity" for limits and for `CPUQuotaPerSecUSec`.
pub const INFINITY: u64 = u64::MAX;

/// runc's default CFS period when a quota is given without one (µs).
const DEFAULT_PERIOD: u64 = 100_000;

/// The annotation prefix that passes a property through to the unit.
const ANNOTATION_PREFIX: &str = "org.systemd.property.";

/// One unit property value, as D-Bus types it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    U64(u64),
    U32(u32),
    I64(i64),
    I32(i32),
    F64(f64),
    Str(String),
    /// `ay`: `AllowedCPUs`, `AllowedMemoryNodes`.
    Bytes(Vec<u8>),
    /// `au`: `PIDs`.
    U32s(Vec<u32>),
    /// `a(ss)`: `DeviceAllow` (path or group, access).
    Pairs(Vec<(String, String)>),
}

/// A named unit property.
#[derive(Debug, Clone, PartialEq)]
pub struct Prop {
    pub name: String,
    pub value: Value,
}

fn prop(name: &str, value: Value) -> Prop {
    Prop {
        name: name.into(),
        value,
    }
}

/// A spec byte count as systemd's: -1 is infinity, 0 unset.
fn bytes(v: i64) -> Option<u64> {
    match v {
        0 => None,
        -1 => Some(INFINITY),
        v => u64::try_from(v).ok(),
    }
}

/// The resource properties of `r` for a systemd of version `version`.
pub fn resources(r: &LinuxResources, version: u32) -> Result<Vec<Prop>, CgroupError> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        let limit = m.limit().unwrap_or(0);
        if let Some(v) = bytes(limit) {
            out.push(prop("MemoryMax", Value::U64(v)));
        }
        if let Some(v) = m.reservation().and_then(bytes) {
            out.push(prop("MemoryLow", Value::U64(v)));
        }
        let swap = swap_to_v2(m.swap().unwrap_or(0), limit)?;
        if let Some(v) = bytes(swap) {
            out.push(prop("MemorySwapMax", Value::U64(v)));
        }
    }
    if let Some(c) = r.cpu() {
        let weight = shares_to_weight(c.shares().unwrap_or(0));
        if weight != 0 {
            out.push(prop("CPUWeight", Value::U64(weight)));
        }
        cpu_quota(
            &mut out,
            c.quota().unwrap_or(0),
            c.period().unwrap_or(0),
            version,
        );
        if version >= 244 {
            if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
                out.push(prop("AllowedCPUs", Value::Bytes(range_to_bits(cpus)?)));
            }
            if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
                out.push(prop(
                    "AllowedMemoryNodes",
                    Value::Bytes(range_to_bits(mems)?),
                ));
            }
        }
    }
    if let Some(p) = r.pids() {
        match p.limit() {
            ..-1 => {}
            1.. => out.push(prop("TasksMax", Value::U64(p.limit() as u64))),
            _ => out.push(prop("TasksMax", Value::U64(INFINITY))),
        }
    }
    if let Some(u) = r.unified() {
        unified(&mut out, u, version)?;
    }
    Ok(out)
}

/// runc's addCpuQuota: `CPUQuotaPeriodUSec` (systemd 242+) and
/// `CPUQuotaPerSecUSec`, rounded up to whole percents of a CPU as systemd
/// keeps it (runc writes the exact value to `cpu.max` afterwards).
fn cpu_quota(out: &mut Vec<Prop>, quota: i64, period: u64, version: u32) {
    if period != 0 && version >= 242 {
        out.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
    }
    if quota == 0 && period == 0 {
        return;
    }
    let mut per_sec = INFINITY;
    if quota > 0 {
        let period = if period == 0 { DEFAULT_PERIOD } else { period };
        per_sec = (quota as u64).saturating_mul(1_000_000) / period;
        if !per_sec.is_multiple_of(10_000) {
            per_sec = (per_sec / 10_000 + 1) * 10_000;
        }
    }
    out.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
}

/// `linux.resources.unified` keys systemd has properties for (runc's
/// unifiedResToSystemdProps); the others are only written to the files.
fn unified(
    out: &mut Vec<Prop>,
    u: &HashMap<String, String>,
    version: u32,
) -> Result<(), CgroupError> {
    let mut keys: Vec<&String> = u.keys().collect();
    keys.sort();
    for key in keys {
        let raw = u[key].trim();
        let limit = || -> Result<u64, CgroupError> {
            if raw == "max" {
                return Ok(INFINITY);
            }
            parse_u64(raw).ok_or_else(|| CgroupError::invalid("unified value", raw, "not a number"))
        };
        match key.as_str() {
            "memory.min" => out.push(prop("MemoryMin", Value::U64(limit()?))),
            "memory.low" => out.push(prop("MemoryLow", Value::U64(limit()?))),
            "memory.high" => out.push(prop("MemoryHigh", Value::U64(limit()?))),
            "memory.max" => out.push(prop("MemoryMax", Value::U64(limit()?))),
            "memory.swap.max" => out.push(prop("MemorySwapMax", Value::U64(limit()?))),
            "pids.max" => out.push(prop("TasksMax", Value::U64(limit()?))),
            "cpu.weight" => out.push(prop("CPUWeight", Value::U64(limit()?))),
            "cpu.max" => {
                let mut f = raw.split_whitespace();
                let quota = match f.next() {
                    Some("max") | None => -1,
                    Some(q) => q
                        .parse()
                        .map_err(|_| CgroupError::invalid("cpu.max", raw, "not a quota"))?,
                };
                let period = match f.next() {
                    Some(p) => p
                        .parse()
                        .map_err(|_| CgroupError::invalid("cpu.max", raw, "not a period"))?,
                    None => 0,
                };
                cpu_quota(out, quota, period, version);
            }
            _ => {}
        }
    }
    Ok(())
}

/// A cpu or memory node list (`0-3,5`) as systemd's bitmask: byte `i`
/// holds entries `8i..8i+7`, lowest bit first.
pub fn range_to_bits(list: &str) -> Result<Vec<u8>, CgroupError> {
    let bad = || CgroupError::invalid("cpuset", list, "expected a list like 0-3,5");
    let mut bits: Vec<u8> = Vec::new();
    for part in list
        .trim()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let lo: usize = lo.parse().map_err(|_| bad())?;
        let hi: usize = hi.parse().map_err(|_| bad())?;
        if lo > hi || hi >= 1 << 16 {
            return Err(bad());
        }
        for n in lo..=hi {
            if bits.len() <= n / 8 {
                bits.resize(n / 8 + 1, 0);
            }
            bits[n / 8] |= 1 << (n % 8);
        }
    }
    if bits.is_empty() {
        return Err(bad());
    }
    Ok(bits)
}

/// runc's device properties: `DevicePolicy=auto` with no list when the
/// rules allow everything, else `strict` (no implicit /dev/null...) with a
/// `DeviceAllow` entry per allow rule after the last all-devices rule that
/// no later deny rule could overlap (systemd has no deny entries; ferry's
/// own device program, installed afterwards, enforces the exact list).
/// `group` names a character or block major (`/proc/devices`).
pub fn devices(rules: &[Rule], group: impl Fn(char, u32) -> Option<String>) -> Vec<Prop> {
    if allows_all(rules) {
        return vec![
            prop("DevicePolicy", Value::Str("auto".into())),
            prop("DeviceAllow", Value::Pairs(Vec::new())),
        ];
    }
    let start = rules
        .iter()
        .rposition(|r| r.kind == 'a')
        .map_or(0, |i| i + 1);
    let tail = &rules[start..];
    let mut allow = Vec::new();
    for (i, r) in tail.iter().enumerate() {
        if !r.allow || tail[i + 1..].iter().any(|d| !d.allow && overlaps(r, d)) {
            continue;
        }
        let kind = if r.kind == 'b' { "block" } else { "char" };
        let path = match (r.major, r.minor) {
            (None, _) => format!("{kind}-*"),
            (Some(major), None) => match group(r.kind, major) {
                Some(name) => format!("{kind}-{name}"),
                None => {
                    log::debug!("device major {major} has no group name: not passed to systemd");
                    continue;
                }
            },
            (Some(major), Some(minor)) => format!("/dev/{kind}/{major}:{minor}"),
        };
        allow.push((path, r.access.clone()));
    }
    vec![
        prop("DevicePolicy", Value::Str("strict".into())),
        prop("DeviceAllow", Value::Pairs(allow)),
    ]
}

/// Whether two rules of the list could match the same device.
fn overlaps(a: &Rule, b: &Rule) -> bool {
    let same = |x: Option<u32>, y: Option<u32>| x.is_none() || y.is_none() || x == y;
    a.kind == b.kind && same(a.major, b.major) && same(a.minor, b.minor)
}

/// The group names of `/proc/devices` (its text given).
pub fn device_group(proc_devices: &str, kind: char, major: u32) -> Option<String> {
    let section = if kind == 'b' {
        "Block devices:"
    } else {
        "Character devices:"
    };
    proc_devices
        .lines()
        .skip_while(|l| l.trim() != section)
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (num, name) = l.trim().split_once(' ')?;
            (num.parse::<u32>().ok()? == major).then(|| name.trim().to_string())
        })
}

/// `org.systemd.property.NAME` annotations as properties, values in
/// GVariant text form as runc reads them (`'text'`, `true`, `uint64 42`,
/// a plain integer as `int32`...); `NameSec` (seconds) becomes `NameUSec`.
pub fn annotations<'a>(
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<Prop>, CgroupError> {
    let mut out = Vec::new();
    let mut list: Vec<(&String, &String)> = annotations
        .into_iter()
        .filter(|(k, _)| k.starts_with(ANNOTATION_PREFIX))
        .collect();
    list.sort();
    for (key, raw) in list {
        let name = &key[ANNOTATION_PREFIX.len()..];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(CgroupError::invalid(
                "systemd property annotation",
                key,
                "expected org.systemd.property.Name",
            ));
        }
        let value = parse_variant(raw).ok_or_else(|| {
            CgroupError::invalid(
                "systemd property annotation",
                format!("{key}={raw}"),
                "expected a GVariant value such as 'text', true or uint64 42",
            )
        })?;
        out.push(sec_to_usec(name, value)?);
    }
    Ok(out)
}

/// runc's rule: a `...Sec` property (not `...USec`) takes seconds, sent as
/// the `...USec` property systemd's D-Bus API has.
fn sec_to_usec(name: &str, value: Value) -> Result<Prop, CgroupError> {
    let Some(base) = name.strip_suffix("Sec").filter(|_| !name.ends_with("USec")) else {
        return Ok(prop(name, value));
    };
    let secs = match value {
        Value::U64(v) => v as f64,
        Value::U32(v) => f64::from(v),
        Value::I64(v) if v >= 0 => v as f64,
        Value::I32(v) if v >= 0 => f64::from(v),
        Value::F64(v) if v >= 0.0 && v.is_finite() => v,
        _ => {
            return Err(CgroupError::invalid(
                "systemd property annotation",
                name,
                "a ...Sec property takes a non-negative number of seconds",
            ));
        }
    };
    Ok(prop(
        &format!("{base}USec"),
        Value::U64((secs * 1_000_000.0) as u64),
    ))
}

/// The GVariant text forms runc's annotations use.
fn parse_variant(raw: &str) -> Option<Value> {
    let s = raw.trim();
    if s.len() >= 2
        && ((s.starts_with('\'') && s.ends_with('\'')) || (s.starts_with('"') && s.ends_with('"')))
    {
        return Some(Value::Str(s[1..s.len() - 1].to_string()));
    }
    match s {
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        _ => {}
    }
    if let Some((ty, num)) = s.split_once(' ') {
        let num = num.trim();
        return match ty {
            "uint64" => num.parse().ok().map(Value::U64),
            "uint32" => num.parse().ok().map(Value::U32),
            "int64" => num.parse().ok().map(Value::I64),
            "int32" => num.parse().ok().map(Value::I32),
            "double" => num.parse().ok().map(Value::F64),
            _ => None,
        };
    }
    if let Ok(v) = s.parse::<i32>() {
        return Some(Value::I32(v));
    }
    if let Ok(v) = s.parse::<i64>() {
        return Some(Value::I64(v));
    }
    if s.contains('.') {
        return s.parse().ok().map(Value::F64);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: serde_json::Value) -> LinuxResources {
        serde_json::from_value(json).unwrap()
    }

    fn find<'a>(props: &'a [Prop], name: &str) -> Option<&'a Value> {
        props.iter().find(|p| p.name == name).map(|p| &p.value)
    }

    #[test]
    fn memory_limits_as_runc() {
        let p = resources(
            &res(serde_json::json!({"memory": {"limit": 67108864, "reservation": 1048576, "swap": 134217728}})),
            252,
        )
        .unwrap();
        assert_eq!(find(&p, "MemoryMax"), Some(&Value::U64(64 << 20)));
        assert_eq!(find(&p, "MemoryLow"), Some(&Value::U64(1 << 20)));
        assert_eq!(find(&p, "MemorySwapMax"), Some(&Value::U64(64 << 20)));
        let p = resources(&res(serde_json::json!({"memory": {"limit": -1}})), 252).unwrap();
        assert_eq!(find(&p, "MemoryMax"), Some(&Value::U64(INFINITY)));
        assert_eq!(find(&p, "MemorySwapMax"), Some(&Value::U64(INFINITY)));
        assert!(
            resources(
                &res(serde_json::json!({"memory": {"limit": 100, "swap": 50}})),
                252
            )
            .is_err()
        );
    }

    #[test]
    fn cpu_weight_quota_and_sets() {
        let p = resources(
            &res(serde_json::json!({"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-2,9", "mems": "0"}})),
            252,
        )
        .unwrap();
        assert_eq!(find(&p, "CPUWeight"), Some(&Value::U64(100)));
        assert_eq!(find(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(find(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(
            find(&p, "AllowedCPUs"),
            Some(&Value::Bytes(vec![0b111, 0b10]))
        );
        assert_eq!(find(&p, "AllowedMemoryNodes"), Some(&Value::Bytes(vec![1])));
        // A fraction of a percent is rounded up; no period: runc's default.
        let p = resources(&res(serde_json::json!({"cpu": {"quota": 12345}})), 252).unwrap();
        assert_eq!(find(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(130_000)));
        assert_eq!(find(&p, "CPUQuotaPeriodUSec"), None);
        // Old systemd: no period property, no cpusets.
        let p = resources(
            &res(serde_json::json!({"cpu": {"period": 20000, "cpus": "1"}})),
            241,
        )
        .unwrap();
        assert_eq!(find(&p, "CPUQuotaPeriodUSec"), None);
        assert_eq!(find(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(INFINITY)));
        assert_eq!(find(&p, "AllowedCPUs"), None);
    }

    #[test]
    fn tasks_max_and_unified() {
        let p = resources(&res(serde_json::json!({"pids": {"limit": 32}})), 252).unwrap();
        assert_eq!(find(&p, "TasksMax"), Some(&Value::U64(32)));
        let p = resources(&res(serde_json::json!({"pids": {"limit": -1}})), 252).unwrap();
        assert_eq!(find(&p, "TasksMax"), Some(&Value::U64(INFINITY)));
        let p = resources(
            &res(serde_json::json!({"unified": {"memory.high": "1000000", "memory.max": "max", "cpu.max": "20000 50000", "io.weight": "50"}})),
            252,
        )
        .unwrap();
        assert_eq!(find(&p, "MemoryHigh"), Some(&Value::U64(1_000_000)));
        assert_eq!(find(&p, "MemoryMax"), Some(&Value::U64(INFINITY)));
        assert_eq!(find(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(400_000)));
        assert_eq!(find(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(50_000)));
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn cpu_lists_to_bits() {
        assert_eq!(range_to_bits("0").unwrap(), vec![1]);
        assert_eq!(range_to_bits("0-7,8").unwrap(), vec![0xff, 1]);
        assert_eq!(range_to_bits(" 3 , 17-18 ").unwrap(), vec![8, 0, 6]);
        for bad in ["", "x", "3-1", "1-", "70000"] {
            assert!(range_to_bits(bad).is_err(), "{bad}");
        }
    }

    fn rule(allow: bool, kind: char, major: Option<u32>, minor: Option<u32>, access: &str) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    #[test]
    fn devices_as_runc() {
        let none = |_: char, _: u32| None;
        let all = devices(&[rule(true, 'a', None, None, "rwm")], none);
        assert_eq!(find(&all, "DevicePolicy"), Some(&Value::Str("auto".into())));
        assert_eq!(find(&all, "DeviceAllow"), Some(&Value::Pairs(vec![])));
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', None, None, "m"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'c', Some(136), None, "rwm"),
            rule(true, 'b', Some(8), Some(0), "r"),
            rule(false, 'b', Some(8), None, "r"),
        ];
        let pts = |k: char, m: u32| (k == 'c' && m == 136).then(|| "pts".to_string());
        let p = devices(&rules, pts);
        assert_eq!(find(&p, "DevicePolicy"), Some(&Value::Str("strict".into())));
        let want = vec![
            ("char-*".to_string(), "m".to_string()),
            ("/dev/char/1:3".to_string(), "rwm".to_string()),
            ("char-pts".to_string(), "rwm".to_string()),
        ];
        assert_eq!(find(&p, "DeviceAllow"), Some(&Value::Pairs(want)));
    }

    #[test]
    fn proc_devices_groups() {
        let text = "Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n";
        assert_eq!(device_group(text, 'c', 136).as_deref(), Some("pts"));
        assert_eq!(device_group(text, 'b', 8).as_deref(), Some("sd"));
        assert_eq!(device_group(text, 'b', 1), None);
    }

    #[test]
    fn annotations_pass_through() {
        let a: HashMap<String, String> = [
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("org.systemd.property.TimeoutStopSec", "uint64 3"),
            ("org.systemd.property.CPUSchedulingResetOnFork", "true"),
            ("org.systemd.property.Nice", "5"),
            ("other.annotation", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = annotations(&a).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(
            find(&p, "CollectMode"),
            Some(&Value::Str("inactive-or-failed".into()))
        );
        assert_eq!(find(&p, "TimeoutStopUSec"), Some(&Value::U64(3_000_000)));
        assert_eq!(
            find(&p, "CPUSchedulingResetOnFork"),
            Some(&Value::Bool(true))
        );
        assert_eq!(find(&p, "Nice"), Some(&Value::I32(5)));
        for (k, v) in [
            ("org.systemd.property.", "1"),
            ("org.systemd.property.Bad-Name", "1"),
            ("org.systemd.property.X", "nonsense"),
            ("org.systemd.property.RestartSec", "'x'"),
        ] {
            let a: HashMap<String, String> = [(k.to_string(), v.to_string())].into();
            assert!(annotations(&a).is_err(), "{k}={v}");
        }
    }
}
