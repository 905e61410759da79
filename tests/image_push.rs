//! `ferry image push|save|load|tag`: push to Debian's docker-registry
//! (started here), check with skopeo, pull back with ferry; cross-repository
//! mounts, chunked uploads, layers packed for stores without layer blobs;
//! archives that podman loads and runs; one clear error for bad input.

mod common;
mod imagekit;

use std::fs;
use std::process::Command;

use imagekit::*;
use serde_json::Value;

/// `ferry image --store STORE ARGS...` as root or as `ferrytest`.
fn image(rootless: bool, store: &str, args: &[&str]) -> Run {
    let mut all = vec!["image", "--store", store];
    all.extend_from_slice(args);
    ferry(rootless, &all, &[])
}

/// The busybox test image imported into `store` as `bb`.
fn import_bb(s: &Scratch, rootless: bool, store: &str) -> Image {
    let layout = s.path("layout");
    let img = busybox_image(common::rootfs_template());
    if !layout.exists() {
        oci_layout(&layout, &img, "v1");
        if rootless {
            s.give_to_ferrytest();
        }
    }
    let r = format!("oci:{}:v1", layout.display());
    image(rootless, store, &["import", "--name", "bb", &r]).ok();
    img
}

fn inspect(rootless: bool, store: &str, name: &str) -> Value {
    serde_json::from_str(&image(rootless, store, &["inspect", name]).ok().stdout).unwrap()
}

