//! Resource usage of a container's cgroup, shaped like runc's `events`
//! stats (`types.Stats`): cpu, memory, pids, blkio, hugetlb, cpuset.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::CgroupState;
use super::fs::{self, read_keyed};

/// USER_HZ: cpuacct.stat counts in clock ticks.
const TICKS_PER_SEC: u64 = 100;

/// The stats object (`data` of a stats event).
pub fn collect(state: &CgroupState) -> Value {
    let mut out = if state.v2 {
        state.dir("").map(v2).unwrap_or_else(|| json!({}))
    } else {
        v1(state)
    };
    out["intel_rdt"] = json!({});
    out["network_interfaces"] = Value::Null;
    out
}

fn num(dir: &Path, file: &str) -> u64 {
    fs::read_u64(dir, file).unwrap_or(0)
}

/// "max"/unlimited reads as 0 in runc's pids limit; keep byte limits raw.
fn limit(dir: &Path, file: &str) -> u64 {
    fs::read_u64(dir, file).unwrap_or(0)
}

fn list(dir: &Path, file: &str) -> Vec<u64> {
    fs::read(dir, file)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

fn keyed(dir: &Path, file: &str) -> Map<String, Value> {
    read_keyed(dir, file)
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect()
}

fn entry(dir: &Path, prefix: &str) -> Value {
    json!({
        "limit": limit(dir, &format!("{prefix}.limit_in_bytes")),
        "usage": num(dir, &format!("{prefix}.usage_in_bytes")),
        "max": num(dir, &format!("{prefix}.max_usage_in_bytes")),
        "failcnt": num(dir, &format!("{prefix}.failcnt")),
    })
}

/// A cpuset list ("0-2,4") as numbers.
fn cpuset_list(s: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
                    out.extend(a..=b.min(a + 4096));
                }
            }
            None => out.extend(part.parse::<u64>().ok()),
        }
    }
    out
}

fn v1(state: &CgroupState) -> Value {
    let mut out = json!({});
    if let Some(dir) = state.dir("cpuacct") {
        let st = read_keyed(dir, "cpuacct.stat");
        let ticks = |k: &str| {
            st.iter()
                .find(|(n, _)| n == k)
                .map_or(0, |(_, v)| v * (1_000_000_000 / TICKS_PER_SEC))
        };
        out["cpu"]["usage"] = json!({
            "total": num(dir, "cpuacct.usage"),
            "percpu": list(dir, "cpuacct.usage_percpu"),
            "percpu_kernel": list(dir, "cpuacct.usage_percpu_sys"),
            "percpu_user": list(dir, "cpuacct.usage_percpu_user"),
            "kernel": ticks("system"),
            "user": ticks("user"),
        });
    }
    if let Some(dir) = state.dir("cpu") {
        let st = read_keyed(dir, "cpu.stat");
        let get = |k: &str| st.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
        out["cpu"]["throttling"] = json!({
            "periods": get("nr_periods"),
            "throttled_periods": get("nr_throttled"),
            "throttled_time": get("throttled_time"),
        });
    }
    if let Some(dir) = state.dir("cpuset") {
        out["cpuset"] = json!({
            "cpus": cpuset_list(&fs::read(dir, "cpuset.cpus").unwrap_or_default()),
            "mems": cpuset_list(&fs::read(dir, "cpuset.mems").unwrap_or_default()),
        });
    }
    if let Some(dir) = state.dir("memory") {
        let raw = keyed(dir, "memory.stat");
        let cache = raw
            .get("total_cache")
            .or(raw.get("cache"))
            .cloned()
            .unwrap_or(json!(0));
        out["memory"] = json!({
            "cache": cache,
            "usage": entry(dir, "memory"),
            "swap": entry(dir, "memory.memsw"),
            "kernel": entry(dir, "memory.kmem"),
            "kernelTCP": entry(dir, "memory.kmem.tcp"),
            "use_hierarchy": num(dir, "memory.use_hierarchy") == 1,
            "raw": raw,
        });
    }
    if let Some(dir) = state.dir("pids") {
        out["pids"] = pids(dir);
    }
    if let Some(dir) = state.dir("blkio") {
        out["blkio"] = json!({
            "ioServiceBytesRecursive": blkio_entries(dir, "blkio.throttle.io_service_bytes_recursive"),
            "ioServicedRecursive": blkio_entries(dir, "blkio.throttle.io_serviced_recursive"),
        });
    }
    if let Some(dir) = state.dir("hugetlb") {
        let mut h = Map::new();
        for size in hugepage_sizes(dir, ".limit_in_bytes") {
            h.insert(
                size.clone(),
                json!({
                    "usage": num(dir, &format!("hugetlb.{size}.usage_in_bytes")),
                    "max": num(dir, &format!("hugetlb.{size}.max_usage_in_bytes")),
                    "failcnt": num(dir, &format!("hugetlb.{size}.failcnt")),
                }),
            );
        }
        out["hugetlb"] = Value::Object(h);
    }
    out
}

