//! A streaming tar reader: ustar and GNU headers, GNU long names and PAX
//! extended headers (path, linkpath, size, uid, gid, mtime, xattrs). Every
//! metadata record is bounded ([`MAX_META`]): a hostile layer cannot make
//! ferry buffer a "long name" of gigabytes.

use std::io::{self, Read};

use super::ImageError;

const BLOCK: u64 = 512;
/// The largest GNU long name or PAX header ferry reads.
pub const MAX_META: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
    Other(u8),
}

/// One member of the archive, with its extended headers applied.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub devmajor: u64,
    pub devminor: u64,
    /// `SCHILY.xattr.*` records: name and value.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// Offset of the entry's data in the stream.
    pub offset: u64,
}

pub struct Reader<R> {
    inner: R,
    pos: u64,
    /// Data of the current entry not read yet, then its padding.
    left: u64,
    pad: u64,
    done: bool,
}

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::Tar(msg.into())
}

fn io_err(e: io::Error) -> ImageError {
    super::digest::too_large_or(e, "read tar stream", 0)
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            pos: 0,
            left: 0,
            pad: 0,
            done: false,
        }
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Read (what is left of) the current entry's data.
    pub fn data(&mut self) -> Data<'_, R> {
        Data { r: self }
    }

    fn skip(&mut self, n: u64) -> Result<(), ImageError> {
        let got = io::copy(&mut (&mut self.inner).take(n), &mut io::sink()).map_err(io_err)?;
        self.pos += got;
        if got != n {
            return Err(bad("truncated archive"));
        }
        Ok(())
    }

    /// Fill `buf` completely; `Ok(false)` on a clean end of stream before
    /// the first byte.
    fn block(&mut self, buf: &mut [u8; 512]) -> Result<bool, ImageError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        self.pos += got as u64;
        match got {
            0 => Ok(false),
            512 => Ok(true),
            _ => Err(bad("truncated header")),
        }
    }

    fn read_meta(&mut self, size: u64, what: &str) -> Result<Vec<u8>, ImageError> {
        if size > MAX_META {
            return Err(bad(format!("{what} of {size} bytes (limit {MAX_META})")));
        }
        let mut v = Vec::with_capacity(size as usize);
        (&mut self.inner)
            .take(size)
            .read_to_end(&mut v)
            .map_err(io_err)?;
        self.pos += v.len() as u64;
        if v.len() as u64 != size {
            return Err(bad("truncated archive"));
        }
        self.skip(padding(size))?;
        Ok(v)
    }

    /// The next entry (skipping what is left of the current one), or `None`
    /// at the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, ImageError> {
        if self.done {
            return Ok(None);
        }
        let (left, pad) = (self.left, self.pad);
        self.left = 0;
        self.pad = 0;
        self.skip(left + pad)?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        loop {
            let mut h = [0u8; 512];
            if !self.block(&mut h)? || h.iter().all(|&b| b == 0) {
                self.done = true;
                if long_name.is_some() || long_link.is_some() || !pax.is_empty() {
                    return Err(bad("extended header without a member"));
                }
                return Ok(None);
            }
            check_sum(&h, self.pos - BLOCK)?;
            let flag = h[156];
            let size = number(&h[124..136]).ok_or_else(|| bad("bad size field"))?;
            match flag {
                b'L' => long_name = Some(trim_nul(self.read_meta(size, "long name")?)),
                b'K' => long_link = Some(trim_nul(self.read_meta(size, "long link")?)),
                b'x' => pax.extend(parse_pax(&self.read_meta(size, "PAX header")?)?),
                b'g' => {
                    let recs = parse_pax(&self.read_meta(size, "PAX global header")?)?;
                    for (k, _) in recs.iter().filter(|(k, _)| k != "comment") {
                        log::warn!("tar: ignoring PAX global header record {k:?}");
                    }
                }
                _ => {
                    let mut e = parse_header(&h)?;
                    e.size = size;
                    if let Some(n) = long_name.take() {
                        e.path = n;
                    }
                    if let Some(n) = long_link.take() {
                        e.link = n;
                    }
                    apply_pax(&mut e, std::mem::take(&mut pax))?;
                    e.offset = self.pos;
                    // Links, directories and devices carry no data even when
                    // a header claims a size (hard links in old tars do).
                    let data = match e.kind {
                        Kind::File | Kind::Other(_) => e.size,
                        _ => 0,
                    };
                    self.left = data;
                    self.pad = padding(data);
                    if data != e.size {
                        self.pad = padding(e.size) + e.size - data;
                    }
                    return Ok(Some(e));
                }
            }
        }
    }
}

/// The current entry's data.
pub struct Data<'a, R> {
    r: &'a mut Reader<R>,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.r;
        if r.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(r.left).unwrap_or(usize::MAX));
        let n = r.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated archive",
            ));
        }
        r.left -= n as u64;
        r.pos += n as u64;
        Ok(n)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}