/// The registry's access log lines for `method` requests on `repo`.
fn logged(s: &Scratch, method: &str, repo: &str) -> Vec<String> {
    let needle = format!("\"{method} /v2/{repo}/");
    fs::read_to_string(s.path("registry.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}

#[test]
fn push_is_byte_exact_and_pulls_back() {
    require_root!();
    if !needs(&["docker-registry", "skopeo"]) {
        return;
    }
    let s = Scratch::new("push");
    let store = s.path("store").display().to_string();
    let img = import_bb(&s, false, &store);
    let reg = Registry::start(&s, RegistryOpts::default());
    let dest = format!("127.0.0.1:{}/test/bb:v1", reg.port);
    let out = image(false, &store, &["push", "bb", &dest]).ok();
    let digest = pushed_digest(&out);
    assert!(
        out.stdout.contains("3 blobs uploaded, 0 mounted"),
        "{}",
        out.stdout
    );
    // Quiet without a terminal.
    assert_eq!(out.stderr, "", "{}", out.stderr);

    // What the registry has is what ferry imported, byte for byte: the
    // manifest of the layout (its digest), the same layer blobs.
    let ours = inspect(false, &store, "bb");
    assert_eq!(ours["manifest"], digest.as_str());
    let theirs = skopeo_inspect(&format!("docker://{dest}"));
    assert_eq!(theirs["Digest"], digest.as_str());
    let layers: Vec<&Value> = ours["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    let remote: Vec<&Value> = theirs["Layers"].as_array().unwrap().iter().collect();
    assert_eq!(layers, remote);

    // Pulled back: same manifest, same config (image id), same layers.
    let back = s.path("back").display().to_string();
    image(false, &back, &["pull", "--insecure", &dest]).ok();
    let pulled = inspect(false, &back, &dest);
    assert_eq!(pulled["manifest"], digest.as_str());
    assert_eq!(pulled["id"], ours["id"]);
    for (i, l) in img.layers.iter().enumerate() {
        assert_eq!(
            pulled["layers"][i]["diff_id"],
            format!("sha256:{}", sha256(l))
        );
    }

    // A second repository: every blob is mounted from the first, none
    // uploaded again.
    let other = format!("127.0.0.1:{}/other/bb:v2", reg.port);
    let out = image(false, &store, &["push", "bb", &other]).ok();
    assert_eq!(pushed_digest(&out), digest);
    assert!(
        out.stdout.contains("0 blobs uploaded, 3 mounted"),
        "{}",
        out.stdout
    );
    let mounts = logged(&s, "POST", "other/bb");
    assert_eq!(mounts.len(), 3, "{mounts:#?}");
    assert!(
        mounts
            .iter()
            .all(|l| l.contains("from=test/bb") && l.contains("\" 201 ")),
        "{mounts:#?}"
    );
    assert!(logged(&s, "PUT", "other/bb/blobs").is_empty());
    assert_eq!(
        skopeo_inspect(&format!("docker://{other}"))["Digest"],
        digest.as_str()
    );

    // The same push again: everything is there already.
    let out = image(false, &store, &["push", "bb", &other]).ok();
    assert!(out.stdout.contains("3 already there"), "{}", out.stdout);
}

#[test]
fn chunked_upload_and_packed_layers() {
    require_root!();
    if !needs(&["docker-registry", "skopeo"]) {
        return;
    }
    let s = Scratch::new("push-chunked");
    let store = s.path("store").display().to_string();
    let img = import_bb(&s, false, &store);
    let reg = Registry::start(&s, RegistryOpts::default());

    // Chunks of 4000 bytes: the layers go up in PATCHes.
    let dest = format!("127.0.0.1:{}/chunky/bb:v1", reg.port);
    let out = image(
        false,
        &store,
        &["push", "--chunk-size", "4000", "bb", &dest],
    )
    .ok();
    let digest = pushed_digest(&out);
    let patches = logged(&s, "PATCH", "chunky/bb");
    assert!(patches.len() > 2, "{patches:#?}");
    assert!(
        patches.iter().all(|l| l.contains("\" 202 ")),
        "{patches:#?}"
    );
    assert_eq!(
        skopeo_inspect(&format!("docker://{dest}"))["Digest"],
        digest.as_str()
    );
    let back = s.path("back").display().to_string();
    image(false, &back, &["pull", "--insecure", &dest]).ok();
    assert_eq!(
        inspect(false, &back, &dest)["id"],
        inspect(false, &store, "bb")["id"]
    );

    // A store from before layer blobs were kept: the layers are packed
    // from their directories (whiteouts and the opaque directory included),
    // the image id changes and a warning says so.
    let rec = inspect(false, &store, "bb");
    for l in rec["layers"].as_array().unwrap() {
        let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
        fs::remove_file(s.path("store/blobs/sha256").join(hex)).unwrap();
    }
    let packed = format!("127.0.0.1:{}/packed/bb:v1", reg.port);
    let out = image(false, &store, &["push", "bb", &packed]).ok();
    assert!(out.stderr.contains("image id changes"), "{}", out.stderr);
    let back2 = s.path("back2").display().to_string();
    image(false, &back2, &["pull", "--insecure", &packed]).ok();
    let pulled = inspect(false, &back2, &packed);
    assert_ne!(pulled["id"], rec["id"]);
    // The same files: a bundle of the packed image sees what the original
    // shows (the whiteout and the opaque directory still apply).
    let bundle = s.path("bundle");
    image(
        false,
        &back2,
        &["bundle", "--flatten", &packed, bundle.to_str().unwrap()],
    )
    .ok();
    let rootfs = bundle.join("rootfs");
    assert!(!rootfs.join("etc/gone").exists());
    let mut data: Vec<String> = fs::read_dir(rootfs.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    data.sort();
    assert_eq!(data, ["new"]);
    assert_eq!(img.layers.len(), pulled["layers"].as_array().unwrap().len());

    // Pulling the original again into that store fetches and keeps the
    // blobs its stored layers lacked: pushes of it are byte-exact again.
    image(false, &store, &["pull", "--insecure", &dest]).ok();
    let again = format!("127.0.0.1:{}/again/bb:v1", reg.port);
    let out = image(false, &store, &["push", &dest, &again]).ok();
    assert_eq!(pushed_digest(&out), digest);
    assert!(!out.stderr.contains("image id changes"), "{}", out.stderr);
}

#[test]
fn push_as_the_test_user() {
    require_root!();
    if !have_ferrytest() {
        common::skip("this test: needs the ferrytest user");
        return;
    }
    if !needs(&["docker-registry", "skopeo"]) {
        return;
    }
    let s = Scratch::new("push-rootless");
    let store = s.path("store").display().to_string();
    import_bb(&s, true, &store);
    let reg = Registry::start(&s, RegistryOpts::default());
    let dest = format!("127.0.0.1:{}/rootless/bb:v1", reg.port);
    let out = image(true, &store, &["push", "bb", &dest]).ok();
    let digest = pushed_digest(&out);
    assert_eq!(
        skopeo_inspect(&format!("docker://{dest}"))["Digest"],
        digest.as_str()
    );
    let saved = s.path("bb.tar").display().to_string();
    image(true, &store, &["save", "bb", "-o", &saved]).ok();
    let back = s.path("back").display().to_string();
    image(true, &back, &["pull", &dest]).ok();
    assert_eq!(inspect(true, &back, &dest)["manifest"], digest.as_str());
}

#[test]
fn archives_load_into_podman_and_skopeo() {
    require_root!();
    if !needs(&["skopeo", "podman", "runc"]) {
        return;
    }
    let s = Scratch::new("save");
    let store = s.path("store").display().to_string();
    import_bb(&s, false, &store);
    image(false, &store, &["tag", "bb", "ferry-saved:v7"]).ok();
    let tagged = inspect(false, &store, "ferry-saved:v7");
    assert_eq!(tagged["id"], inspect(false, &store, "bb")["id"]);

    // docker-archive: podman loads it and runs it (a private podman store;
    // runc and cgroupfs, as this host's hybrid cgroups need).
    let docker = s.path("bb-docker.tar");
    image(
        false,
        &store,
        &["save", "ferry-saved:v7", "-o", docker.to_str().unwrap()],
    )
    .ok();
    let podman = Podman::new(&s, "podman");
    let loaded = podman.ok(&["load", "-i", docker.to_str().unwrap()]);
    assert!(loaded.contains("ferry-saved:v7"), "{loaded}");
    let said = podman.run_image("localhost/ferry-saved:v7");
    assert!(said.contains("data: new"), "{said}");
    assert!(said.contains("FOO=bar"), "{said}");
    drop(podman);

    // oci-archive: skopeo reads the manifest ferry has.
    let oci = s.path("bb-oci.tar");
    image(
        false,
        &store,
        &[
            "save",
            "--format",
            "oci-archive",
            "bb",
            "-o",
            oci.to_str().unwrap(),
        ],
    )
    .ok();
    let v = skopeo_inspect(&format!("oci-archive:{}", oci.display()));
    assert_eq!(v["Digest"], tagged["manifest"]);

    // load: both back into a new store, same image id.
    let other = s.path("other").display().to_string();
    let out = image(false, &other, &["load", docker.to_str().unwrap()]).ok();
    assert!(out.stdout.starts_with("ferry-saved:v7 "), "{}", out.stdout);
    let out = image(
        false,
        &other,
        &["load", "--name", "from-oci", "-i", oci.to_str().unwrap()],
    )
    .ok();
    assert!(out.stdout.starts_with("from-oci "), "{}", out.stdout);
    assert_eq!(inspect(false, &other, "ferry-saved:v7")["id"], tagged["id"]);
    assert_eq!(inspect(false, &other, "from-oci")["id"], tagged["id"]);

    // The kept layer blobs go with the last image that uses them.
    let blobs = || fs::read_dir(s.path("other/blobs/sha256")).unwrap().count();
    image(false, &other, &["rm", "ferry-saved:v7"]).ok();
    assert!(blobs() > 0);
    image(false, &other, &["rm", "from-oci"]).ok();
    assert_eq!(blobs(), 0);
}

/// One line on stderr, a non-zero exit.
fn one_error(out: &Run, needle: &str) {
    assert_ne!(out.code, 0, "{}", out.stdout);
    let lines: Vec<&str> = out.stderr.trim().lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(lines[0].contains(needle), "{}", out.stderr);
}

#[test]
fn bad_input_gives_one_clear_error() {
    require_root!();
    let s = Scratch::new("push-bad");
    let store = s.path("store").display().to_string();
    import_bb(&s, false, &store);
    let port = free_port();
    let unreachable = format!("127.0.0.1:{port}/x/bb:v1");
    one_error(
        &image(false, &store, &["push", "bb", &unreachable]),
        &format!("127.0.0.1:{port}"),
    );
    one_error(
        &image(false, &store, &["push", "nothere", &unreachable]),
        "no image \"nothere\"",
    );
    one_error(
        &image(false, &store, &["push", "bb", "busybox"]),
        "bad destination",
    );
    one_error(
        &image(
            false,
            &store,
            &["push", "bb", "127.0.0.1:5000/UPPER/case:v1"],
        ),
        "bad destination",
    );
    let out_file = s.path("never.tar");
    one_error(
        &image(
            false,
            &store,
            &["save", "nothere", "-o", out_file.to_str().unwrap()],
        ),
        "no image",
    );
    assert!(!out_file.exists());
    one_error(&image(false, &store, &["tag", "nothere", "x"]), "no image");
    one_error(
        &image(false, &store, &["tag", "bb", "bad name"]),
        "invalid image name",
    );
    let junk = s.path("junk.tar");
    fs::write(&junk, b"not a tar at all").unwrap();
    one_error(
        &image(false, &store, &["load", junk.to_str().unwrap()]),
        "junk.tar",
    );
    one_error(
        &image(false, &store, &["load", "/nonexistent.tar"]),
        "/nonexistent.tar",
    );
    // Nothing was left behind: no temporary files in the store or beside
    // the archive.
    assert_eq!(fs::read_dir(s.path("store/tmp")).unwrap().count(), 0);
    let stray: Vec<_> = fs::read_dir(&s.dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("ferry-save"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

/// A CONNECT proxy on 127.0.0.1 that records the targets it was asked for
/// and pipes the bytes; it stops when `stop` is set (or after 60 s).
fn connect_proxy(
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::Ordering;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            let Ok((client, _)) = listener.accept() else {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            client.set_nonblocking(false).unwrap();
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let mut parts = line.split_whitespace();
                let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
                    let _ = (&client).write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
                    return;
                };
                seen.lock().unwrap().push(target.to_string());
                let Ok(upstream) = TcpStream::connect(target) else {
                    let _ = (&client).write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                (&client)
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let t = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut u2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
                let mut up = upstream;
                let _ = std::io::copy(&mut r, &mut up);
                let _ = up.shutdown(std::net::Shutdown::Write);
                let _ = t.join();
            });
        }
    });
    port
}

#[test]
fn proxies_from_the_environment() {
    require_root!();
    if !needs(&["docker-registry"]) {
        return;
    }
    let s = Scratch::new("push-proxy");
    let store = s.path("store").display().to_string();
    import_bb(&s, false, &store);
    let reg = Registry::start(&s, RegistryOpts::default());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pport = connect_proxy(seen.clone(), stop.clone());
    let proxy = format!("http://127.0.0.1:{pport}");
    let target = format!("127.0.0.1:{}", reg.port);
    let dest = format!("{target}/proxied/bb:v1");
    let args = [
        "image",
        "--store",
        store.as_str(),
        "push",
        "bb",
        dest.as_str(),
    ];

    // HTTPS_PROXY: every request goes through the proxy's tunnel.
    let out = ferry(false, &args, &[("HTTPS_PROXY", &proxy), ("NO_PROXY", "")]);
    let through: Vec<String> = seen.lock().unwrap().drain(..).collect();
    out.ok();
    assert!(
        !through.is_empty() && through.iter().all(|t| *t == target),
        "{through:?}"
    );
    assert!(!logged(&s, "PUT", "proxied/bb/manifests").is_empty());

    // NO_PROXY names the registry: straight there.
    let out = ferry(
        false,
        &args,
        &[("HTTPS_PROXY", &proxy), ("NO_PROXY", "127.0.0.1")],
    );
    out.ok();
    assert!(seen.lock().unwrap().is_empty());

    // A proxy that is not there: one clear error naming the failure.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = ferry(false, &args, &[("HTTPS_PROXY", &dead), ("NO_PROXY", "")]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    one_error(&out, "127.0.0.1");
}

#[test]
fn progress_on_a_terminal() {
    require_root!();
    if !needs(&["docker-registry", "script"]) {
        return;
    }
    let s = Scratch::new("push-progress");
    let store = s.path("store").display().to_string();
    import_bb(&s, false, &store);
    let reg = Registry::start(&s, RegistryOpts::default());
    let bin = common::ferry_bin();
    let dest = format!("127.0.0.1:{}/tty/bb:v1", reg.port);
    // script(1) gives ferry a terminal; what it printed comes back on
    // stdout.
    let cmd = format!(
        "{} image --store {store} push bb {dest} && {} image --store {}/back pull {dest}",
        bin.display(),
        bin.display(),
        s.dir.display()
    );
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let rec = inspect(false, &store, "bb");
    for l in rec["layers"].as_array().unwrap() {
        let short = &l["digest"].as_str().unwrap()["sha256:".len()..][..12];
        assert!(
            text.lines()
                .any(|line| line.contains(short) && line.contains("pushed")),
            "{text}"
        );
    }
    assert!(text.contains("pushing "), "{text}");
    assert!(text.contains("pulling "), "{text}");
}

#[test]
fn push_over_tls_with_credentials() {
    require_root!();
    if !needs(&["docker-registry", "skopeo", "openssl", "htpasswd"]) {
        return;
    }
    let s = Scratch::new("push-tls");
    let store = s.path("store").display().to_string();
    import_bb(&s, false, &store);
    let (ca, cert, key) = make_ca(&s);
    let htpasswd = alice_htpasswd(&s);
    let reg = Registry::start(
        &s,
        RegistryOpts {
            tls: Some((&cert, &key)),
            htpasswd: Some(htpasswd.to_str().unwrap()),
            ..RegistryOpts::default()
        },
    );
    let dest = format!("127.0.0.1:{}/secure/bb:v1", reg.port);
    let ca = ca.display().to_string();

    // An unknown CA is an error, not a fallback to plain HTTP.
    let out = image(false, &store, &["push", "bb", &dest]);
    one_error(&out, "--cert-dir");
    // No credentials: the registry's 401 on the first request is one error.
    let out = image(false, &store, &["push", "--cert-dir", &ca, "bb", &dest]);
    one_error(&out, "credentials");
    // Basic credentials, TLS verified with the registry's CA, chunked.
    let out = image(
        false,
        &store,
        &[
            "push",
            "--cert-dir",
            &ca,
            "--creds",
            "alice:s3cret",
            "--chunk-size",
            "5000",
            "bb",
            &dest,
        ],
    )
    .ok();
    let digest = pushed_digest(&out);
    let out = Command::new("skopeo")
        .args(["inspect", "--creds", "alice:s3cret", "--cert-dir", &ca])
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"], digest.as_str());
}

/// What the token registry saw: token scopes asked, blobs stored (digest
/// checked), the manifest put.
#[derive(Default)]
struct TokenState {
    scopes: Vec<String>,
    blobs: Vec<String>,
    manifest: Option<Vec<u8>>,
}

/// One HTTP request of the token registry: method, path, headers (names
/// lower-case), body.
type Req = (String, String, Vec<(String, String)>, Vec<u8>);

fn read_request(r: &mut impl std::io::BufRead) -> Option<Req> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some((method, path, headers, body))
}

/// A registry that wants bearer tokens (a pull token for HEAD, a push token
/// for uploads) and takes monolithic uploads; one request per connection.
fn token_registry(
    state: std::sync::Arc<std::sync::Mutex<TokenState>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> u16 {
    use std::io::{BufReader, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            conn.set_nonblocking(false).unwrap();
            let reply = |conn: &mut std::net::TcpStream,
                         status: &str,
                         headers: &str,
                         body: &[u8]| {
                let head = format!(
                    "HTTP/1.1 {status}\r\n{headers}Connection: close\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(body);
            };
            // ferry tries TLS first on loopback: answer as HTTP servers do.
            let mut first = [0u8; 1];
            if conn.peek(&mut first).is_ok_and(|n| n == 1) && first[0] == 0x16 {
                reply(&mut conn, "400 Bad Request", "", b"not TLS");
                continue;
            }
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let Some((method, path, headers, body)) = read_request(&mut r) else {
                continue;
            };
            let mut st = state.lock().unwrap();
            if let Some(q) = path.strip_prefix("/token?") {
                st.scopes.push(q.to_string());
                let token = if q.contains("%2Cpush") {
                    "push-t0k"
                } else {
                    "pull-t0k"
                };
                reply(
                    &mut conn,
                    "200 OK",
                    "",
                    format!("{{\"token\":\"{token}\"}}").as_bytes(),
                );
                continue;
            }
            let auth = headers
                .iter()
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            let writes = matches!(method.as_str(), "POST" | "PUT" | "PATCH");
            let ok = auth == "Bearer push-t0k" || (!writes && auth == "Bearer pull-t0k");
            if !ok {
                let scope = if writes { "pull,push" } else { "pull" };
                let ch = format!(
                    "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\",scope=\"repository:tok/bb:{scope}\"\r\n"
                );
                reply(&mut conn, "401 Unauthorized", &ch, b"{}");
                continue;
            }
            match (method.as_str(), path.as_str()) {
                ("HEAD", p) if p.starts_with("/v2/tok/bb/blobs/") => {
                    reply(&mut conn, "404 Not Found", "", b"")
                }
                ("POST", "/v2/tok/bb/blobs/uploads/") => {
                    reply(&mut conn, "202 Accepted", "Location: /upload/1\r\n", b"")
                }
                ("PUT", p) if p.starts_with("/upload/1?digest=") => {
                    let want = p["/upload/1?digest=".len()..].replace("%3A", ":");
                    let got = format!("sha256:{}", sha256(&body));
                    if want == got {
                        st.blobs.push(got);
                        reply(&mut conn, "201 Created", "", b"");
                    } else {
                        reply(&mut conn, "400 Bad Request", "", b"digest");
                    }
                }
                ("PUT", "/v2/tok/bb/manifests/v1") => {
                    let d = format!("Docker-Content-Digest: sha256:{}\r\n", sha256(&body));
                    st.manifest = Some(body);
                    reply(&mut conn, "201 Created", &d, b"");
                }
                _ => reply(&mut conn, "404 Not Found", "", b"{}"),
            }
        }
    });
    port
}

#[test]
fn bearer_tokens_with_push_scope() {
    let s = Scratch::new("push-token");
    let store = s.path("store").display().to_string();
    import_bb(&s, false, &store);
    let state = std::sync::Arc::new(std::sync::Mutex::new(TokenState::default()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let port = token_registry(state.clone(), stop.clone());
    let dest = format!("127.0.0.1:{port}/tok/bb:v1");
    let out = image(false, &store, &["push", "bb", &dest]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let out = out.ok();
    let st = state.lock().unwrap();
    // A pull token for the HEADs, then a push token for the uploads.
    assert!(
        st.scopes
            .iter()
            .any(|q| q.contains("scope=repository%3Atok%2Fbb%3Apull%2Cpush")),
        "{:?}",
        st.scopes
    );
    let rec = inspect(false, &store, "bb");
    let mut want: Vec<String> = rec["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    want.push(rec["id"].as_str().unwrap().to_string());
    let mut got = st.blobs.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    let manifest = st.manifest.as_ref().expect("a manifest was put");
    assert_eq!(pushed_digest(&out), format!("sha256:{}", sha256(manifest)));
}
