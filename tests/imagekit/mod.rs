//! Builders for image tests: raw tar streams (any name, any type: the
//! hostile ones too), OCI layouts, OCI archives and docker-archives, and a
//! runner for `ferry` as root or as the unprivileged `ferrytest`.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A tar stream written header by header.
#[derive(Default)]
pub struct Tar {
    pub data: Vec<u8>,
}

pub struct Member<'a> {
    pub name: &'a str,
    pub flag: u8,
    pub data: &'a [u8],
    pub mode: u32,
    pub link: &'a str,
    pub uid: u64,
    pub gid: u64,
    pub dev: (u32, u32),
    pub pax: Vec<(String, Vec<u8>)>,
}

impl Default for Member<'_> {
    fn default() -> Self {
        Member {
            name: "",
            flag: b'0',
            data: b"",
            mode: 0o644,
            link: "",
            uid: 0,
            gid: 0,
            dev: (0, 0),
            pax: Vec::new(),
        }
    }
}

fn octal(field: &mut [u8], v: u64) {
    let w = field.len() - 1;
    let s = format!("{v:0w$o}");
    field[..w].copy_from_slice(s.as_bytes());
}

impl Tar {
    fn header(&mut self, name: &[u8], flag: u8, size: u64, m: &Member) {
        let mut h = [0u8; 512];
        let n = name.len().min(100);
        h[..n].copy_from_slice(&name[..n]);
        octal(&mut h[100..108], u64::from(m.mode));
        octal(&mut h[108..116], m.uid.min(0o7777777));
        octal(&mut h[116..124], m.gid.min(0o7777777));
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], 1_700_000_000);
        h[156] = flag;
        let l = m.link.len().min(100);
        h[157..157 + l].copy_from_slice(&m.link.as_bytes()[..l]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        octal(&mut h[329..337], u64::from(m.dev.0));
        octal(&mut h[337..345], u64::from(m.dev.1));
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        octal(&mut h[148..155], sum);
        h[155] = b' ';
        self.data.extend_from_slice(&h);
    }

    fn body(&mut self, data: &[u8]) {
        self.data.extend_from_slice(data);
        let len = self.data.len().div_ceil(512) * 512;
        self.data.resize(len, 0);
    }

    pub fn add(&mut self, m: Member) -> &mut Self {
        let mut pax = m.pax.clone();
        if m.name.len() > 100 {
            pax.push(("path".into(), m.name.as_bytes().to_vec()));
        }
        if m.link.len() > 100 {
            pax.push(("linkpath".into(), m.link.as_bytes().to_vec()));
        }
        if m.uid > 0o7777777 {
            pax.push(("uid".into(), m.uid.to_string().into_bytes()));
        }
        if !pax.is_empty() {
            let mut recs = Vec::new();
            for (k, v) in &pax {
                let body = [k.as_bytes(), b"=", v, b"\n"].concat();
                let mut len = body.len() + 2;
                while format!("{len} ").len() + body.len() != len {
                    len += 1;
                }
                recs.extend_from_slice(format!("{len} ").as_bytes());
                recs.extend_from_slice(&body);
            }
            self.header(b"PaxHeader", b'x', recs.len() as u64, &m);
            self.body(&recs);
        }
        self.header(m.name.as_bytes(), m.flag, m.data.len() as u64, &m);
        self.body(m.data);
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.add(Member {
            name,
            data,
            ..Member::default()
        })
    }

    pub fn file_mode(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        self.add(Member {
            name,
            data,
            mode,
            ..Member::default()
        })
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.add(Member {
            name,
            flag: b'5',
            mode: 0o755,
            ..Member::default()
        })
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.add(Member {
            name,
            flag: b'2',
            link: target,
            mode: 0o777,
            ..Member::default()
        })
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.add(Member {
            name,
            flag: b'1',
            link: target,
            ..Member::default()
        })
    }

    /// Every file, directory and symlink under `dir`, as `./`-less paths.
    pub fn tree(&mut self, dir: &Path) -> &mut Self {
        fn walk(t: &mut Tar, root: &Path, rel: &Path) {
            let mut entries: Vec<_> = fs::read_dir(root.join(rel)).unwrap().flatten().collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let r = rel.join(e.file_name());
                let name = r.to_str().unwrap().to_string();
                let m = fs::symlink_metadata(e.path()).unwrap();
                let mode = m.permissions().mode() & 0o7777;
                if m.is_dir() {
                    t.add(Member {
                        name: &format!("{name}/"),
                        flag: b'5',
                        mode,
                        ..Member::default()
                    });
                    walk(t, root, &r);
                } else if m.file_type().is_symlink() {
                    let target = fs::read_link(e.path()).unwrap();
                    t.symlink(&name, target.to_str().unwrap());
                } else if m.is_file() {
                    let data = fs::read(e.path()).unwrap();
                    t.file_mode(&name, &data, mode);
                }
            }
        }
        walk(self, dir, Path::new(""));
        self
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut d = std::mem::take(&mut self.data);
        d.extend_from_slice(&[0u8; 1024]);
        d
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// An image to write: layer tars (uncompressed), the config's `config`,
/// its history.
pub struct Image {
    pub layers: Vec<Vec<u8>>,
    pub config: Value,
    pub history: Vec<Value>,
    pub compression: Compression,
    pub arch: String,
}