fn pids(dir: &Path) -> Value {
    let max = fs::read_u64(dir, "pids.max").unwrap_or(u64::MAX);
    json!({
        "current": num(dir, "pids.current"),
        "limit": if max == u64::MAX { 0 } else { max },
    })
}

/// `MAJ:MIN Op Value` lines (the "Total" line has no device).
fn blkio_entries(dir: &Path, file: &str) -> Vec<Value> {
    fs::read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (maj, min) = it.next()?.split_once(':')?;
            let op = it.next()?;
            let value: u64 = it.next()?.parse().ok()?;
            Some(json!({
                "major": maj.parse::<u64>().ok()?,
                "minor": min.parse::<u64>().ok()?,
                "op": op,
                "value": value,
            }))
        })
        .collect()
}

fn hugepage_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let mut sizes: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some(
                name.strip_prefix("hugetlb.")?
                    .strip_suffix(suffix)?
                    .to_string(),
            )
        })
        .collect();
    sizes.sort();
    sizes
}

fn v2(dir: &Path) -> Value {
    let mut out = json!({});
    let cpu = read_keyed(dir, "cpu.stat");
    let get = |k: &str| cpu.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
    out["cpu"] = json!({
        "usage": {
            "total": get("usage_usec") * 1000,
            "kernel": get("system_usec") * 1000,
            "user": get("user_usec") * 1000,
        },
        "throttling": {
            "periods": get("nr_periods"),
            "throttled_periods": get("nr_throttled"),
            "throttled_time": get("throttled_usec") * 1000,
        },
    });
    if dir.join("memory.current").exists() {
        let raw = keyed(dir, "memory.stat");
        let events = read_keyed(dir, "memory.events");
        let failcnt = events
            .iter()
            .find(|(k, _)| k == "max")
            .map_or(0, |(_, v)| *v);
        let usage = num(dir, "memory.current");
        let swap = num(dir, "memory.swap.current");
        out["memory"] = json!({
            "cache": raw.get("file").cloned().unwrap_or(json!(0)),
            "usage": {
                "limit": limit(dir, "memory.max"),
                "usage": usage,
                "max": num(dir, "memory.peak"),
                "failcnt": failcnt,
            },
            "swap": {
                "limit": limit(dir, "memory.swap.max"),
                "usage": usage + swap,
            },
            "use_hierarchy": true,
            "raw": raw,
        });
    }
    if dir.join("pids.current").exists() {
        out["pids"] = pids(dir);
    }
    if dir.join("io.stat").exists() {
        let mut bytes = Vec::new();
        let mut ios = Vec::new();
        for line in fs::read(dir, "io.stat").unwrap_or_default().lines() {
            let mut it = line.split_whitespace();
            let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (Ok(major), Ok(minor)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
                continue;
            };
            for kv in it {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let v: u64 = v.parse().unwrap_or(0);
                let e = |op: &str| json!({"major": major, "minor": minor, "op": op, "value": v});
                match k {
                    "rbytes" => bytes.push(e("Read")),
                    "wbytes" => bytes.push(e("Write")),
                    "rios" => ios.push(e("Read")),
                    "wios" => ios.push(e("Write")),
                    _ => {}
                }
            }
        }
        out["blkio"] = json!({"ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios});
    }
    let sizes = hugepage_sizes(dir, ".current");
    if !sizes.is_empty() {
        let mut h = Map::new();
        for size in sizes {
            let ev = read_keyed(dir, &format!("hugetlb.{size}.events"));
            h.insert(
                size.clone(),
                json!({
                    "usage": num(dir, &format!("hugetlb.{size}.current")),
                    "failcnt": ev.iter().find(|(k, _)| k == "max").map_or(0, |(_, v)| *v),
                }),
            );
        }
        out["hugetlb"] = Value::Object(h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::cpuset_list;

    #[test]
    fn cpuset_lists_expand() {
        assert_eq!(cpuset_list("0-2,4\n"), [0, 1, 2, 4]);
        assert_eq!(cpuset_list(""), Vec::<u64>::new());
    }
}
