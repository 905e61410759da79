//! A layer directory (in overlay's own format, as the store keeps layers)
//! packed into an uncompressed layer tar, the inverse of `extract`: a 0:0
//! character device `NAME` becomes the whiteout `.wh.NAME`, a directory
//! with `user.overlay.opaque=y` is followed by `.wh..wh..opq`, overlay's own
//! xattrs are dropped and the others kept (PAX `SCHILY.xattr.*`). Entries
//! are written in a fixed order (names sorted bytewise, each directory
//! before its contents) so the same tree always gives the same tar; hard
//! links become link entries to the first path of their inode.
//!
//! The tree is read with `lstat` and files are opened with `O_NOFOLLOW`:
//! a symlink in the tree is packed as a symlink, never followed. The tree
//! must not change while it is packed (a container's upper directory after
//! the container is gone).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};

use sha2::{Digest as _, Sha256};

use super::digest::Digest;
use super::extract::{Report, is_whiteout};
use super::{ImageError, show, xattr};

/// The media type of the uncompressed layers ferry writes.
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// What packing produced: the tar's digest (the layer's diff_id) and
/// size, and what the layer holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Packed {
    pub diff_id: Digest,
    pub tar_size: u64,
    pub report: Report,
}

/// The size of the chunks handed from thread to thread.
const CHUNK: usize = 1 << 20;

/// A full-size buffer and how much of it is used.
type Chunk = (Vec<u8>, usize);

/// Counts what is written and hands it in chunks to a hashing thread,
/// which hands them on to a writing thread: reading the tree, hashing and
/// writing the tar overlap (a commit costs about what `tar -c` does).
struct Pipe {
    count: u64,
    chunk: Chunk,
    tx: Option<SyncSender<Chunk>>,
    /// Chunks the writer is done with, to reuse.
    spare: Receiver<Vec<u8>>,
}

impl Pipe {
    fn send(&mut self) -> io::Result<()> {
        let next = self.spare.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
        let full = std::mem::replace(&mut self.chunk, (next, 0));
        self.tx
            .as_ref()
            .expect("open until the end")
            .send(full)
            .map_err(|_| io::Error::other("the layer writer stopped"))
    }

    /// Copy `len` bytes of `f` in, reading straight into the chunks.
    fn copy_from(&mut self, f: &mut impl Read, mut len: u64) -> io::Result<u64> {
        let mut total = 0;
        while len > 0 {
            let (buf, used) = &mut self.chunk;
            let want = (CHUNK - *used).min(usize::try_from(len).unwrap_or(CHUNK));
            let n = f.read(&mut buf[*used..*used + want])?;
            if n == 0 {
                break;
            }
            *used += n;
            len -= n as u64;
            total += n as u64;
            self.count += n as u64;
            if *used == CHUNK {
                self.send()?;
            }
        }
        Ok(total)
    }
}

impl Write for Pipe {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let (buf, used) = &mut self.chunk;
        let n = (CHUNK - *used).min(data.len());
        buf[*used..*used + n].copy_from_slice(&data[..n]);
        *used += n;
        self.count += n as u64;
        if *used == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.chunk.1 == 0 {
            return Ok(());
        }
        self.send()
    }
}

