//! `ferry image`: import OCI layouts, OCI archives and docker-archives,
//! bundle them as a layer stack (overlayfs mounted by ferry) or flattened,
//! and run them, as root and rootless.

mod common;
mod imagekit;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use imagekit::*;
use serde_json::{Value, json};

fn store_args(s: &Scratch) -> Vec<String> {
    vec![
        "--root".into(),
        s.path("state").display().to_string(),
        "image".into(),
        "--store".into(),
        s.path("store").display().to_string(),
    ]
}

/// `ferry [--root S/state] image --store S/store ARGS...`
fn image(s: &Scratch, rootless: bool, args: &[&str]) -> Run {
    let mut all = store_args(s);
    all.extend(args.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    ferry(rootless, &refs, &[])
}

/// Import the two-layer busybox image as `bb` (the scratch directory is
/// given to ferrytest first when rootless).
fn import_busybox(s: &Scratch, rootless: bool) -> Run {
    let layout = s.path("layout");
    oci_layout(&layout, &busybox_image(common::rootfs_template()), "v1");
    if rootless {
        s.give_to_ferrytest();
    }
    let r = format!("oci:{}:v1", layout.display());
    image(s, rootless, &["import", "--name", "bb", &r]).ok()
}

/// Import the busybox image, bundle it, run it: the merged view.
fn merged_view(rootless: bool, s: &Scratch) {
    let out = import_busybox(s, rootless);
    assert!(out.stdout.starts_with("bb sha256:"), "{}", out.stdout);
    let ls = image(s, rootless, &["ls"]).ok();
    assert!(ls.stdout.contains("bb "), "{}", ls.stdout);
    let bundle = s.path("bundle");
    image(s, rootless, &["bundle", "bb", bundle.to_str().unwrap()]).ok();
    let config: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let ann = &config["annotations"];
    assert_eq!(ann["org.example.label"], "yes");
    assert_eq!(ann["org.opencontainers.image.exposedPorts"], "80/tcp");
    let layers: Vec<String> =
        serde_json::from_str(ann["org.ferry.layers"].as_str().unwrap()).unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(config["process"]["cwd"], "/data");
    let run = run_bundle(s, rootless, &bundle, "merged").ok();
    assert!(
        run.stdout.contains("data: new\n"),
        "opaque /data: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("No such file"),
        "/etc/gone deleted: {}",
        run.stdout
    );
    assert!(run.stdout.contains("FOO=bar\n/data\n"), "{}", run.stdout);
    // The layers themselves are untouched; writes went to the bundle's upper.
    assert!(Path::new(&layers[1]).join("etc/gone").exists());
    // Nothing stays mounted on the host.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(bundle.to_str().unwrap()), "{mounts}");
}

#[test]
fn two_layer_image_runs_with_whiteouts_and_opaque_dirs() {
    require_root!();
    let s = Scratch::new("merged");
    merged_view(false, &s);
}

#[test]
fn two_layer_image_runs_rootless() {
    if !have_ferrytest() {
        common::skip("this test: needs root and the ferrytest user");
        return;
    }
    let s = Scratch::new("merged-rootless");
    merged_view(true, &s);
}

#[test]
fn history_shows_deleted_bytes() {
    let s = Scratch::new("history");
    import_busybox(&s, false);
    let h = image(&s, false, &["history", "--format", "json", "bb"]).ok();
    let h: Value = serde_json::from_str(&h.stdout).unwrap();
    let steps = h["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[1]["empty_layer"], true);
    assert_eq!(steps[2]["layer"], 1);
    assert_eq!(steps[2]["size"], 4);
    assert_eq!(h["wasted_bytes"], 5000 + 3000 + 4);
    let wasted = h["wasted"].as_array().unwrap();
    assert_eq!(
        wasted[0],
        json!({ "path": "/etc/gone", "size": 5000, "shipped_in": 0, "deleted_in": 1, "how": "whiteout" })
    );
    assert_eq!(wasted[1]["path"], "/data/old1");
    assert_eq!(wasted[1]["how"], "opaque");
    let table = image(&s, false, &["history", "bb"]).ok();
    assert!(
        table.stdout.contains("/etc/gone (whiteout)"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("RUN rm /etc/gone"),
        "{}",
        table.stdout
    );
}

#[test]
fn docker_archive_with_symlinked_layers_imports() {
    let s = Scratch::new("docker");
    let img = busybox_image(common::rootfs_template());
    let archive = s.path("img.tar");
    fs::write(&archive, docker_archive(&img, "example.com/bb:1.0")).unwrap();
    let out = image(
        &s,
        false,
        &["import", &format!("docker-archive:{}", archive.display())],
    )
    .ok();
    assert!(
        out.stdout.starts_with("example.com/bb:1.0 "),
        "{}",
        out.stdout
    );
    let inspect = image(&s, false, &["inspect", "example.com/bb:1.0"]).ok();
    let v: Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(v["layers"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["layers"][1]["diff_id"],
        format!("sha256:{}", sha256(&img.layers[1]))
    );
    // Same image from an OCI layout: the layers are shared, not extracted again.
    let layout = s.path("layout");
    oci_layout(&layout, &img, "v1");
    image(
        &s,
        false,
        &[
            "import",
            "--name",
            "again",
            &format!("oci:{}", layout.display()),
        ],
    )
    .ok();
    let layers = fs::read_dir(s.path("store/layers"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .count();
    assert_eq!(layers, 2);
}

#[test]
fn oci_archive_index_picks_the_platform() {
    let s = Scratch::new("platform");
    let layout = s.path("layout");
    let mut amd = Image::new(
        vec![Tar::default().file("arch", b"amd64").finish()],
        json!({ "Cmd": ["x"] }),
    );
    amd.arch = "amd64".into();
    let mut arm = Image::new(
        vec![Tar::default().file("arch", b"arm64").finish()],
        json!({ "Cmd": ["x"] }),
    );
    arm.arch = "arm64".into();
    let mut da = put_image(&layout, &amd);
    da["platform"] = json!({ "os": "linux", "architecture": "amd64" });
    let mut db = put_image(&layout, &arm);
    db["platform"] = json!({ "os": "linux", "architecture": "arm64", "variant": "v8" });
    let index = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [db, da] });
    let mut idesc = put_blob(
        &layout,
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );
    idesc["annotations"] = json!({ "org.opencontainers.image.ref.name": "multi" });
    write_index(&layout, vec![idesc]);
    let archive = s.path("multi.tar");
    fs::write(&archive, tar_dir(&layout)).unwrap();
    let r = format!("oci-archive:{}:multi", archive.display());
    image(&s, false, &["import", "--name", "a", &r]).ok();
    image(
        &s,
        false,
        &["import", "--name", "b", "--platform", "linux/arm64", &r],
    )
    .ok();
    for (name, want) in [("a", "amd64"), ("b", "arm64")] {
        let v: Value =
            serde_json::from_str(&image(&s, false, &["inspect", name]).ok().stdout).unwrap();
        assert_eq!(v["config"]["architecture"], want);
        let root = v["layers"][0]["path"].as_str().unwrap();
        assert_eq!(
            fs::read_to_string(Path::new(root).join("arch")).unwrap(),
            want
        );
    }
    let bad = image(&s, false, &["import", "--platform", "linux/s390x", &r]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("no image for platform linux/s390x"),
        "{}",
        bad.stderr
    );
}

#[test]
fn uncompressed_and_zstd_layers_import() {
    let s = Scratch::new("formats");
    for (i, c) in [Compression::None, Compression::Zstd]
        .into_iter()
        .enumerate()
    {
        let layout = s.path(&format!("layout{i}"));
        let mut img = Image::new(
            vec![
                Tar::default()
                    .dir("d/")
                    .file("d/f", &vec![7u8; 100_000])
                    .finish(),
            ],
            json!({}),
        );
        img.compression = c;
        oci_layout(&layout, &img, "t");
        image(
            &s,
            false,
            &[
                "import",
                "--name",
                &format!("f{i}"),
                &format!("oci:{}:t", layout.display()),
            ],
        )
        .ok();
        let v: Value =
            serde_json::from_str(&image(&s, false, &["inspect", &format!("f{i}")]).ok().stdout)
                .unwrap();
        assert_eq!(v["layers"][0]["unpacked_size"], 100_000);
    }
}

#[test]
fn corrupt_blobs_and_bombs_are_refused() {
    let s = Scratch::new("corrupt");
    let img = Image::new(
        vec![Tar::default().file("f", &vec![0u8; 1 << 20]).finish()],
        json!({}),
    );
    // A layer blob that does not match its digest.
    let layout = s.path("bad-digest");
    oci_layout(&layout, &img, "t");
    let m: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mdig = m["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let man: Value =
        serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(&mdig)).unwrap())
            .unwrap();
    let ldig = man["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let blob = layout.join("blobs/sha256").join(&ldig);
    let other = gzip(&Tar::default().file("f", &vec![1u8; 1 << 20]).finish());
    fs::write(&blob, &other).unwrap();
    let out = image(
        &s,
        false,
        &["import", &format!("oci:{}:t", layout.display())],
    );
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("expected"), "{}", out.stderr);
    // A diff_id that does not match the layer.
    let layout = s.path("bad-diff");
    let mut bad = Image::new(img.layers.clone(), json!({}));
    bad.layers[0] = Tar::default().file("g", b"other").finish();
    let mut desc = put_image(&layout, &img);
    let man_path = layout.join("blobs/sha256").join(
        desc["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    let mut man: Value = serde_json::from_slice(&fs::read(&man_path).unwrap()).unwrap();
    man["config"] = put_blob(
        &layout,
        "application/vnd.oci.image.config.v1+json",
        &bad.config_json(),
    );
    desc = put_blob(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&man).unwrap(),
    );
    write_index(&layout, vec![desc]);
    let out = image(&s, false, &["import", &format!("oci:{}", layout.display())]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("digest is"), "{}", out.stderr);
    // A layer bigger uncompressed than allowed (a gzip bomb, in small).
    let layout = s.path("bomb");
    oci_layout(&layout, &img, "t");
    let mut args = store_args(&s);
    args.extend(["import".into(), format!("oci:{}:t", layout.display())]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ferry(false, &refs, &[("FERRY_MAX_LAYER_SIZE", "100000")]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("larger than 100000 bytes"),
        "{}",
        out.stderr
    );
    // Nothing half-extracted is left in the store.
    let layers = fs::read_dir(s.path("store/layers"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .count();
    assert_eq!(layers, 0);
    assert_eq!(fs::read_dir(s.path("store/tmp")).unwrap().count(), 0);
}

#[test]
fn concurrent_imports_share_layers_and_rm_collects_them() {
    let s = Scratch::new("concurrent");
    let layout = s.path("layout");
    let img = Image::new(
        vec![
            Tar::default().file("a", &vec![1u8; 2 << 20]).finish(),
            Tar::default().file("b", b"b").finish(),
        ],
        json!({}),
    );
    oci_layout(&layout, &img, "t");
    let r = format!("oci:{}:t", layout.display());
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let (s, r) = (&s, &r);
                sc.spawn(move || image(s, false, &["import", "--name", &format!("n{i}"), r]))
            })
            .collect();
        for h in hs {
            h.join().unwrap().ok();
        }
    });
    let dirs = || {
        fs::read_dir(s.path("store/layers"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .count()
    };
    assert_eq!(dirs(), 2);
    let bundle = s.path("bundle");
    image(
        &s,
        false,
        &["bundle", "n0", bundle.to_str().unwrap(), "--", "true"],
    )
    .ok();
    for i in 0..4 {
        image(&s, false, &["rm", &format!("n{i}")]).ok();
    }
    assert_eq!(dirs(), 2, "the bundle still uses the layers");
    fs::remove_dir_all(&bundle).unwrap();
    image(&s, false, &["import", "--name", "x", &r]).ok();
    image(&s, false, &["rm", "x"]).ok();
    assert_eq!(dirs(), 0);
    assert!(image(&s, false, &["ls", "-q"]).ok().stdout.is_empty());
}

#[test]
fn flattened_bundle_runs_under_runc_too() {
    require_root!();
    let s = Scratch::new("flatten");
    import_busybox(&s, false);
    let bundle = s.path("flat");
    image(
        &s,
        false,
        &["bundle", "--flatten", "bb", bundle.to_str().unwrap()],
    )
    .ok();
    assert!(!bundle.join("rootfs/etc/gone").exists());
    assert!(!bundle.join("rootfs/data/old1").exists());
    assert!(bundle.join("rootfs/data/new").exists());
    let run = run_bundle(&s, false, &bundle, "flat").ok();
    assert!(run.stdout.contains("data: new\n"), "{}", run.stdout);
    if Path::new("/usr/sbin/runc").exists() || Path::new("/usr/bin/runc").exists() {
        let out = std::process::Command::new("runc")
            .arg("--root")
            .arg(s.path("runc"))
            .args(["run", "--bundle", bundle.to_str().unwrap(), "flat-runc"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("data: new\n"),
            "runc: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn image_user_resolves_through_the_image_passwd() {
    require_root!();
    let s = Scratch::new("user");
    let layout = s.path("layout");
    let mut img = busybox_image(common::rootfs_template());
    img.config["User"] = json!("tester");
    img.config["Cmd"] = json!(["sh", "-c", "echo id=$(id -u):$(id -g)"]);
    oci_layout(&layout, &img, "v1");
    image(
        &s,
        false,
        &[
            "import",
            "--name",
            "u",
            &format!("oci:{}:v1", layout.display()),
        ],
    )
    .ok();
    let bundle = s.path("bundle");
    image(&s, false, &["bundle", "u", bundle.to_str().unwrap()]).ok();
    let config: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["process"]["user"],
        json!({ "uid": 1000, "gid": 1000 })
    );
    let run = run_bundle(&s, false, &bundle, "user").ok();
    assert!(run.stdout.contains("id=1000:1000"), "{}", run.stdout);
}

/// Rootless, a layer's owners survive: extracted with ferrytest's
/// subordinate ids, mapped the same way in the container, removed again by
/// `image rm`.
#[test]
fn rootless_layers_keep_their_owners() {
    if !have_ferrytest() {
        common::skip("this test: needs root and the ferrytest user");
        return;
    }
    let s = Scratch::new("owners-rootless");
    let layout = s.path("layout");
    let mut img = busybox_image(common::rootfs_template());
    let mut l3 = Tar::default();
    for (name, uid, mode, flag, data) in [
        ("home/tester/", 1000, 0o700, b'5', &b""[..]),
        ("home/tester/secret", 1000, 0o600, b'0', b"hi\n"),
        ("srv/", 0, 0o755, b'5', b""),
        ("srv/daemon", 2, 0o644, b'0', b"d"),
    ] {
        l3.add(Member {
            name,
            flag,
            data,
            mode,
            uid,
            gid: uid,
            ..Member::default()
        });
    }
    img.layers.push(l3.finish());
    img.config["User"] = json!("tester");
    img.config["Cmd"] = json!([
        "sh",
        "-c",
        "id -u; cat /home/tester/secret; stat -c '%u:%g %a' /home/tester /srv/daemon"
    ]);
    oci_layout(&layout, &img, "v1");
    s.give_to_ferrytest();
    let r = format!("oci:{}:v1", layout.display());
    image(&s, true, &["import", "--name", "own", &r]).ok();

    let v: Value = serde_json::from_str(&image(&s, true, &["inspect", "own"]).ok().stdout).unwrap();
    let top = Path::new(v["layers"][2]["path"].as_str().unwrap());
    let m = fs::metadata(top.join("home/tester/secret")).unwrap();
    assert_eq!(
        (m.uid(), m.gid()),
        (
            ferrytest_sub_start("/etc/subuid") + 999,
            ferrytest_sub_start("/etc/subgid") + 999
        ),
        "owner 1000 on disk"
    );

    let out = image(&s, true, &["run", "--rm", "own"]).ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["1000", "hi", "1000:1000 700", "2:2 644"],
        "{}",
        out.stderr
    );
    assert_eq!(fs::read_dir(s.path("store/bundles")).unwrap().count(), 0);

    // A flattened copy keeps them too.
    let flat = s.path("flat");
    image(
        &s,
        true,
        &["bundle", "--flatten", "own", flat.to_str().unwrap()],
    )
    .ok();
    let m = fs::metadata(flat.join("rootfs/srv/daemon")).unwrap();
    assert_eq!(m.uid(), ferrytest_sub_start("/etc/subuid") + 1);
    let out = run_bundle(&s, true, &flat, "own-flat").ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["1000", "hi", "1000:1000 700", "2:2 644"],
        "{}",
        out.stderr
    );

    // The store's files belong to the subordinate ids, and rm removes them.
    image(&s, true, &["rm", "own"]).ok();
    assert_eq!(fs::read_dir(s.path("store/layers")).unwrap().count(), 0);
}

#[test]
fn image_run_rm_runs_and_cleans_up() {
    require_root!();
    let s = Scratch::new("run");
    import_busybox(&s, false);
    let out = image(
        &s,
        false,
        &[
            "run",
            "--rm",
            "bb",
            "sh",
            "-c",
            "echo hello > /data/x; cat /data/x",
        ],
    )
    .ok();
    assert_eq!(out.stdout.trim(), "hello");
    assert_eq!(fs::read_dir(s.path("store/bundles")).unwrap().count(), 0);
    let code = image(&s, false, &["run", "--rm", "bb", "sh", "-c", "exit 7"]).code;
    assert_eq!(code, 7);
}

#[test]
fn many_layers_mount_with_the_new_mount_api() {
    require_root!();
    let s = Scratch::new("many");
    let layout = s.path("layout");
    let mut layers = vec![Tar::default().tree(common::rootfs_template()).finish()];
    for i in 0..80 {
        layers.push(
            Tar::default()
                .dir("l/")
                .file(&format!("l/{i}"), b"x")
                .finish(),
        );
    }
    let mut img = Image::new(layers, json!({ "Cmd": ["sh", "-c", "ls /l | wc -l"] }));
    img.compression = Compression::None;
    oci_layout(&layout, &img, "v1");
    image(
        &s,
        false,
        &[
            "import",
            "--name",
            "many",
            &format!("oci:{}:v1", layout.display()),
        ],
    )
    .ok();
    let bundle = s.path("bundle");
    image(&s, false, &["bundle", "many", bundle.to_str().unwrap()]).ok();
    let run = run_bundle(&s, false, &bundle, "many").ok();
    assert_eq!(run.stdout.trim(), "80");
}
