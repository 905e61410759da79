//! `image bundle --flatten`: the layer stack copied into one plain
//! directory (whiteouts delete, opaque directories are emptied first), so
//! any runtime, runc included, can use the bundle. Every write goes through
//! a directory fd resolved inside the destination ([`Root`]).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens, mkdirat,
    mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat, linkat, symlinkat};

use super::extract::{Options, is_whiteout, remove_at};
use super::{ImageError, xattr};
use crate::fs::{Root, fd_path};

struct Flat<'a> {
    root: Root,
    opts: &'a Options,
    layer: &'a Path,
    links: HashMap<(u64, u64), PathBuf>,
    dirs: BTreeMap<PathBuf, std::fs::Metadata>,
}

/// Copy `layers` (bottom first) into the empty directory `dest`.
/// Owners are copied where they can be kept (`opts.ids` above 1).
pub fn flatten(layers: &[PathBuf], dest: &Path, opts: &Options) -> Result<(), ImageError> {
    let root = Root::open(dest).map_err(ImageError::sys(format!("open {}", dest.display())))?;
    let mut dirs = BTreeMap::new();
    let mut root = Some(root);
    for layer in layers {
        let mut f = Flat {
            root: root.take().expect("root"),
            opts,
            layer,
            links: HashMap::new(),
            dirs: std::mem::take(&mut dirs),
        };
        let res = f.copy_dir(Path::new(""));
        let layer_root = std::fs::symlink_metadata(layer);
        if let Ok(m) = layer_root {
            f.dirs.insert(PathBuf::new(), m);
        }
        dirs = std::mem::take(&mut f.dirs);
        root = Some(f.root);
        res?;
    }
    let root = root.expect("root");
    // Modes last, deepest first: a read-only directory is filled by then.
    for (rel, m) in dirs.iter().rev() {
        let res = root
            .open_in(
                rel,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
            )
            .and_then(|fd| {
                if opts.ids > 1 {
                    fchown(
                        &fd,
                        Some(Uid::from_raw(m.uid())),
                        Some(Gid::from_raw(m.gid())),
                    )?;
                }
                fchmod(&fd, Mode::from_bits_truncate(m.mode() & 0o7777))?;
                let t = TimeSpec::new(m.mtime(), 0);
                futimens(&fd, &t, &t)
            });
        if let Err(e) = res {
            log::warn!("flatten: directory {}: {e}", rel.display());
        }
    }
    Ok(())
}

fn err(what: &str, rel: &Path) -> impl FnOnce(Errno) -> ImageError {
    let what = format!("flatten: {what} {}", rel.display());
    move |source| ImageError::Sys { what, source }
}