/// Pack the layer directory `dir` as a tar into `out` (hashed and written
/// by two more threads).
pub fn pack<W: Write + Send>(dir: &Path, mut out: W) -> Result<Packed, ImageError> {
    let (tx, rx) = sync_channel::<Chunk>(4);
    let (wtx, wrx) = sync_channel::<Chunk>(4);
    let (spare_tx, spare_rx) = channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let hasher = s.spawn(move || {
            let mut h = Sha256::new();
            for c in rx {
                h.update(&c.0[..c.1]);
                if wtx.send(c).is_err() {
                    break;
                }
            }
            h.finalize()
        });
        let writer = s.spawn(move || -> io::Result<()> {
            for (c, used) in wrx {
                out.write_all(&c[..used])?;
                let _ = spare_tx.send(c);
            }
            out.flush()
        });
        let mut p = Packer {
            out: Pipe {
                count: 0,
                chunk: (vec![0; CHUNK], 0),
                tx: Some(tx),
                spare: spare_rx,
            },
            links: HashMap::new(),
            report: Report::default(),
        };
        let w = |e| ImageError::io("write the layer tar")(e);
        let res = p.dir(dir, b"").and_then(|()| {
            p.out.write_all(&[0u8; 1024]).map_err(w)?;
            p.out.flush().map_err(w)
        });
        drop(p.out.tx.take());
        let hash = hasher.join().expect("the layer hasher does not panic");
        let written = writer.join().expect("the layer writer does not panic");
        res?;
        written.map_err(w)?;
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Packed {
            diff_id: Digest::from_hex(&hex).expect("sha256 hex"),
            tar_size: p.out.count,
            report: p.report,
        })
    })
}

/// Pack `dir` into the file `path` (created, or truncated).
pub fn pack_to_file(dir: &Path, path: &Path) -> Result<Packed, ImageError> {
    let f = File::create(path).map_err(ImageError::io(format!("create {}", show(path))))?;
    pack(dir, f)
}

struct Packer {
    out: Pipe,
    /// (dev, ino) of files with more than one link -> first tar path.
    links: HashMap<(u64, u64), Vec<u8>>,
    report: Report,
}

/// One tar header's fields.
struct Header<'a> {
    path: &'a [u8],
    kind: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: i64,
    link: &'a [u8],
    dev: (u64, u64),
    xattrs: Vec<(String, Vec<u8>)>,
}

