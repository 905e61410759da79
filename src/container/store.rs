use std::fs::{self, DirBuilder, File};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::state::{EXEC_FIFO, State};
use crate::userns;

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid container id {0:?}: use 1 to 1024 letters, digits, '_', '-', '.' or '+'")]
    InvalidId(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("state root {path}: {source}")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("container {id}: {what}: {source}")]
    Io {
        id: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("container {id}: corrupt state.json: {source}")]
    Corrupt {
        id: String,
        source: serde_json::Error,
    },
}

/// The directory that holds every container's state.
pub struct StateStore {
    root: PathBuf,
}

/// The default state root: `/run/ferry` for real root, otherwise
/// `$XDG_RUNTIME_DIR/ferry` (an empty value counts as unset), then
/// `/run/user/UID/ferry` when it exists, then `/tmp/ferry-UID`.
pub fn default_root() -> PathBuf {
    if !userns::is_rootless() {
        return PathBuf::from("/run/ferry");
    }
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return Path::new(&xdg).join("ferry");
    }
    let uid = nix::unistd::geteuid();
    let run_user = PathBuf::from(format!("/run/user/{uid}"));
    if fs::metadata(&run_user).is_ok_and(|m| m.uid() == uid.as_raw()) {
        return run_user.join("ferry");
    }
    PathBuf::from(format!("/tmp/ferry-{uid}"))
}

impl StateStore {
    /// Open (creating with mode 0700 if needed) the state root.
    pub fn open(root: &Path) -> Result<StateStore, StoreError> {
        let err = |source| StoreError::Root {
            path: root.to_path_buf(),
            source,
        };
        match DirBuilder::new().recursive(true).mode(0o700).create(root) {
            Ok(()) => {}
            Err(e) => return Err(err(e)),
        }
        // A root we did not make must not be writable by someone else.
        let meta = fs::symlink_metadata(root).map_err(err)?;
        if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() && meta.uid() != 0 {
            return Err(err(std::io::Error::new(
                ErrorKind::PermissionDenied,
                "not a directory owned by the caller",
            )));
        }
        Ok(StateStore {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Make the directory of a new container, locked. Exactly one of two
    /// racing creates with the same id succeeds.
    pub fn create(&self, id: &str) -> Result<ContainerDir, StoreError> {
        validate_id(id)?;
        let path = self.root.join(id);
        match DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(StoreError::Exists(id.into()));
            }
            Err(source) => {
                return Err(StoreError::Io {
                    id: id.into(),
                    what: "create state dir",
                    source,
                });
            }
        }
        match ContainerDir::lock(id, path.clone()) {
            Ok(dir) => Ok(dir),
            Err(e) => {
                let _ = fs::remove_dir_all(&path);
                Err(e)
            }
        }
    }

    /// Open and lock an existing container's directory.
    pub fn open_container(&self, id: &str) -> Result<ContainerDir, StoreError> {
        validate_id(id)?;
        ContainerDir::lock(id, self.root.join(id))
    }

    /// Ids of every container under the root.
    pub fn ids(&self) -> Result<Vec<String>, StoreError> {
        let entries = fs::read_dir(&self.root).map_err(|source| StoreError::Root {
            path: self.root.clone(),
            source,
        })?;
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| validate_id(name).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// A container's state directory, held under an exclusive `flock` for as
/// long as this value lives.
pub struct ContainerDir {
    id: String,
    path: PathBuf,
    _lock: Flock<File>,
}

impl ContainerDir {
    fn lock(id: &str, path: PathBuf) -> Result<ContainerDir, StoreError> {
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(StoreError::NotFound(id.into()));
            }
            Err(source) => {
                return Err(StoreError::Io {
                    id: id.into(),
                    what: "open state dir",
                    source,
                });
            }
        };
        let lock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| StoreError::Io {
                id: id.into(),
                what: "lock state dir",
                source: errno.into(),
            })?;
        // A concurrent delete may have removed the dir while we waited.
        if lock.metadata().map(|m| m.nlink()).unwrap_or(0) == 0 {
            return Err(StoreError::NotFound(id.into()));
        }
        Ok(ContainerDir {
            id: id.into(),
            path,
            _lock: lock,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fd that holds the lock (a forked child must close its copy).
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&*self._lock)
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// The recorded state; `None` while the container is still being created.
    pub fn load(&self) -> Result<Option<State>, StoreError> {
        load_state(&self.id, &self.path)
    }

    /// Write state.json atomically (temp file + rename).
    pub fn save(&self, state: &State) -> Result<(), StoreError> {
        let io = |what| {
            move |source| StoreError::Io {
                id: self.id.clone(),
                what,
                source,
            }
        };
        let tmp = self.path.join(".state.json.tmp");
        let data = serde_json::to_vec(state).expect("state serializes");
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("write state"))?;
        f.write_all(&data).map_err(io("write state"))?;
        fs::rename(&tmp, self.path.join("state.json")).map_err(io("write state"))
    }

    /// Remove the directory and everything in it.
    pub fn remove(self) -> Result<(), StoreError> {
        // Renamed away first (to a name no id can have): from then on the
        // id reads as gone, never as a dir without state.json, which
        // `state` would report as a container still being created.
        let tomb = self.path.with_file_name(format!("{}~deleted", self.id));
        let target = match fs::rename(&self.path, &tomb) {
            Ok(()) => tomb,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(_) => self.path.clone(),
        };
        match fs::remove_dir_all(&target) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io {
                id: self.id.clone(),
                what: "remove state dir",
                source,
            }),
        }
    }
}

/// Read `DIR/state.json` without taking the lock (readers see either the
/// old or the new file, never a partial one).
pub fn load_state(id: &str, dir: &Path) -> Result<Option<State>, StoreError> {
    match fs::read(dir.join("state.json")) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|source| StoreError::Corrupt {
                id: id.into(),
                source,
            }),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if dir.exists() {
                Ok(None)
            } else {
                Err(StoreError::NotFound(id.into()))
            }
        }
        Err(source) => Err(StoreError::Io {
            id: id.into(),
            what: "read state",
            source,
        }),
    }
}

impl StateStore {
    /// Read a container's state without locking; `Ok(None)` while creating.
    pub fn peek(&self, id: &str) -> Result<Option<State>, StoreError> {
        validate_id(id)?;
        load_state(id, &self.root.join(id))
    }

    pub fn container_path(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }
}

/// Longest container id accepted (containerd and podman use 64 hex digits).
const MAX_ID_LEN: usize = 1024;

/// Check that `id` is safe to use as a directory name under the state root.
pub fn validate_id(id: &str) -> Result<(), StoreError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+');
    if id.is_empty() || id.len() > MAX_ID_LEN || id == "." || id == ".." || !id.chars().all(ok_char)
    {
        return Err(StoreError::InvalidId(id.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_engine_ids() {
        for id in ["mybox", "a1b2c3d4e5f6", "k8s_pod-1.2+x", &"f".repeat(64)] {
            validate_id(id).unwrap();
        }
    }

    #[test]
    fn rejects_path_tricks() {
        for id in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/abs",
            "a b",
            "x\0",
            &"a".repeat(2000),
        ] {
            assert!(validate_id(id).is_err(), "{id:?} accepted");
        }
    }
}
