//! Which cgroup hierarchies the host mounts, and where we sit in them.

use std::path::PathBuf;

/// The v1 controllers the kernel knows (plus `name=X` named hierarchies).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// v1: its controllers (`cpu`, `name=systemd`...); v2: empty.
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    /// The hierarchy's directory shown at the mount point (not `/` inside
    /// a cgroup namespace or for a bind mount of a sub-tree).
    pub root: String,
    /// Our own cgroup in this hierarchy, from /proc/self/cgroup.
    pub own: String,
}

impl Hierarchy {
    /// The host directory of hierarchy path `cgroup` (absolute).
    pub fn dir_of(&self, cgroup: &str) -> PathBuf {
        let rel = cgroup
            .strip_prefix(self.root.trim_end_matches('/'))
            .filter(|r| r.is_empty() || r.starts_with('/'))
            .unwrap_or(cgroup);
        self.mount_point.join(rel.trim_start_matches('/'))
    }

    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One hierarchy per controller group; `unified` when a (controller-less)
    /// cgroup2 is also mounted (hybrid): the container joins a cgroup there
    /// too, as runc's cgroupfs driver does, but no limit is set in it.
    V1 {
        hierarchies: Vec<Hierarchy>,
        unified: Option<Hierarchy>,
    },
    /// The unified hierarchy.
    V2(Hierarchy),
}

impl Layout {
    pub fn is_v2(&self) -> bool {
        matches!(self, Layout::V2(_))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Layout::V1 { unified: None, .. } => "v1",
            Layout::V1 {
                unified: Some(_), ..
            } => "v1 (hybrid)",
            Layout::V2(_) => "v2",
        }
    }

    /// Every mounted hierarchy: the v1 ones and the unified one of a
    /// hybrid host, or the v2 one.
    pub fn all(&self) -> Vec<&Hierarchy> {
        match self {
            Layout::V1 {
                hierarchies,
                unified,
            } => hierarchies.iter().chain(unified).collect(),
            Layout::V2(h) => vec![h],
        }
    }

    /// The v1 hierarchy holding `controller`.
    pub fn v1(&self, controller: &str) -> Option<&Hierarchy> {
        match self {
            Layout::V1 { hierarchies, .. } => hierarchies.iter().find(|h| h.has(controller)),
            Layout::V2(_) => None,
        }
    }
}

/// Detect the layout from this process' mountinfo and cgroup files.
pub fn detect() -> Option<Layout> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    build(&mountinfo, &cgroup)
}

/// The host directory of our own cgroup in each hierarchy, keyed by the
/// hierarchy's mount point (for the container's `/sys/fs/cgroup`).
pub fn own_dirs(mountinfo: &str, proc_cgroup: &str) -> Vec<(PathBuf, PathBuf)> {
    build(mountinfo, proc_cgroup)
        .map(|l| {
            l.all()
                .into_iter()
                .map(|h| (h.mount_point.clone(), h.dir_of(&h.own)))
                .collect()
        })
        .unwrap_or_default()
}

/// The pure half of [`detect`].
pub fn build(mountinfo: &str, proc_cgroup: &str) -> Option<Layout> {
    let own = parse_proc_cgroup(proc_cgroup);
    let own_of = |controllers: &[String]| -> String {
        own.iter()
            .find(|(cs, _)| {
                if controllers.is_empty() {
                    cs.is_empty()
                } else {
                    controllers.iter().any(|c| cs.contains(c))
                }
            })
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| "/".into())
    };
    let mut v1: Vec<Hierarchy> = Vec::new();
    let mut v2: Option<Hierarchy> = None;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (Some(root), Some(mp), Some(fstype)) = (pre.get(3), pre.get(4), post.first()) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape(mp));
        let root = unescape(root);
        match *fstype {
            "cgroup2" if v2.is_none() => {
                v2 = Some(Hierarchy {
                    controllers: Vec::new(),
                    mount_point,
                    own: own_of(&[]),
                    root,
                });
            }
            "cgroup" => {
                let controllers: Vec<String> = post
                    .get(2)
                    .unwrap_or(&"")
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .map(str::to_string)
                    .collect();
                if controllers.is_empty() || v1.iter().any(|h| h.controllers == controllers) {
                    continue;
                }
                v1.push(Hierarchy {
                    own: own_of(&controllers),
                    controllers,
                    mount_point,
                    root,
                });
            }
            _ => {}
        }
    }
    let real_v1 = v1
        .iter()
        .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
    if real_v1 {
        return Some(Layout::V1 {
            hierarchies: v1,
            unified: v2,
        });
    }
    v2.map(Layout::V2)
}

