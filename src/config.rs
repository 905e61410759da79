//! Loading and checking a bundle's `config.json`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::sched::CloneFlags;
use oci_spec::runtime::Spec;
use serde_json::Value;

/// Why a bundle's config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The JSON is malformed or does not match the runtime spec.
    #[error("invalid {path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    /// A capability name the kernel does not know.
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    /// A seccomp action, operator, flag or architecture the spec lacks.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// A required part of the config is missing.
    #[error("config.json has no {0}")]
    Missing(&'static str),
    /// A sysctl that would change the host.
    #[error("sysctl {0:?} is not in a separate kernel namespace of the container")]
    SharedSysctl(String),
    /// A sysctl ferry does not know to be namespaced.
    #[error("sysctl {0:?} is not namespaced and cannot be set for a container")]
    UnsafeSysctl(String),
    /// `root.path` does not name a directory.
    #[error("rootfs {path}: {reason}")]
    Rootfs { path: PathBuf, reason: String },
    /// An rlimit whose soft limit is above its hard limit.
    #[error("rlimit {kind}: the soft limit {soft} is above the hard limit {hard}")]
    Rlimit { kind: String, soft: u64, hard: u64 },
    /// `process.oomScoreAdj` outside what the kernel takes.
    #[error("process.oomScoreAdj {0} is out of range (-1000 to 1000)")]
    OomScoreAdj(i64),
    /// `process.cwd` must be absolute (the runtime spec says so).
    #[error("process.cwd {0:?} is not an absolute path")]
    RelativeCwd(String),
    /// A uid or gid the kernel would read as -1 ("unchanged") or that no
    /// user namespace can map (runc's rule).
    #[error("{field} {id} is out of range: uids and gids must be in range 0-{MAX_ID}")]
    IdRange { field: &'static str, id: u64 },
}

/// Read and check `BUNDLE/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, ConfigError> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    parse(&data).map_err(|e| match e {
        ConfigError::Invalid { msg, .. } => ConfigError::Invalid { path, msg },
        other => other,
    })
}

/// Parse config JSON, checking what serde alone would report unclearly.
pub fn parse(data: &[u8]) -> Result<Spec, ConfigError> {
    let invalid = |msg: String| ConfigError::Invalid {
        path: PathBuf::from("config.json"),
        msg,
    };
    let mut value: Value = serde_json::from_slice(data).map_err(|e| invalid(e.to_string()))?;
    if let Some(process) = value.get_mut("process") {
        spec_scheduler_flags(process);
    }
    if !value.is_object() {
        return Err(invalid("the top level is not a JSON object".into()));
    }
    if let Some(caps) = value
        .pointer("/process/capabilities")
        .and_then(Value::as_object)
    {
        for set in caps.values() {
            for name in set.as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                if caps::Capability::from_str(name).is_err() {
                    return Err(ConfigError::UnknownCapability(name.to_string()));
                }
            }
        }
    }
    crate::seccomp::precheck(&value)?;
    check_process(&value)?;
    let renamed = value.pointer("/process/scheduler/flags").is_some();
    serde_json::from_value(value).map_err(|e| {
        // Parsed again from the text, the error says where (line, column);
        // not when flags were renamed (the text would fail on those).
        let located = (!renamed)
            .then(|| serde_json::from_slice::<Spec>(data).err())
            .flatten();
        invalid(located.unwrap_or(e).to_string())
    })
}

/// The runtime spec's names for `process.scheduler.flags` that oci-spec
/// 0.10 spells differently (its serde renaming of `SchedResetOnFork` and
/// `SchedFlagDLOverrun`), as (spec name, oci-spec name).
const SCHED_FLAG_NAMES: &[(&str, &str)] = &[
    ("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK"),
    ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN"),
];

/// Rename the spec's scheduler flag names in a process object to the ones
/// oci-spec 0.10 deserializes: its enum derives the names from the variant
/// names and gets two of them wrong, so a config using the spec's names
/// (as runc and crun read them) would be refused as an unknown variant.
fn spec_scheduler_flags(process: &mut Value) {
    let Some(flags) = process
        .pointer_mut("/scheduler/flags")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for flag in flags {
        if let Some((_, ours)) = SCHED_FLAG_NAMES
            .iter()
            .find(|(spec, _)| flag.as_str() == Some(spec))
        {
            *flag = Value::String((*ours).to_string());
        }
    }
}

