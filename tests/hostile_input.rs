//! Hostile input, bounded: thousands of random and mutated config.json
//! documents, strings and tar archives through the functions of
//! `fuzz/harness.rs` (the same ones the cargo-fuzz targets call), from a
//! seeded xorshift PRNG so that a failure reproduces. No panic may escape,
//! and no single allocation may exceed 64 MiB (a length field taken on
//! trust would show up as one).
//!
//! `FERRY_FUZZ_ITERS` (default 20000 per target) and `FERRY_FUZZ_SEED` tune
//! a run; a failing input is written to `target/hostile-input/`.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// the largest single allocation
// ---------------------------------------------------------------------------

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);
const ALLOC_LIMIT: usize = 64 << 20;

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's layout contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's pointer and layout contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: the caller's pointer and layout contract is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

// ---------------------------------------------------------------------------
// PRNG and mutations
// ---------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// Tokens that break parsers: extremes, wrong types, paths, escapes.
const TOKENS: &[&str] = &[
    "-1",
    "0",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "1e999",
    "-0.0",
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "\"..\"",
    "\"../../../../etc\"",
    "\"/proc/self/fd/3\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"SCMP_ACT_KILL\"",
    "\"SCMP_ARCH_X86_64\"",
    "\"CAP_SYS_ADMIN\"",
    "\"RLIMIT_NOFILE\"",
    "\"rbind\"",
    "\"idmap\"",
    "\"ro\"",
    "\"uid=0\"",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}",
];

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(2)),
        2 => json!(rng.next() as i64 >> rng.below(64)),
        3 => json!(rng.next() >> rng.below(64)),
        4 => json!(rng.pick(TOKENS).trim_matches('"')),
        5 => {
            let n = rng.below(40);
            json!(
                (0..n)
                    .map(|_| (rng.below(95) as u8 + 32) as char)
                    .collect::<String>()
            )
        }
        6 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "type",
                "path",
                "options",
                "source",
                "destination",
                "names",
                "action",
                "args",
                "index",
                "op",
                "value",
                "size",
                "hostID",
                "containerID",
                "limit",
                "major",
            ];
            Value::Object(
                (0..rng.below(4))
                    .map(|_| (rng.pick(&keys).to_string(), random_value(rng, depth + 1)))
                    .collect(),
            )
        }
    }
}

/// Replace, remove or add one node somewhere in `v`.
fn mutate_value(rng: &mut Rng, v: &mut Value, depth: u32) {
    let descend = depth < 8 && rng.below(3) != 0;
    match v {
        Value::Object(m) if !m.is_empty() && descend => {
            let k = m.keys().nth(rng.below(m.len())).unwrap().clone();
            if rng.chance(6) {
                m.remove(&k);
            } else {
                mutate_value(rng, m.get_mut(&k).unwrap(), depth + 1);
            }
        }
        Value::Array(a) if !a.is_empty() && descend => {
            let i = rng.below(a.len());
            match rng.below(6) {
                0 => {
                    a.remove(i);
                }
                1 => {
                    let dup = a[i].clone();
                    a.push(dup);
                }
                _ => mutate_value(rng, &mut a[i], depth + 1),
            }
        }
        _ => *v = random_value(rng, depth),
    }
}

