//! `COPY` and `ADD`: the sources (from the context after `.dockerignore`,
//! from a stage or an image with `--from`, or a heredoc) are listed and
//! hashed for the cache key; on a miss they are written into a fresh
//! directory, which becomes the layer (no container). Docker's rules: a
//! directory source copies its contents; several sources, or a glob, need a
//! destination ending in `/`; a destination that ends in `/` or is a
//! directory in the image receives the sources under their names; missing
//! parents of the destination are made (with the image's metadata when the
//! image has them). Context files are owned by root unless `--chown`.
//! `ADD` of a local tar (plain or gzip) extracts it; URLs are refused.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, fchmod, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, fchown, fchownat, symlinkat};
use sha2::{Digest as _, Sha256};

use super::ast;
use super::merged::{Merged, Node};
use super::stage::{Scope, Stage, join_abs};
use super::{BuildError, cache, commit, vars};
use crate::fs::Root;
use crate::image::store::LayerRecord;

/// Where a source entry comes from.
#[derive(Debug, Clone)]
enum Src {
    File(PathBuf),
    Dir(PathBuf),
    Symlink(PathBuf),
    Inline(String),
    /// A tar archive `ADD` extracts.
    Tar(PathBuf),
}

/// One entry to write: its absolute path in the image, its source, mode
/// and (when not the source's own) owner.
#[derive(Debug, Clone)]
struct Item {
    dest: String,
    src: Src,
    mode: u32,
    owner: Option<(u32, u32)>,
}

fn err(msg: impl Into<String>) -> BuildError {
    BuildError::plan(msg)
}

/// Copy (or take from the cache: returns true then).
pub fn copy(
    b: &Scope,
    st: &mut Stage,
    c: &ast::Copy,
    add: bool,
    _label: &str,
) -> Result<bool, BuildError> {
    let r = Request::new(b, st, c, add)?;
    let tops = r.tops(st)?;
    let items = r.items(tops)?;
    let hash = hash_items(&items)?;
    let word = if add { "ADD" } else { "COPY" };
    let created_by = r.created_by(word);
    let key = cache::key(&st.key, &[word, &created_by, &hash, &r.origin.key()]);
    let (e, hit) = cache::through(b.store, !b.opts.no_cache, &key, created_by, || {
        write_layer(b, items, r.here)
    })?;
    st.add_layer(key, e);
    Ok(hit)
}

/// `RUN --mount=type=bind,source=PATH`: the context path to bind (refused
/// outside the context) and the hash of what it holds, for the step's key.
pub fn bind_source(b: &Scope, source: &str) -> Result<(PathBuf, String), BuildError> {
    let ctx = fs::canonicalize(&b.opts.context).map_err(|e| err(format!("build context: {e}")))?;
    let origin = Origin::Context(ctx.clone(), super::context::Ignore::load(&ctx)?);
    let rel = clean_source(source)?;
    let mut items = Vec::new();
    for (_, src, meta, _) in origin.sources(&rel)? {
        let mode = meta.mode() & 0o7777;
        if let Src::Dir(p) = &src {
            origin.walk(p, "/", None, None, &mut items)?;
        }
        items.push(Item {
            dest: "/".into(),
            src,
            mode,
            owner: None,
        });
    }
    Ok((ctx.join(&rel), hash_items(&items)?))
}

/// Write `items` into a fresh directory and commit it as a layer.
fn write_layer(b: &Scope, items: Vec<Item>, here: Merged) -> Result<LayerRecord, BuildError> {
    let dir = commit::tmp_path(b.store, "copy");
    fs::create_dir(&dir).map_err(crate::image::ImageError::io("create the COPY layer"))?;
    let res = commit::commit_dir(b.store, &dir, move |d| write_items(d, &items, &here));
    commit::remove_mapped(&dir);
    res
}

/// A COPY or ADD with its words substituted.
struct Request<'a> {
    c: &'a ast::Copy,
    add: bool,
    sources: Vec<String>,
    dest_word: String,
    /// The destination, absolute.
    dest: String,
    chown: Option<String>,
    chmod: Option<u32>,
    /// `--chown` resolved in the stage.
    owner: Option<(u32, u32)>,
    /// The stage's files (destination metadata, names).
    here: Merged,
    origin: Origin,
}

