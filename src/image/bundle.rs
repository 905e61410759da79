//! `ferry image bundle`: a runtime bundle from an image. The config.json
//! comes from the image config, after the OCI image spec's conversion
//! rules: Entrypoint + Cmd (a given command replaces Cmd), Env, WorkingDir,
//! User (names resolved through the image's own /etc/passwd and
//! /etc/group), and ExposedPorts, Volumes, StopSignal and Labels as
//! annotations. The rootfs is the layer stack: the annotation
//! [`LAYERS_ANNOTATION`] lists the layer directories and ferry mounts them
//! with overlayfs (upper and work directories `upper/` and `work/` in the
//! bundle) inside the container's mount namespace; `--flatten` copies the
//! stack into a plain `rootfs/` instead.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use serde_json::{Map, Value, json};

use super::store::{ImageRecord, Store};
use super::{ImageError, LAYERS_ANNOTATION, extract::is_whiteout, flatten, show, xattr};
use crate::fs::Root;
use crate::userns;

pub struct BundleOptions {
    pub flatten: bool,
    /// Replaces the image's Cmd.
    pub args: Vec<String>,
    pub terminal: bool,
    pub rootless: bool,
}

/// What `ferry image run` overrides in the image config (podman's `-u`
/// and `--entrypoint`).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Replaces the image's `User` (`user[:group]`, names or ids).
    pub user: Option<String>,
    /// Replaces the image's Entrypoint; the image's Cmd is then dropped
    /// (a given command still follows it).
    pub entrypoint: Option<Vec<String>>,
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn bundle_err(msg: impl Into<String>) -> ImageError {
    ImageError::Bundle(msg.into())
}

/// Make the bundle in `dir` from `base` (a default runtime spec, already
/// rootless if wanted). Returns the layer directories it uses (top first;
/// empty when flattened).
pub fn make_bundle(
    store: &Store,
    rec: &ImageRecord,
    dir: &Path,
    base: Value,
    o: &BundleOptions,
) -> Result<Vec<PathBuf>, ImageError> {
    make_bundle_with(store, rec, dir, base, o, &Overrides::default())
}

/// [`make_bundle`] with the image config's user and entrypoint overridden.
pub fn make_bundle_with(
    store: &Store,
    rec: &ImageRecord,
    dir: &Path,
    base: Value,
    o: &BundleOptions,
    ov: &Overrides,
) -> Result<Vec<PathBuf>, ImageError> {
    if dir.join("config.json").exists() {
        return Err(bundle_err(format!(
            "{} already has a config.json",
            show(dir)
        )));
    }
    // Private: the rootfs (flattened, or the overlay's upper directory)
    // holds the image's and the container's setuid files and devices.
    super::store::private_dir(dir)?;
    let dir = fs::canonicalize(dir).map_err(ImageError::io(show(dir)))?;
    let config: Value = serde_json::from_slice(&store.read_blob(&rec.config)?)
        .map_err(|e| ImageError::format("image config", e.to_string()))?;
    let cfg = &config["config"];

    // Top-most first, each layer once (a repeated layer acts where it is
    // highest).
    let mut layers: Vec<PathBuf> = Vec::new();
    let mut diffs = Vec::new();
    for l in rec.layers.iter().rev() {
        let p = store.layer_root(&l.diff_id);
        if !p.is_dir() {
            return Err(bundle_err(format!(
                "layer {} is not in the store: import the image again",
                l.diff_id
            )));
        }
        if !layers.contains(&p) {
            layers.push(p);
            diffs.push(l.diff_id.clone());
        }
    }
    let rootfs = dir.join("rootfs");
    fs::create_dir_all(&rootfs).map_err(ImageError::io(format!("create {}", show(&rootfs))))?;
    if fs::read_dir(&rootfs)
        .map_err(ImageError::io(show(&rootfs)))?
        .next()
        .is_some()
    {
        return Err(bundle_err(format!("{} is not empty", show(&rootfs))));
    }
    let files = if o.flatten {
        let bottom_first: Vec<PathBuf> = layers.iter().rev().cloned().collect();
        // Copies keep their owners: the subordinate ids' (see `userns`).
        userns::run_mapped(|| {
            flatten::flatten(&bottom_first, &rootfs, &super::extract_options())
                .map_err(|e| e.to_string())
        })?;
        Files::Dir(rootfs.clone())
    } else {
        for sub in ["upper", "work"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(ImageError::io(format!("create {}", show(&p))))?;
        }
        Files::Layers(layers.clone())
    };

    let mut spec = base;
    let process = &mut spec["process"];
    process["args"] = json!(args(cfg, &o.args, ov.entrypoint.as_deref())?);
    process["env"] = json!(env(cfg, o.terminal));
    process["cwd"] = json!(cwd(cfg));
    process["terminal"] = json!(o.terminal);
    let user = ov
        .user
        .as_deref()
        .unwrap_or_else(|| cfg["User"].as_str().unwrap_or(""));
    let (uid, gid, extra) = resolve_user(user, &files)?;
    let mut u = json!({ "uid": uid, "gid": gid });
    if !extra.is_empty() {
        u["additionalGids"] = json!(extra);
    }
    process["user"] = u;
    if o.rootless {
        map_subordinate_ids(
            &mut spec,
            uid.max(gid).max(extra.iter().copied().max().unwrap_or(0)),
        )?;
    }
    spec["root"] = json!({ "path": "rootfs", "readonly": false });
    let mut ann = annotations(rec, &config);
    if !o.flatten {
        let list: Vec<String> = layers.iter().map(|p| p.display().to_string()).collect();
        ann.insert(
            LAYERS_ANNOTATION.into(),
            json!(serde_json::to_string(&list).expect("layer list serializes")),
        );
    }
    spec["annotations"] = Value::Object(ann);
    let text = serde_json::to_string_pretty(&spec).expect("spec serializes") + "\n";
    fs::write(dir.join("config.json"), text)
        .map_err(ImageError::io(format!("write {}/config.json", show(&dir))))?;
    if !o.flatten {
        store.add_ref(&dir, &diffs)?;
    }
    Ok(if o.flatten { Vec::new() } else { layers })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn args(
    cfg: &Value,
    given: &[String],
    entrypoint: Option<&[String]>,
) -> Result<Vec<String>, ImageError> {
    let mut args = entrypoint.map_or_else(|| strings(&cfg["Entrypoint"]), <[String]>::to_vec);
    if given.is_empty() && entrypoint.is_none() {
        args.extend(strings(&cfg["Cmd"]));
    } else {
        args.extend(given.iter().cloned());
    }
    if args.is_empty() {
        return Err(bundle_err(
            "the image has no Entrypoint or Cmd: give a command",
        ));
    }
    Ok(args)
}

fn env(cfg: &Value, terminal: bool) -> Vec<String> {
    let mut env = strings(&cfg["Env"]);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.into());
    }
    if terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    env
}