/// `ID:CONTROLLERS:PATH` lines as (controllers, path).
fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let cs = parts.next()?;
            let path = parts.next()?;
            let cs = cs
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some((cs, path.to_string()))
        })
        .collect()
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CG: &str = "9:name=systemd:/\n4:memory:/sandbox/x\n1:cpu:/\n0::/\n";

    #[test]
    fn hybrid_is_v1_with_unified() {
        let l = build(HYBRID, HYBRID_CG).unwrap();
        let Layout::V1 {
            hierarchies,
            unified,
        } = &l
        else {
            panic!("{l:?}")
        };
        let unified = unified.as_ref().unwrap();
        assert_eq!(unified.mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(unified.own, "/");
        assert_eq!(hierarchies.len(), 3);
        let mem = l.v1("memory").unwrap();
        assert_eq!(mem.own, "/sandbox/x");
        assert_eq!(mem.dir_of("/a/b"), Path::new("/sys/fs/cgroup/memory/a/b"));
        assert_eq!(l.v1("cpu").unwrap().own, "/");
        assert_eq!(l.name(), "v1 (hybrid)");
    }

    #[test]
    fn own_dirs_cover_the_unified_hierarchy() {
        let cg = "9:name=systemd:/c\n4:memory:/a/c\n1:cpu:/c\n0::/u/c\n";
        let dirs = own_dirs(HYBRID, cg);
        let of = |mp: &str| {
            dirs.iter()
                .find(|(m, _)| m == Path::new(mp))
                .map(|(_, d)| d.clone())
                .unwrap()
        };
        assert_eq!(
            of("/sys/fs/cgroup/memory"),
            Path::new("/sys/fs/cgroup/memory/a/c")
        );
        assert_eq!(
            of("/sys/fs/cgroup/unified"),
            Path::new("/sys/fs/cgroup/unified/u/c")
        );
        assert_eq!(
            of("/sys/fs/cgroup/systemd"),
            Path::new("/sys/fs/cgroup/systemd/c")
        );
        assert_eq!(dirs.len(), 4);
    }

    #[test]
    fn unified_only_is_v2() {
        let mi = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = build(mi, "0::/user.slice/a.scope\n").unwrap();
        let Layout::V2(h) = &l else { panic!() };
        assert_eq!(h.own, "/user.slice/a.scope");
        assert_eq!(h.mount_point, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn comounted_and_rooted_mounts() {
        let mi = "32 31 0:29 /docker/abc /sys/fs/cgroup/cpu\\054cpuacct ro - cgroup cgroup rw,cpu,cpuacct\n";
        let l = build(mi, "2:cpu,cpuacct:/docker/abc\n").unwrap();
        let h = l.v1("cpuacct").unwrap();
        assert_eq!(h.controllers, ["cpu", "cpuacct"]);
        assert_eq!(h.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(
            h.dir_of("/docker/abc/x"),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/x")
        );
        assert_eq!(
            h.dir_of("/other"),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/other")
        );
    }

    #[test]
    fn no_cgroups_at_all() {
        assert_eq!(build("1 0 8:1 / / rw - ext4 /dev/sda rw\n", ""), None);
    }
}
