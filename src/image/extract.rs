//! Extracting one layer tar into a directory, in overlay's own format.
//!
//! Every path is resolved inside the layer directory by the kernel
//! (`openat2(RESOLVE_IN_ROOT)`, [`Root`]), and every file is created by a
//! single name in a directory fd so resolved: a `..`, an absolute path, or a
//! symlink (absolute or relative) can never lead a write or a delete out of
//! the layer. Entries ferry will not extract are logged (`warn`) and
//! counted, never skipped silently:
//!
//! * paths with a `..` component (absolute paths are taken as relative);
//! * hard links whose target is outside the layer, not extracted yet, or a
//!   directory;
//! * whiteouts naming `.`/`..`, and aufs' other `.wh..wh.*` entries;
//! * device nodes when not real root (FIFOs are fine), unknown entry types;
//! * owners beyond the ids that exist here (left to root), and, with only
//!   the caller's own id, every owner (the caller's) and setuid/setgid bits
//!   (the mode is kept without them): see [`Options::ids`];
//! * xattrs per [`xattr::allowed`] (overlay's own are always dropped).
//!
//! `.wh.NAME` becomes a 0:0 character device `NAME` and `.wh..wh..opq` the
//! xattr `user.overlay.opaque=y` on its directory, set after the whole tar
//! is read, wherever the marker was in it. Directory modes and times are
//! set last too (deepest first), so a read-only directory can still be
//! filled while rootless.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, fchmod, fchmodat, fstat, fstatat, futimens, makedev, mkdirat,
    mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use serde::{Deserialize, Serialize};

use super::tar::{self, Kind};
use super::{ImageError, xattr};
use crate::fs::{Root, fd_path};

/// How to extract.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Real root outside any user namespace: device nodes, `trusted.*`.
    pub privileged: bool,
    /// How many ids, from 0, exist here: owners below are kept, with
    /// setuid/setgid bits. 1 (rootless without subordinate ids): everything
    /// is the caller's and those bits are dropped.
    pub ids: u64,
}

/// What a layer held.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Bytes of regular files.
    pub size: u64,
    pub entries: u64,
    pub whiteouts: u64,
    /// Entries (or parts of entries) refused, each logged.
    pub refused: u64,
    /// Entries owned by another uid or gid than 0, extracted as the caller's
    /// (rootless without subordinate ids).
    #[serde(default)]
    pub foreign_owners: u64,
}

struct DirMeta {
    mode: u32,
    owner: Option<(Uid, Gid)>,
    mtime: i64,
}

struct Extractor<'a> {
    root: Root,
    opts: Options,
    label: &'a str,
    report: Report,
    dirs: BTreeMap<PathBuf, DirMeta>,
    opaque: BTreeSet<PathBuf>,
    /// The last parent directory resolved; dropped when anything is removed
    /// (a removal can change what a path resolves to).
    cache: Option<(PathBuf, OwnedFd)>,
    removals: u64,
    buf: Vec<u8>,
}

/// Extract the tar `stream` into `dir` (an existing empty directory).
pub fn extract(
    stream: impl Read,
    dir: &Path,
    opts: &Options,
    label: &str,
) -> Result<Report, ImageError> {
    let root = Root::open(dir).map_err(ImageError::sys(format!("open {}", dir.display())))?;
    let mut x = Extractor {
        root,
        opts: *opts,
        label,
        report: Report::default(),
        dirs: BTreeMap::new(),
        opaque: BTreeSet::new(),
        cache: None,
        removals: 0,
        buf: vec![0; 256 * 1024],
    };
    let mut tar = tar::Reader::new(stream);
    while let Some(e) = tar.next_entry()? {
        x.report.entries += 1;
        x.entry(&e, &mut tar.data())?;
    }
    x.finish()?;
    if x.report.foreign_owners > 0 {
        log::warn!(
            "{label}: {} entries owned by other ids than root were extracted as yours (rootless, without subordinate ids in /etc/subuid and /etc/subgid)",
            x.report.foreign_owners
        );
    }
    Ok(x.report)
}

