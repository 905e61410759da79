//! Running ferry as the unprivileged test user: [`ferry_as`] (through
//! `setpriv`, optionally under a wrapper such as `unshare --user`) and
//! [`UserBundle`], a bundle and state root the user owns with the config
//! `ferry spec --rootless` wrote as that user.

use std::fs;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// How to run one ferry command.
#[derive(Default, Clone)]
pub struct How<'a> {
    /// Run as this user (through setpriv); None: as root.
    pub user: Option<&'a TestUser>,
    /// Command line to run ferry under (e.g. `unshare --user ...`).
    pub wrap: &'a [&'a str],
    /// Extra environment (the base is PATH, HOME=/tmp, XDG_RUNTIME_DIR=).
    pub env: &'a [(&'a str, &'a str)],
    /// No `--root`: ferry picks its default state root.
    pub default_root: bool,
}

/// Run `ferry [--root STATE] ARGS` for the bundle `b` the way `how` says.
pub fn ferry_as(b: &Bundle, ferry: &Path, how: &How, args: &[&str]) -> Out {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let out = b.base.join("out").join(format!("u{n}.out"));
    let err = b.base.join("out").join(format!("u{n}.err"));
    let mut argv: Vec<String> = Vec::new();
    if let Some(u) = how.user {
        argv.extend([
            "setpriv".into(),
            format!("--reuid={}", u.uid),
            format!("--regid={}", u.gid),
            "--init-groups".into(),
        ]);
    }
    argv.extend(["env".into(), "-i".into(), format!("PATH={PATH}")]);
    argv.extend(["HOME=/tmp".into(), "XDG_RUNTIME_DIR=".into()]);
    argv.extend(how.env.iter().map(|(k, v)| format!("{k}={v}")));
    argv.extend(how.wrap.iter().map(|s| s.to_string()));
    argv.push(ferry.display().to_string());
    if !how.default_root {
        argv.extend(["--root".into(), b.state_root.display().to_string()]);
    }
    argv.extend(args.iter().map(|s| s.to_string()));
    let desc = argv.join(" ");
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(&b.base)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {desc}: {e}"));
    let status = match wait_timeout(&mut child, TIMEOUT) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "timeout after {TIMEOUT:?}: `{desc}`\n--- stderr ---\n{}",
                fs::read_to_string(&err).unwrap_or_default()
            );
        }
    };
    Out {
        cmd: desc,
        status,
        stdout: fs::read_to_string(&out).unwrap_or_default(),
        stderr: fs::read_to_string(&err).unwrap_or_default(),
        stdout_path: out,
    }
}

/// A bundle and state root owned by the test user, whose config.json is the
/// one `ferry spec --rootless` wrote as that user (terminal turned off).
pub struct UserBundle {
    pub b: Bundle,
    pub user: TestUser,
    pub ferry: PathBuf,
}

impl Deref for UserBundle {
    type Target = Bundle;
    fn deref(&self) -> &Bundle {
        &self.b
    }
}

impl DerefMut for UserBundle {
    fn deref_mut(&mut self) -> &mut Bundle {
        &mut self.b
    }
}

impl UserBundle {
    pub fn new(name: &str, user: &TestUser) -> UserBundle {
        let b = Bundle::new_raw(name);
        chown_r(&b.base, user.uid, user.gid);
        // The user must be able to run the binary under test: copy it into
        // the bundle's base when the build tree is out of its reach.
        let mut ferry = ferry_bin();
        let probe = Command::new("setpriv")
            .args([
                &format!("--reuid={}", user.uid),
                &format!("--regid={}", user.gid),
                "--init-groups",
                "test",
                "-x",
            ])
            .arg(&ferry)
            .status()
            .unwrap();
        if !probe.success() {
            let copy = b.base.join("ferry");
            fs::copy(&ferry, &copy).unwrap();
            fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
            ferry = copy;
        }
        let mut ub = UserBundle {
            b,
            user: user.clone(),
            ferry,
        };
        let dir = ub.dir_str().to_string();
        let o = ub.ferry(&["spec", "--rootless", "--bundle", &dir]);
        assert!(
            o.success(),
            "ferry spec --rootless failed:\n{}",
            o.describe()
        );
        let text = fs::read_to_string(ub.dir.join("config.json")).unwrap();
        ub.b.config = serde_json::from_str(&text).unwrap();
        ub.set("/process/terminal", json!(false));
        ub.save();
        ub
    }

    pub fn how(&self) -> How<'_> {
        How {
            user: Some(&self.user),
            ..How::default()
        }
    }

    /// ferry as the user, with this bundle's state root.
    pub fn ferry(&self, args: &[&str]) -> Out {
        self.save();
        ferry_as(&self.b, &self.ferry, &self.how(), args)
    }

    pub fn ferry_how(&self, how: &How, args: &[&str]) -> Out {
        self.save();
        ferry_as(&self.b, &self.ferry, how, args)
    }

    /// Foreground `ferry run` of `sh -c script` as the user; asserts success.
    pub fn output(&mut self, script: &str) -> String {
        self.sh(script);
        let id = self.id.clone();
        let dir = self.dir_str().to_string();
        let o = self.ferry(&["run", "--bundle", &dir, &id]);
        assert!(
            o.success(),
            "container `{script}` failed:\n{}",
            o.describe()
        );
        o.stdout
    }

    /// Like `output`, under `wrap` (e.g. an outer user namespace).
    pub fn output_wrapped(&mut self, wrap: &[&str], script: &str) -> String {
        self.sh(script);
        let id = self.id.clone();
        let dir = self.dir_str().to_string();
        let how = How { wrap, ..self.how() };
        let o = self.ferry_how(&how, &["run", "--bundle", &dir, &id]);
        assert!(
            o.success(),
            "container `{script}` failed:\n{}",
            o.describe()
        );
        o.stdout
    }

    /// Maps for the container: the user's own id to 0, and its subordinate
    /// range from 1 on.
    pub fn multi_range_maps(&mut self) {
        let u = self.user.clone();
        self.set(
            "/linux/uidMappings",
            json!([
                {"containerID": 0, "hostID": u.uid, "size": 1},
                {"containerID": 1, "hostID": u.subuid.0, "size": u.subuid.1},
            ]),
        );
        self.set(
            "/linux/gidMappings",
            json!([
                {"containerID": 0, "hostID": u.gid, "size": 1},
                {"containerID": 1, "hostID": u.subgid.0, "size": u.subgid.1},
            ]),
        );
    }

    /// Nothing of the test's containers left: state, processes, mounts.
    pub fn assert_nothing_left(&self) {
        self.assert_state_root_empty();
        let procs = procs_with_root(&self.rootfs());
        assert!(procs.is_empty(), "processes left: {procs:?}");
        let mounts = host_mounts_mentioning(&self.base);
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    }
}

impl Drop for UserBundle {
    fn drop(&mut self) {
        // The harness deletes as root, which a user's state root refuses.
        for entry in self.state_entries() {
            if !entry.starts_with('.') {
                let how = self.how();
                let _ = ferry_as(&self.b, &self.ferry, &how, &["delete", "--force", &entry]);
            }
        }
    }
}
