//! Digests (`sha256:HEX`) and a reader that hashes, counts and bounds what
//! goes through it, so blobs are verified while they stream.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use super::ImageError;

/// A sha256 digest; its hex is validated, so it is safe in a file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, ImageError> {
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| ImageError::BadDigest(s.into()))?;
        if algo != "sha256" {
            return Err(ImageError::Algorithm(algo.into()));
        }
        Digest::from_hex(hex).ok_or_else(|| ImageError::BadDigest(s.into()))
    }

    pub fn from_hex(hex: &str) -> Option<Digest> {
        let ok = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Digest { hex: hex.into() })
    }

    pub fn of(data: &[u8]) -> Digest {
        Digest {
            hex: to_hex(&Sha256::digest(data)),
        }
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as `docker images` shows ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Hashes and counts the bytes read through it; refuses to read more than
/// `limit` bytes (an `InvalidData` error naming `what`).
pub struct Verify<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    limit: u64,
    what: String,
}

impl<R: Read> Verify<R> {
    pub fn new(inner: R, what: impl Into<String>, limit: u64) -> Verify<R> {
        Verify {
            inner,
            hasher: Sha256::new(),
            count: 0,
            limit,
            what: what.into(),
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Read to the end (what a consumer left unread still counts), then
    /// return the digest and size.
    pub fn finish(mut self) -> Result<(Digest, u64), ImageError> {
        let what = self.what.clone();
        io::copy(&mut self, &mut io::sink()).map_err(|e| too_large_or(e, &what, self.limit))?;
        let digest = Digest {
            hex: to_hex(&self.hasher.finalize()),
        };
        Ok((digest, self.count))
    }

    /// [`finish`](Self::finish), checking against the expected digest and
    /// size.
    pub fn check(self, digest: Option<&Digest>, size: Option<u64>) -> Result<Digest, ImageError> {
        let what = self.what.clone();
        let (actual, n) = self.finish()?;
        if let Some(expected) = size.filter(|&s| s != n) {
            return Err(ImageError::SizeMismatch {
                what,
                expected,
                actual: n,
            });
        }
        if let Some(expected) = digest.filter(|&d| *d != actual) {
            return Err(ImageError::DigestMismatch {
                what,
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(actual)
    }
}

impl<R: Read> Read for Verify<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Read one byte past the limit at most, to tell "exactly the limit"
        // from "more".
        let room = (self.limit - self.count).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if self.count + n as u64 > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                LimitHit {
                    what: self.what.clone(),
                    limit: self.limit,
                },
            ));
        }
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The error a [`Verify`] returns past its limit.
#[derive(Debug)]
pub struct LimitHit {
    what: String,
    limit: u64,
}

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} is larger than {} bytes", self.what, self.limit)
    }
}

impl std::error::Error for LimitHit {}

/// Map an I/O error to [`ImageError::TooLarge`] when it is a [`LimitHit`].
pub fn too_large_or(e: io::Error, what: &str, _limit: u64) -> ImageError {
    if let Some(hit) = e.get_ref().and_then(|i| i.downcast_ref::<LimitHit>()) {
        ImageError::TooLarge {
            what: hit.what.clone(),
            limit: hit.limit,
        }
    } else {
        ImageError::Io {
            what: what.into(),
            source: e,
        }
    }
}

/// Read a small blob whole, bounded by `limit`, and verify it.
pub fn read_verified(
    r: impl Read,
    what: &str,
    digest: Option<&Digest>,
    size: Option<u64>,
    limit: u64,
) -> Result<(Vec<u8>, Digest), ImageError> {
    let mut v = Verify::new(r, what, limit);
    let mut out = Vec::new();
    v.read_to_end(&mut out)
        .map_err(|e| too_large_or(e, what, limit))?;
    let d = v.check(digest, size)?;
    Ok((out, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_strictly() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        assert!(Digest::parse("sha256:../../etc").is_err());
        assert!(Digest::parse("sha512:00").is_err());
        assert!(Digest::parse(&d.to_string().to_uppercase()).is_err());
    }

    #[test]
    fn verify_checks_and_bounds() {
        let data = b"hello world";
        let d = Digest::of(data);
        let v = Verify::new(&data[..], "x", 100);
        assert!(v.check(Some(&d), Some(11)).is_ok());
        let v = Verify::new(&data[..], "x", 100);
        assert!(matches!(
            v.check(Some(&Digest::of(b"no")), None),
            Err(ImageError::DigestMismatch { .. })
        ));
        let v = Verify::new(&data[..], "x", 5);
        assert!(matches!(v.finish(), Err(ImageError::TooLarge { .. })));
        let v = Verify::new(&data[..], "x", 11);
        assert!(v.finish().is_ok());
    }
}
