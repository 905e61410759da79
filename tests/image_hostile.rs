//! Hostile layers: each test builds a layer that tries to write, link or
//! delete outside the layer directory (or smuggle devices, setuid bits,
//! overlay xattrs), imports it, and checks that nothing happened outside,
//! that what was refused was logged, and what was kept.

mod common;
mod imagekit;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use imagekit::*;
use serde_json::{Value, json};

/// Import a one-layer image made of `tar`; the ferry output and the layer
/// directory.
fn import(s: &Scratch, rootless: bool, tar: Vec<u8>) -> (Run, PathBuf) {
    let layout = s.path("layout");
    let _ = fs::remove_dir_all(&layout);
    oci_layout(
        &layout,
        &Image::new(vec![tar], json!({ "Cmd": ["true"] })),
        "t",
    );
    if rootless {
        s.give_to_ferrytest();
    }
    let store = s.path("store").display().to_string();
    let r = format!("oci:{}:t", layout.display());
    let out = ferry(
        rootless,
        &["image", "--store", &store, "import", "--name", "h", &r],
        &[],
    )
    .ok();
    let v: Value = serde_json::from_str(
        &ferry(rootless, &["image", "--store", &store, "inspect", "h"], &[])
            .ok()
            .stdout,
    )
    .unwrap();
    let root = PathBuf::from(v["layers"][0]["path"].as_str().unwrap());
    (out, root)
}

/// A host directory the hostile layer aims at.
fn target(s: &Scratch) -> PathBuf {
    let t = s.path("host-target");
    fs::create_dir_all(&t).unwrap();
    fs::write(t.join("victim"), "precious").unwrap();
    fs::set_permissions(&t, fs::Permissions::from_mode(0o777)).unwrap();
    t
}

fn assert_untouched(t: &Path) {
    let names: Vec<String> = fs::read_dir(t)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["victim"], "the host directory was written to");
    assert_eq!(fs::read_to_string(t.join("victim")).unwrap(), "precious");
}

