//! Namespaces: creation, joining by path, hostname/domainname, time offsets.
#[macro_use]
mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

const KINDS: [&str; 6] = ["pid", "net", "ipc", "uts", "mnt", "cgroup"];

/// `kind link` lines printed by the container -> map.
fn ns_links(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

const PRINT_NS: &str =
    "for n in pid net ipc uts mnt cgroup time user; do echo $n $(readlink /proc/self/ns/$n); done";

#[test]
fn default_spec_namespaces_are_all_new() {
    require_root!();
    let mut b = Bundle::new("nsnew");
    let types: Vec<String> = b
        .namespaces()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect();
    for t in ["pid", "network", "ipc", "uts", "mount"] {
        assert!(
            types.iter().any(|x| x == t),
            "default spec lacks {t} namespace: {types:?}"
        );
    }
    // As runc's, the default spec has a cgroup namespace on cgroup v2 only.
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert_eq!(types.iter().any(|x| x == "cgroup"), v2, "{types:?}");
    let links = ns_links(&b.output(PRINT_NS));
    for k in KINDS.into_iter().filter(|k| v2 || *k != "cgroup") {
        let inside = links
            .get(k)
            .unwrap_or_else(|| panic!("no {k} link in {links:?}"));
        assert!(inside.starts_with(&format!("{k}:[")), "{k}: {inside}");
        assert_ne!(inside, &host_ns(k), "{k} namespace is shared with the host");
    }
    // not requested: shared with the host
    assert_eq!(
        links["user"],
        host_ns("user"),
        "user namespace must not be new"
    );
    assert_eq!(
        links["time"],
        host_ns("time"),
        "time namespace must not be new"
    );
}

#[test]
fn pid_one_inside_pid_namespace() {
    require_root!();
    let mut b = Bundle::new("pidone");
    assert_eq!(b.output("echo $$; cat /proc/1/comm; true"), "1\nsh\n");
}

#[test]
fn omitted_namespaces_are_shared_with_host() {
    require_root!();
    let mut b = Bundle::new("nsshared");
    b.remove_ns("pid")
        .remove_ns("network")
        .remove_ns("ipc")
        .remove_ns("cgroup");
    // without a private UTS namespace the hostname cannot be set
    b.remove_ns("uts").unset("/hostname");
    let links = ns_links(&b.output(PRINT_NS));
    for k in ["pid", "net", "ipc", "uts", "cgroup"] {
        assert_eq!(links[k], host_ns(k), "{k} namespace should be the host's");
    }
    assert_ne!(
        links["mnt"],
        host_ns("mnt"),
        "mount namespace should still be new"
    );
}

#[test]
fn hostname_and_domainname_from_config() {
    require_root!();
    let host_hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host_domain = fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let mut b = Bundle::new("hostname");
    b.set("/hostname", json!("ferry-test-host"));
    b.set("/domainname", json!("ferry.example"));
    assert_eq!(
        b.output("hostname; cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname"),
        "ferry-test-host\nferry-test-host\nferry.example\n"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_hostname,
        "host hostname changed"
    );
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host_domain,
        "host domainname changed"
    );
}

#[test]
fn join_uts_namespace_of_running_container() {
    require_root!();
    let mut a = Bundle::new("utsowner");
    a.set("/hostname", json!("alpha-host"));
    a.args(&["sleep", "30"]);
    a.create(&[]);
    a.start();
    let apid = a.pid();
    let a_uts = fs::read_link(format!("/proc/{apid}/ns/uts"))
        .unwrap()
        .to_string_lossy()
        .into_owned();

    let mut b = Bundle::new("utsjoiner");
    b.unset("/hostname");
    b.set_ns("uts", Some(&format!("/proc/{apid}/ns/uts")));
    let out = b.output("hostname; readlink /proc/self/ns/uts; readlink /proc/self/ns/net");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "alpha-host", "{out}");
    assert_eq!(lines[1], a_uts, "did not join the uts namespace: {out}");
    let a_net = fs::read_link(format!("/proc/{apid}/ns/net"))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_ne!(lines[2], a_net, "only uts was to be joined: {out}");
}

#[test]
fn join_net_namespace_by_bind_mounted_file() {
    require_root!();
    let mut b = Bundle::new("netjoin");
    let nsfile = b.path("netns");
    fs::write(&nsfile, "").unwrap();
    let st = std::process::Command::new("unshare")
        .arg(format!("--net={}", nsfile.display()))
        .arg("true")
        .status()
        .unwrap();
    assert!(st.success(), "unshare --net failed");
    let ino = fs::metadata(&nsfile).unwrap().ino();
    b.set_ns("network", Some(nsfile.to_str().unwrap()));
    let out = b.output("readlink /proc/self/ns/net; ls /sys/class/net");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(format!("net:[{ino}]").as_str()), "{out}");
    let ifaces: Vec<&str> = lines.collect();
    assert_eq!(ifaces, vec!["lo"], "fresh netns should only have lo: {out}");
}

#[test]
fn joining_a_missing_namespace_path_fails() {
    require_root!();
    let mut b = Bundle::new("nsmissing");
    b.set_ns("network", Some("/proc/999999999/ns/net"));
    b.sh("echo should-not-run");
    let o = b.run(&[]);
    o.assert_clean_error(None);
    assert!(!o.stdout.contains("should-not-run"));
    b.assert_state_root_empty();
}

