//! The unprivileged test user: `ferrytest`, or `$FERRY_TEST_USER`
//! (scripts/deps.sh creates it with ranges in /etc/subuid and
//! /etc/subgid). The one place the tests look it up.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::*;

/// A `PATH` with the usual system directories.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The unprivileged test user and its first subordinate ranges.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// (first host id, count) from /etc/subuid and /etc/subgid.
    pub subuid: (u32, u32),
    pub subgid: (u32, u32),
}

/// The test user's name: `$FERRY_TEST_USER`, else `ferrytest`.
pub fn test_user_name() -> String {
    std::env::var("FERRY_TEST_USER").unwrap_or_else(|_| "ferrytest".into())
}

/// The first range of `name` (or of `id`) in /etc/subuid or /etc/subgid.
fn sub_range(file: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let who = f.next()?;
        let (start, count) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?);
        (who == name || who == id.to_string()).then_some((start, count))
    })
}

/// The test user, if it exists, is not root and has subordinate ranges.
pub fn test_user() -> Option<TestUser> {
    let name = test_user_name();
    let pw = nix::unistd::User::from_name(&name).ok()??;
    let (uid, gid) = (pw.uid.as_raw(), pw.gid.as_raw());
    if uid == 0 {
        return None;
    }
    Some(TestUser {
        subuid: sub_range("/etc/subuid", &name, uid)?,
        subgid: sub_range("/etc/subgid", &name, uid)?,
        name,
        uid,
        gid,
    })
}

/// Why the rootless tests cannot run here, or the test user.
pub fn rootless_setup() -> Result<TestUser, String> {
    if !is_root() {
        return Err("needs root (to switch to the test user)".into());
    }
    if !["newuidmap", "newgidmap", "setpriv", "unshare"]
        .iter()
        .all(|t| has_tool(t))
    {
        return Err("needs newuidmap/newgidmap (package uidmap), setpriv and unshare".into());
    }
    test_user().ok_or_else(|| {
        format!(
            "needs the user {} with /etc/subuid and /etc/subgid ranges (scripts/deps.sh)",
            test_user_name()
        )
    })
}

/// The test user, or skip the test (with a note; a failure under `CI=true`,
/// `FERRY_NO_SKIP=1` or `FERRY_REQUIRE_ROOTLESS=1`) when it cannot run.
#[macro_export]
macro_rules! require_user {
    () => {
        match $crate::common::rootless_setup() {
            Ok(u) => u,
            Err(why) => {
                assert!(
                    std::env::var_os("FERRY_REQUIRE_ROOTLESS").is_none(),
                    "{}: {why}",
                    module_path!()
                );
                $crate::common::skip(&format!("{}: {why}", module_path!()));
                return;
            }
        }
    };
}

/// Whether `name` is in `$PATH` (or the usual system directories).
pub fn has_tool(name: &str) -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_else(|| PATH.into()))
        .chain(std::env::split_paths(PATH))
        .any(|d| d.join(name).exists())
}

/// `chown -R uid:gid path`.
pub fn chown_r(path: &Path, uid: u32, gid: u32) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success(), "chown -R {}", path.display());
}

/// Change the owner of `path` itself (not a symlink's target).
pub fn lchown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}
