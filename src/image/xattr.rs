//! Extended attributes (nix has no wrappers): set on an open fd, read and
//! list on a path without following a final symlink.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

/// The overlay xattr ferry writes on opaque directories.
pub const OPAQUE: &str = "user.overlay.opaque";

fn cstr(b: &[u8]) -> Result<CString, Errno> {
    CString::new(b).map_err(|_| Errno::EINVAL)
}

pub fn fset(fd: impl AsFd, name: &str, value: &[u8]) -> Result<(), Errno> {
    let name = cstr(name.as_bytes())?;
    crate::syscall::fsetxattr(fd.as_fd(), &name, value)
}

/// The value of `name` on `path` (not following a final symlink), if set.
pub fn lget(path: &Path, name: &str) -> Result<Option<Vec<u8>>, Errno> {
    let p = cstr(path.as_os_str().as_bytes())?;
    let n = cstr(name.as_bytes())?;
    let mut buf = vec![0u8; 256];
    loop {
        match crate::syscall::lgetxattr(&p, &n, &mut buf) {
            Ok(len) => {
                buf.truncate(len);
                return Ok(Some(buf));
            }
            Err(Errno::ENODATA) | Err(Errno::ENOTSUP) => return Ok(None),
            Err(Errno::ERANGE) if buf.len() < 1 << 16 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    }
}

/// The names of the xattrs on `path` (not following a final symlink).
pub fn llist(path: &Path) -> Result<Vec<String>, Errno> {
    let p = cstr(path.as_os_str().as_bytes())?;
    let mut buf = vec![0u8; 1024];
    let len = loop {
        match crate::syscall::llistxattr(&p, &mut buf) {
            Ok(len) => break len,
            Err(Errno::ENOTSUP) => return Ok(Vec::new()),
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    };
    Ok(buf[..len]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

/// Which xattrs of a layer ferry keeps. Overlay's own (`user.overlay.*`,
/// `trusted.overlay.*`) never: a layer could forge opaque directories or
/// redirects with them. `user.*` always. As root also `trusted.*` and
/// `security.capability` (file capabilities, as docker keeps them); other
/// `security.*` (SELinux, IMA labels) are host policy, not image content.
/// `Err` says why one is dropped.
pub fn allowed(name: &str, privileged: bool) -> Result<(), &'static str> {
    if name.starts_with("user.overlay.") || name.starts_with("trusted.overlay.") {
        return Err("overlay xattrs are ferry's own");
    }
    if name.starts_with("user.") {
        return Ok(());
    }
    if name.starts_with("trusted.") || name == "security.capability" {
        return if privileged {
            Ok(())
        } else {
            Err("needs root")
        };
    }
    if name.starts_with("security.") {
        return Err("security labels are host policy");
    }
    if name.starts_with("system.") {
        return if privileged {
            Ok(())
        } else {
            Err("needs root")
        };
    }
    Err("unknown namespace")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_and_security_xattrs_are_dropped() {
        assert!(allowed("user.overlay.opaque", true).is_err());
        assert!(allowed("trusted.overlay.redirect", true).is_err());
        assert!(allowed("security.selinux", true).is_err());
        assert!(allowed("security.capability", true).is_ok());
        assert!(allowed("security.capability", false).is_err());
        assert!(allowed("trusted.x", false).is_err());
        assert!(allowed("user.mime", false).is_ok());
    }
}