impl<'a> Request<'a> {
    fn new(b: &Scope, st: &Stage, c: &'a ast::Copy, add: bool) -> Result<Request<'a>, BuildError> {
        let vars = st.vars();
        let x = |w: &str| vars::expand(w, &vars, st.escape);
        let sources: Vec<String> = c.sources.iter().map(|s| x(s)).collect::<Result<_, _>>()?;
        let dest_word = x(&c.dest)?;
        let chown = c.chown.as_deref().map(x).transpose()?;
        let chmod = c
            .chmod
            .as_deref()
            .map(x)
            .transpose()?
            .map(|m| parse_mode(&m))
            .transpose()?;
        let here = Merged::new(st.layer_roots(b.store));
        let owner = chown
            .as_deref()
            .map(|spec| here.resolve_owner(spec).map_err(err))
            .transpose()?;
        Ok(Request {
            c,
            add,
            dest: join_abs(&st.workdir(), &dest_word),
            sources,
            dest_word,
            chown,
            chmod,
            owner,
            here,
            origin: origin(b, st, c)?,
        })
    }

    /// What the sources name (heredocs, context paths, stage paths).
    fn tops(&self, st: &Stage) -> Result<Vec<Top>, BuildError> {
        let mut tops = Vec::new();
        for s in &self.sources {
            if let Some(name) = s.strip_prefix("<<") {
                tops.push(self.heredoc(st, name)?);
                continue;
            }
            let remote = ["http://", "https://", "git@"];
            if self.add && remote.iter().any(|p| s.starts_with(p)) {
                return Err(err(format!(
                    "ADD {s}: remote sources are not supported: download them in a RUN step"
                )));
            }
            tops.extend(self.origin.sources(s)?);
        }
        Ok(tops)
    }

    fn heredoc(&self, st: &Stage, name: &str) -> Result<Top, BuildError> {
        let h = self
            .c
            .heredocs
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| err(format!("no heredoc {name}")))?;
        let content = if h.expand {
            st.expand(&h.content)?
        } else {
            h.content.clone()
        };
        let meta = fs::metadata("/").map_err(|e| err(e.to_string()))?;
        Ok((name.to_string(), Src::Inline(content), meta, None))
    }

    /// Whether the destination is an existing directory of the stage.
    fn dest_is_dir(&self) -> bool {
        matches!(self.here.lookup(&self.dest, true), Some(Node::Dir(_)))
    }

    /// Every entry to write, parents first.
    fn items(&self, tops: Vec<Top>) -> Result<Vec<Item>, BuildError> {
        let slash = self.dest_word.ends_with('/') || self.dest_word == ".";
        if tops.len() > 1 && !slash && !self.dest_is_dir() {
            return Err(err(format!(
                "copying several sources needs a destination ending in /, not {:?}",
                self.dest_word
            )));
        }
        let into_dir = slash || tops.len() > 1 || self.dest_is_dir();
        let own = self.owner.or(self.origin.default_owner());
        let mut items = Vec::new();
        for (name, src, meta, dirs) in tops {
            let mode = self.chmod.unwrap_or(meta.mode() & 0o7777);
            match &src {
                Src::Dir(p) => {
                    items.push(self.dest_dir_item(p)?);
                    match &dirs {
                        Some(d) => walk_dirs(d, &self.dest, self.chmod, own, &mut items),
                        None => self
                            .origin
                            .walk(p, &self.dest, self.chmod, own, &mut items)?,
                    }
                }
                Src::File(p) if self.add && is_tar(p) => items.push(Item {
                    dest: self.dest.clone(),
                    src: Src::Tar(p.clone()),
                    mode,
                    owner: own,
                }),
                _ => {
                    let dest = if into_dir {
                        join_abs(&self.dest, &name)
                    } else {
                        self.dest.clone()
                    };
                    let mode = match src {
                        Src::Inline(_) => self.chmod.unwrap_or(0o644),
                        _ => mode,
                    };
                    items.push(Item {
                        dest,
                        src,
                        mode,
                        owner: own,
                    });
                }
            }
        }
        Ok(items)
    }