impl Image {
    pub fn new(layers: Vec<Vec<u8>>, config: Value) -> Image {
        Image {
            layers,
            config,
            history: Vec::new(),
            compression: Compression::Gzip,
            arch: "amd64".into(),
        }
    }

    pub fn config_json(&self) -> Vec<u8> {
        let diffs: Vec<String> = self
            .layers
            .iter()
            .map(|l| format!("sha256:{}", sha256(l)))
            .collect();
        serde_json::to_vec(&json!({
            "architecture": self.arch, "os": "linux",
            "created": "2025-01-01T00:00:00Z",
            "config": self.config,
            "rootfs": { "type": "layers", "diff_ids": diffs },
            "history": self.history,
        }))
        .unwrap()
    }
}

/// Write a blob into an OCI layout; its descriptor.
pub fn put_blob(layout: &Path, media_type: &str, data: &[u8]) -> Value {
    let d = sha256(data);
    let dir = layout.join("blobs/sha256");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(&d), data).unwrap();
    json!({ "mediaType": media_type, "digest": format!("sha256:{d}"), "size": data.len() })
}

/// Write `img`'s blobs and manifest into `layout`; the manifest descriptor.
pub fn put_image(layout: &Path, img: &Image) -> Value {
    let mut layers = Vec::new();
    for l in &img.layers {
        let (mt, data) = match img.compression {
            Compression::None => ("application/vnd.oci.image.layer.v1.tar", l.clone()),
            Compression::Gzip => ("application/vnd.oci.image.layer.v1.tar+gzip", gzip(l)),
            Compression::Zstd => (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                ruzstd::encoding::compress_to_vec(
                    &l[..],
                    ruzstd::encoding::CompressionLevel::Fastest,
                ),
            ),
        };
        layers.push(put_blob(layout, mt, &data));
    }
    let config = put_blob(
        layout,
        "application/vnd.oci.image.config.v1+json",
        &img.config_json(),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": layers,
    });
    put_blob(
        layout,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    )
}

/// An OCI layout holding `img` under `tag`.
pub fn oci_layout(layout: &Path, img: &Image, tag: &str) {
    let mut desc = put_image(layout, img);
    desc["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    write_index(layout, vec![desc]);
}

pub fn write_index(layout: &Path, manifests: Vec<Value>) {
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({ "schemaVersion": 2, "manifests": manifests })).unwrap(),
    )
    .unwrap();
}

/// A tar of the files under `dir` (an OCI archive of a layout).
pub fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut t = Tar::default();
    t.tree(dir);
    t.finish()
}

/// A legacy docker-archive (`docker save`): `ID/layer.tar` symlinks to
/// `DIFF.tar` members, `ID.json` config, `manifest.json`.
pub fn docker_archive(img: &Image, tag: &str) -> Vec<u8> {
    let mut t = Tar::default();
    let config = img.config_json();
    let cid = sha256(&config);
    let mut layer_paths = Vec::new();
    for (i, l) in img.layers.iter().enumerate() {
        let diff = sha256(l);
        t.file(&format!("{diff}.tar"), l);
        let id = sha256(format!("legacy{i}").as_bytes());
        t.dir(&format!("{id}/"));
        t.symlink(&format!("{id}/layer.tar"), &format!("../{diff}.tar"));
        layer_paths.push(format!("{id}/layer.tar"));
    }
    t.file(&format!("{cid}.json"), &config);
    let manifest =
        json!([{ "Config": format!("{cid}.json"), "RepoTags": [tag], "Layers": layer_paths }]);
    t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    t.finish()
}

