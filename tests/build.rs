//! `ferry build`: real builds of the Dockerfiles in tests/builds/ on the
//! busybox base the image tests use, as root and as the test user, checked
//! from inside the built image (`ferry image run`), through the cache, and
//! with bad input.

mod common;
mod imagekit;

use std::fs;
use std::path::{Path, PathBuf};

use common::{host_address, pastas_under};
use imagekit::*;
use serde_json::{Value, json};

/// A scratch store with the busybox base imported as `bb`, and a copy of
/// one of tests/builds/ as the context.
struct Env {
    s: Scratch,
    rootless: bool,
}

impl Env {
    fn new(name: &str, build: &str, rootless: bool) -> Env {
        let s = Scratch::new(&format!("build-{name}"));
        let layout = s.path("layout");
        oci_layout(&layout, &base_image(common::rootfs_template()), "v1");
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/builds")
            .join(build);
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(&src)
            .arg(s.path("ctx"))
            .status()
            .unwrap();
        assert!(st.success());
        if rootless {
            s.give_to_ferrytest();
        }
        let e = Env { s, rootless };
        let r = format!("oci:{}:v1", layout.display());
        e.image(&["import", "--name", "bb", &r]).ok();
        e
    }

    fn ctx(&self) -> PathBuf {
        self.s.path("ctx")
    }

    fn global(&self) -> Vec<String> {
        vec!["--root".into(), self.s.path("state").display().to_string()]
    }

    /// `ferry build --store S/store ARGS... S/ctx`.
    fn build(&self, args: &[&str]) -> Run {
        let mut all = self.global();
        all.push("build".into());
        all.push("--store".into());
        all.push(self.s.path("store").display().to_string());
        all.extend(args.iter().map(|a| a.to_string()));
        all.push(self.ctx().display().to_string());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        ferry(self.rootless, &refs, &[])
    }