    /// The destination of a directory source: its contents are copied, the
    /// directory keeps the image's metadata, or is made 0755 (root, or
    /// `--chown`). An existing directory's owner is read where the items
    /// are written (rootless: in the mapped namespace).
    fn dest_dir_item(&self, src: &Path) -> Result<Item, BuildError> {
        let (meta_src, mode, default_owner) = match self.here.lookup(&self.dest, true) {
            // `/` of a stage with no layer yet (`FROM scratch`) has none.
            Some(Node::Dir(d)) if !d.is_empty() => {
                let m = fs::symlink_metadata(&d[0]).map_err(|e| err(e.to_string()))?;
                (d[0].clone(), m.mode() & 0o7777, None)
            }
            _ => (src.to_path_buf(), 0o755, Some((0, 0))),
        };
        Ok(Item {
            dest: self.dest.clone(),
            src: Src::Dir(meta_src),
            mode: self.chmod.unwrap_or(mode),
            owner: self.owner.or(default_owner),
        })
    }

    /// The history's `created_by`, as BuildKit writes it.
    fn created_by(&self, word: &str) -> String {
        let c = self.c;
        let mut shown = Vec::new();
        if let Some(f) = &c.from {
            shown.push(format!("--from={f}"));
        }
        if let Some(o) = &self.chown {
            shown.push(format!("--chown={o}"));
        }
        if let Some(m) = &c.chmod {
            shown.push(format!("--chmod={m}"));
        }
        shown.extend(self.sources.iter().cloned());
        shown.push(self.dest_word.clone());
        format!("{word} {} # buildkit", shown.join(" "))
    }
}

/// `--chmod=MODE`: octal, at most 7777.
fn parse_mode(m: &str) -> Result<u32, BuildError> {
    u32::from_str_radix(m, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| err(format!("--chmod={m}: not an octal mode")))
}

/// A top-level source: its name, what it is, its metadata, and for a
/// directory of a stage or image its directory in each layer.
type Top = (String, Src, fs::Metadata, Option<Vec<PathBuf>>);

/// Where sources are read.
enum Origin {
    /// The context directory, with its ignore rules.
    Context(PathBuf, super::context::Ignore),
    /// A stage or an image: its merged layers, and a key for the cache.
    Layers(Merged, String),
}

fn origin(b: &Scope, st: &Stage, c: &ast::Copy) -> Result<Origin, BuildError> {
    let Some(from) = &c.from else {
        let ctx =
            fs::canonicalize(&b.opts.context).map_err(|e| err(format!("build context: {e}")))?;
        let ignore = super::context::Ignore::load(&ctx)?;
        return Ok(Origin::Context(ctx, ignore));
    };
    let from = st.expand(from)?;
    if let Some(j) = b.stage_index(&from, st.index) {
        let s = b
            .stage_done(j)
            .ok_or_else(|| err(format!("stage {from:?} is not built")))?;
        return Ok(Origin::Layers(
            Merged::new(s.layer_roots(b.store)),
            s.key.to_string(),
        ));
    }
    let rec = b.image(&from)?;
    let layers: Vec<PathBuf> = rec
        .layers
        .iter()
        .rev()
        .map(|l| b.store.layer_root(&l.diff_id))
        .collect();
    Ok(Origin::Layers(Merged::new(layers), rec.config.to_string()))
}

