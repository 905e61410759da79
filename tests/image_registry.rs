//! `ferry image pull`: from Debian's docker-registry (started and stopped
//! here; anonymous and basic auth, plain HTTP and TLS with a CA made here),
//! and from a small fake registry that asks for a bearer token, redirects
//! blobs and sends them chunked.

mod common;
mod imagekit;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use imagekit::*;
use serde_json::{Value, json};

/// The image pulled as `name` has `img`'s layers.
fn assert_pulled(s: &Scratch, name: &str, img: &Image) {
    let store = s.path("store").display().to_string();
    let v: Value = serde_json::from_str(
        &ferry(false, &["image", "--store", &store, "inspect", name], &[])
            .ok()
            .stdout,
    )
    .unwrap();
    for (i, layer) in img.layers.iter().enumerate() {
        assert_eq!(
            v["layers"][i]["diff_id"],
            format!("sha256:{}", sha256(layer))
        );
    }
}

fn pull(s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> Run {
    let store = s.path("store").display().to_string();
    let mut all = vec!["image", "--store", &store, "pull"];
    all.extend_from_slice(args);
    ferry(false, &all, env)
}

#[test]
fn pulls_from_a_loopback_docker_registry() {
    if !have("docker-registry") || !have("skopeo") {
        common::skip("this test: needs docker-registry and skopeo (scripts/deps.sh)");
        return;
    }
    let s = Scratch::new("registry");
    let layout = s.path("layout");
    let img = busybox_image(common::rootfs_template());
    oci_layout(&layout, &img, "v1");
    let with_auth = have("htpasswd");
    let htpasswd = with_auth.then(|| alice_htpasswd(&s));
    let reg = Registry::start(
        &s,
        RegistryOpts {
            htpasswd: htpasswd.as_deref().and_then(Path::to_str),
            ..RegistryOpts::default()
        },
    );
    let dest = format!("docker://127.0.0.1:{}/test/bb:v1", reg.port);
    let mut copy = Command::new("skopeo");
    copy.args(["copy", "-q", "--dest-tls-verify=false"]);
    if with_auth {
        copy.args(["--dest-creds", "alice:s3cret"]);
    }
    let st = copy
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(&dest)
        .status()
        .unwrap();
    assert!(st.success());
    let r = format!("127.0.0.1:{}/test/bb:v1", reg.port);
    if with_auth {
        let out = pull(&s, &[&r], &[]);
        assert_ne!(out.code, 0);
        assert!(out.stderr.contains("credentials"), "{}", out.stderr);
        let out = pull(&s, &["--creds", "alice:wrong", &r], &[]);
        assert_ne!(out.code, 0);
        pull(&s, &[&r], &[("FERRY_REGISTRY_CREDS", "alice:s3cret")]).ok();
    } else {
        pull(&s, &[&r], &[]).ok();
    }
    assert_pulled(&s, &r, &img);
    let missing = pull(
        &s,
        &[&format!("127.0.0.1:{}/test/nothere:v1", reg.port)],
        &[("FERRY_REGISTRY_CREDS", "alice:s3cret")],
    );
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("404"), "{}", missing.stderr);
}

/// Push the busybox image to `reg` with skopeo; its reference for ferry.
fn push_busybox(s: &Scratch, host: &str, reg: &Registry) -> (Image, String) {
    let layout = s.path("layout");
    let img = busybox_image(common::rootfs_template());
    oci_layout(&layout, &img, "v1");
    let st = Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://{host}:{}/test/bb:v1", reg.port))
        .status()
        .unwrap();
    assert!(st.success());
    (img, format!("{host}:{}/test/bb:v1", reg.port))
}

#[test]
fn pulls_over_tls_with_the_registrys_ca() {
    if !have("docker-registry") || !have("skopeo") || !have("openssl") {
        common::skip("this test: needs docker-registry, skopeo and openssl (scripts/deps.sh)");
        return;
    }
    let s = Scratch::new("registry-tls");
    let (ca, cert, key) = make_ca(&s);
    let reg = Registry::start(
        &s,
        RegistryOpts {
            tls: Some((&cert, &key)),
            ..RegistryOpts::default()
        },
    );
    let (img, r) = push_busybox(&s, "127.0.0.1", &reg);

    // A certificate nobody vouches for is an error, not a fallback.
    let out = pull(&s, &[&r], &[]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("certificate") && out.stderr.contains("--cert-dir"),
        "{}",
        out.stderr
    );
    let ca = ca.display().to_string();
    pull(&s, &["--cert-dir", &ca, &r], &[]).ok();
    assert_pulled(&s, &r, &img);
    // The system's roots may be replaced by a file, as with OpenSSL.
    let ca_file = format!("{ca}/ca.crt");
    pull(&s, &["--name", "env", &r], &[("SSL_CERT_FILE", &ca_file)]).ok();
    pull(&s, &["--insecure", "--name", "insecure", &r], &[]).ok();
}

