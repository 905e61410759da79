//! AppArmor profiles and SELinux labels: applied where the LSM is active,
//! a clear error where a label is asked for and the LSM is absent (never a
//! silent "applied").

use std::path::Path;

use crate::rootfs::procfs;

/// Errors applying a security label.
#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error("AppArmor profile {0:?} was requested but AppArmor is not enabled on this host")]
    NoAppArmor(String),
    #[error("SELinux label {0:?} was requested but SELinux is not enabled on this host")]
    NoSelinux(String),
    #[error("cannot set {what} {label:?}: {source}")]
    Apply {
        what: &'static str,
        label: String,
        source: std::io::Error,
    },
}

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Labels of a process, checked before anything is created.
pub struct Labels<'a> {
    pub apparmor: Option<&'a str>,
    pub selinux: Option<&'a str>,
}

impl<'a> Labels<'a> {
    pub fn new(apparmor: Option<&'a str>, selinux: Option<&'a str>) -> Labels<'a> {
        Labels {
            apparmor: apparmor.filter(|s| !s.is_empty()),
            selinux: selinux.filter(|s| !s.is_empty()),
        }
    }

    /// Refuse labels this host cannot apply.
    pub fn check(&self) -> Result<(), LsmError> {
        if let Some(p) = self.apparmor
            && !apparmor_enabled()
        {
            return Err(LsmError::NoAppArmor(p.into()));
        }
        if let Some(l) = self.selinux
            && !selinux_enabled()
        {
            return Err(LsmError::NoSelinux(l.into()));
        }
        Ok(())
    }

    /// Arrange for the labels to take effect at the next execve. The
    /// attribute files are opened through the process's proven procfs
    /// handle ([`procfs::trusted`]), never through the container's `/proc`.
    pub fn apply_on_exec(&self) -> Result<(), LsmError> {
        if self.apparmor.is_none() && self.selinux.is_none() {
            return Ok(());
        }
        let apply = |what: &'static str, label: &str| {
            let no_proc = |e: nix::errno::Errno| LsmError::Apply {
                what,
                label: label.into(),
                source: e.into(),
            };
            let proc = procfs::trusted().map_err(no_proc)?;
            Ok::<_, LsmError>(proc)
        };
        if let Some(p) = self.apparmor {
            let proc = apply("AppArmor profile", p)?;
            let attr = if proc.thread_self_has(Path::new("attr/apparmor/exec")) {
                "attr/apparmor/exec"
            } else {
                "attr/exec"
            };
            proc.write_thread_self(Path::new(attr), format!("exec {p}").as_bytes())
                .map_err(|source| LsmError::Apply {
                    what: "AppArmor profile",
                    label: p.into(),
                    source,
                })?;
        }
        if let Some(l) = self.selinux {
            let proc = apply("SELinux label", l)?;
            proc.write_thread_self(Path::new("attr/exec"), l.as_bytes())
                .map_err(|source| LsmError::Apply {
                    what: "SELinux label",
                    label: l.into(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// The mount data option for `linux.mountLabel` (only where SELinux runs).
pub fn mount_label_option(label: Option<&str>) -> Result<Option<String>, LsmError> {
    match label.filter(|l| !l.is_empty()) {
        None => Ok(None),
        Some(l) if selinux_enabled() => Ok(Some(format!("context=\"{l}\""))),
        Some(l) => Err(LsmError::NoSelinux(l.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_lsm_is_a_clear_error() {
        if !apparmor_enabled() {
            let err = Labels::new(Some("docker-default"), None)
                .check()
                .unwrap_err();
            assert!(err.to_string().contains("AppArmor is not enabled"), "{err}");
        }
        if !selinux_enabled() {
            let err = Labels::new(None, Some("system_u:system_r:container_t:s0"))
                .check()
                .unwrap_err();
            assert!(err.to_string().contains("SELinux is not enabled"), "{err}");
            assert!(mount_label_option(Some("x")).is_err());
        }
        Labels::new(Some(""), None).check().unwrap();
        assert_eq!(mount_label_option(None).unwrap(), None);
    }
}
