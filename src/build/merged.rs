//! The merged view of a layer stack, read without mounting it (as overlay
//! shows it): for `COPY --from`, `--chown` names, the metadata of existing
//! parent directories. Paths are walked one component at a time with
//! `lstat`; symlinks met on the way are resolved inside the view (never on
//! the host), at most 40 of them.

use std::collections::BTreeSet;
use std::fs::{self, Metadata};
use std::path::{Path, PathBuf};

use crate::image::extract::is_whiteout;

/// A layer stack, top-most first.
pub struct Merged {
    layers: Vec<PathBuf>,
}

/// What a path is in the merged view.
pub enum Node {
    /// A directory: its directory in each layer that contributes, top
    /// first (the first one's metadata is the directory's).
    Dir(Vec<PathBuf>),
    /// Anything else: its path in the layer that has it.
    Other(PathBuf, Metadata),
}

impl Node {
    /// The metadata the view shows.
    pub fn meta(&self) -> Option<Metadata> {
        match self {
            Node::Dir(d) => fs::symlink_metadata(d.first()?).ok(),
            Node::Other(_, m) => Some(m.clone()),
        }
    }
}

fn opaque(p: &Path) -> bool {
    crate::image::pack::is_opaque(p)
}

impl Merged {
    pub fn new(layers: Vec<PathBuf>) -> Merged {
        Merged { layers }
    }

    fn root(&self) -> Node {
        Node::Dir(self.layers.clone())
    }

    /// `name` in the directory `dirs` (top first).
    fn child(dirs: &[PathBuf], name: &str) -> Option<Node> {
        let mut found: Vec<PathBuf> = Vec::new();
        for d in dirs {
            let p = d.join(name);
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            if is_whiteout(&m) {
                break;
            }
            if !m.is_dir() {
                if found.is_empty() {
                    return Some(Node::Other(p, m));
                }
                break;
            }
            let stop = opaque(&p);
            found.push(p);
            if stop {
                break;
            }
        }
        (!found.is_empty()).then_some(Node::Dir(found))
    }

    /// The node at `path` (absolute in the view), following symlinks on
    /// the way, and the last one too when `follow`.
    pub fn lookup(&self, path: &str, follow: bool) -> Option<Node> {
        let mut hops = 0;
        self.walk(path, follow, &mut hops)
    }

    fn walk(&self, path: &str, follow: bool, hops: &mut u32) -> Option<Node> {
        let parts: Vec<&str> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        let mut cur = self.root();
        let mut sofar: Vec<&str> = Vec::new();
        for (i, c) in parts.iter().enumerate() {
            if *c == ".." {
                sofar.pop();
                cur = self.walk(&sofar.join("/"), true, hops)?;
                continue;
            }
            let Node::Dir(dirs) = &cur else {
                return None;
            };
            let next = Merged::child(dirs, c)?;
            let last = i + 1 == parts.len();
            match &next {
                Node::Other(p, m) if m.file_type().is_symlink() && (!last || follow) => {
                    *hops += 1;
                    if *hops > 40 {
                        return None;
                    }
                    let target = fs::read_link(p).ok()?;
                    let t = target.to_string_lossy();
                    let base = if t.starts_with('/') {
                        String::new()
                    } else {
                        sofar.join("/")
                    };
                    let rest = parts[i + 1..].join("/");
                    return self.walk(&format!("{base}/{t}/{rest}"), follow, hops);
                }
                _ => {}
            }
            sofar.push(c);
            cur = next;
        }
        Some(cur)
    }

    /// The names in the directory `dirs`, as the view shows them.
    pub fn list(dirs: &[PathBuf]) -> Vec<(String, Node)> {
        let mut names = BTreeSet::new();
        for d in dirs {
            if let Ok(rd) = fs::read_dir(d) {
                for e in rd.flatten() {
                    names.insert(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        names
            .into_iter()
            .filter_map(|n| Merged::child(dirs, &n).map(|node| (n, node)))
            .collect()
    }

    /// The contents of a regular file, at most 4 MiB.
    pub fn read(&self, path: &str) -> Option<String> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let Node::Other(p, m) = self.lookup(path, true)? else {
            return None;
        };
        if !m.is_file() {
            return None;
        }
        let f = fs::File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(p)
            .ok()?;
        let mut s = String::new();
        f.take(4 << 20).read_to_string(&mut s).ok()?;
        Some(s)
    }

    /// `user[:group]` (names or ids) as uid and gid, names resolved in the
    /// view's /etc/passwd and /etc/group.
    pub fn resolve_owner(&self, spec: &str) -> Result<(u32, u32), String> {
        let (u, g) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let passwd = self.read("/etc/passwd").unwrap_or_default();
        let group = self.read("/etc/group").unwrap_or_default();
        let find = |db: &str, name: &str| -> Option<(u32, u32)> {
            db.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 4 && f[0] == name)
                    .then(|| Some((f[2].parse().ok()?, f[3].parse().unwrap_or(0))))
                    .flatten()
            })
        };
        let (uid, primary) = match u.parse::<u32>() {
            Ok(id) => (id, None),
            Err(_) => {
                let (id, gid) = find(&passwd, u)
                    .ok_or_else(|| format!("user {u:?} is not in the stage's /etc/passwd"))?;
                (id, Some(gid))
            }
        };
        let gid = match g {
            None => primary.unwrap_or(uid),
            Some(g) => match g.parse::<u32>() {
                Ok(id) => id,
                Err(_) => find(&group, g)
                    .map(|(id, _)| id)
                    .ok_or_else(|| format!("group {g:?} is not in the stage's /etc/group"))?,
            },
        };
        Ok((uid, gid))
    }
}