impl Packer {
    fn dir(&mut self, abs: &Path, rel: &[u8]) -> Result<(), ImageError> {
        let mut names: Vec<_> = fs::read_dir(abs)
            .map_err(ImageError::io(format!("read {}", show(abs))))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(ImageError::io(format!("read {}", show(abs))))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let path = abs.join(&name);
            let mut r = rel.to_vec();
            if !r.is_empty() {
                r.push(b'/');
            }
            r.extend_from_slice(name.as_bytes());
            self.entry(&path, &r)?;
        }
        Ok(())
    }

    fn entry(&mut self, abs: &Path, rel: &[u8]) -> Result<(), ImageError> {
        let m = fs::symlink_metadata(abs).map_err(ImageError::io(format!("stat {}", show(abs))))?;
        self.report.entries += 1;
        if is_whiteout(&m) {
            self.report.whiteouts += 1;
            let (parent, name) = split(rel);
            let mut wh = parent.to_vec();
            wh.extend_from_slice(b".wh.");
            wh.extend_from_slice(name);
            return self.header(&Header::plain(&wh, b'0', 0, 0));
        }
        let ft = m.file_type();
        let mut h = Header {
            path: rel,
            kind: b'0',
            mode: m.mode() & 0o7777,
            uid: u64::from(m.uid()),
            gid: u64::from(m.gid()),
            size: 0,
            mtime: m.mtime(),
            link: b"",
            dev: (0, 0),
            xattrs: xattrs(abs)?,
        };
        let mut dir_path;
        let target;
        if ft.is_dir() {
            dir_path = rel.to_vec();
            dir_path.push(b'/');
            h.path = &dir_path;
            h.kind = b'5';
            self.header(&h)?;
            if is_opaque(abs) {
                let mut opq = dir_path.clone();
                opq.extend_from_slice(b".wh..wh..opq");
                self.header(&Header::plain(&opq, b'0', 0, 0))?;
            }
            return self.dir(abs, rel);
        }
        if ft.is_symlink() {
            target = fs::read_link(abs).map_err(ImageError::io(format!("read {}", show(abs))))?;
            h.kind = b'2';
            h.link = target.as_os_str().as_bytes();
            return self.header(&h);
        }
        if !ft.is_dir() && m.nlink() > 1 {
            let key = (m.dev(), m.ino());
            if let Some(first) = self.links.get(&key).cloned() {
                h.kind = b'1';
                h.link = &first;
                return self.header(&h);
            }
            self.links.insert(key, rel.to_vec());
        }
        if ft.is_file() {
            h.size = m.len();
            self.header(&h)?;
            return self.data(abs, m.len());
        }
        h.kind = if ft.is_char_device() {
            b'3'
        } else if ft.is_block_device() {
            b'4'
        } else if ft.is_fifo() {
            b'6'
        } else {
            log::warn!("{}: a socket is not packed", show(abs));
            self.report.refused += 1;
            return Ok(());
        };
        let rdev = m.rdev();
        h.dev = (
            u64::from(nix::sys::stat::major(rdev) as u32),
            u64::from(nix::sys::stat::minor(rdev) as u32),
        );
        self.header(&h)
    }

    /// Copy `len` bytes of the regular file `abs` and pad to 512.
    fn data(&mut self, abs: &Path, len: u64) -> Result<(), ImageError> {
        let what = || format!("read {}", show(abs));
        let mut f = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(abs)
            .map_err(ImageError::io(what()))?;
        let n = self
            .out
            .copy_from(&mut f, len)
            .map_err(ImageError::io(what()))?;
        if n != len {
            return Err(ImageError::format(
                show(abs),
                "the file shrank while packed",
            ));
        }
        self.report.size += len;
        self.pad(len)
    }

    fn pad(&mut self, len: u64) -> Result<(), ImageError> {
        let rem = (len % 512) as usize;
        if rem != 0 {
            self.out
                .write_all(&[0u8; 512][..512 - rem])
                .map_err(ImageError::io("write the layer tar"))?;
        }
        Ok(())
    }

    /// Write `h`, preceded by a PAX header for what ustar cannot hold.
    fn header(&mut self, h: &Header) -> Result<(), ImageError> {
        let mut pax = Vec::new();
        if h.path.len() > 100 {
            pax_record(&mut pax, "path", h.path);
        }
        if h.link.len() > 100 {
            pax_record(&mut pax, "linkpath", h.link);
        }
        if h.size > 0o777_7777_7777 {
            pax_record(&mut pax, "size", h.size.to_string().as_bytes());
        }
        if h.uid > 0o777_7777 {
            pax_record(&mut pax, "uid", h.uid.to_string().as_bytes());
        }
        if h.gid > 0o777_7777 {
            pax_record(&mut pax, "gid", h.gid.to_string().as_bytes());
        }
        for (k, v) in &h.xattrs {
            pax_record(&mut pax, &format!("SCHILY.xattr.{k}"), v);
        }
        let w = ImageError::io("write the layer tar");
        if !pax.is_empty() {
            let ph = ustar(&Header::plain(b"././@PaxHeader", b'x', 0, pax.len() as u64));
            self.out
                .write_all(&ph)
                .map_err(ImageError::io("write the layer tar"))?;
            self.out
                .write_all(&pax)
                .map_err(ImageError::io("write the layer tar"))?;
            self.pad(pax.len() as u64)?;
        }
        self.out.write_all(&ustar(h)).map_err(w)
    }
}

impl<'a> Header<'a> {
    /// An entry with no owner, link or xattrs.
    fn plain(path: &'a [u8], kind: u8, mode: u32, size: u64) -> Header<'a> {
        Header {
            path,
            kind,
            mode,
            uid: 0,
            gid: 0,
            size,
            mtime: 0,
            link: b"",
            dev: (0, 0),
            xattrs: Vec::new(),
        }
    }
}

/// `parent/` (with its slash, or empty) and the last component.
fn split(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..=i], &rel[i + 1..]),
        None => (b"", rel),
    }
}

/// Whether the layer directory `abs` is opaque (`user.overlay.opaque=y`).
pub fn is_opaque(abs: &Path) -> bool {
    xattr::lget(abs, xattr::OPAQUE)
        .ok()
        .flatten()
        .is_some_and(|v| v == b"y")
}

