//! The config edits of `ferry image run`'s flags, with podman's meaning.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::str::FromStr;

use serde_json::{Value, json};

use super::{LaunchError, Plan, RunOptions, invalid};

/// podman's default capabilities (containers.conf), for root in the
/// container; another user keeps them in the bounding set only.
const DEFAULT_CAPS: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// A container id from an image name: `busybox:latest` -> `busybox-1a2b3c`.
pub(super) fn container_id(image: &str) -> String {
    let base: String = image
        .rsplit('/')
        .next()
        .unwrap_or(image)
        .split(':')
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ std::process::id())
        .unwrap_or(0);
    format!(
        "{}-{:06x}",
        if base.is_empty() { "image" } else { &base },
        t & 0xff_ffff
    )
}

/// `--entrypoint`: a JSON array, or one command (not split, as podman).
pub(super) fn entrypoint(text: &str) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    serde_json::from_str::<Vec<String>>(text).unwrap_or_else(|_| vec![text.to_string()])
}

/// `--hostname`: a DNS label sequence of at most 64 bytes.
pub(super) fn check_hostname(h: &str) -> Result<String, LaunchError> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !ok {
        return Err(invalid(format!(
            "--hostname {h:?} is not a valid host name"
        )));
    }
    Ok(h.to_string())
}

/// `-e` after `--env-file`s (later ones win): `KEY=VALUE`, or `KEY` alone
/// for the caller's value (skipped when the caller has none).
pub(super) fn environment(env: &[String], files: &[PathBuf]) -> Result<Vec<String>, LaunchError> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| invalid(format!("--env-file {}: {e}", f.display())))?;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.extend(one_variable(line, &format!("--env-file {}", f.display()))?);
        }
    }
    for e in env {
        out.extend(one_variable(e, "-e")?);
    }
    Ok(out)
}

fn one_variable(item: &str, from: &str) -> Result<Option<String>, LaunchError> {
    let key = item.split_once('=').map_or(item, |(k, _)| k);
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(invalid(format!("{from} {item:?}: expected KEY=VALUE")));
    }
    if item.contains('=') {
        return Ok(Some(item.to_string()));
    }
    Ok(std::env::var(key).ok().map(|v| format!("{key}={v}")))
}

/// Set `KEY=VALUE` in `env`, replacing an earlier value of KEY.
fn set_env(env: &mut Vec<Value>, item: &str) {
    let key = item.split_once('=').map_or(item, |(k, _)| k);
    env.retain(|e| {
        e.as_str()
            .is_none_or(|s| s.split_once('=').map_or(s, |(k, _)| k) != key)
    });
    env.push(json!(item));
}

fn cap_name(name: &str) -> Result<String, LaunchError> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    caps::Capability::from_str(&full)
        .map(|_| full)
        .map_err(|_| invalid(format!("unknown capability {name:?}")))
}

/// Refuse unknown capability names before anything is made.
pub(super) fn check_caps(add: &[String], drop: &[String]) -> Result<(), LaunchError> {
    for c in add.iter().chain(drop) {
        if !c.eq_ignore_ascii_case("ALL") {
            cap_name(c)?;
        }
    }
    Ok(())
}

/// podman's defaults, plus `--cap-add`, minus `--cap-drop` (`ALL` in
/// either means every capability the host knows).
fn capability_set(add: &[String], drop: &[String]) -> BTreeSet<String> {
    let all = || caps::all().into_iter().map(|c| c.to_string());
    let is_all = |l: &[String]| l.iter().any(|c| c.eq_ignore_ascii_case("ALL"));
    let mut set: BTreeSet<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    if is_all(drop) {
        set.clear();
    }
    if is_all(add) {
        set.extend(all());
    }
    set.extend(add.iter().filter_map(|c| cap_name(c).ok()));
    for c in drop.iter().filter_map(|c| cap_name(c).ok()) {
        set.remove(&c);
    }
    set
}

