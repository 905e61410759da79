//! Mount options of the runtime spec (fstab-style strings) split into
//! `mount(2)` flags, propagation changes and filesystem data.

use nix::mount::MsFlags;

/// Parsed `mounts[].options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags to set.
    pub flags: MsFlags,
    /// Propagation changes, applied one by one after the mount.
    pub propagation: Vec<MsFlags>,
    /// Options the filesystem itself interprets (`mode=755`, `size=64k`).
    pub data: Vec<String>,
    /// `idmap` or `ridmap`: an idmapped bind mount (see `rootfs::idmap`).
    pub idmap: bool,
    /// `ridmap`: the id mapping applies to the submounts too.
    pub idmap_recursive: bool,
    /// Recursive attributes (`rro`, `rnosuid`, ...): `MOUNT_ATTR_*` bits
    /// to set and to clear on the mount and every submount.
    pub rec_set: u64,
    pub rec_clr: u64,
}

/// (name, `MOUNT_ATTR_*` to set, to clear) of the recursive options.
const RECURSIVE: &[(&str, u64, u64)] = &[
    ("rro", libc::MOUNT_ATTR_RDONLY, 0),
    ("rrw", 0, libc::MOUNT_ATTR_RDONLY),
    ("rnosuid", libc::MOUNT_ATTR_NOSUID, 0),
    ("rsuid", 0, libc::MOUNT_ATTR_NOSUID),
    ("rnodev", libc::MOUNT_ATTR_NODEV, 0),
    ("rdev", 0, libc::MOUNT_ATTR_NODEV),
    ("rnoexec", libc::MOUNT_ATTR_NOEXEC, 0),
    ("rexec", 0, libc::MOUNT_ATTR_NOEXEC),
    ("rnodiratime", libc::MOUNT_ATTR_NODIRATIME, 0),
    ("rdiratime", 0, libc::MOUNT_ATTR_NODIRATIME),
    (
        "rrelatime",
        libc::MOUNT_ATTR_RELATIME,
        libc::MOUNT_ATTR__ATIME,
    ),
    ("rnorelatime", 0, 0),
    (
        "rnoatime",
        libc::MOUNT_ATTR_NOATIME,
        libc::MOUNT_ATTR__ATIME,
    ),
    ("ratime", 0, libc::MOUNT_ATTR_NOATIME),
    (
        "rstrictatime",
        libc::MOUNT_ATTR_STRICTATIME,
        libc::MOUNT_ATTR__ATIME,
    ),
    ("rnostrictatime", 0, libc::MOUNT_ATTR_STRICTATIME),
    ("rnosymfollow", libc::MOUNT_ATTR_NOSYMFOLLOW, 0),
    ("rsymfollow", 0, libc::MOUNT_ATTR_NOSYMFOLLOW),
];