/// The machine's first address that is not loopback, if any.
fn outside_address() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_string)
}

#[test]
fn plain_http_beyond_loopback_needs_insecure() {
    if !have("docker-registry") || !have("skopeo") {
        common::skip("this test: needs docker-registry and skopeo (scripts/deps.sh)");
        return;
    }
    let Some(addr) = outside_address() else {
        eprintln!("skipping: no address other than loopback");
        return;
    };
    let s = Scratch::new("registry-plain");
    let reg = Registry::start(
        &s,
        RegistryOpts {
            everywhere: true,
            ..RegistryOpts::default()
        },
    );
    let (_, r) = push_busybox(&s, "127.0.0.1", &reg);
    let r = r.replace("127.0.0.1", &addr);
    let out = pull(&s, &[&r], &[]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("TLS to"), "{}", out.stderr);
    pull(&s, &["--insecure", &r], &[]).ok();
}

/// A registry that wants a bearer token, redirects blob requests and sends
/// blobs chunked. Serves `layout`'s blobs; stops on its own after the test
/// (or 60 s).
fn fake_registry(layout: &Path, stop: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let layout = layout.to_path_buf();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut served = 0;
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && served < 500 {
            match listener.accept() {
                Ok((conn, _)) => {
                    served += 1;
                    conn.set_nonblocking(false).unwrap();
                    serve(conn, &layout, port);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    port
}

fn reply(conn: &mut TcpStream, status: &str, headers: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

fn serve(mut conn: TcpStream, layout: &Path, port: u16) {
    // A TLS handshake (ferry tries HTTPS first): answer as HTTP servers do.
    let mut first = [0u8; 1];
    if conn.peek(&mut first).is_ok_and(|n| n == 1) && first[0] == 0x16 {
        return reply(&mut conn, "400 Bad Request", "", b"not TLS");
    }
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut auth = String::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
            break;
        }
        // Header names are case-insensitive (ureq sends them lower-case).
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            auth = v.trim().to_string();
        }
    }
    if let Some(q) = path.strip_prefix("/token?") {
        assert!(q.contains("scope=repository%3Atest%2Fbb%3Apull"), "{q}");
        return reply(&mut conn, "200 OK", "", br#"{"token":"t0k"}"#);
    }
    if let Some(hex) = path.strip_prefix("/storage/") {
        let data = fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for c in data.chunks(7000) {
            let _ = conn.write_all(format!("{:x}\r\n", c.len()).as_bytes());
            let _ = conn.write_all(c);
            let _ = conn.write_all(b"\r\n");
        }
        let _ = conn.write_all(b"0\r\n\r\n");
        return;
    }
    if auth != "Bearer t0k" {
        let ch = format!(
            "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\",scope=\"repository:test/bb:pull\"\r\n"
        );
        return reply(&mut conn, "401 Unauthorized", &ch, b"{}");
    }
    if path == "/v2/test/bb/manifests/v1" {
        let index: Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        let d = index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let data = fs::read(
            layout
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap();
        let h = format!(
            "Content-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: {d}\r\n"
        );
        return reply(&mut conn, "200 OK", &h, &data);
    }
    if let Some(d) = path.strip_prefix("/v2/test/bb/blobs/sha256:") {
        return reply(
            &mut conn,
            "307 Temporary Redirect",
            &format!("Location: /storage/{d}\r\n"),
            b"",
        );
    }
    reply(
        &mut conn,
        "404 Not Found",
        "",
        br#"{"errors":[{"message":"not here"}]}"#,
    );
}

#[test]
fn bearer_tokens_redirects_and_chunked_blobs() {
    let s = Scratch::new("fake-registry");
    let layout = s.path("layout");
    let mut img = Image::new(
        vec![
            Tar::default()
                .dir("a/")
                .file("a/big", &vec![3u8; 300_000])
                .finish(),
            Tar::default().file("b", b"b").finish(),
        ],
        json!({ "Cmd": ["true"] }),
    );
    img.compression = Compression::None;
    oci_layout(&layout, &img, "v1");
    let stop = Arc::new(AtomicBool::new(false));
    let port = fake_registry(&layout, stop.clone());
    let r = format!("docker://127.0.0.1:{port}/test/bb:v1");
    let out = pull(&s, &["--name", "fake", &r], &[]);
    stop.store(true, Ordering::Relaxed);
    let out = out.ok();
    assert!(out.stdout.starts_with("fake sha256:"), "{}", out.stdout);
    let store = s.path("store").display().to_string();
    let v: Value = serde_json::from_str(
        &ferry(false, &["image", "--store", &store, "inspect", "fake"], &[])
            .ok()
            .stdout,
    )
    .unwrap();
    let root = v["layers"][0]["path"].as_str().unwrap();
    let mut big = Vec::new();
    fs::File::open(Path::new(root).join("a/big"))
        .unwrap()
        .read_to_end(&mut big)
        .unwrap();
    assert_eq!(big.len(), 300_000);
}