/// A two-layer busybox image: layer 1 is the test rootfs plus `/etc/gone`
/// (5000 bytes) and `/data/{old1,old2}`; layer 2 deletes `/etc/gone`,
/// makes `/data` opaque (its marker after its new entry) and adds
/// `/data/new`.
pub fn busybox_image(rootfs: &Path) -> Image {
    let mut l1 = Tar::default();
    l1.tree(rootfs)
        .file("etc/gone", &[b'x'; 5000])
        .dir("data/")
        .file("data/old1", &[b'o'; 3000])
        .file("data/old2", b"old2");
    let mut l2 = Tar::default();
    l2.dir("etc/")
        .file("etc/.wh.gone", b"")
        .dir("data/")
        .file("data/new", b"new\n")
        .file("data/.wh..wh..opq", b"");
    let mut img = Image::new(
        vec![l1.finish(), l2.finish()],
        json!({ "Cmd": ["sh", "-c", "echo data: $(ls /data); ls /etc/gone 2>&1; echo FOO=$FOO; pwd"],
                "Env": ["PATH=/bin:/usr/bin:/sbin", "FOO=bar"], "WorkingDir": "/data",
                "Labels": { "org.example.label": "yes" }, "ExposedPorts": { "80/tcp": {} } }),
    );
    img.history = vec![
        json!({ "created_by": "ADD rootfs /" }),
        json!({ "created_by": "ENV FOO=bar", "empty_layer": true }),
        json!({ "created_by": "RUN rm /etc/gone && rm -rf /data/*" }),
    ];
    img
}