/// (name, flags to set, flags to clear)
const FLAGS: &[(&str, MsFlags, MsFlags)] = &[
    ("defaults", MsFlags::empty(), MsFlags::empty()),
    ("ro", MsFlags::MS_RDONLY, MsFlags::empty()),
    ("rw", MsFlags::empty(), MsFlags::MS_RDONLY),
    ("nosuid", MsFlags::MS_NOSUID, MsFlags::empty()),
    ("suid", MsFlags::empty(), MsFlags::MS_NOSUID),
    ("nodev", MsFlags::MS_NODEV, MsFlags::empty()),
    ("dev", MsFlags::empty(), MsFlags::MS_NODEV),
    ("noexec", MsFlags::MS_NOEXEC, MsFlags::empty()),
    ("exec", MsFlags::empty(), MsFlags::MS_NOEXEC),
    ("sync", MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
    ("async", MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
    ("dirsync", MsFlags::MS_DIRSYNC, MsFlags::empty()),
    ("remount", MsFlags::MS_REMOUNT, MsFlags::empty()),
    ("mand", MsFlags::MS_MANDLOCK, MsFlags::empty()),
    ("nomand", MsFlags::empty(), MsFlags::MS_MANDLOCK),
    ("atime", MsFlags::empty(), MsFlags::MS_NOATIME),
    ("noatime", MsFlags::MS_NOATIME, MsFlags::empty()),
    ("diratime", MsFlags::empty(), MsFlags::MS_NODIRATIME),
    ("nodiratime", MsFlags::MS_NODIRATIME, MsFlags::empty()),
    ("relatime", MsFlags::MS_RELATIME, MsFlags::empty()),
    ("norelatime", MsFlags::empty(), MsFlags::MS_RELATIME),
    ("strictatime", MsFlags::MS_STRICTATIME, MsFlags::empty()),
    ("nostrictatime", MsFlags::empty(), MsFlags::MS_STRICTATIME),
    ("lazytime", MsFlags::MS_LAZYTIME, MsFlags::empty()),
    ("nolazytime", MsFlags::empty(), MsFlags::MS_LAZYTIME),
    ("iversion", MsFlags::MS_I_VERSION, MsFlags::empty()),
    ("noiversion", MsFlags::empty(), MsFlags::MS_I_VERSION),
    ("silent", MsFlags::MS_SILENT, MsFlags::empty()),
    ("loud", MsFlags::empty(), MsFlags::MS_SILENT),
    (
        "nosymfollow",
        MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
        MsFlags::empty(),
    ),
    ("bind", MsFlags::MS_BIND, MsFlags::empty()),
    (
        "rbind",
        MsFlags::MS_BIND.union(MsFlags::MS_REC),
        MsFlags::empty(),
    ),
];

const PROPAGATION: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// A propagation name (`rslave`, ...) as mount flags, for `rootfsPropagation`.
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    PROPAGATION
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

/// Every option name ferry interprets itself (for `ferry features`).
pub fn known_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = FLAGS
        .iter()
        .map(|(n, _, _)| *n)
        .chain(PROPAGATION.iter().map(|(n, _)| *n))
        .chain(RECURSIVE.iter().map(|(n, _, _)| *n))
        .chain(["idmap", "ridmap"])
        .collect();
    names.sort_unstable();
    names
}

impl MountOptions {
    pub fn parse<S: AsRef<str>>(options: &[S]) -> MountOptions {
        let mut out = MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            idmap: false,
            idmap_recursive: false,
            rec_set: 0,
            rec_clr: 0,
        };
        for opt in options {
            let opt = opt.as_ref();
            if let Some(&(_, set, clear)) = FLAGS.iter().find(|(n, _, _)| *n == opt) {
                out.flags.remove(clear);
                out.flags.insert(set);
            } else if let Some(&(_, set, clr)) = RECURSIVE.iter().find(|(n, _, _)| *n == opt) {
                out.rec_set = (out.rec_set & !clr) | set;
                out.rec_clr = (out.rec_clr & !set) | clr;
            } else if let Some(p) = propagation_flag(opt) {
                out.propagation.push(p);
            } else if opt == "idmap" || opt == "ridmap" {
                out.idmap = true;
                out.idmap_recursive |= opt == "ridmap";
            } else if !opt.is_empty() && opt != "tmpcopyup" {
                out.data.push(opt.to_string());
            }
        }
        out
    }

    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// Flags that only a remount can apply to a bind mount.
    pub fn remount_flags(&self) -> MsFlags {
        self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }

    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_flags_propagation_and_data() {
        let o =
            MountOptions::parse(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
    }

    #[test]
    fn later_options_win() {
        let o = MountOptions::parse(&["ro", "rw", "rbind", "nodev", "dev"]);
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(o.is_bind());
        assert_eq!(o.remount_flags(), MsFlags::empty());
    }

    #[test]
    fn idmap_options_are_not_fs_data() {
        let o = MountOptions::parse(&["rbind", "ridmap", "ro"]);
        assert!(o.idmap && o.idmap_recursive);
        assert!(o.data.is_empty());
        let o = MountOptions::parse(&["bind", "idmap"]);
        assert!(o.idmap && !o.idmap_recursive);
    }

    #[test]
    fn recursive_attributes_are_not_fs_data() {
        let o = MountOptions::parse(&["rbind", "rro", "rnosuid", "rnoatime"]);
        assert!(o.data.is_empty());
        let want = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOATIME;
        assert_eq!(o.rec_set, want);
        assert_eq!(o.rec_clr, libc::MOUNT_ATTR__ATIME);
        let o = MountOptions::parse(&["rro", "rrw"]);
        assert_eq!((o.rec_set, o.rec_clr), (0, libc::MOUNT_ATTR_RDONLY));
    }

    #[test]
    fn devpts_data_survives() {
        let o = MountOptions::parse(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]);
        assert_eq!(
            o.data,
            vec!["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
        );
    }
}