fn cwd(cfg: &Value) -> String {
    match cfg["WorkingDir"].as_str() {
        Some(d) if d.starts_with('/') => d.to_string(),
        Some(d) if !d.is_empty() => format!("/{d}"),
        _ => "/".into(),
    }
}

fn annotations(rec: &ImageRecord, config: &Value) -> Map<String, Value> {
    let cfg = &config["config"];
    let mut a = Map::new();
    for (k, v) in cfg["Labels"].as_object().into_iter().flatten() {
        if let Some(v) = v.as_str() {
            a.insert(k.clone(), json!(v));
        }
    }
    let keys = |v: &Value| -> Option<String> {
        let o = v.as_object()?;
        let mut k: Vec<&str> = o.keys().map(String::as_str).collect();
        k.sort();
        (!k.is_empty()).then(|| k.join(","))
    };
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            a.insert(k.into(), json!(v));
        }
    };
    set(
        "org.opencontainers.image.exposedPorts",
        keys(&cfg["ExposedPorts"]),
    );
    set("org.ferry.image.volumes", keys(&cfg["Volumes"]));
    set(
        "org.opencontainers.image.stopSignal",
        cfg["StopSignal"].as_str().map(str::to_string),
    );
    set(
        "org.opencontainers.image.os",
        config["os"].as_str().map(str::to_string),
    );
    set(
        "org.opencontainers.image.architecture",
        config["architecture"].as_str().map(str::to_string),
    );
    set(
        "org.opencontainers.image.author",
        config["author"].as_str().map(str::to_string),
    );
    set(
        "org.opencontainers.image.created",
        config["created"].as_str().map(str::to_string),
    );
    set("org.ferry.image.name", Some(rec.name.clone()));
    set("org.ferry.image.id", Some(rec.config.to_string()));
    a
}

/// Where the image's files are: a flattened directory, or the layers.
enum Files {
    Dir(PathBuf),
    Layers(Vec<PathBuf>),
}

const MAX_DB: u64 = 4 << 20;