/// A `-v HOSTDIR:CTRDIR[:ro|rw]`: the host directory must exist.
#[derive(Debug, Clone)]
pub struct Volume {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

impl FromStr for Volume {
    type Err = LaunchError;
    fn from_str(spec: &str) -> Result<Volume, LaunchError> {
        let bad = |why: &str| invalid(format!("-v {spec:?}: {why}"));
        let parts: Vec<&str> = spec.split(':').collect();
        let (src, dst, opts) = match parts.as_slice() {
            [s, d] => (*s, *d, ""),
            [s, d, o] => (*s, *d, *o),
            _ => return Err(bad("expected HOSTDIR:CTRDIR[:ro|rw]")),
        };
        if !src.starts_with('/') && !src.starts_with('.') {
            return Err(bad(
                "named volumes are not supported: give an absolute host directory",
            ));
        }
        if !dst.starts_with('/') {
            return Err(bad("the container directory must be absolute"));
        }
        let mut read_only = false;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "ro" => read_only = true,
                "rw" | "z" | "Z" => {}
                _ => return Err(bad(&format!("unknown option {o:?} (ro or rw)"))),
            }
        }
        let source =
            std::fs::canonicalize(src).map_err(|e| bad(&format!("host path {src}: {e}")))?;
        Ok(Volume {
            source,
            destination: dst.to_string(),
            read_only,
        })
    }
}

/// Apply the flags to the bundle's config (the user and entrypoint were
/// applied when the bundle was made).
pub(super) fn apply(config: &mut Value, o: &RunOptions, plan: &Plan) {
    let process = &mut config["process"];
    let mut env = process["env"].as_array().cloned().unwrap_or_default();
    for item in &plan.env {
        set_env(&mut env, item);
    }
    process["env"] = json!(env);
    if let Some(w) = &o.workdir {
        process["cwd"] = json!(w);
    }
    let root_user = process["user"]["uid"].as_u64() == Some(0);
    let set: Vec<String> = capability_set(&o.cap_add, &o.cap_drop)
        .into_iter()
        .collect();
    let effective = if root_user { set.clone() } else { Vec::new() };
    process["capabilities"] = json!({
        "bounding": set, "effective": effective, "permitted": effective,
    });
    let mounts = config["mounts"].as_array_mut();
    let Some(mounts) = mounts else { return };
    for v in &plan.volumes {
        let mut options = vec!["rbind", "rprivate"];
        if v.read_only {
            options.push("ro");
        }
        mounts.push(json!({
            "destination": v.destination, "type": "bind", "source": v.source, "options": options,
        }));
    }
    if o.read_only {
        config["root"]["readonly"] = json!(true);
        for (dir, mode) in [("/tmp", "1777"), ("/var/tmp", "1777"), ("/run", "755")] {
            let options = ["rw", "nosuid", "nodev", &format!("mode={mode}")].map(String::from);
            config["mounts"]
                .as_array_mut()
                .expect("mounts")
                .push(json!({ "destination": dir, "type": "tmpfs", "source": "tmpfs", "options": options }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_flags_follow_podman() {
        let s = capability_set(&["net_admin".into()], &["CAP_CHOWN".into()]);
        assert!(s.contains("CAP_NET_ADMIN") && !s.contains("CAP_CHOWN"));
        assert!(s.contains("CAP_SETUID"));
        let s = capability_set(&["NET_RAW".into()], &["ALL".into()]);
        assert_eq!(s.into_iter().collect::<Vec<_>>(), ["CAP_NET_RAW"]);
        assert!(check_caps(&["NOPE".into()], &[]).is_err());
    }

    #[test]
    fn env_and_entrypoint_parse() {
        let mut env = vec![json!("PATH=/bin"), json!("A=1")];
        set_env(&mut env, "A=2");
        assert_eq!(env, vec![json!("PATH=/bin"), json!("A=2")]);
        assert!(one_variable("=x", "-e").is_err());
        assert_eq!(entrypoint("[\"a\",\"b\"]"), ["a", "b"]);
        assert_eq!(entrypoint("/bin/sh -c"), ["/bin/sh -c"]);
        assert!(check_hostname("web-1.local").is_ok());
        assert!(check_hostname("bad_name").is_err());
    }
}