fn field(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// An octal or base-256 number field.
fn number(b: &[u8]) -> Option<u64> {
    if b.first().is_some_and(|&c| c & 0x80 != 0) {
        if b[0] == 0xff {
            return None; // negative
        }
        let mut n: u64 = u64::from(b[0] & 0x7f);
        for &c in &b[1..] {
            n = n.checked_mul(256)?.checked_add(u64::from(c))?;
        }
        return Some(n);
    }
    let s = field(b);
    let s = std::str::from_utf8(s).ok()?.trim_matches(|c| c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

fn check_sum(h: &[u8; 512], at: u64) -> Result<(), ImageError> {
    let want = number(&h[148..156]).ok_or_else(|| bad(format!("bad checksum field at {at}")))?;
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    // Some old writers summed signed bytes.
    let signed: i64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    if want != sum && want as i64 != signed {
        return Err(bad(format!("bad header checksum at offset {at}")));
    }
    Ok(())
}

fn parse_header(h: &[u8; 512]) -> Result<Entry, ImageError> {
    let num = |r: std::ops::Range<usize>, what: &str| {
        number(&h[r]).ok_or_else(|| bad(format!("bad {what} field")))
    };
    let mut path = field(&h[0..100]).to_vec();
    let posix = &h[257..263] == b"ustar\0";
    let prefix = field(&h[345..500]);
    if posix && !prefix.is_empty() {
        let mut p = prefix.to_vec();
        p.push(b'/');
        p.extend_from_slice(&path);
        path = p;
    }
    let flag = h[156];
    let kind = match flag {
        b'0' | 0 | b'7' if path.ends_with(b"/") => Kind::Dir,
        b'0' | 0 | b'7' => Kind::File,
        b'1' => Kind::HardLink,
        b'2' => Kind::Symlink,
        b'3' => Kind::Char,
        b'4' => Kind::Block,
        b'5' => Kind::Dir,
        b'6' => Kind::Fifo,
        c => Kind::Other(c),
    };
    Ok(Entry {
        path,
        link: field(&h[157..257]).to_vec(),
        kind,
        mode: num(100..108, "mode")? as u32 & 0o7777,
        uid: num(108..116, "uid")?,
        gid: num(116..124, "gid")?,
        size: 0,
        mtime: num(136..148, "mtime")? as i64,
        devmajor: num(329..337, "devmajor")?,
        devminor: num(337..345, "devminor")?,
        xattrs: Vec::new(),
        offset: 0,
    })
}

/// PAX records: `LEN KEY=VALUE\n`.
fn parse_pax(mut data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ImageError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.iter().all(|&b| b == 0) {
            break;
        }
        let sp = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("bad PAX record"))?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&l| l > sp + 1 && l <= data.len())
            .ok_or_else(|| bad("bad PAX record length"))?;
        let rec = &data[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| bad("bad PAX record"))?;
        let key = String::from_utf8_lossy(&rec[..eq]).into_owned();
        out.push((key, rec[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

fn apply_pax(e: &mut Entry, recs: Vec<(String, Vec<u8>)>) -> Result<(), ImageError> {
    let num = |v: &[u8], k: &str| -> Result<u64, ImageError> {
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad PAX {k}")))
    };
    for (k, v) in recs {
        match k.as_str() {
            "path" => e.path = v,
            "linkpath" => e.link = v,
            "size" => e.size = num(&v, &k)?,
            "uid" => e.uid = num(&v, &k)?,
            "gid" => e.gid = num(&v, &k)?,
            "mtime" => {
                let s = String::from_utf8_lossy(&v);
                let secs = s.split('.').next().unwrap_or("0");
                e.mtime = secs.parse().map_err(|_| bad("bad PAX mtime"))?;
            }
            "SCHILY.devmajor" => e.devmajor = num(&v, &k)?,
            "SCHILY.devminor" => e.devminor = num(&v, &k)?,
            _ => {
                if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                    e.xattrs.push((name.to_string(), v));
                } else if !matches!(
                    k.as_str(),
                    "atime" | "ctime" | "uname" | "gname" | "comment" | "charset" | "hdrcharset"
                ) {
                    log::warn!(
                        "tar: ignoring PAX record {k:?} of {}",
                        String::from_utf8_lossy(&e.path)
                    );
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, flag: u8, size: u64) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = flag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    fn member(out: &mut Vec<u8>, name: &str, flag: u8, data: &[u8]) {
        out.extend_from_slice(&header(name, flag, data.len() as u64));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    #[test]
    fn reads_long_names_pax_and_data() {
        let mut t = Vec::new();
        let long = "d/".repeat(80) + "file";
        member(
            &mut t,
            "././@LongLink",
            b'L',
            format!("{long}\0").as_bytes(),
        );
        member(&mut t, "short", b'0', b"hello");
        let pax = "29 SCHILY.xattr.user.k=value\n";
        member(&mut t, "pax", b'x', pax.as_bytes());
        member(&mut t, "x", b'0', b"");
        t.extend_from_slice(&[0u8; 1024]);
        let mut r = Reader::new(&t[..]);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.path, long.as_bytes());
        let mut s = String::new();
        r.data().read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.xattrs, vec![("user.k".to_string(), b"value".to_vec())]);
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn huge_long_names_are_refused() {
        let mut t = Vec::new();
        t.extend_from_slice(&header("././@LongLink", b'L', MAX_META + 1));
        let mut r = Reader::new(&t[..]);
        assert!(r.next_entry().is_err());
    }

    #[test]
    fn bad_checksums_are_refused() {
        let mut t = Vec::new();
        member(&mut t, "a", b'0', b"x");
        t[0] = b'b';
        assert!(Reader::new(&t[..]).next_entry().is_err());
    }
}
