//! Interop: an image that `ferry build` made runs under podman, pushed to
//! Debian's docker-registry and pulled by podman, and saved as a
//! docker-archive and loaded by podman; pulled back by ferry, its manifest
//! digest is the one skopeo sees in the registry.

mod common;
mod imagekit;

use std::fs;
use std::path::PathBuf;

use imagekit::*;
use serde_json::Value;

/// A small multi-step Dockerfile: a RUN that writes a file, a COPY, ENV and
/// a shell-form CMD that reports all three.
const DOCKERFILE: &str = "FROM bb
RUN echo built-by-run > /made.txt
COPY hello.txt /srv/hello.txt
ENV GREETING=interop-env
CMD echo \"run=$(cat /made.txt) copy=$(cat /srv/hello.txt) env=$GREETING cmd-ran\"
";

/// What the CMD prints in a container of the built image.
const EXPECTED: &str = "run=built-by-run copy=copied-file env=interop-env cmd-ran";

/// `ferry --root S/state ARGS...` as root.
fn ferry_in(s: &Scratch, args: &[&str]) -> Run {
    let state = s.path("state").display().to_string();
    let mut all = vec!["--root", state.as_str()];
    all.extend_from_slice(args);
    ferry(false, &all, &[])
}

/// `ferry image --store STORE ARGS...`.
fn image(s: &Scratch, store: &str, args: &[&str]) -> Run {
    let mut all = vec!["image", "--store", store];
    all.extend_from_slice(args);
    ferry_in(s, &all)
}

/// The busybox test base (one layer, PATH, `sh`) imported as `bb`.
fn import_base(s: &Scratch, store: &str) {
    let layout = s.path("layout");
    oci_layout(&layout, &base_image(common::rootfs_template()), "v1");
    let r = format!("oci:{}:v1", layout.display());
    image(s, store, &["import", "--name", "bb", &r]).ok();
}

/// The build context: the Dockerfile and the file it copies.
fn context(s: &Scratch) -> PathBuf {
    let ctx = s.path("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    fs::write(ctx.join("hello.txt"), "copied-file\n").unwrap();
    ctx
}

fn inspect(s: &Scratch, store: &str, name: &str) -> Value {
    serde_json::from_str(&image(s, store, &["inspect", name]).ok().stdout).unwrap()
}

#[test]
fn built_image_runs_under_podman() {
    require_root!();
    if !needs(&["docker-registry", "skopeo", "podman", "runc"]) {
        return;
    }
    let s = Scratch::new("interop");
    let store = s.path("store").display().to_string();
    import_base(&s, &store);
    let ctx = context(&s);
    ferry_in(
        &s,
        &[
            "build",
            "--store",
            &store,
            "-t",
            "interop-app:v1",
            ctx.to_str().unwrap(),
        ],
    )
    .ok();
    let built = inspect(&s, &store, "interop-app:v1");
    assert_eq!(built["layers"].as_array().unwrap().len(), 3, "{built:#}");
    // ferry itself runs what it built.
    let said = image(&s, &store, &["run", "--rm", "interop-app:v1"])
        .ok()
        .stdout;
    assert_eq!(said.trim(), EXPECTED);

    // Pushed to the registry, pulled and run by podman.
    let reg = Registry::start(&s, RegistryOpts::default());
    let dest = format!("127.0.0.1:{}/interop/app:v1", reg.port);
    let out = image(&s, &store, &["push", "interop-app:v1", &dest]).ok();
    let digest = pushed_digest(&out);
    let remote = skopeo_inspect(&format!("docker://{dest}"));
    assert_eq!(remote["Digest"], digest.as_str());
    assert_eq!(remote["Layers"].as_array().unwrap().len(), 3, "{remote:#}");
    let podman = Podman::new(&s, "podman-pulled");
    podman.ok(&["pull", "--tls-verify=false", &dest]);
    assert_eq!(podman.run_image(&dest).trim(), EXPECTED);
    // podman reads the build's history: one entry per instruction.
    let history = podman.ok(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", &dest]);
    for step in [
        "built-by-run",
        "hello.txt",
        "GREETING=interop-env",
        "cmd-ran",
    ] {
        assert!(history.contains(step), "{step}: {history}");
    }

    // Saved as a docker-archive, loaded and run by podman (a store of its
    // own, so no layer is reused from the pull).
    let podman = Podman::new(&s, "podman-loaded");
    let archive = s.path("app-docker.tar");
    image(
        &s,
        &store,
        &[
            "save",
            "--format",
            "docker-archive",
            "interop-app:v1",
            "-o",
            archive.to_str().unwrap(),
        ],
    )
    .ok();
    let loaded = podman.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains("interop-app:v1"), "{loaded}");
    assert_eq!(
        podman.run_image("localhost/interop-app:v1").trim(),
        EXPECTED
    );

    // Pulled back by ferry: the registry's manifest, the built image's id.
    let back = s.path("back").display().to_string();
    image(&s, &back, &["import", "--insecure", &dest]).ok();
    let pulled = inspect(&s, &back, &dest);
    assert_eq!(pulled["manifest"], digest.as_str());
    assert_eq!(pulled["manifest"], remote["Digest"]);
    assert_eq!(pulled["id"], built["id"]);
    let said = image(&s, &back, &["run", "--rm", &dest]).ok().stdout;
    assert_eq!(said.trim(), EXPECTED);
}
