//! /dev inside the container: default nodes, symlinks, linux.devices.
#[macro_use]
mod common;

use common::*;

/// `stat -c '%n|%F|%t:%T|%a|%u:%g'` for each path; returns path -> fields.
fn stat_lines(out: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<String> = l.split('|').map(str::to_string).collect();
            (f.len() == 5).then(|| (f[0].clone(), f[1..].to_vec()))
        })
        .collect()
}

#[test]
fn default_device_nodes() {
    require_root!();
    let mut b = Bundle::new("defdevs");
    let devs = [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ];
    let paths: Vec<&str> = devs.iter().map(|d| d.0).collect();
    let out = b.output(&format!(
        "stat -c '%n|%F|%t:%T|%a|%u:%g' {}; \
         echo discard > /dev/null && echo null-ok; \
         head -c 4 /dev/zero | od -An -tx1; \
         head -c 16 /dev/urandom | wc -c; \
         echo x > /dev/full 2>/dev/null || echo full-enospc",
        paths.join(" ")
    ));
    let st = stat_lines(&out);
    for (p, maj, min) in devs {
        let f = st.get(p).unwrap_or_else(|| panic!("{p} missing:\n{out}"));
        assert_eq!(f[0], "character special file", "{p}: {f:?}");
        assert_eq!(f[1], format!("{maj:x}:{min:x}"), "{p} major:minor: {f:?}");
        assert_eq!(f[2], "666", "{p} mode: {f:?}");
    }
    let rest: Vec<&str> = out
        .lines()
        .filter(|l| !l.contains('|'))
        .map(str::trim)
        .collect();
    assert_eq!(
        rest,
        vec!["null-ok", "00 00 00 00", "16", "full-enospc"],
        "{out}"
    );
}

#[test]
fn default_dev_symlinks_and_dirs() {
    require_root!();
    let mut b = Bundle::new("devlinks");
    let out = b.output(
        "for l in fd stdin stdout stderr ptmx; do echo $l=$(readlink /dev/$l); done; \
         for d in shm pts mqueue; do [ -d /dev/$d ] && echo $d=dir; done; \
         [ -c /dev/pts/ptmx ] && echo pts-ptmx=char",
    );
    assert_eq!(
        out,
        "fd=/proc/self/fd\nstdin=/proc/self/fd/0\nstdout=/proc/self/fd/1\nstderr=/proc/self/fd/2\nptmx=pts/ptmx\n\
         shm=dir\npts=dir\nmqueue=dir\npts-ptmx=char\n"
    );
}

#[test]
fn dev_is_private_tmpfs_without_host_devices() {
    require_root!();
    let mut b = Bundle::new("devprivate");
    // host devices like /dev/sda, /dev/kmsg, /dev/mem must not be visible
    let out = b.output("ls /dev");
    for bad in ["mem", "kmsg", "port", "vda", "sda", "fuse"] {
        assert!(
            !out.lines().any(|l| l == bad),
            "host device /dev/{bad} visible inside:\n{out}"
        );
    }
}

#[test]
fn config_devices_are_created() {
    require_root!();
    let mut b = Bundle::new("cfgdevs");
    b.set(
        "/linux/devices",
        json!([
            {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 1000, "gid": 1001},
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0},
            {"path": "/dev/sub/myblk", "type": "b", "major": 7, "minor": 200, "fileMode": 0o640, "uid": 0, "gid": 6}
        ]),
    );
    let out = b.output("stat -c '%n|%F|%t:%T|%a|%u:%g' /dev/mydev /dev/fuse /dev/sub/myblk");
    let st = stat_lines(&out);
    assert_eq!(
        st.get("/dev/mydev").map(Vec::as_slice),
        Some(
            &[
                "character special file".to_string(),
                "1:3".into(),
                "600".into(),
                "1000:1001".into()
            ][..]
        ),
        "{out}"
    );
    assert_eq!(
        st.get("/dev/fuse").map(Vec::as_slice),
        Some(
            &[
                "character special file".to_string(),
                "a:e5".into(),
                "666".into(),
                "0:0".into()
            ][..]
        ),
        "{out}"
    );
    assert_eq!(
        st.get("/dev/sub/myblk").map(Vec::as_slice),
        Some(
            &[
                "block special file".to_string(),
                "7:c8".into(),
                "640".into(),
                "0:6".into()
            ][..]
        ),
        "{out}"
    );
}