/// Byte-level damage: flips, inserted tokens, deleted or duplicated runs,
/// truncation.
fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        let at = rng.below(len + 1);
        match rng.below(6) {
            0 if len > 0 => data[at.min(len - 1)] ^= 1 << rng.below(8),
            1 => {
                let t = rng.pick(TOKENS).as_bytes().to_vec();
                data.splice(at..at, t);
            }
            2 if len > 0 => {
                let end = (at + rng.below(32)).min(len);
                data.drain(at..end);
            }
            3 if len > 0 => {
                let end = (at + rng.below(64)).min(len);
                let run = data[at..end].to_vec();
                data.splice(at..at, run);
            }
            4 => data.truncate(at),
            _ => {
                let b = rng.next() as u8;
                data.insert(at.min(data.len()), b);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// seeds
// ---------------------------------------------------------------------------

/// A config that uses most of the spec: mounts, id maps, rlimits,
/// capabilities, devices, resources, sysctls, seccomp, hooks.
fn config_seed() -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0, "additionalGids": [1, 2], "umask": 18},
            "args": ["sh", "-c", "true"],
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_KILL"],
                "permitted": ["CAP_KILL"],
                "ambient": []
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true,
            "oomScoreAdj": 100
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "fuzz",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/data", "type": "bind", "source": "/tmp",
             "options": ["rbind", "ro", "rprivate", "nosuid", "idmap"],
             "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
             "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}
        ],
        "hooks": {"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]},
        "linux": {
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000"},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "user"}, {"type": "cgroup"}
            ],
            "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                         "fileMode": 438, "uid": 0, "gid": 0}],
            "resources": {
                "devices": [{"allow": false, "access": "rwm"},
                            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
                "memory": {"limit": 104857600, "swap": 209715200, "reservation": 1000},
                "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1"},
                "pids": {"limit": 100},
                "blockIO": {"weight": 500},
                "unified": {"memory.high": "50M", "io.weight": "default 100"}
            },
            "cgroupsPath": "/ferry/fuzz",
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"],
            "rootfsPropagation": "rprivate",
            "seccomp": {
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
                "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "syscalls": [
                    {"names": ["read", "write", "exit_group", "nosuchsyscall"],
                     "action": "SCMP_ACT_ALLOW"},
                    {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                    {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                               "op": "SCMP_CMP_MASKED_EQ"}]},
                    {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
                ]
            }
        }
    })
}

/// One ustar header block (plus data, padded) for `name`.
fn tar_entry(name: &[u8], kind: u8, data: &[u8], link: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut v = h.to_vec();
    v.extend_from_slice(data);
    v.resize(v.len().div_ceil(512) * 512, 0);
    v
}

/// Numeric field values that are huge, base-256 or not numbers at all.
const JUNK: &[&[u8]] = &[b"77777777777", b"\x80\xff\xff\xff\xff\xff\xff\xff", b"9z"];

/// A layer with dirs, files, links, a whiteout, a GNU long name and a PAX
/// header with an xattr.
fn tar_seed() -> Vec<u8> {
    let long = "d/".repeat(80) + "long";
    let pax = |k: &str, v: &str| {
        let rec = format!(" {k}={v}\n");
        let mut n = rec.len();
        n += n.to_string().len();
        format!("{n}{rec}")
    };
    let pax_data = pax("path", "pax/named/file") + &pax("SCHILY.xattr.user.x", "y");
    let mut v = Vec::new();
    v.extend(tar_entry(b"d/", b'5', b"", b""));
    v.extend(tar_entry(b"d/file", b'0', b"hello\n", b""));
    v.extend(tar_entry(b"d/link", b'2', b"", b"file"));
    v.extend(tar_entry(b"d/hard", b'1', b"", b"d/file"));
    v.extend(tar_entry(b"d/.wh.gone", b'0', b"", b""));
    v.extend(tar_entry(b"././@LongLink", b'L', long.as_bytes(), b""));
    v.extend(tar_entry(b"short", b'0', b"x", b""));
    v.extend(tar_entry(b"paxheader", b'x', pax_data.as_bytes(), b""));
    v.extend(tar_entry(b"ignored", b'0', b"data", b""));
    v.extend([0u8; 1024]);
    v
}

// ---------------------------------------------------------------------------
// driver
// ---------------------------------------------------------------------------