/// Whether `s` has glob characters.
fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Origin {
    fn key(&self) -> String {
        match self {
            Origin::Context(..) => "context".into(),
            Origin::Layers(_, k) => k.clone(),
        }
    }

    /// Context files belong to root unless `--chown`; layer files keep
    /// their owners.
    fn default_owner(&self) -> Option<(u32, u32)> {
        match self {
            Origin::Context(..) => Some((0, 0)),
            Origin::Layers(..) => None,
        }
    }

    /// The entries a source names: (name, source, metadata).
    fn sources(&self, s: &str) -> Result<Vec<Top>, BuildError> {
        match self {
            Origin::Context(ctx, ignore) => {
                let rel = clean_source(s)?;
                let mut found = Vec::new();
                if is_glob(&rel) {
                    glob(ctx, Path::new(""), &rel, ignore, &mut found)?;
                    if found.is_empty() {
                        return Err(err(format!("no file in the build context matches {s:?}")));
                    }
                } else {
                    let p = ctx.join(&rel);
                    if ignore.ignored(&rel) || fs::symlink_metadata(&p).is_err() {
                        return Err(err(format!(
                            "{s}: not found in the build context (or excluded by .dockerignore)"
                        )));
                    }
                    found.push(PathBuf::from(&rel));
                }
                found
                    .into_iter()
                    .map(|rel| {
                        let p = ctx.join(&rel);
                        let m = fs::symlink_metadata(&p).map_err(|e| err(format!("{s}: {e}")))?;
                        let name = p
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        Ok((name, kind(&p, &m), m, None))
                    })
                    .collect()
            }
            Origin::Layers(m, _) => {
                let node = m
                    .lookup(s, true)
                    .ok_or_else(|| err(format!("{s}: not found in the source stage or image")))?;
                let name = Path::new(s)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let meta = node
                    .meta()
                    .ok_or_else(|| err(format!("{s}: cannot read it")))?;
                Ok(vec![match node {
                    Node::Dir(d) => (name, Src::Dir(d[0].clone()), meta, Some(d)),
                    Node::Other(p, m) => (name, kind(&p, &m), meta, None),
                }])
            }
        }
    }

    /// The contents of the context directory `p` as items under `dest`.
    fn walk(
        &self,
        p: &Path,
        dest: &str,
        chmod: Option<u32>,
        owner: Option<(u32, u32)>,
        out: &mut Vec<Item>,
    ) -> Result<(), BuildError> {
        let Origin::Context(ctx, ignore) = self else {
            return Err(err("internal: a stage directory walked as the context"));
        };
        let rd = fs::read_dir(p).map_err(|e| err(format!("read {}: {e}", p.display())))?;
        let mut entries = Vec::new();
        for e in rd {
            let e = e.map_err(|e| err(e.to_string()))?;
            let path = e.path();
            let rel = path
                .strip_prefix(ctx)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if ignore.ignored(&rel) {
                continue;
            }
            let m = fs::symlink_metadata(&path).map_err(|e| err(e.to_string()))?;
            entries.push((e.file_name().to_string_lossy().into_owned(), path, m));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, path, m) in entries {
            let d = join_abs(dest, &name);
            let mode = chmod.unwrap_or(m.mode() & 0o7777);
            let src = kind(&path, &m);
            out.push(Item {
                dest: d.clone(),
                src: src.clone(),
                mode,
                owner,
            });
            if let Src::Dir(_) = src {
                self.walk(&path, &d, chmod, owner, out)?;
            }
        }
        Ok(())
    }
}

/// A merged directory of a stage or image (its layers' directories) as
/// items under `dest`.
fn walk_dirs(
    dirs: &[PathBuf],
    dest: &str,
    chmod: Option<u32>,
    owner: Option<(u32, u32)>,
    out: &mut Vec<Item>,
) {
    for (name, node) in Merged::list(dirs) {
        let Some(m) = node.meta() else { continue };
        let d = join_abs(dest, &name);
        let mode = chmod.unwrap_or(m.mode() & 0o7777);
        match node {
            Node::Dir(sub) => {
                out.push(Item {
                    dest: d.clone(),
                    src: Src::Dir(sub[0].clone()),
                    mode,
                    owner,
                });
                walk_dirs(&sub, &d, chmod, owner, out);
            }
            Node::Other(p, m) => out.push(Item {
                dest: d,
                src: kind(&p, &m),
                mode,
                owner,
            }),
        }
    }
}

fn kind(p: &Path, m: &fs::Metadata) -> Src {
    if m.is_dir() {
        Src::Dir(p.to_path_buf())
    } else if m.file_type().is_symlink() {
        Src::Symlink(p.to_path_buf())
    } else {
        Src::File(p.to_path_buf())
    }
}

/// A context source made relative and clean; refused if it leaves the
/// context.
fn clean_source(s: &str) -> Result<String, BuildError> {
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(s.trim_start_matches('/')).components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::ParentDir if parts.pop().is_none() => {
                return Err(err(format!(
                    "{s}: outside the build context (COPY reads only the context)"
                )));
            }
            _ => {}
        }
    }
    Ok(parts.join("/"))
}