#[test]
fn time_namespace_new_when_requested() {
    require_root!();
    let mut b = Bundle::new("timens");
    b.set_ns("time", None);
    let links = ns_links(&b.output(PRINT_NS));
    assert!(links["time"].starts_with("time:["), "{links:?}");
    assert_ne!(
        links["time"],
        host_ns("time"),
        "time namespace should be new"
    );
}

#[test]
fn time_namespace_offsets() {
    require_root!();
    let mut b = Bundle::new("timeoffs");
    b.set_ns("time", None);
    b.set(
        "/linux/timeOffsets",
        json!({
            "boottime": {"secs": 86400 * 365, "nanosecs": 0},
            "monotonic": {"secs": 86400 * 30, "nanosecs": 0}
        }),
    );
    let host_up: f64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let out = b.output("cut -d' ' -f1 /proc/uptime");
    let inside: f64 = out
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("bad uptime {out:?}"));
    let want = host_up + (86400.0 * 365.0);
    assert!(
        inside >= want - 1.0 && inside < want + 60.0,
        "boottime offset not applied: host uptime {host_up}, inside {inside}"
    );
}

#[test]
fn cgroup_namespace_root_is_container_cgroup() {
    require_root!();
    let mut b = Bundle::new("cgroupns");
    b.set_ns("cgroup", None);
    let out = b.output("cat /proc/self/cgroup");
    for line in out.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("?");
        assert_eq!(
            path, "/",
            "inside a new cgroup namespace every path should be /: {out}"
        );
    }
}

#[test]
fn ipc_namespace_is_isolated() {
    require_root!();
    // A host-side message queue must not be visible inside.
    let mut b = Bundle::new("ipcns");
    let host = fs::read_to_string("/proc/sysvipc/msg").unwrap_or_default();
    let out = b.output("cat /proc/sysvipc/msg | wc -l");
    assert_eq!(
        out.trim(),
        "1",
        "only the header line expected inside; host has:\n{host}\ninside: {out}"
    );
}

#[test]
fn user_namespace_with_mappings() {
    require_root!();
    let mut b = Bundle::new("userns");
    b.set_ns("user", None);
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 100000, "size": 65536}]),
    );
    // the rootfs stays owned by host root (unmapped inside): the container
    // only reads it.
    let out =
        b.output("cat /proc/self/uid_map /proc/self/gid_map; id -u; readlink /proc/self/ns/user");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], vec!["0", "100000", "65536"], "{out}");
    assert_eq!(lines[1], vec!["0", "100000", "65536"], "{out}");
    assert_eq!(lines[2], vec!["0"], "{out}");
    assert_ne!(lines[3][0], host_ns("user"), "{out}");
}

#[test]
fn spec_and_a_second_cgroup_namespace() {
    require_root!();
    let mut b = Bundle::new("nscgtwice");
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let mut ns = b.namespaces();
    let listed = ns.iter().filter(|n| n["type"] == "cgroup").count();
    assert_eq!(listed, usize::from(v2), "ferry spec: {ns:?}");
    // One added to ferry's own default config works where runc's does.
    if !v2 {
        ns.push(json!({"type": "cgroup"}));
        b.set("/linux/namespaces", json!(ns.clone()));
        let links = ns_links(&b.output(PRINT_NS));
        assert_ne!(links["cgroup"], host_ns("cgroup"));
    }
    // Listed twice: refused, as the runtime spec requires.
    ns.push(json!({"type": "cgroup"}));
    ns.push(json!({"type": "cgroup"}));
    b.set("/linux/namespaces", json!(ns));
    b.args(&["true"]);
    b.run_fail(&["run", "--bundle", b.dir_str(), &b.id])
        .assert_one_line_error(Some("namespace cgroup is listed twice"));
    b.assert_no_state(&b.id);
}

#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    require_root!();
    let mut b = Bundle::new("nslo");
    assert!(b.namespaces().iter().any(|n| n["type"] == "network"));
    let out = b.output("cat /sys/class/net/lo/flags; ls /sys/class/net");
    let mut lines = out.lines();
    let flags = lines.next().unwrap_or_default().trim();
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 0x1, 0x1, "lo is down (flags {flags:#x})");
    assert_eq!(lines.collect::<Vec<_>>(), ["lo"], "{out}");
}

/// A user namespace with no `uidMappings`/`gidMappings` (optional in the
/// runtime spec): accepted as crun does, the container's root being the
/// caller's own uid and gid (crun writes `0 EUID 1`; runc refuses).
#[test]
fn user_namespace_without_mappings_maps_root_to_the_caller() {
    require_root!();
    let mut b = Bundle::new("usernomap");
    b.set_ns("user", None);
    b.unset("/linux/uidMappings");
    b.unset("/linux/gidMappings");
    let out =
        b.output("cat /proc/self/uid_map /proc/self/gid_map; id -u; readlink /proc/self/ns/user");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], vec!["0", "0", "1"], "{out}");
    assert_eq!(lines[1], vec!["0", "0", "1"], "{out}");
    assert_eq!(lines[2], vec!["0"], "{out}");
    assert_ne!(lines[3][0], host_ns("user"), "{out}");
}