/// The xattrs a layer tar carries: all but overlay's own.
fn xattrs(abs: &Path) -> Result<Vec<(String, Vec<u8>)>, ImageError> {
    let names =
        xattr::llist(abs).map_err(ImageError::sys(format!("list xattrs of {}", show(abs))))?;
    let mut out = Vec::new();
    for n in names {
        if n.starts_with("user.overlay.") || n.starts_with("trusted.overlay.") {
            continue;
        }
        if let Ok(Some(v)) = xattr::lget(abs, &n) {
            out.push((n, v));
        }
    }
    out.sort();
    Ok(out)
}

/// A PAX record: `LEN KEY=VALUE\n`, LEN counting itself.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len += 1;
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// `n` as a NUL-terminated octal field of `width` bytes (0 if too large:
/// the PAX header holds the real value).
fn octal(field: &mut [u8], n: u64) {
    let width = field.len() - 1;
    let s = format!("{n:0width$o}");
    if s.len() == width {
        field[..width].copy_from_slice(s.as_bytes());
    } else {
        field[..width].copy_from_slice(&vec![b'0'; width]);
    }
    field[width] = 0;
}

/// One 512-byte ustar header.
fn ustar(h: &Header) -> [u8; 512] {
    let mut b = [0u8; 512];
    let name = &h.path[..h.path.len().min(100)];
    b[..name.len()].copy_from_slice(name);
    octal(&mut b[100..108], u64::from(h.mode));
    octal(&mut b[108..116], h.uid);
    octal(&mut b[116..124], h.gid);
    octal(&mut b[124..136], h.size);
    octal(&mut b[136..148], h.mtime.max(0) as u64);
    b[156] = h.kind;
    let link = &h.link[..h.link.len().min(100)];
    b[157..157 + link.len()].copy_from_slice(link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    octal(&mut b[329..337], h.dev.0);
    octal(&mut b[337..345], h.dev.1);
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    let s = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(s.as_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_lengths_count_themselves() {
        let mut v = Vec::new();
        pax_record(&mut v, "path", b"x");
        assert_eq!(v, b"9 path=x\n");
        let mut v = Vec::new();
        pax_record(&mut v, "path", &[b'a'; 95]);
        assert_eq!(v.len(), 105);
        assert!(v.starts_with(b"105 path="));
    }

    #[test]
    fn packed_tree_reads_back_with_whiteouts_and_opaque_dirs() {
        let d = std::env::temp_dir().join(format!("ferry-pack-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("app/sub")).unwrap();
        fs::write(d.join("app/a.txt"), b"hello").unwrap();
        fs::hard_link(d.join("app/a.txt"), d.join("app/b.txt")).unwrap();
        std::os::unix::fs::symlink("a.txt", d.join("app/link")).unwrap();
        let long = "n".repeat(120);
        fs::write(d.join("app/sub").join(&long), b"x").unwrap();
        let opaque =
            xattr::fset(File::open(d.join("app/sub")).unwrap(), xattr::OPAQUE, b"y").is_ok();
        let mut tar = Vec::new();
        let p = pack(&d, &mut tar).unwrap();
        assert_eq!(p.tar_size, tar.len() as u64);
        assert_eq!(p.diff_id, Digest::of(&tar));
        let mut r = super::super::tar::Reader::new(&tar[..]);
        let mut names = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            names.push(String::from_utf8(e.path.clone()).unwrap());
        }
        let mut want = vec!["app/", "app/a.txt", "app/b.txt", "app/link", "app/sub/"];
        if opaque {
            want.push("app/sub/.wh..wh..opq");
        }
        let long_path = format!("app/sub/{long}");
        want.push(&long_path);
        assert_eq!(names, want);
        let again = pack(&d, io::sink()).unwrap();
        assert_eq!(again.diff_id, p.diff_id, "deterministic");
        fs::remove_dir_all(&d).unwrap();
    }
}