/// Parse the process JSON of `exec --process`: the spec's scheduler flag
/// names, and runc's defaults for what the file may leave out (`user`
/// uid 0 gid 0, `cwd` `/`).
pub fn parse_process(data: &[u8]) -> Result<oci_spec::runtime::Process, ConfigError> {
    let invalid = |msg: String| ConfigError::Invalid {
        path: PathBuf::from("process.json"),
        msg,
    };
    let mut value: Value = serde_json::from_slice(data).map_err(|e| invalid(e.to_string()))?;
    let Some(object) = value.as_object_mut() else {
        return Err(invalid("the top level is not a JSON object".into()));
    };
    object
        .entry("user")
        .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    object.entry("cwd").or_insert_with(|| Value::from("/"));
    spec_scheduler_flags(&mut value);
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// Values the kernel would refuse later with a bare EINVAL.
fn check_process(value: &Value) -> Result<(), ConfigError> {
    let Some(process) = value.get("process") else {
        return Ok(());
    };
    if let Some(cwd) = process.get("cwd").and_then(Value::as_str)
        && !cwd.starts_with('/')
    {
        return Err(ConfigError::RelativeCwd(cwd.to_string()));
    }
    if let Some(adj) = process.get("oomScoreAdj").and_then(Value::as_i64)
        && !(-1000..=1000).contains(&adj)
    {
        return Err(ConfigError::OomScoreAdj(adj));
    }
    if let Some(user) = process.get("user") {
        check_user_value(user)?;
    }
    for r in process
        .get("rlimits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(soft), Some(hard)) = (
            r.get("soft").and_then(Value::as_u64),
            r.get("hard").and_then(Value::as_u64),
        ) else {
            continue;
        };
        if soft > hard {
            let kind = r.get("type").and_then(Value::as_str).unwrap_or("?");
            return Err(ConfigError::Rlimit {
                kind: kind.to_string(),
                soft,
                hard,
            });
        }
    }
    Ok(())
}

/// Check that every `linux.sysctl` key lives in a namespace the container
/// has of its own (runc's rule), so writing it cannot change the host.
pub fn check_sysctls(spec: &Spec, has: impl Fn(CloneFlags) -> bool) -> Result<(), ConfigError> {
    let keys = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref());
    for key in keys.into_iter().flatten().map(|(k, _)| k) {
        let ipc = key.starts_with("fs.mqueue.")
            || [
                "kernel.msgmax",
                "kernel.msgmnb",
                "kernel.msgmni",
                "kernel.sem",
                "kernel.shmall",
                "kernel.shmmax",
                "kernel.shmmni",
                "kernel.shm_rmid_forced",
            ]
            .contains(&key.as_str());
        let flag = if ipc {
            CloneFlags::CLONE_NEWIPC
        } else if key.starts_with("net.") {
            CloneFlags::CLONE_NEWNET
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            CloneFlags::CLONE_NEWUTS
        } else {
            return Err(ConfigError::UnsafeSysctl(key.clone()));
        };
        if !has(flag) {
            return Err(ConfigError::SharedSysctl(key.clone()));
        }
    }
    Ok(())
}

/// The absolute path of the container's root filesystem.
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf, ConfigError> {
    let root = spec.root().as_ref().ok_or(ConfigError::Missing("root"))?;
    let path = bundle.join(root.path());
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => std::fs::canonicalize(&path).map_err(|e| ConfigError::Rootfs {
            path,
            reason: e.to_string(),
        }),
        Ok(_) => Err(ConfigError::Rootfs {
            path,
            reason: "not a directory".into(),
        }),
        Err(e) => Err(ConfigError::Rootfs {
            path,
            reason: e.to_string(),
        }),
    }
}