impl Flat<'_> {
    fn copy_dir(&mut self, rel: &Path) -> Result<(), ImageError> {
        let src = self.layer.join(rel);
        let dfd = self
            .root
            .open_in(
                rel,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
            )
            .map_err(err("open", rel))?;
        let rd = std::fs::read_dir(&src).map_err(ImageError::io(src.display().to_string()))?;
        for e in rd {
            let e = e.map_err(ImageError::io(src.display().to_string()))?;
            let name = e.file_name();
            let r = rel.join(&name);
            let m = e
                .metadata()
                .map_err(ImageError::io(e.path().display().to_string()))?;
            self.copy_one(dfd.as_fd(), &name, &r, &e.path(), &m)?;
        }
        Ok(())
    }

    fn copy_one(
        &mut self,
        dir: BorrowedFd,
        name: &OsStr,
        rel: &Path,
        src: &Path,
        m: &std::fs::Metadata,
    ) -> Result<(), ImageError> {
        let ft = m.file_type();
        let gone = |r: nix::Result<()>| match r {
            Err(Errno::ENOENT) => Ok(()),
            r => r,
        };
        if is_whiteout(m) {
            return gone(remove_at(dir, name)).map_err(err("delete", rel));
        }
        if ft.is_dir() {
            let existing = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW);
            match existing {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                    let opaque = xattr::lget(src, xattr::OPAQUE).ok().flatten();
                    if opaque.is_some_and(|v| v == b"y") {
                        self.empty(dir, name, rel)?;
                    }
                }
                Ok(_) => {
                    remove_at(dir, name).map_err(err("replace", rel))?;
                    mkdirat(dir, name, Mode::from_bits_truncate(0o700))
                        .map_err(err("mkdir", rel))?;
                }
                Err(_) => mkdirat(dir, name, Mode::from_bits_truncate(0o700))
                    .map_err(err("mkdir", rel))?,
            }
            self.dirs.insert(rel.to_path_buf(), m.clone());
            self.copy_xattrs_path(src, dir, name, rel);
            return self.copy_dir(rel);
        }
        gone(remove_at(dir, name)).map_err(err("replace", rel))?;
        if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                    let t = self
                        .root
                        .open_in(first, OFlag::O_PATH | OFlag::O_NOFOLLOW)
                        .map_err(err("link", rel))?;
                    return linkat(
                        AT_FDCWD,
                        &fd_path(&t),
                        dir,
                        name,
                        AtFlags::AT_SYMLINK_FOLLOW,
                    )
                    .map_err(err("link", rel));
                }
                self.links.insert((m.dev(), m.ino()), rel.to_path_buf());
            }
            let mut input = File::open(src).map_err(ImageError::io(src.display().to_string()))?;
            let fd = openat(
                dir,
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(err("create", rel))?;
            let mut out = File::from(fd);
            std::io::copy(&mut input, &mut out)
                .map_err(ImageError::io(format!("flatten: copy {}", rel.display())))?;
            if self.opts.ids > 1 {
                fchown(
                    &out,
                    Some(Uid::from_raw(m.uid())),
                    Some(Gid::from_raw(m.gid())),
                )
                .map_err(err("chown", rel))?;
            }
            fchmod(&out, Mode::from_bits_truncate(m.mode() & 0o7777)).map_err(err("chmod", rel))?;
            for (k, v) in self.xattrs(src) {
                if let Err(e) = xattr::fset(&out, &k, &v) {
                    log::warn!("flatten: {}: xattr {k}: {e}", rel.display());
                }
            }
            let t = TimeSpec::new(m.mtime(), 0);
            return futimens(&out, &t, &t).map_err(err("set times", rel));
        }
        if ft.is_symlink() {
            let target =
                std::fs::read_link(src).map_err(ImageError::io(src.display().to_string()))?;
            symlinkat(&target, dir, name).map_err(err("symlink", rel))?;
        } else {
            let kind = if ft.is_fifo() {
                SFlag::S_IFIFO
            } else if ft.is_char_device() {
                SFlag::S_IFCHR
            } else if ft.is_block_device() {
                SFlag::S_IFBLK
            } else {
                log::warn!("flatten: skipped socket {}", rel.display());
                return Ok(());
            };
            mknodat(dir, name, kind, Mode::empty(), m.rdev()).map_err(err("mknod", rel))?;
            fchmodat(
                dir,
                name,
                Mode::from_bits_truncate(m.mode() & 0o7777),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(err("chmod", rel))?;
        }
        if self.opts.ids > 1 {
            fchownat(
                dir,
                name,
                Some(Uid::from_raw(m.uid())),
                Some(Gid::from_raw(m.gid())),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(err("chown", rel))?;
        }
        let t = TimeSpec::new(m.mtime(), 0);
        utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(err("set times", rel))
    }

    /// Remove what the lower layers put in directory `name`.
    fn empty(&mut self, dir: BorrowedFd, name: &OsStr, rel: &Path) -> Result<(), ImageError> {
        let fd = openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(err("open", rel))?;
        let _ = fchmod(&fd, Mode::from_bits_truncate(0o700));
        let mut d = nix::dir::Dir::from_fd(fd).map_err(err("read", rel))?;
        let names: Vec<Vec<u8>> = d
            .iter()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_bytes().to_vec())
            .filter(|n| n != b"." && n != b"..")
            .collect();
        for n in names {
            remove_at(d.as_fd(), OsStr::from_bytes(&n)).map_err(err("empty", rel))?;
        }
        self.dirs.retain(|k, _| !k.starts_with(rel) || k == rel);
        Ok(())
    }

    fn xattrs(&self, src: &Path) -> Vec<(String, Vec<u8>)> {
        let names = xattr::llist(src).unwrap_or_default();
        names
            .into_iter()
            .filter(|n| xattr::allowed(n, self.opts.privileged).is_ok())
            .filter_map(|n| xattr::lget(src, &n).ok().flatten().map(|v| (n, v)))
            .collect()
    }

    fn copy_xattrs_path(&self, src: &Path, dir: BorrowedFd, name: &OsStr, rel: &Path) {
        let list = self.xattrs(src);
        if list.is_empty() {
            return;
        }
        let fd = openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        match fd {
            Ok(fd) => {
                for (k, v) in list {
                    if let Err(e) = xattr::fset(&fd, &k, &v) {
                        log::warn!("flatten: {}: xattr {k}: {e}", rel.display());
                    }
                }
            }
            Err(e) => log::warn!("flatten: {}: {e}", rel.display()),
        }
    }
}