#[test]
fn device_cgroup_denies_unlisted_devices() {
    // Default spec: linux.resources.devices denies everything but the
    // default set (null, zero, full, tty, random, urandom, ptmx, pts...).
    // Device nodes made on the host inside the rootfs: the allowed one
    // (1:3) opens, the unlisted one (fuse, 10:229) must be refused.
    require_root!();
    let mut b = Bundle::new("devcgroup");
    let d = b.rootfs().join("hostdev");
    std::fs::create_dir_all(&d).unwrap();
    for (name, maj, min) in [("null", 1u32, 3u32), ("fuse", 10, 229)] {
        let p = std::ffi::CString::new(d.join(name).to_str().unwrap()).unwrap();
        // SAFETY: `p` is NUL-terminated and outlives the call.
        let r = unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(maj, min)) };
        assert_eq!(r, 0, "mknod {name}: {}", std::io::Error::last_os_error());
    }
    let out = b.output(
        "(exec 3<>/hostdev/null) 2>/dev/null && echo null-opened || echo null-denied; \
         (exec 3<>/hostdev/fuse) 2>/dev/null && echo fuse-opened || echo fuse-denied",
    );
    assert_eq!(out, "null-opened\nfuse-denied\n");
}

#[test]
fn devices_outside_dev_and_with_trailing_slash_are_created() {
    // runc and crun create them inside the rootfs; the path is normalised.
    require_root!();
    let mut b = Bundle::new("devpaths");
    b.set(
        "/linux/devices",
        json!([
            {"path": "/foo-dev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 7, "gid": 8},
            {"path": "/dev/slash/", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640, "uid": 0, "gid": 0},
            {"path": "/dev/./sub/../null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 0, "gid": 0}
        ]),
    );
    let out = b.output("stat -c '%n|%F|%t:%T|%a|%u:%g' /foo-dev /dev/slash /dev/null");
    let st = stat_lines(&out);
    let want = |p: &str, f: [&str; 4]| {
        assert_eq!(
            st.get(p).map(Vec::as_slice),
            Some(&f.map(String::from)[..]),
            "{p}:\n{out}"
        );
    };
    want("/foo-dev", ["character special file", "1:3", "600", "7:8"]);
    want(
        "/dev/slash",
        ["character special file", "1:5", "640", "0:0"],
    );
    // The listed /dev/./sub/../null replaces the default /dev/null.
    want("/dev/null", ["character special file", "1:3", "600", "0:0"]);
}

#[test]
fn relative_device_path_is_refused() {
    // The spec asks for a full path; runc would take it from /, crun from
    // its working directory: ferry refuses it.
    require_root!();
    let mut b = Bundle::new("devrel");
    b.set(
        "/linux/devices",
        json!([{"path": "dev/rel", "type": "c", "major": 1, "minor": 3}]),
    );
    let o = b.run(&[]);
    o.assert_one_line_error(Some("device dev/rel: the path must be absolute"));
    assert!(b.state_entries().is_empty(), "{:?}", b.state_entries());
}

#[test]
fn userns_device_binds_are_nosuid_noexec() {
    // mknod is refused in a user namespace: the host's nodes are bound in,
    // nosuid and noexec as crun does.
    require_root!();
    let mut b = Bundle::new("devuserns");
    b.set_ns("user", None);
    for key in ["uidMappings", "gidMappings"] {
        b.set(
            &format!("/linux/{key}"),
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        );
    }
    let out = b.output(
        "for d in null zero full random urandom tty; do \
           awk -v d=/dev/$d '$5 == d { print d, $6 }' /proc/self/mountinfo; done; \
         echo x > /dev/null && echo null-ok",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 7, "{out}");
    for l in &lines[..6] {
        let opts = l.split_whitespace().nth(1).unwrap_or_default();
        let opts: Vec<&str> = opts.split(',').collect();
        assert!(
            opts.contains(&"nosuid") && opts.contains(&"noexec"),
            "{l}\n{out}"
        );
    }
    assert_eq!(lines[6], "null-ok");
}

#[test]
fn userns_device_must_match_the_host_node() {
    // In a user namespace the node comes from the host: a listed number
    // that is not the host node's is refused, never replaced silently.
    require_root!();
    let mut b = Bundle::new("devusernsmismatch");
    b.set_ns("user", None);
    for key in ["uidMappings", "gidMappings"] {
        b.set(
            &format!("/linux/{key}"),
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
        );
    }
    b.set(
        "/linux/devices",
        json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 3}]),
    );
    let o = b.run(&[]);
    o.assert_one_line_error(Some(
        "device /dev/kmsg: the host node is not the device 1:3",
    ));
}