/// Context paths matching the glob `pattern` (component by component),
/// through real directories only.
fn glob(
    ctx: &Path,
    dir: &Path,
    pattern: &str,
    ignore: &super::context::Ignore,
    out: &mut Vec<PathBuf>,
) -> Result<(), BuildError> {
    let (first, rest) = match pattern.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (pattern, None),
    };
    let abs = ctx.join(dir);
    let mut names: Vec<String> = match fs::read_dir(&abs) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => return Ok(()),
    };
    names.sort();
    for n in names {
        if !super::context::glob_match(first, &n) {
            continue;
        }
        let rel = dir.join(&n);
        if ignore.ignored(&rel.to_string_lossy()) {
            continue;
        }
        match rest {
            None => out.push(rel),
            Some(r) => {
                if fs::symlink_metadata(ctx.join(&rel)).is_ok_and(|m| m.is_dir()) {
                    glob(ctx, &rel, r, ignore, out)?;
                }
            }
        }
    }
    Ok(())
}

fn is_tar(p: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = File::open(p) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    (n >= 2 && head[..2] == [0x1f, 0x8b]) || (n >= 262 && &head[257..262] == b"ustar")
}

/// The content hash of what a COPY writes (paths, kinds, modes, owners,
/// link targets, file bytes).
fn hash_items(items: &[Item]) -> Result<String, BuildError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    for it in items {
        h.update(it.dest.as_bytes());
        h.update(format!("\0{:o}\0{:?}\0", it.mode, it.owner).as_bytes());
        match &it.src {
            Src::File(p) | Src::Tar(p) => {
                h.update(b"f");
                let mut f = File::options()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(p)
                    .map_err(|e| err(format!("read {}: {e}", p.display())))?;
                loop {
                    let n = f
                        .read(&mut buf)
                        .map_err(|e| err(format!("read {}: {e}", p.display())))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            }
            Src::Dir(_) => h.update(b"d"),
            Src::Symlink(p) => {
                h.update(b"l");
                let t = fs::read_link(p).map_err(|e| err(e.to_string()))?;
                h.update(t.as_os_str().as_encoded_bytes());
            }
            Src::Inline(s) => {
                h.update(b"i");
                h.update(s.as_bytes());
            }
        }
        h.update(b"\n");
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Write the items into the fresh layer directory `d` (run with the
/// subordinate ids when rootless). Every path is resolved inside `d`.
fn write_items(d: &Path, items: &[Item], image: &Merged) -> Result<(), String> {
    let root = Root::open(d).map_err(|e| format!("open {}: {e}", d.display()))?;
    for it in items {
        let rel = it.dest.trim_start_matches('/');
        if rel.is_empty() {
            if let Src::Dir(_) = it.src {
                continue;
            }
            return Err("cannot copy a file onto /".into());
        }
        let (parent, name) = match rel.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", rel),
        };
        make_parents(&root, parent, image)?;
        let pfd = root
            .resolve(Path::new(parent))
            .map_err(|e| format!("resolve /{parent}: {e}"))?;
        write_one(pfd.as_fd(), name, it, d).map_err(|e| format!("write {}: {e}", it.dest))?;
    }
    Ok(())
}

/// Make the missing parents of a destination, with the image's metadata
/// when the image has that directory (else 0755 root).
fn make_parents(root: &Root, parent: &str, image: &Merged) -> Result<(), String> {
    let mut sofar = String::new();
    for c in parent.split('/').filter(|c| !c.is_empty()) {
        let at = root
            .resolve(Path::new(&sofar))
            .map_err(|e| format!("resolve /{sofar}: {e}"))?;
        if !sofar.is_empty() {
            sofar.push('/');
        }
        sofar.push_str(c);
        if fstatat(at.as_fd(), c, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok() {
            continue;
        }
        let (mode, uid, gid) = match image
            .lookup(&format!("/{sofar}"), true)
            .and_then(|n| n.meta())
        {
            Some(m) if m.is_dir() => (m.mode() & 0o7777, m.uid(), m.gid()),
            _ => (0o755, 0, 0),
        };
        mkdirat(at.as_fd(), c, Mode::from_bits_truncate(0o700))
            .map_err(|e| format!("mkdir /{sofar}: {e}"))?;
        let fd = openat(
            at.as_fd(),
            c,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("open /{sofar}: {e}"))?;
        set_owner_mode(fd.as_fd(), Some((uid, gid)), mode).map_err(|e| format!("/{sofar}: {e}"))?;
    }
    Ok(())
}

fn set_owner_mode(fd: BorrowedFd, owner: Option<(u32, u32)>, mode: u32) -> nix::Result<()> {
    if let Some((u, g)) = owner {
        fchown(fd, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))?;
    }
    fchmod(fd, Mode::from_bits_truncate(mode))
}

/// The owner of an item: its own, or the source file's (as this process
/// sees it: inside the mapped namespace, the image's ids).
fn owner_of(it: &Item, src: &Path) -> Option<(u32, u32)> {
    it.owner
        .or_else(|| fs::symlink_metadata(src).ok().map(|m| (m.uid(), m.gid())))
}

fn write_one(parent: BorrowedFd, name: &str, it: &Item, layer: &Path) -> Result<(), String> {
    let existing = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
    let is_dir = |st: &nix::sys::stat::FileStat| st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let wants_dir = matches!(it.src, Src::Dir(_) | Src::Tar(_));
    if let Some(st) = &existing
        && !(wants_dir && is_dir(st))
    {
        crate::image::extract::remove_at(parent, std::ffi::OsStr::new(name))
            .map_err(|e| e.to_string())?;
    }
    let e = |e: nix::Error| e.to_string();
    match &it.src {
        Src::Dir(p) => {
            if existing.as_ref().is_none_or(|s| !is_dir(s)) {
                mkdirat(parent, name, Mode::from_bits_truncate(0o700)).map_err(e)?;
            }
            let fd = openat(
                parent,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(e)?;
            set_owner_mode(fd.as_fd(), owner_of(it, p), it.mode).map_err(e)?;
        }
        Src::Tar(p) => {
            if existing.is_none() {
                mkdirat(parent, name, Mode::from_bits_truncate(0o755)).map_err(e)?;
            }
            let fd = openat(
                parent,
                name,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(e)?;
            let dir = crate::fs::fd_path(&fd);
            let _ = layer;
            extract_archive(p, &dir)?;
        }
        Src::Symlink(p) => {
            let target = fs::read_link(p).map_err(|e| e.to_string())?;
            symlinkat(target.as_path(), parent, name).map_err(e)?;
            if let Some((u, g)) = owner_of(it, p) {
                fchownat(
                    parent,
                    name,
                    Some(Uid::from_raw(u)),
                    Some(Gid::from_raw(g)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(e)?;
            }
        }
        Src::File(p) => {
            let mut out = create_new(parent, name).map_err(e)?;
            let mut src = File::options()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(p)
                .map_err(|e| e.to_string())?;
            std::io::copy(&mut src, &mut out).map_err(|e| e.to_string())?;
            let mtime = src.metadata().map(|m| m.mtime()).unwrap_or(0);
            set_owner_mode(out.as_fd(), owner_of(it, p), it.mode).map_err(e)?;
            let t = nix::sys::time::TimeSpec::new(mtime, 0);
            let _ = nix::sys::stat::futimens(out.as_fd(), &t, &t);
        }
        Src::Inline(s) => {
            let mut out = create_new(parent, name).map_err(e)?;
            std::io::Write::write_all(&mut out, s.as_bytes()).map_err(|e| e.to_string())?;
            set_owner_mode(out.as_fd(), it.owner.or(Some((0, 0))), it.mode).map_err(e)?;
        }
    }
    Ok(())
}

/// A new regular file `name` in `parent` (mode 0600 until its owner and
/// mode are set), opened for writing; never through a symlink, never an
/// existing file.
fn create_new(parent: BorrowedFd, name: &str) -> nix::Result<File> {
    let fd = openat(
        parent,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    Ok(File::from(fd))
}

/// `ADD` of a local archive: extracted (plain tar or gzip) into `dir`.
fn extract_archive(p: &Path, dir: &Path) -> Result<(), String> {
    let f = File::open(p).map_err(|e| format!("open {}: {e}", p.display()))?;
    let mut r = BufReader::new(f);
    let gz = {
        use std::io::BufRead;
        r.fill_buf()
            .map(|b| b.starts_with(&[0x1f, 0x8b]))
            .unwrap_or(false)
    };
    let stream: Box<dyn Read> = if gz {
        Box::new(flate2::bufread::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let opts = crate::image::extract_options();
    crate::image::extract::extract(stream, dir, &opts, &p.display().to_string())
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_stay_in_the_context() {
        assert_eq!(clean_source("./a/../b").unwrap(), "b");
        assert_eq!(clean_source("/etc/passwd").unwrap(), "etc/passwd");
        assert!(clean_source("../secret").is_err());
        assert!(clean_source("a/../../x").is_err());
    }
}