/// The highest uid or gid a container process may run as: above it, ids
/// read as negative, and `(uid_t)-1` means "unchanged" to `setresuid`.
pub const MAX_ID: u32 = 2_147_483_647;

fn check_id(field: &'static str, id: u64) -> Result<(), ConfigError> {
    if id > u64::from(MAX_ID) {
        return Err(ConfigError::IdRange { field, id });
    }
    Ok(())
}

/// `process.user` as JSON: ids beyond `u32` are caught here too, before
/// serde would report them less clearly.
fn check_user_value(user: &Value) -> Result<(), ConfigError> {
    for (key, field) in [("uid", "process.user.uid"), ("gid", "process.user.gid")] {
        if let Some(id) = user.get(key).and_then(Value::as_u64) {
            check_id(field, id)?;
        }
    }
    for gid in user
        .get("additionalGids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
    {
        check_id("process.user.additionalGids entry", gid)?;
    }
    Ok(())
}

/// Refuse a process user whose uid, gid or additional gids are outside
/// 0..=[`MAX_ID`] (for `exec`, whose process is not read by [`parse`]).
pub fn check_user(user: &oci_spec::runtime::User) -> Result<(), ConfigError> {
    check_id("process.user.uid", user.uid().into())?;
    check_id("process.user.gid", user.gid().into())?;
    for &gid in user.additional_gids().iter().flatten() {
        check_id("process.user.additionalGids entry", gid.into())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_json_is_invalid() {
        let err = parse(b"{\"ociVersion\": ").unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
    }

    #[test]
    fn unknown_capability_is_named() {
        let cfg = br#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},
            "capabilities":{"bounding":["CAP_KILL","CAP_FOO"]}}}"#;
        let err = parse(cfg).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability \"CAP_FOO\"");
    }

    #[test]
    fn scheduler_flags_use_the_spec_names() {
        let cfg = br#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},
            "scheduler":{"policy":"SCHED_BATCH","flags":["SCHED_FLAG_RESET_ON_FORK",
            "SCHED_FLAG_RECLAIM","SCHED_FLAG_DL_OVERRUN","SCHED_FLAG_KEEP_POLICY",
            "SCHED_FLAG_KEEP_PARAMS","SCHED_FLAG_UTIL_CLAMP_MIN","SCHED_FLAG_UTIL_CLAMP_MAX"]}}}"#;
        let spec = parse(cfg).unwrap();
        let sched = spec
            .process()
            .as_ref()
            .unwrap()
            .scheduler()
            .clone()
            .unwrap();
        assert_eq!(sched.flags().as_ref().unwrap().len(), 7);
        let bad = String::from_utf8_lossy(cfg).replacen("RECLAIM", "RECLAIMX", 1);
        let err = parse(bad.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("RECLAIMX"), "{err}");
    }

    #[test]
    fn process_file_defaults_like_runc() {
        let p =
            parse_process(br#"{"args":["true"],"consoleSize":{"height":25,"width":80}}"#).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
        assert_eq!(p.cwd(), Path::new("/"));
        assert!(parse_process(b"[]").is_err());
    }

    #[test]
    fn minimal_config_parses() {
        let spec = parse(br#"{"ociVersion":"1.0.2","root":{"path":"rootfs"}}"#).unwrap();
        assert_eq!(spec.root().as_ref().unwrap().path(), Path::new("rootfs"));
    }

    #[test]
    fn ids_beyond_the_signed_range_are_refused() {
        for user in [
            r#"{"uid":4294967295,"gid":0}"#,
            r#"{"uid":0,"gid":2147483648}"#,
            r#"{"uid":0,"gid":0,"additionalGids":[1,4294967295]}"#,
        ] {
            let cfg = format!(r#"{{"ociVersion":"1.0.2","process":{{"cwd":"/","user":{user}}}}}"#);
            let err = parse(cfg.as_bytes()).unwrap_err();
            assert!(matches!(err, ConfigError::IdRange { .. }), "{user}: {err}");
        }
        let ok =
            br#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":2147483647,"gid":0}}}"#;
        parse(ok).unwrap();
    }
}