/// A scratch directory, removed on drop; owned by `ferrytest` if asked.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ferry-img-{name}-{}", std::process::id()));
        let _ = Command::new("rm").arg("-rf").arg(&dir).status();
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        Scratch { dir }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }

    /// Give the directory to the test user (`crate::common::test_user`).
    pub fn give_to_ferrytest(&self) {
        let u = crate::common::test_user().expect("the test user");
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", u.uid, u.gid))
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("FERRY_KEEP_TEST_DIRS").is_some() {
            return;
        }
        // Layers may hold read-only directories: make them writable first.
        let _ = Command::new("chmod")
            .args(["-R", "u+rwx"])
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Whether rootless tests can run: root (to switch users) and the test
/// user (`ferrytest` or `$FERRY_TEST_USER`, see `crate::common::test_user`).
pub fn have_ferrytest() -> bool {
    crate::common::is_root() && crate::common::test_user().is_some()
}

/// The first host id of `ferrytest`'s range in /etc/subuid or /etc/subgid:
/// rootless, owner N of a layer is that + N - 1 on disk.
pub fn ferrytest_sub_start(file: &str) -> u32 {
    let u = crate::common::test_user()
        .unwrap_or_else(|| panic!("the test user has no range in {file}"));
    if file.ends_with("subgid") {
        u.subgid.0
    } else {
        u.subuid.0
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "ferry failed:\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Run ferry with `args` (as `ferrytest` if `rootless`), output to files.
pub fn ferry(rootless: bool, args: &[&str], env: &[(&str, &str)]) -> Run {
    let bin = crate::common::ferry_bin();
    let out_dir = std::env::temp_dir();
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let so = out_dir.join(format!("ferry-img-out-{}-{n}", std::process::id()));
    let se = out_dir.join(format!("ferry-img-err-{}-{n}", std::process::id()));
    let mut cmd = if rootless {
        let u = crate::common::test_user().expect("the test user");
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", u.uid))
            .arg(format!("--regid={}", u.gid));
        c.args(["--init-groups", "env", "HOME=/tmp", "XDG_RUNTIME_DIR="]);
        for (k, v) in env {
            c.arg(format!("{k}={v}"));
        }
        c.arg(&bin);
        c
    } else {
        let mut c = Command::new(&bin);
        c.envs(env.iter().copied());
        c
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&so).unwrap())
        .stderr(fs::File::create(&se).unwrap());
    let mut child = cmd.spawn().expect("spawn ferry");
    let st = crate::common::wait_timeout(&mut child, Duration::from_secs(120));
    if st.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let r = Run {
        code: st.and_then(|s| s.code()).unwrap_or(-1),
        stdout: fs::read_to_string(&so).unwrap_or_default(),
        stderr: fs::read_to_string(&se).unwrap_or_default(),
    };
    let _ = fs::remove_file(&so);
    let _ = fs::remove_file(&se);
    r
}

/// `ferry --root S/state run --bundle BUNDLE ID`, as root or as the test user.
pub fn run_bundle(s: &Scratch, rootless: bool, bundle: &std::path::Path, id: &str) -> Run {
    let state = s.path("state").display().to_string();
    let b = bundle.display().to_string();
    ferry(
        rootless,
        &["--root", &state, "run", "--bundle", &b, id],
        &[],
    )
}

// Registries: shared by image_registry.rs (pull) and image_push.rs.

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's docker-registry on 127.0.0.1 (filesystem storage in the
/// scratch dir, log in `registry.log`), killed on drop.
pub struct Registry {
    pub child: Child,
    pub port: u16,
}

/// How to start docker-registry.
#[derive(Default)]
pub struct RegistryOpts<'a> {
    pub htpasswd: Option<&'a str>,
    /// Certificate and key files: serve TLS.
    pub tls: Option<(&'a Path, &'a Path)>,
    /// Listen on every address, not only 127.0.0.1.
    pub everywhere: bool,
}

impl Registry {
    pub fn start(s: &Scratch, o: RegistryOpts) -> Registry {
        let port = free_port();
        let auth = match o.htpasswd {
            Some(p) => format!("auth:\n  htpasswd:\n    realm: ferry-test\n    path: {p}\n"),
            None => String::new(),
        };
        let tls = match o.tls {
            Some((cert, key)) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ),
            None => String::new(),
        };
        let host = if o.everywhere { "0.0.0.0" } else { "127.0.0.1" };
        let config = s.path("registry.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {host}:{port}\n{tls}{auth}",
                s.path("registry-data").display()
            ),
        )
        .unwrap();
        let log = fs::File::create(s.path("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            // Its access log (one line per request) goes to stdout.
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, port }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA, and a certificate for 127.0.0.1 it signed: (CA dir, cert, key).
pub fn make_ca(s: &Scratch) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_dir = s.path("ca");
    fs::create_dir_all(&ca_dir).unwrap();
    let (cert, key) = (s.path("server.crt"), s.path("server.key"));
    let sh = format!(
        "set -e; cd {dir}; \
         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
           -subj /CN=ferry-test-ca -keyout ca.key -out ca/ca.crt 2>/dev/null; \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
           -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null; \
         printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext; \
         openssl x509 -req -in server.csr -CA ca/ca.crt -CAkey ca.key -CAcreateserial \
           -days 2 -extfile ext -out server.crt 2>/dev/null",
        dir = s.dir.display()
    );
    let st = Command::new("sh").args(["-c", &sh]).status().unwrap();
    assert!(st.success(), "openssl");
    (ca_dir, cert, key)
}

/// Whether every tool in `tools` is installed; otherwise the test is
/// skipped (a failure under `FERRY_NO_SKIP=1`), naming the missing ones.
pub fn needs(tools: &[&str]) -> bool {
    let missing: Vec<&&str> = tools.iter().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    crate::common::skip(&format!("this test: needs {missing:?} (scripts/deps.sh)"));
    false
}

/// `skopeo inspect` of `reference` (TLS not verified): its JSON; a failure
/// panics with its stderr.
pub fn skopeo_inspect(reference: &str) -> Value {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", reference])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The manifest digest `push` printed: `REF DIGEST (...)`.
pub fn pushed_digest(out: &Run) -> String {
    out.stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no digest in {:?}", out.stdout))
        .to_string()
}

/// podman with a private store, runc and cgroupfs (crun refuses this
/// host's hybrid cgroups); its images are removed on drop.
pub struct Podman {
    root: PathBuf,
    run: PathBuf,
}

impl Podman {
    /// A podman store of its own under `s`, named `name`.
    pub fn new(s: &Scratch, name: &str) -> Podman {
        Podman {
            root: s.path(&format!("{name}-root")),
            run: s.path(&format!("{name}-run")),
        }
    }

    /// `podman` with this store's root, runroot and vfs driver.
    fn command(&self) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.run)
            .args(["--storage-driver", "vfs"]);
        c
    }

    /// `podman ARGS...`: its stdout; a failure panics with its stderr.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self
            .command()
            .args(["--cgroup-manager", "cgroupfs"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `podman run --rm IMAGE`: what its CMD printed.
    pub fn run_image(&self, image: &str) -> String {
        self.ok(&[
            "run",
            "--rm",
            "--runtime",
            "runc",
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            image,
        ])
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if self.root.exists() {
            let _ = self.command().args(["rmi", "-a", "-f"]).output();
        }
    }
}

/// An htpasswd file in `s` with the user `alice`, password `s3cret`
/// (bcrypt); its path.
pub fn alice_htpasswd(s: &Scratch) -> PathBuf {
    let path = s.path("htpasswd");
    let out = Command::new("htpasswd")
        .args(["-Bbn", "alice", "s3cret"])
        .output()
        .unwrap();
    fs::write(&path, &out.stdout).unwrap();
    path
}

/// A one-layer base image of `rootfs` with a PATH and `sh` as its command
/// (the base the build tests import as `bb`).
pub fn base_image(rootfs: &Path) -> Image {
    let mut l = Tar::default();
    l.tree(rootfs);
    Image::new(
        vec![l.finish()],
        json!({ "Env": ["PATH=/usr/local/bin:/bin:/usr/bin:/sbin"], "Cmd": ["sh"] }),
    )
}

/// The two tests of `$body(rootless)`: `$root` as root, `$rootless` as the
/// test user when the calling file's `rootless_ok()` says it can run here.
#[macro_export]
macro_rules! root_and_rootless {
    ($root:ident, $rootless:ident, $body:ident) => {
        #[test]
        fn $root() {
            $crate::require_root!();
            $body(false);
        }

        #[test]
        fn $rootless() {
            if rootless_ok() {
                $body(true);
            }
        }
    };
}