#[test]
fn dotdot_and_absolute_paths_stay_inside() {
    let s = Scratch::new("dotdot");
    let t = target(&s);
    let ts = t.display().to_string();
    let depth = "../".repeat(20);
    let mut tar = Tar::default();
    tar.file(&format!("{depth}{}/evil1", &ts[1..]), b"x")
        .file(&format!("a/../../{}/evil2", &ts[1..]), b"x")
        .file(&format!("{ts}/abs"), b"inside");
    let (out, root) = import(&s, false, tar.finish());
    assert_untouched(&t);
    assert!(
        out.stderr.contains("evil1") && out.stderr.contains("`..`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("evil2"), "{}", out.stderr);
    // Absolute paths are taken relative to the layer.
    assert_eq!(
        fs::read_to_string(root.join(&ts[1..]).join("abs")).unwrap(),
        "inside"
    );
}

#[test]
fn symlinks_out_are_followed_inside_only() {
    let s = Scratch::new("symlink");
    let t = target(&s);
    let ts = t.display().to_string();
    let mut tar = Tar::default();
    tar.symlink("abs", &ts)
        .file("abs/pwned", b"x")
        .symlink("rel", &format!("{}{}", "../".repeat(30), &ts[1..]))
        .file("rel/pwned2", b"x")
        .symlink("abs2", &ts)
        .dir("abs2/sub/")
        .file("abs2/victim", b"overwritten?");
    let (_, root) = import(&s, false, tar.finish());
    assert_untouched(&t);
    // The links are kept as links; what went "through" them landed in the
    // layer, where the link points when the layer is the root.
    assert!(
        fs::symlink_metadata(root.join("abs"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(root.join(&ts[1..]).join("pwned").exists());
    assert!(root.join(&ts[1..]).join("pwned2").exists());
    assert_eq!(
        fs::read_to_string(root.join(&ts[1..]).join("victim")).unwrap(),
        "overwritten?"
    );
}

#[test]
fn hardlinks_outside_or_forward_are_refused() {
    let s = Scratch::new("hardlink");
    let t = target(&s);
    let ts = t.display().to_string();
    let victim = t.join("victim");
    let links_before = fs::metadata(&victim).unwrap().nlink();
    let mut tar = Tar::default();
    tar.hardlink("h-abs", victim.to_str().unwrap())
        .hardlink(
            "h-dotdot",
            &format!("{}{}", "../".repeat(30), &victim.to_str().unwrap()[1..]),
        )
        .symlink("out", &ts)
        .hardlink("h-via-link", "out/victim")
        .hardlink("h-forward", "later")
        .file("later", b"later")
        .hardlink("h-ok", "later")
        .dir("d/")
        .hardlink("h-dir", "d");
    let (out, root) = import(&s, false, tar.finish());
    assert_untouched(&t);
    assert_eq!(fs::metadata(&victim).unwrap().nlink(), links_before);
    for n in ["h-abs", "h-dotdot", "h-via-link", "h-forward", "h-dir"] {
        assert!(
            fs::symlink_metadata(root.join(n)).is_err(),
            "{n} was created"
        );
        assert!(
            out.stderr.contains(n),
            "{n} refused silently: {}",
            out.stderr
        );
    }
    assert_eq!(
        fs::metadata(root.join("h-ok")).unwrap().ino(),
        fs::metadata(root.join("later")).unwrap().ino()
    );
}

#[test]
fn whiteouts_cannot_delete_outside() {
    let s = Scratch::new("whiteout");
    let t = target(&s);
    let ts = t.display().to_string();
    let mut tar = Tar::default();
    tar.file(&format!("{}{}/.wh.victim", "../".repeat(30), &ts[1..]), b"")
        .symlink("out", &ts)
        .file("out/.wh.victim", b"")
        .file("dir/.wh...", b"")
        .file("dir/.wh..", b"")
        .file(".wh..wh.plnk", b"")
        .file("ok/.wh.gone", b"");
    let (out, root) = import(&s, false, tar.finish());
    assert_untouched(&t);
    assert!(out.stderr.contains(".wh..."), "{}", out.stderr);
    assert!(out.stderr.contains(".wh..wh.plnk"), "{}", out.stderr);
    let wh = fs::symlink_metadata(root.join("ok/gone")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    // The whiteout "through" the link was made inside the layer.
    let inner = fs::symlink_metadata(root.join(&ts[1..]).join("victim")).unwrap();
    assert!(inner.file_type().is_char_device());
}

fn devices_and_modes(rootless: bool) {
    let s = Scratch::new(if rootless { "dev-rootless" } else { "dev-root" });
    let mut tar = Tar::default();
    tar.add(Member {
        name: "null2",
        flag: b'3',
        dev: (1, 3),
        mode: 0o666,
        ..Member::default()
    })
    .add(Member {
        name: "blk",
        flag: b'4',
        dev: (7, 0),
        mode: 0o660,
        ..Member::default()
    })
    .add(Member {
        name: "fifo",
        flag: b'6',
        mode: 0o600,
        ..Member::default()
    })
    .file_mode("suid", b"#!/bin/sh\n", 0o4755)
    .add(Member {
        name: "owned",
        data: b"x",
        uid: 1234,
        gid: 5678,
        ..Member::default()
    })
    .add(Member {
        name: "huge-uid",
        data: b"x",
        uid: 1 << 40,
        ..Member::default()
    });
    let (out, root) = import(&s, rootless, tar.finish());
    let null2 = fs::symlink_metadata(root.join("null2"));
    let suid = fs::metadata(root.join("suid"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert!(
        fs::symlink_metadata(root.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    if rootless {
        assert!(null2.is_err() && fs::symlink_metadata(root.join("blk")).is_err());
        assert!(
            out.stderr.contains("null2") && out.stderr.contains("device nodes need root"),
            "{}",
            out.stderr
        );
        // Extracted with ferrytest's subordinate ids: owners and setuid
        // bits are kept, owner N on disk is the range's start + N - 1.
        assert_eq!(suid, 0o4755);
        let m = fs::metadata(root.join("owned")).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (
                ferrytest_sub_start("/etc/subuid") + 1233,
                ferrytest_sub_start("/etc/subgid") + 5677
            )
        );
        let m = fs::metadata(root.join("huge-uid")).unwrap();
        assert_eq!(m.uid(), common::test_user().unwrap().uid, "left to root");
        assert!(
            out.stderr.contains("huge-uid") && out.stderr.contains("out of range"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("owned by other ids"), "{}", out.stderr);
    } else {
        let m = null2.unwrap();
        assert!(m.file_type().is_char_device() && m.rdev() == libc::makedev(1, 3));
        assert_eq!(suid, 0o4755);
        let m = fs::metadata(root.join("owned")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1234, 5678));
        assert!(
            out.stderr.contains("huge-uid") && out.stderr.contains("out of range"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn devices_setuid_and_owners_as_root() {
    require_root!();
    devices_and_modes(false);
}

#[test]
fn devices_setuid_and_owners_rootless() {
    if !have_ferrytest() {
        common::skip("this test: needs root and the ferrytest user");
        return;
    }
    devices_and_modes(true);
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid NUL-terminated strings and a writable buffer.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| {
        buf.truncate(r as usize);
        buf
    })
}

#[test]
fn pax_xattrs_are_filtered() {
    let s = Scratch::new("xattr");
    let pax = |k: &str, v: &[u8]| (format!("SCHILY.xattr.{k}"), v.to_vec());
    let mut tar = Tar::default();
    tar.add(Member {
        name: "forged/",
        flag: b'5',
        mode: 0o755,
        pax: vec![
            pax("user.overlay.opaque", b"y"),
            pax("trusted.overlay.redirect", b"/etc"),
        ],
        ..Member::default()
    })
    .add(Member {
        name: "f",
        data: b"x",
        pax: vec![
            pax("user.note", b"kept"),
            pax("security.selinux", b"system_u:object_r:shadow_t:s0"),
            pax("trusted.mine", b"root only"),
        ],
        ..Member::default()
    })
    .dir("real/")
    .file("real/.wh..wh..opq", b"");
    let (out, root) = import(&s, false, tar.finish());
    assert_eq!(xattr(&root.join("forged"), "user.overlay.opaque"), None);
    assert_eq!(
        xattr(&root.join("forged"), "trusted.overlay.redirect"),
        None
    );
    assert!(out.stderr.contains("user.overlay.opaque"), "{}", out.stderr);
    assert_eq!(
        xattr(&root.join("f"), "user.note").as_deref(),
        Some(&b"kept"[..])
    );
    assert!(out.stderr.contains("security.selinux"), "{}", out.stderr);
    if common::is_root() {
        assert_eq!(
            xattr(&root.join("f"), "trusted.mine").as_deref(),
            Some(&b"root only"[..])
        );
    }
    // ferry's own opaque marker.
    assert_eq!(
        xattr(&root.join("real"), "user.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
}

#[test]
fn huge_metadata_records_are_refused() {
    let s = Scratch::new("longname");
    let mut tar = Tar::default();
    let long = "n".repeat(2 << 20);
    tar.file(&long, b"x");
    let layout = s.path("layout");
    oci_layout(&layout, &Image::new(vec![tar.finish()], json!({})), "t");
    let store = s.path("store").display().to_string();
    let r = format!("oci:{}:t", layout.display());
    let out = ferry(false, &["image", "--store", &store, "import", &r], &[]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("PAX header of"), "{}", out.stderr);
}
