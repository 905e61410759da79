//! `linux.cgroupsPath` as runc reads it.

use super::CgroupError;
use super::layout::Hierarchy;

/// Where a container's cgroup goes, before it is made per hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgPath {
    /// From the root of each hierarchy, e.g. `/ferry/ID`.
    Absolute(String),
    /// Below ferry's own cgroup in each hierarchy (runc's cgroupfs driver).
    Relative(String),
}

impl CgPath {
    /// The host directory in hierarchy `h`.
    pub fn dir_in(&self, h: &Hierarchy) -> std::path::PathBuf {
        match self {
            CgPath::Absolute(p) => h.mount_point.join(p.trim_start_matches('/')),
            CgPath::Relative(p) => h.dir_of(&h.own).join(p),
        }
    }
}

/// The cgroup of container `id`. `None` means no cgroup (rootless with no
/// path: runc's default, and what rootless podman expects).
pub fn resolve(
    cgroups_path: &str,
    id: &str,
    systemd: bool,
    rootless: bool,
) -> Result<Option<CgPath>, CgroupError> {
    if systemd {
        return systemd_path(cgroups_path, id, rootless).map(Some);
    }
    if cgroups_path.is_empty() {
        return Ok((!rootless).then(|| CgPath::Absolute(format!("/ferry/{id}"))));
    }
    let invalid = |reason| CgroupError::InvalidPath {
        path: cgroups_path.into(),
        reason,
    };
    let clean = clean(cgroups_path);
    if clean.is_empty() {
        return Err(invalid("it names the root cgroup"));
    }
    Ok(Some(if cgroups_path.starts_with('/') {
        CgPath::Absolute(format!("/{clean}"))
    } else {
        CgPath::Relative(clean)
    }))
}

/// `slice:prefix:name` as the systemd driver lays it out in the cgroup
/// tree: `/a.slice/a-b.slice/prefix-name.scope`.
fn systemd_path(cgroups_path: &str, id: &str, rootless: bool) -> Result<CgPath, CgroupError> {
    let (slice, unit) = systemd_unit(cgroups_path, id, rootless)?;
    let mut path = expand_slice(&slice).ok_or_else(|| CgroupError::InvalidPath {
        path: cgroups_path.into(),
        reason: "invalid slice name",
    })?;
    path.push('/');
    path.push_str(&unit);
    Ok(CgPath::Absolute(path))
}

/// The slice and the unit name of `slice:prefix:name`, with runc's
/// defaults: an empty path is `ferry-ID.scope`, an empty slice
/// `system.slice` (`user.slice` rootless).
pub fn systemd_unit(
    cgroups_path: &str,
    id: &str,
    rootless: bool,
) -> Result<(String, String), CgroupError> {
    let default_slice = if rootless {
        "user.slice"
    } else {
        "system.slice"
    };
    let (slice, prefix, name) = if cgroups_path.is_empty() {
        (default_slice, "ferry", id)
    } else {
        let parts: Vec<&str> = cgroups_path.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(CgroupError::InvalidPath {
                path: cgroups_path.into(),
                reason: "the systemd driver expects slice:prefix:name",
            });
        };
        (slice, prefix, name)
    };
    let bad = |reason| CgroupError::InvalidPath {
        path: cgroups_path.into(),
        reason,
    };
    if [slice, prefix, name].iter().any(|p| p.contains('/')) {
        return Err(bad("slice, prefix and name may not contain '/'"));
    }
    let slice = if slice.is_empty() {
        default_slice
    } else {
        slice
    };
    if expand_slice(slice).is_none() {
        return Err(bad("invalid slice name"));
    }
    if name.is_empty() {
        return Err(bad("empty unit name"));
    }
    let unit = if name.ends_with(".slice") || prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok((slice.to_string(), unit))
}

/// `a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice` (`-.slice` is the root).
fn expand_slice(slice: &str) -> Option<String> {
    let base = slice.strip_suffix(".slice")?;
    if base == "-" {
        return Some(String::new());
    }
    if base.is_empty() || base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        return None;
    }
    let mut out = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        out.push('/');
        out.push_str(&prefix);
        out.push_str(".slice");
    }
    Some(out)
}

/// Lexically clean a path so that `..` can never climb above its start;
/// no leading or trailing `/`.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_ferry_id_for_root_and_none_rootless() {
        assert_eq!(
            resolve("", "c1", false, false).unwrap(),
            Some(CgPath::Absolute("/ferry/c1".into()))
        );
        assert_eq!(resolve("", "c1", false, true).unwrap(), None);
    }

    #[test]
    fn absolute_and_relative_are_cleaned() {
        assert_eq!(
            resolve("/a/../b/./c/", "x", false, false).unwrap(),
            Some(CgPath::Absolute("/b/c".into()))
        );
        assert_eq!(
            resolve("../../x/y", "x", false, false).unwrap(),
            Some(CgPath::Relative("x/y".into()))
        );
        assert!(resolve("/..", "x", false, false).is_err());
    }

    #[test]
    fn systemd_form_without_driver_is_a_plain_name() {
        assert_eq!(
            resolve("machine.slice:libpod:abc", "x", false, false).unwrap(),
            Some(CgPath::Relative("machine.slice:libpod:abc".into()))
        );
    }

    #[test]
    fn systemd_form_with_driver_expands_slices() {
        assert_eq!(
            resolve("system-foo.slice:docker:abc", "x", true, false).unwrap(),
            Some(CgPath::Absolute(
                "/system.slice/system-foo.slice/docker-abc.scope".into()
            ))
        );
        assert_eq!(
            resolve("", "id1", true, false).unwrap(),
            Some(CgPath::Absolute("/system.slice/ferry-id1.scope".into()))
        );
        assert_eq!(
            resolve(":p:n", "x", true, false).unwrap(),
            Some(CgPath::Absolute("/system.slice/p-n.scope".into()))
        );
        assert_eq!(
            resolve("-.slice:p:n", "x", true, false).unwrap(),
            Some(CgPath::Absolute("/p-n.scope".into()))
        );
        assert_eq!(
            systemd_unit("", "id1", true).unwrap(),
            ("user.slice".to_string(), "ferry-id1.scope".to_string())
        );
        assert!(resolve("/a/b", "x", true, false).is_err());
        assert!(resolve("bad-.slice:p:n", "x", true, false).is_err());
    }
}