/// The entry's path as plain components, or `None` if it has a `..`.
pub fn clean(raw: &[u8]) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Errors that end the extraction (the disk, not the entry, is at fault).
fn fatal(e: Errno) -> bool {
    matches!(
        e,
        Errno::ENOSPC | Errno::EDQUOT | Errno::EIO | Errno::EROFS | Errno::ENOMEM | Errno::EMFILE
    )
}

fn ts(secs: i64) -> TimeSpec {
    TimeSpec::new(secs, 0)
}

enum Outcome {
    Done,
    Refused(String),
}

impl Extractor<'_> {
    fn refuse(&mut self, path: &[u8], why: &str) {
        log::warn!(
            "{}: refused {:?}: {why}",
            self.label,
            String::from_utf8_lossy(path)
        );
        self.report.refused += 1;
    }

    fn entry(&mut self, e: &tar::Entry, data: &mut impl Read) -> Result<(), ImageError> {
        let Some(rel) = clean(&e.path) else {
            self.refuse(&e.path, "path has a `..` component");
            return Ok(());
        };
        if e.path.starts_with(b"/") {
            log::warn!(
                "{}: absolute path {:?} extracted inside the layer",
                self.label,
                String::from_utf8_lossy(&e.path)
            );
        }
        if self.opts.ids <= 1 && (e.uid != 0 || e.gid != 0) {
            self.report.foreign_owners += 1;
        }
        let outcome = match self.place(&rel, e, data) {
            Ok(o) => o,
            Err(PlaceError::Stream(err)) => return Err(err),
            Err(PlaceError::Sys(what, errno)) if fatal(errno) => {
                return Err(ImageError::Sys {
                    what: format!("{}: {what} {}", self.label, rel.display()),
                    source: errno,
                });
            }
            Err(PlaceError::Sys(what, errno)) => Outcome::Refused(format!("{what}: {errno}")),
        };
        if let Outcome::Refused(why) = outcome {
            self.refuse(&e.path, &why);
        }
        Ok(())
    }

    /// The directory fd of `parent`, created if missing.
    fn parent(&mut self, parent: &Path) -> Result<(PathBuf, OwnedFd), PlaceError> {
        if let Some((p, fd)) = self.cache.take()
            && p == parent
        {
            return Ok((p, fd));
        }
        let fd = self
            .root
            .mkdir_all(parent, Mode::from_bits_truncate(0o755))
            .map_err(|e| PlaceError::Sys("parent directory", e))?;
        Ok((parent.to_path_buf(), fd))
    }

    fn place(
        &mut self,
        rel: &Path,
        e: &tar::Entry,
        data: &mut impl Read,
    ) -> Result<Outcome, PlaceError> {
        let Some(name) = rel.file_name() else {
            // The layer root itself ("./"): only its metadata.
            if e.kind == Kind::Dir {
                self.dir_meta(PathBuf::new(), e);
            }
            return Ok(Outcome::Done);
        };
        let name = name.to_os_string();
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let (ppath, pfd) = self.parent(&parent_rel)?;
        let before = self.removals;
        let out = self.place_in(pfd.as_fd(), rel, &name, e, data);
        if self.removals == before {
            self.cache = Some((ppath, pfd));
        }
        out
    }

    fn place_in(
        &mut self,
        dir: BorrowedFd,
        rel: &Path,
        name: &OsStr,
        e: &tar::Entry,
        data: &mut impl Read,
    ) -> Result<Outcome, PlaceError> {
        let sys = |what| move |errno| PlaceError::Sys(what, errno);
        if let Some(target) = name.as_bytes().strip_prefix(b".wh.") {
            if target == b".wh..opq" {
                self.opaque
                    .insert(rel.parent().unwrap_or(Path::new("")).into());
                return Ok(Outcome::Done);
            }
            if target.starts_with(b".wh.") {
                return Ok(Outcome::Refused("unknown aufs metadata entry".into()));
            }
            if matches!(target, b"" | b"." | b"..") {
                return Ok(Outcome::Refused("whiteout of no name".into()));
            }
            let target = OsStr::from_bytes(target);
            self.replace(dir, target, |d, n| {
                mknodat(d, n, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
            })
            .map_err(sys("whiteout"))?;
            self.report.whiteouts += 1;
            return Ok(Outcome::Done);
        }
        match e.kind {
            Kind::File => self.file(dir, name, e, data),
            Kind::Dir => {
                match mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EEXIST) => {
                        let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                            .map_err(sys("stat"))?;
                        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                            self.remove(dir, name).map_err(sys("replace"))?;
                            mkdirat(dir, name, Mode::from_bits_truncate(0o700))
                                .map_err(sys("mkdir"))?;
                        }
                    }
                    Err(err) => return Err(PlaceError::Sys("mkdir", err)),
                }
                let keep = self.kept_xattrs(e);
                if !keep.is_empty() {
                    let fd = openat(
                        dir,
                        name,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(sys("open directory"))?;
                    self.set_xattrs(&fd, &keep, &e.path);
                }
                self.dir_meta(rel.to_path_buf(), e);
                Ok(Outcome::Done)
            }
            Kind::Symlink => {
                let link = OsStr::from_bytes(&e.link);
                self.replace(dir, name, |d, n| symlinkat(link, d, n))
                    .map_err(sys("symlink"))?;
                if !self.kept_xattrs(e).is_empty() {
                    self.refuse(&e.path, "xattrs on a symlink are not kept");
                }
                self.owner_at(dir, name, e).map_err(sys("chown"))?;
                let t = ts(e.mtime);
                utimensat(
                    dir,
                    name,
                    &t,
                    &t,
                    nix::sys::stat::UtimensatFlags::NoFollowSymlink,
                )
                .map_err(sys("set times"))?;
                Ok(Outcome::Done)
            }
            Kind::HardLink => {
                let Some(target) = clean(&e.link) else {
                    return Ok(Outcome::Refused("link target has a `..` component".into()));
                };
                if target == rel {
                    return Ok(Outcome::Refused("hard link to itself".into()));
                }
                let tfd = match self
                    .root
                    .open_in(&target, OFlag::O_PATH | OFlag::O_NOFOLLOW)
                {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => {
                        return Ok(Outcome::Refused(format!(
                            "link target {} is not in the layer (yet)",
                            target.display()
                        )));
                    }
                    Err(err) => return Err(PlaceError::Sys("link target", err)),
                };
                let st = fstat(&tfd).map_err(sys("stat link target"))?;
                if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    return Ok(Outcome::Refused("hard link to a directory".into()));
                }
                let src = fd_path(&tfd);
                self.replace(dir, name, |d, n| {
                    linkat(AT_FDCWD, &src, d, n, AtFlags::AT_SYMLINK_FOLLOW)
                })
                .map_err(sys("link"))?;
                Ok(Outcome::Done)
            }
            Kind::Char | Kind::Block if !self.opts.privileged => {
                Ok(Outcome::Refused("device nodes need root".into()))
            }
            Kind::Char | Kind::Block | Kind::Fifo => {
                let kind = match e.kind {
                    Kind::Char => SFlag::S_IFCHR,
                    Kind::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = makedev(e.devmajor, e.devminor);
                self.replace(dir, name, |d, n| mknodat(d, n, kind, Mode::empty(), dev))
                    .map_err(sys("mknod"))?;
                self.owner_at(dir, name, e).map_err(sys("chown"))?;
                let mode = self.mode(e);
                fchmodat(dir, name, mode, FchmodatFlags::FollowSymlink).map_err(sys("chmod"))?;
                Ok(Outcome::Done)
            }
            Kind::Other(c) => Ok(Outcome::Refused(format!(
                "unsupported entry type {:?}",
                c as char
            ))),
        }
    }

    fn file(
        &mut self,
        dir: BorrowedFd,
        name: &OsStr,
        e: &tar::Entry,
        data: &mut impl Read,
    ) -> Result<Outcome, PlaceError> {
        let sys = |what| move |errno| PlaceError::Sys(what, errno);
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::from_bits_truncate(0o600);
        let fd = match openat(dir, name, flags, mode) {
            Err(Errno::EEXIST) => {
                self.remove(dir, name).map_err(sys("replace"))?;
                openat(dir, name, flags, mode)
            }
            r => r,
        }
        .map_err(sys("create"))?;
        let mut f = File::from(fd);
        let mut left = e.size;
        while left > 0 {
            let n = match data.read(&mut self.buf) {
                Ok(0) => return Err(PlaceError::Stream(ImageError::Tar("truncated file".into()))),
                Ok(n) => n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    return Err(PlaceError::Stream(super::digest::too_large_or(
                        err,
                        "read layer",
                        0,
                    )));
                }
            };
            f.write_all(&self.buf[..n]).map_err(|err| {
                PlaceError::Sys(
                    "write",
                    Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO)),
                )
            })?;
            left -= n as u64;
        }
        self.report.size += e.size;
        self.owner_fd(&f, e).map_err(sys("chown"))?;
        fchmod(&f, self.mode(e)).map_err(sys("chmod"))?;
        let keep = self.kept_xattrs(e);
        self.set_xattrs(&f, &keep, &e.path);
        let t = ts(e.mtime);
        futimens(&f, &t, &t).map_err(sys("set times"))?;
        Ok(Outcome::Done)
    }

    /// Run `make(dir, name)`; if `name` exists, remove it and run it again.
    fn replace(
        &mut self,
        dir: BorrowedFd,
        name: &OsStr,
        make: impl Fn(BorrowedFd, &OsStr) -> nix::Result<()>,
    ) -> nix::Result<()> {
        match make(dir, name) {
            Err(Errno::EEXIST) => {
                self.remove(dir, name)?;
                make(dir, name)
            }
            r => r,
        }
    }

    fn remove(&mut self, dir: BorrowedFd, name: &OsStr) -> nix::Result<()> {
        self.removals += 1;
        self.cache = None;
        remove_at(dir, name)
    }

    fn mode(&mut self, e: &tar::Entry) -> Mode {
        let mut m = e.mode & 0o7777;
        if self.opts.ids <= 1 && m & 0o6000 != 0 {
            self.refuse(
                &e.path,
                "setuid/setgid bits need root or subordinate ids (kept the rest of the mode)",
            );
            m &= !0o6000;
        }
        Mode::from_bits_truncate(m)
    }

    /// The owner to give the entry: `None` for root, or when owners cannot
    /// be kept; an id that does not exist here is refused (left to root).
    fn owner(&mut self, e: &tar::Entry) -> Option<(Uid, Gid)> {
        if self.opts.ids <= 1 || (e.uid == 0 && e.gid == 0) {
            return None;
        }
        // u32::MAX is the kernel's "no id" and never an owner.
        let limit = self.opts.ids.min(u64::from(u32::MAX));
        if e.uid >= limit || e.gid >= limit {
            self.refuse(
                &e.path,
                &format!(
                    "owner {}:{} out of range: {limit} ids exist here (left to root)",
                    e.uid, e.gid
                ),
            );
            return None;
        }
        // Both below u32::MAX.
        Some((Uid::from_raw(e.uid as u32), Gid::from_raw(e.gid as u32)))
    }

    fn owner_fd(&mut self, fd: &impl AsFd, e: &tar::Entry) -> nix::Result<()> {
        match self.owner(e) {
            Some((u, g)) => fchown(fd, Some(u), Some(g)),
            None => Ok(()),
        }
    }

    fn owner_at(&mut self, dir: BorrowedFd, name: &OsStr, e: &tar::Entry) -> nix::Result<()> {
        match self.owner(e) {
            Some((u, g)) => fchownat(dir, name, Some(u), Some(g), AtFlags::AT_SYMLINK_NOFOLLOW),
            None => Ok(()),
        }
    }

    fn kept_xattrs(&mut self, e: &tar::Entry) -> Vec<(String, Vec<u8>)> {
        let mut keep = Vec::new();
        for (k, v) in &e.xattrs {
            match xattr::allowed(k, self.opts.privileged) {
                Ok(()) => keep.push((k.clone(), v.clone())),
                Err(why) => self.refuse(&e.path, &format!("xattr {k}: {why}")),
            }
        }
        keep
    }

    fn set_xattrs(&mut self, fd: &impl AsFd, keep: &[(String, Vec<u8>)], path: &[u8]) {
        for (k, v) in keep {
            if let Err(err) = xattr::fset(fd, k, v) {
                self.refuse(path, &format!("xattr {k}: {err}"));
            }
        }
    }

    fn dir_meta(&mut self, rel: PathBuf, e: &tar::Entry) {
        let mode = self.mode(e).bits();
        let owner = self.owner(e);
        self.dirs.insert(
            rel,
            DirMeta {
                mode,
                owner,
                mtime: e.mtime,
            },
        );
    }

    fn finish(&mut self) -> Result<(), ImageError> {
        self.cache = None;
        let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
        for d in std::mem::take(&mut self.opaque) {
            let res = self
                .root
                .open_in(&d, dir_flags)
                .and_then(|fd| xattr::fset(&fd, xattr::OPAQUE, b"y"));
            if let Err(err) = res {
                let p = d.join(".wh..wh..opq");
                self.refuse(p.as_os_str().as_bytes(), &format!("opaque marker: {err}"));
            }
        }
        // Deepest first: setting a directory's mode may make it read-only.
        let dirs = std::mem::take(&mut self.dirs);
        for (rel, m) in dirs.iter().rev() {
            let res = self.root.open_in(rel, dir_flags).and_then(|fd| {
                if let Some((u, g)) = m.owner {
                    fchown(&fd, Some(u), Some(g))?;
                }
                fchmod(&fd, Mode::from_bits_truncate(m.mode))?;
                futimens(&fd, &ts(m.mtime), &ts(m.mtime))
            });
            match res {
                Ok(()) => {}
                Err(err) if fatal(err) => {
                    return Err(ImageError::Sys {
                        what: format!("{}: directory {}", self.label, rel.display()),
                        source: err,
                    });
                }
                Err(err) => {
                    self.refuse(
                        rel.as_os_str().as_bytes(),
                        &format!("directory metadata: {err}"),
                    );
                }
            }
        }
        Ok(())
    }
}