fn iters() -> usize {
    std::env::var("FERRY_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn seed(salt: u64) -> u64 {
    let base = std::env::var("FERRY_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_f0e1_u64);
    base ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Feed `n` inputs from `make` to `target`; on a panic or an oversized
/// allocation, save the input and fail with how to reproduce it.
fn drive(name: &str, salt: u64, target: fn(&[u8]), mut make: impl FnMut(&mut Rng) -> Vec<u8>) {
    let seed = seed(salt);
    let mut rng = Rng::new(seed);
    let n = iters();
    for i in 0..n {
        let input = make(&mut rng);
        LARGEST.store(0, Ordering::Relaxed);
        let result = catch_unwind(AssertUnwindSafe(|| target(&input)));
        let largest = LARGEST.load(Ordering::Relaxed);
        let problem = match result {
            Err(_) => Some("panicked".to_string()),
            Ok(()) if largest > ALLOC_LIMIT => Some(format!("allocated {largest} bytes at once")),
            Ok(()) => None,
        };
        if let Some(problem) = problem {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/hostile-input");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{name}-{seed}-{i}.bin"));
            let _ = std::fs::write(&file, &input);
            panic!(
                "{name}: input {i} (seed {seed}) {problem}; saved to {}:\n{}",
                file.display(),
                String::from_utf8_lossy(&input[..input.len().min(2000)])
            );
        }
    }
    println!("{name}: {n} inputs, seed {seed}, no panic");
}

#[test]
fn config_documents() {
    let seed_doc = config_seed();
    let seed_bytes = serde_json::to_vec(&seed_doc).unwrap();
    // The seed itself must get through parsing, or the mutations test
    // nothing beyond it.
    ferry::config::parse(&seed_bytes).expect("the seed config parses");
    drive("config", 1, harness::config, |rng| match rng.below(3) {
        // structure-aware: valid JSON with one to four nodes changed
        0 | 1 => {
            let mut v = seed_doc.clone();
            for _ in 0..1 + rng.below(4) {
                mutate_value(rng, &mut v, 0);
            }
            serde_json::to_vec(&v).unwrap()
        }
        // byte-level damage of the seed
        _ => {
            let mut b = seed_bytes.clone();
            mutate_bytes(rng, &mut b);
            b
        }
    });
}

#[test]
fn short_strings() {
    let words: Vec<&str> = vec![
        "KILL",
        "SIGTERM",
        "rtmin+3",
        "SIGRTMAX-1",
        "RTMIN+99",
        "9",
        "-1",
        "65",
        "abc-123_x.y+z",
        "..",
        "a/b",
        "10M",
        "1g",
        "max",
        "sha256:",
        "rbind,ro",
        "../../x",
        "\u{0}",
    ];
    drive("strings", 2, harness::strings, |rng| {
        let mut b = rng.pick(&words).as_bytes().to_vec();
        if !rng.chance(4) {
            mutate_bytes(rng, &mut b);
        }
        b
    });
}

#[test]
fn tar_layers() {
    let seed_tar = tar_seed();
    // Check the seed is read whole: every entry, then the end.
    let mut r = ferry::image::tar::Reader::new(&seed_tar[..]);
    let mut paths = Vec::new();
    while let Some(e) = r.next_entry().expect("the seed archive reads") {
        paths.push(String::from_utf8_lossy(&e.path).into_owned());
    }
    assert!(
        paths.iter().any(|p| p.ends_with("/long")) && paths.contains(&"pax/named/file".into()),
        "the seed's long name and PAX path were not applied: {paths:?}"
    );
    drive("tar", 3, harness::tar, |rng| {
        let mut b = seed_tar.clone();
        match rng.below(4) {
            // a size field or checksum made huge or nonsense
            0 => {
                let block = 512 * rng.below(b.len() / 512);
                let at = block + [124, 148, 100, 156][rng.below(4)];
                let junk = *rng.pick(JUNK);
                for (i, c) in junk.iter().enumerate() {
                    if at + i < b.len() {
                        b[at + i] = *c;
                    }
                }
                // With a valid checksum, so that the reader acts on it.
                if block + 512 <= b.len() {
                    let h = &mut b[block..block + 512];
                    h[148..156].copy_from_slice(b"        ");
                    let sum: u32 = h.iter().map(|&c| c as u32).sum();
                    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
                }
            }
            _ => {
                for _ in 0..1 + rng.below(8) {
                    mutate_bytes(rng, &mut b);
                }
            }
        }
        b
    });
}