fn read_in(root: &Path, rel: &str) -> Option<String> {
    let r = Root::open(root).ok()?;
    let fd = r.open_in(Path::new(rel), OFlag::O_RDONLY).ok()?;
    let mut s = String::new();
    fs::File::from(fd)
        .take(MAX_DB)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

impl Files {
    /// The contents of `rel` (e.g. `etc/passwd`) in the merged view.
    fn read(&self, rel: &str) -> Option<String> {
        match self {
            Files::Dir(d) => read_in(d, rel),
            Files::Layers(layers) => {
                for l in layers {
                    let p = l.join(rel);
                    match fs::symlink_metadata(&p) {
                        Ok(m) if is_whiteout(&m) => return None,
                        Ok(m) if m.is_symlink() => {
                            log::warn!("/{rel} is a symlink: resolved within its own layer");
                            return read_in(l, rel);
                        }
                        Ok(_) => return read_in(l, rel),
                        Err(_) => {}
                    }
                    // A deleted or opaque parent hides the lower layers.
                    let parent = Path::new(rel).parent().unwrap_or(Path::new(""));
                    let mut hidden = false;
                    for a in parent.ancestors().filter(|a| !a.as_os_str().is_empty()) {
                        let ap = l.join(a);
                        if let Ok(m) = fs::symlink_metadata(&ap) {
                            let opaque = xattr::lget(&ap, xattr::OPAQUE).ok().flatten();
                            hidden |= is_whiteout(&m) || opaque.is_some_and(|v| v == b"y");
                        }
                    }
                    if hidden {
                        return None;
                    }
                }
                None
            }
        }
    }
}

/// `/etc/passwd` or `/etc/group` lines split on ':'.
fn db(text: &Option<String>) -> Vec<Vec<&str>> {
    text.as_deref()
        .unwrap_or("")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect()
}

/// The image's `User` (`user[:group]`, names or ids) as uid, gid and
/// supplementary gids.
fn resolve_user(user: &str, files: &Files) -> Result<(u32, u32, Vec<u32>), ImageError> {
    if user.is_empty() {
        return Ok((0, 0, Vec::new()));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd_text = files.read("etc/passwd");
    let passwd = db(&passwd_text);
    let group_text = files.read("etc/group");
    let groups = db(&group_text);
    let entry =
        match u.parse::<u32>() {
            Ok(id) => passwd.iter().find(|f| f[2].parse() == Ok(id)),
            Err(_) => Some(passwd.iter().find(|f| f[0] == u).ok_or_else(|| {
                bundle_err(format!("user {u:?} is not in the image's /etc/passwd"))
            })?),
        };
    let uid = match (u.parse::<u32>(), entry) {
        (Ok(id), _) => id,
        (_, Some(f)) => f[2]
            .parse()
            .map_err(|_| bundle_err(format!("bad /etc/passwd entry for {u:?}")))?,
        _ => unreachable!("a name without an entry was refused"),
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(id) => id,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    bundle_err(format!("group {g:?} is not in the image's /etc/group"))
                })?,
        },
        None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    let mut extra = Vec::new();
    if let (Some(name), None) = (entry.map(|f| f[0]), g) {
        for f in &groups {
            if f[3].split(',').any(|m| m == name)
                && let Ok(id) = f[2].parse::<u32>()
                && id != gid
                && !extra.contains(&id)
            {
                extra.push(id);
            }
        }
    }
    Ok((uid, gid, extra))
}

/// Rootless, the layers' owners and the image user need ids beyond the
/// caller's own: map 1..=N to the caller's subordinate ranges, as the
/// layers were extracted ([`userns::mappings`]).
fn map_subordinate_ids(spec: &mut Value, highest: u32) -> Result<(), ImageError> {
    let Some(ids) = userns::subordinate_ids() else {
        if highest == 0 {
            return Ok(());
        }
        return Err(bundle_err(format!(
            "the image runs as id {highest}: rootless, that needs subordinate ids in /etc/subuid and /etc/subgid"
        )));
    };
    if highest > ids.subuid.len.min(ids.subgid.len) {
        return Err(bundle_err(format!(
            "the image runs as id {highest}, beyond your subordinate id ranges"
        )));
    }
    let (uid, gid) = userns::mappings(&ids);
    let linux = &mut spec["linux"];
    linux["uidMappings"] = json!(uid);
    linux["gidMappings"] = json!(gid);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_through_the_image_files() {
        let d = std::env::temp_dir().join(format!("ferry-bundle-user-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("etc")).unwrap();
        fs::write(
            d.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            d.join("etc/group"),
            "root:x:0:\napp:x:1001:\nwheel:x:10:app,root\n",
        )
        .unwrap();
        let f = Files::Dir(d.clone());
        assert_eq!(resolve_user("", &f).unwrap(), (0, 0, vec![]));
        assert_eq!(resolve_user("app", &f).unwrap(), (1000, 1001, vec![10]));
        assert_eq!(resolve_user("app:root", &f).unwrap(), (1000, 0, vec![]));
        assert_eq!(resolve_user("42", &f).unwrap(), (42, 0, vec![]));
        assert_eq!(resolve_user("42:7", &f).unwrap(), (42, 7, vec![]));
        assert!(resolve_user("nobody", &f).is_err());
        assert!(resolve_user("app:nogroup", &f).is_err());
        fs::remove_dir_all(&d).unwrap();
    }
}