enum PlaceError {
    /// The tar stream failed: the layer is bad.
    Stream(ImageError),
    /// A syscall on this entry failed.
    Sys(&'static str, Errno),
}

/// Remove `name` in `dir` (recursively for a directory; directories are
/// made writable on the way, as a rootless owner needs). Never follows a
/// symlink.
pub fn remove_at(dir: BorrowedFd, name: &OsStr) -> nix::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Err(Errno::EISDIR) => {}
        r => return r,
    }
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    let fd = match fd {
        Ok(fd) => fd,
        Err(Errno::EACCES) => {
            fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(0o700),
                FchmodatFlags::FollowSymlink,
            )?;
            openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?
        }
        Err(e) => return Err(e),
    };
    let _ = fchmod(&fd, Mode::from_bits_truncate(0o700));
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let names: Vec<std::ffi::CString> = d
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for n in names {
        remove_at(d.as_fd(), OsStr::from_bytes(n.as_bytes()))?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

/// Remove the tree at `path` (a host path), never following symlinks in it.
pub fn remove_tree(path: &Path) -> nix::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().ok_or(Errno::EINVAL)?;
    let pfd = nix::fcntl::open(
        parent,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    match remove_at(pfd.as_fd(), name) {
        Err(Errno::ENOENT) => Ok(()),
        r => r,
    }
}

/// Whether `fd` (of a path) is a 0:0 character device: an overlay whiteout.
pub fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    meta.file_type().is_char_device() && meta.rdev() == 0
}
