//! The spec's side of a network: the network namespace (or none), and
//! `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf` written into the
//! bundle and bind-mounted over the container's, as podman does.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use super::{ANNOTATION, Mode, NetworkError};

/// The address pasta forwards DNS queries from (to the host's resolver).
pub(super) const DNS_ADDR: &str = "10.0.2.3";

/// Edit `spec` for `mode`: the network namespace, the hostname, the
/// `/etc` files (written into `bundle`) and, for a private network, the
/// annotation [`ANNOTATION`] that has `delete` stop its pasta.
pub fn configure(
    spec: &mut Value,
    mode: Mode,
    bundle: &Path,
    hostname: &str,
) -> Result<(), NetworkError> {
    set_network_namespace(spec, mode != Mode::Host);
    spec["hostname"] = json!(hostname);
    let mut files = vec![
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts(hostname)),
    ];
    match mode {
        Mode::Private => files.push(("resolv.conf", private_resolv_conf())),
        Mode::Host => files.push(("resolv.conf", host_resolv_conf())),
        Mode::None => {}
    }
    for (name, text) in files {
        let path = bundle.join(name);
        fs::write(&path, text).map_err(NetworkError::io(format!("write {}", path.display())))?;
        add_bind(spec, &path, &format!("/etc/{name}"));
    }
    if mode == Mode::Private {
        spec["annotations"][ANNOTATION] = json!(mode.name());
    }
    Ok(())
}

/// Ask for a new network namespace (`private`) or none (`host`).
fn set_network_namespace(spec: &mut Value, private: bool) {
    let list = &mut spec["linux"]["namespaces"];
    if !list.is_array() {
        *list = json!([]);
    }
    let list = list.as_array_mut().expect("an array");
    list.retain(|n| n["type"] != "network");
    if private {
        list.push(json!({ "type": "network" }));
    }
}

fn add_bind(spec: &mut Value, source: &Path, destination: &str) {
    let mounts = &mut spec["mounts"];
    if !mounts.is_array() {
        *mounts = json!([]);
    }
    let mounts = mounts.as_array_mut().expect("an array");
    mounts.retain(|m| m["destination"] != destination);
    mounts.push(json!({
        "destination": destination,
        "type": "bind",
        "source": source,
        "options": ["rbind", "rprivate", "nosuid", "nodev", "noexec"],
    }));
}

fn hosts(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    )
}

/// The host's resolver settings minus its name servers, which the
/// container reaches through pasta's DNS forwarder instead.
fn private_resolv_conf() -> String {
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = format!("nameserver {DNS_ADDR}\n");
    for line in host.lines() {
        let word = line.split_whitespace().next().unwrap_or("");
        if matches!(word, "search" | "domain" | "options") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn host_resolv_conf() -> String {
    fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_mode_drops_the_namespace_private_adds_it_once() {
        let mut spec =
            json!({ "linux": { "namespaces": [{ "type": "pid" }, { "type": "network" }] } });
        set_network_namespace(&mut spec, false);
        assert_eq!(spec["linux"]["namespaces"], json!([{ "type": "pid" }]));
        set_network_namespace(&mut spec, true);
        set_network_namespace(&mut spec, true);
        assert_eq!(
            spec["linux"]["namespaces"],
            json!([{ "type": "pid" }, { "type": "network" }])
        );
        assert!(private_resolv_conf().starts_with("nameserver 10.0.2.3\n"));
    }
}