    fn image(&self, args: &[&str]) -> Run {
        let mut all = self.global();
        all.push("image".into());
        all.push("--store".into());
        all.push(self.s.path("store").display().to_string());
        all.extend(args.iter().map(|a| a.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        ferry(self.rootless, &refs, &[])
    }

    /// `ferry image run --rm IMAGE CMD...`: its stdout.
    fn run(&self, image: &str, cmd: &[&str]) -> String {
        let mut args = vec!["run", "--rm", image];
        args.extend(cmd);
        self.image(&args).ok().stdout
    }

    fn inspect(&self, image: &str) -> Value {
        serde_json::from_str(&self.image(&["inspect", image]).ok().stdout).unwrap()
    }

    /// What a failed build must not leave: containers, tmp entries, RUN
    /// bundles' mounts.
    fn assert_nothing_left(&self) {
        let state = self.s.path("state");
        let containers: Vec<_> = fs::read_dir(&state)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(containers.is_empty(), "containers left: {containers:?}");
        let tmp: Vec<_> = fs::read_dir(self.s.path("store/tmp"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(tmp.is_empty(), "store tmp left: {tmp:?}");
        let mounts = common::host_mounts_mentioning(&self.s.path("store"));
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    }

    fn edit(&self, rel: &str, text: &str) {
        let p = self.ctx().join(rel);
        fs::write(&p, text).unwrap();
        if self.rootless {
            std::process::Command::new("chown")
                .args(["ferrytest:ferrytest"])
                .arg(&p)
                .status()
                .unwrap();
        }
    }
}

fn rootless_ok() -> bool {
    if !have_ferrytest() {
        common::skip("this test: needs root and the ferrytest user");
        return false;
    }
    true
}

fn steps_cached(out: &str) -> usize {
    out.lines().filter(|l| l.ends_with(" CACHED")).count()
}

/// The Node-style app: build, run, check config and history; then the
/// cache: an unchanged rebuild takes every step from the cache (same id,
/// same token), editing a source re-runs only the steps after the COPY that
/// sees it, `--no-cache` makes a new token.
fn node_app(rootless: bool) {
    let e = Env::new(if rootless { "node-rl" } else { "node" }, "node", rootless);
    e.edit("debug.log", "ignored by .dockerignore\n");
    // A private context directory: `COPY . .` copies its contents, not
    // its mode (WORKDIR /app stays 0755 for the app user).
    fs::set_permissions(e.ctx(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let out = e.build(&["-t", "demo:1"]).ok();
    assert!(out.stdout.contains("[1/11] FROM bb"), "{}", out.stdout);
    assert!(
        out.stdout.contains("installing for production"),
        "RUN output streamed: {}",
        out.stdout
    );
    let last = out.stdout.lines().last().unwrap();
    assert!(last.starts_with("built demo:1 sha256:"), "{last}");
    let served = e.run("demo:1", &[]);
    assert_eq!(
        served.trim(),
        "serving console.log(\"hello v1\") on 3000 as 65534 env=production"
    );
    let files = e.run("demo:1", &["sh", "-c", "ls -a /app; cat /app/build.txt"]);
    assert!(
        files.contains("package.json") && files.contains("node_modules"),
        "{files}"
    );
    assert!(!files.contains("debug.log"), ".dockerignore: {files}");
    assert!(files.contains("1 source files"), "{files}");
    let token = e.run("demo:1", &["cat", "/app/install-token"]);
    assert_eq!(token.len(), 32, "{token}");
    let app = e.run("demo:1", &["ls", "-ld", "/app"]);
    assert!(app.starts_with("drwxr-xr-x"), "{app}");

    let info = e.inspect("demo:1");
    let cfg = &info["config"]["config"];
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["User"], "nobody");
    assert_eq!(cfg["ExposedPorts"], json!({ "3000/tcp": {} }));
    assert_eq!(cfg["Labels"]["org.example.app"], "node-style");
    assert_eq!(cfg["Cmd"], json!(["sh", "/app/server.sh"]));
    assert_eq!(
        info["layers"].as_array().unwrap().len(),
        5,
        "base + 2 COPY + 2 RUN"
    );
    let history = info["config"]["history"].as_array().unwrap();
    assert_eq!(
        history.len(),
        11,
        "the base layer and one entry per instruction"
    );
    let empty: Vec<bool> = history.iter().map(|h| h["empty_layer"] == true).collect();
    assert_eq!(empty.iter().filter(|e| !**e).count(), 5, "one per layer");
    assert!(
        info["layers"][1]["diff_id"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(info["layers"][1]["unpacked_size"].as_u64().unwrap() > 0);

    // Unchanged: everything cached, same image.
    let again = e.build(&["-t", "demo:1"]).ok();
    assert_eq!(steps_cached(&again.stdout), 4, "{}", again.stdout);
    assert!(
        !again.stdout.contains("installing for production"),
        "no RUN ran: {}",
        again.stdout
    );
    assert_eq!(
        e.inspect("demo:1")["id"],
        info["id"],
        "same config, same id"
    );
    assert_eq!(e.run("demo:1", &["cat", "/app/install-token"]), token);

    // A source edit: the install step stays cached, the later ones run.
    e.edit("src/index.js", "console.log(\"hello v2\")\n");
    let edited = e.build(&["-t", "demo:1"]).ok();
    assert_eq!(steps_cached(&edited.stdout), 2, "{}", edited.stdout);
    assert!(
        !edited.stdout.contains("installing for production"),
        "{}",
        edited.stdout
    );
    assert!(
        !edited.stdout.contains("COPY . . CACHED") && !edited.stdout.contains("build.txt CACHED"),
        "{}",
        edited.stdout
    );
    assert_eq!(e.run("demo:1", &["cat", "/app/install-token"]), token);
    assert!(e.run("demo:1", &[]).contains("hello v2"));

    // --no-cache: the install step runs again, a new token.
    let fresh = e.build(&["-t", "demo:1", "--no-cache"]).ok();
    assert_eq!(steps_cached(&fresh.stdout), 0, "{}", fresh.stdout);
    let token2 = e.run("demo:1", &["cat", "/app/install-token"]);
    assert_eq!(token2.len(), 32);
    assert_ne!(token2, token);
    e.assert_nothing_left();
}

root_and_rootless!(
    node_style_app_builds_runs_and_caches,
    node_style_app_builds_rootless,
    node_app
);

fn multistage(rootless: bool) {
    let e = Env::new(
        if rootless { "multi-rl" } else { "multi" },
        "multistage",
        rootless,
    );
    let out = e
        .build(&["-t", "app:2", "--build-arg", "VERSION=2.5.0"])
        .ok();
    assert!(out.stdout.contains("FROM bb"), "{}", out.stdout);
    assert_eq!(e.run("app:2", &[]).trim(), "app 2.5.0 says hello world");
    let info = e.inspect("app:2");
    assert_eq!(
        info["layers"].as_array().unwrap().len(),
        2,
        "base + the artifact"
    );
    assert_eq!(
        info["config"]["config"]["Entrypoint"],
        json!(["/usr/local/bin/app"])
    );
    // The top layer holds the artifact (and its parents), nothing else.
    let top = PathBuf::from(info["layers"][1]["path"].as_str().unwrap());
    let find = std::process::Command::new("find")
        .arg(".")
        .current_dir(&top)
        .output()
        .unwrap();
    let mut listed: Vec<String> = String::from_utf8_lossy(&find.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ".",
            "./usr",
            "./usr/local",
            "./usr/local/bin",
            "./usr/local/bin/app"
        ]
    );
    let size = info["layers"][1]["unpacked_size"].as_u64().unwrap();
    assert!(size < 1000, "only the artifact: {size} bytes");
    // --target builds the first stage alone.
    let t = e.build(&["-t", "app:build", "--target", "build"]).ok();
    assert!(!t.stdout.contains("COPY --from"), "{}", t.stdout);
    let ls = e.run("app:build", &["ls", "/src"]);
    assert!(ls.contains("objects.bin"), "{ls}");
}

root_and_rootless!(
    multistage_final_stage_holds_only_the_artifact,
    multistage_builds_rootless,
    multistage
);

/// A secret for one step: used there, absent from every layer, from the
/// history and from the next step.
fn secret(rootless: bool) {
    let e = Env::new(
        if rootless { "secret-rl" } else { "secret" },
        "secret",
        rootless,
    );
    let token = "s3cr3t-T0KEN-do-not-ship";
    let src = e.s.path("token.txt");
    fs::write(&src, token).unwrap();
    if rootless {
        e.s.give_to_ferrytest();
    }
    let arg = format!("id=api_token,src={}", src.display());
    e.build(&["-t", "sec", "--secret", &arg]).ok();
    assert_eq!(
        e.run("sec", &["cat", "/token-bytes"]).trim(),
        token.len().to_string()
    );
    let after = e.run(
        "sec",
        &["sh", "-c", "cat /after; ls /leak /run/secrets 2>&1; true"],
    );
    assert!(
        after.starts_with("ok\n") && !after.contains("leaked"),
        "{after}"
    );
    let history = e.image(&["history", "--format", "json", "sec"]).ok().stdout;
    assert!(!history.contains(token), "{history}");
    let info = e.inspect("sec");
    for l in info["layers"].as_array().unwrap() {
        let root = PathBuf::from(l["path"].as_str().unwrap());
        let grep = std::process::Command::new("grep")
            .args(["-r", "-l", token])
            .arg(&root)
            .output()
            .unwrap();
        assert!(
            grep.stdout.is_empty(),
            "secret in layer {}: {}",
            root.display(),
            String::from_utf8_lossy(&grep.stdout)
        );
        assert!(
            !root.join("run/secrets").exists(),
            "mount point shipped in {}",
            root.display()
        );
        let blob =
            e.s.path("store/blobs/sha256")
                .join(l["digest"].as_str().unwrap().trim_start_matches("sha256:"));
        if let Ok(data) = fs::read(&blob) {
            assert!(
                !String::from_utf8_lossy(&data).contains(token),
                "secret in the layer tar"
            );
        }
    }
    // Without the secret, the step that needs it fails, naming the step.
    let e2 = e.build(&["-t", "sec2", "--no-cache"]);
    assert_ne!(e2.code, 0);
    assert!(
        e2.stderr.contains("[2/3] RUN --mount=type=secret"),
        "{}",
        e2.stderr
    );
    e.assert_nothing_left();
}

root_and_rootless!(
    secret_is_mounted_for_one_step_and_in_no_layer,
    secret_build_rootless,
    secret
);

#[test]
fn bad_input_is_one_clear_error_and_leaves_nothing() {
    require_root!();
    let e = Env::new("bad", "bad", false);
    // A missing context.
    let mut args = e.global();
    args.extend(["build", "-t", "x", "--store"].map(String::from));
    args.push(e.s.path("store").display().to_string());
    args.push(e.s.path("nowhere").display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = ferry(false, &refs, &[]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("nowhere: not a directory"),
        "{}",
        r.stderr
    );
    // A syntax error: file and line.
    let r = e.build(&["-t", "x"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Dockerfile:3:"), "{}", r.stderr);
    // COPY from outside the context.
    e.edit("Dockerfile", "FROM bb\nCOPY ../layout /x\n");
    let r = e.build(&["-t", "x"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("outside the build context"),
        "{}",
        r.stderr
    );
    // A failing RUN: named, nothing left; the earlier step is cached next time.
    e.edit(
        "Dockerfile",
        "FROM bb\nRUN echo first > /first\nRUN echo failing; exit 3\n",
    );
    let r = e.build(&["-t", "x"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("[3/3] RUN echo failing; exit 3: the command exited with status 3"),
        "{}",
        r.stderr
    );
    e.assert_nothing_left();
    assert!(e.image(&["inspect", "x"]).code != 0, "no image on failure");
    e.edit(
        "Dockerfile",
        "FROM bb\nRUN echo first > /first\nRUN echo fixed\n",
    );
    let r = e.build(&["-t", "x"]).ok();
    assert_eq!(steps_cached(&r.stdout), 1, "{}", r.stdout);
    // A huge context (a 4 GiB sparse file) is not read unless copied.
    let big = fs::File::create(e.ctx().join("huge.img")).unwrap();
    big.set_len(4 << 30).unwrap();
    e.edit("Dockerfile", "FROM bb\nCOPY Dockerfile /df\n");
    let t = std::time::Instant::now();
    e.build(&["-t", "y"]).ok();
    assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
    e.assert_nothing_left();
}

#[test]
fn warns_about_deleted_and_secret_looking_files() {
    require_root!();
    let e = Env::new("leaky", "leaky", false);
    let r = e.build(&["-t", "leaky"]).ok();
    let key_warning = r
        .stderr
        .lines()
        .find(|l| l.contains("/root/.ssh/id_rsa") && l.contains("deleted by"))
        .unwrap_or_else(|| panic!("no deleted-file warning: {}", r.stderr));
    assert!(
        key_warning.contains("COPY .ssh/id_rsa /root/.ssh/id_rsa"),
        "{key_warning}"
    );
    assert!(
        key_warning.contains("RUN /bin/sh -c cat /root/.ssh/id_rsa"),
        "{key_warning}"
    );
    let secret_warning = r
        .stderr
        .lines()
        .find(|l| l.contains("/app/.env") && l.contains("looks like a secret"))
        .unwrap_or_else(|| panic!("no secret warning: {}", r.stderr));
    assert!(
        secret_warning.contains("COPY app.env /app/.env"),
        "{secret_warning}"
    );
    assert!(
        r.stderr
            .lines()
            .any(|l| l.contains("/root/.ssh/id_rsa") && l.contains("looks like a secret")),
        "{}",
        r.stderr
    );
}

fn copy_semantics(rootless: bool) {
    let e = Env::new(if rootless { "copy-rl" } else { "copy" }, "copy", rootless);
    e.build(&["-t", "copies"]).ok();
    let script = "ls /etc/app; echo --; ls -R /srv/data; echo --; \
                  stat -c '%U:%G %a' /srv/owned.conf; cat /srv/renamed.conf; \
                  cat /opt/pkg/README; cat /etc/motd; /copied/busybox echo ran; \
                  cat /from-bind; ls /mnt 2>&1 | grep -c 'No such file'";
    let out = e.run("copies", &["sh", "-c", script]);
    let want = "a.conf\nb.conf\n--\n/srv/data:\none\nsub\n\n/srv/data/sub:\ntwo\n--\n\
                nobody:nogroup 640\nb\nfrom the tarball\nwelcome to example\nran\na\n1\n";
    assert_eq!(out, want);
}

root_and_rootless!(
    copy_and_add_follow_docker_semantics,
    copy_and_add_rootless,
    copy_semantics
);

fn network_modes(rootless: bool) {
    let e = Env::new(if rootless { "net-rl" } else { "net" }, "bad", rootless);
    e.edit(
        "Dockerfile",
        "FROM bb\nRUN cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ' > /netdevs\n",
    );
    e.build(&["-t", "isolated", "--network", "none"]).ok();
    assert_eq!(e.run("isolated", &["cat", "/netdevs"]), "lo\n");
    e.build(&["-t", "hostnet", "--network", "host"]).ok();
    let host = e.run("hostnet", &["cat", "/netdevs"]);
    assert!(host.lines().count() > 1, "the host's interfaces: {host}");
}

root_and_rootless!(
    run_steps_get_the_network_asked_for,
    run_steps_get_the_network_asked_for_rootless,
    network_modes
);

/// No pasta of this test remains. A step's pasta is SIGKILLed without
/// waiting (it publishes no port); its exit takes tens of milliseconds.
fn assert_no_pasta(dir: &Path, when: &str) {
    let mut left = pastas_under(dir);
    for _ in 0..30 {
        if left.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = pastas_under(dir);
    }
    panic!("pasta left after {when}: {left:?}");
}

/// The default (private) network: a RUN step reaches a server the test
/// runs on the host's own (non-loopback) address, through pasta, with
/// pasta's DNS forwarder in resolv.conf; `--network none` cannot reach
/// it; a step that fails after reaching it fails the build and leaves
/// nothing behind; no pasta remains after any build. (No `wget -T`:
/// bookworm's busybox wget crashes with it.)
fn private_network(rootless: bool) {
    let e = Env::new(if rootless { "priv-rl" } else { "priv" }, "bad", rootless);
    let addr = host_address();
    let port = std::net::TcpListener::bind((addr.as_str(), 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let www = e.s.path("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("index.html"), "from the host\n").unwrap();
    let mut server = std::process::Command::new("busybox")
        .args(["httpd", "-f", "-p", &format!("{addr}:{port}"), "-h"])
        .arg(&www)
        .spawn()
        .unwrap();
    let url = format!("http://{addr}:{port}/");
    e.edit(
        "Dockerfile",
        &format!(
            "FROM bb\nRUN wget -q -O /got {url}; echo $? > /rc; \
             grep nameserver /etc/resolv.conf > /dns; hostname > /name; \
             cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ' | sort > /netdevs\n"
        ),
    );
    let default = e.build(&["-t", "private"]);
    let none = e.build(&["-t", "isolated", "--network", "none"]);
    e.edit(
        "Dockerfile",
        &format!("FROM bb\nRUN wget -q -O- {url} && exit 7\n"),
    );
    let failed = e.build(&["-t", "failed"]);
    let _ = server.kill();
    let _ = server.wait();
    assert_no_pasta(&e.s.dir, "the builds");
    default.ok();
    let out = e.run(
        "private",
        &["cat", "/rc", "/got", "/dns", "/name", "/netdevs"],
    );
    assert_eq!(
        out, "0\nfrom the host\nnameserver 10.0.2.3\nferry-build\neth0\nlo\n",
        "the host's server at {url}"
    );
    none.ok();
    let rc = e.run("isolated", &["cat", "/rc"]);
    assert_ne!(rc, "0\n", "--network none reached {url}");
    assert_ne!(failed.code, 0, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("exited with status 7"),
        "the step reached the server, then failed: {}",
        failed.stderr
    );
    e.assert_nothing_left();
}

root_and_rootless!(
    run_steps_reach_the_hosts_network_by_default,
    run_steps_reach_the_hosts_network_by_default_rootless,
    private_network
);

/// A hostile RUN step swaps a mount point's parent for a symlink to a host
/// directory, hoping the commit's clean-up of mount points removes the
/// host's empty entry there: it must not leave the layer.
#[test]
fn mount_point_cleanup_never_follows_the_containers_symlinks() {
    require_root!();
    let e = Env::new("stub-attack", "bad", false);
    let victim = e.s.path("victim");
    fs::create_dir_all(victim.join("b")).unwrap();
    let df = format!(
        "FROM bb\nRUN --mount=type=tmpfs,target=/a/b sh -c 'mv /a /c && ln -s {} /a'\n",
        victim.display()
    );
    e.edit("Dockerfile", &df);
    let r = e.build(&["-t", "attack"]);
    assert!(
        victim.join("b").is_dir(),
        "the host's empty directory was removed: {}",
        r.stderr
    );
    e.assert_nothing_left();
}

/// `COPY DIR /` into a stage that has no layer yet (`FROM scratch`) gives a
/// root of mode 0755 holding the directory's contents (it panicked once).
#[test]
fn copy_of_a_directory_onto_a_scratch_root() {
    require_root!();
    let e = Env::new("scratch-root", "copy", false);
    let df = e.ctx().join("Dockerfile.scratch");
    fs::write(
        &df,
        "FROM scratch AS files\nCOPY conf /\nFROM bb\nCOPY --from=files / /imported/\n",
    )
    .unwrap();
    e.build(&["-f", df.to_str().unwrap(), "-t", "fromscratch"])
        .ok();
    let out = e.run(
        "fromscratch",
        &["sh", "-c", "ls /imported; stat -c %a /imported"],
    );
    assert_eq!(out, "a.conf\nb.conf\nskip.txt\n755\n");
}
