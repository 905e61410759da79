//! `RUN --mount=...` options, with BuildKit's checks.

use super::*;

/// One `--mount=` value: comma-separated `key=value` fields (BuildKit's
/// `parseMount`, with its checks). Values are kept as written: the
/// builder substitutes build args in `target`, `source`, `id`.
pub(super) fn parse_mount(spec: &str) -> Res<RunMount> {
    let mut m = MountFields::default();
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        match field.split_once('=') {
            Some((k, v)) => m.set(&k.to_ascii_lowercase(), v)?,
            None => m.set_bare(&field.to_ascii_lowercase(), field)?,
        }
    }
    m.build()
}

/// The fields of a `--mount` as given.
#[derive(Default)]
pub(super) struct MountFields {
    pub(super) kind: Option<String>,
    pub(super) source: Option<String>,
    pub(super) target: Option<String>,
    pub(super) from: Option<String>,
    pub(super) id: Option<String>,
    pub(super) sharing: Option<String>,
    pub(super) mode: Option<u32>,
    pub(super) uid: Option<u32>,
    pub(super) gid: Option<u32>,
    pub(super) size: Option<u64>,
    pub(super) required: Option<bool>,
    /// `rw`/`ro` as given (bind defaults to read-only).
    pub(super) rw: Option<bool>,
}

impl MountFields {
    /// A field without `=`: only `ro`, `rw` and `required` may be bare.
    pub(super) fn set_bare(&mut self, key: &str, field: &str) -> Res<()> {
        match key {
            "ro" | "readonly" => self.rw = Some(false),
            "rw" | "readwrite" => self.rw = Some(true),
            "required" => self.required = Some(true),
            _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
        }
        Ok(())
    }

    /// Records one `key=value` field.
    pub(super) fn set(&mut self, key: &str, value: &str) -> Res<()> {
        let v = value.to_string();
        match key {
            "type" => self.kind = Some(value.to_ascii_lowercase()),
            "source" | "src" => self.source = Some(v),
            "target" | "dst" | "destination" => self.target = Some(v),
            "from" if value.contains('$') => {
                return Err(
                    "'from' doesn't support variable expansion, define alias stage instead".into(),
                );
            }
            "from" => self.from = Some(v),
            "id" => self.id = Some(v),
            "sharing" => self.sharing = Some(value.to_ascii_lowercase()),
            "mode" => self.mode = Some(parse_num(key, value, 8)?),
            "uid" => self.uid = Some(parse_num(key, value, 10)?),
            "gid" => self.gid = Some(parse_num(key, value, 10)?),
            "size" => self.size = Some(parse_size(value)?),
            "required" => self.required = Some(parse_bool(key, Some(value))?),
            "rw" | "readwrite" => self.rw = Some(parse_bool(key, Some(value))?),
            "ro" | "readonly" => self.rw = Some(!parse_bool(key, Some(value))?),
            _ => return Err(format!("unexpected key '{key}' in '{key}={value}'")),
        }
        Ok(())
    }

    /// Refuses the options the mount type does not take.
    pub(super) fn check_options(&self, kind: &str) -> Res<()> {
        let file_info = matches!(kind, "secret" | "cache");
        for (set, name) in [
            (self.mode.is_some(), "mode"),
            (self.uid.is_some(), "uid"),
            (self.gid.is_some(), "gid"),
        ] {
            if set && !file_info {
                return Err(format!("{name} not allowed for \"{kind}\" type mounts"));
            }
        }
        if self.sharing.is_some() && kind != "cache" {
            return Err(format!("invalid cache sharing set for {kind} mount"));
        }
        if self.required.is_some() && kind != "secret" {
            return Err(format!("unexpected key 'required' for mount type '{kind}'"));
        }
        if self.size.is_some() && kind != "tmpfs" {
            return Err(format!("unexpected key 'size' for mount type '{kind}'"));
        }
        Ok(())
    }

    /// The typed mount; `type` defaults to `bind` as in Docker.
    pub(super) fn build(self) -> Res<RunMount> {
        let kind = self.kind.clone().unwrap_or_else(|| "bind".into());
        if !matches!(kind.as_str(), "bind" | "cache" | "secret" | "tmpfs") {
            return Err(format!("unsupported mount type {kind:?}"));
        }
        self.check_options(&kind)?;
        let target = self.target.clone();
        let need_target = || {
            target
                .clone()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| format!("mount type {kind} needs a target"))
        };
        Ok(match kind.as_str() {
            "bind" => RunMount::Bind {
                target: need_target()?,
                source: self.source.unwrap_or_else(|| "/".into()),
                from: self.from,
                rw: self.rw.unwrap_or(false),
            },
            "cache" => {
                let sharing = self.sharing.unwrap_or_else(|| "shared".into());
                if !matches!(sharing.as_str(), "shared" | "private" | "locked") {
                    return Err(format!("unsupported sharing value {sharing:?}"));
                }
                RunMount::Cache {
                    target: need_target()?,
                    id: self.id,
                    sharing,
                    mode: self.mode,
                    uid: self.uid,
                    gid: self.gid,
                }
            }
            "secret" => {
                if self.from.is_some() {
                    return Err("secret mount should not have a from".into());
                }
                let id = match (self.id, self.source, &self.target) {
                    (Some(_), Some(_), _) => return Err("both source and id can't be set".into()),
                    (Some(id), None, _) | (None, Some(id), _) => id,
                    (None, None, Some(t)) => {
                        t.rsplit('/').find(|s| !s.is_empty()).unwrap_or("").into()
                    }
                    (None, None, None) => String::new(),
                };
                if id.is_empty() {
                    return Err("invalid secret mount: one of id, source, target required".into());
                }
                RunMount::Secret {
                    id,
                    target: self.target,
                    required: self.required.unwrap_or(false),
                    mode: self.mode,
                    uid: self.uid,
                    gid: self.gid,
                }
            }
            _ => RunMount::Tmpfs {
                target: need_target()?,
                size: self.size,
            },
        })
    }
}

/// A number in `radix` for mount option `key`.
pub(super) fn parse_num(key: &str, value: &str, radix: u32) -> Res<u32> {
    u32::from_str_radix(value, radix)
        .map_err(|_| format!("invalid value {value:?} for mount option {key}"))
}

/// `true`/`false` (or nothing: true).
pub(super) fn parse_bool(key: &str, value: Option<&str>) -> Res<bool> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => Err(format!("invalid value {v:?} for {key}")),
    }
}

/// A size like `64m`, `1g`, `4096` (binary units, as Docker's
/// `RAMInBytes`).
pub(super) fn parse_size(value: &str) -> Res<u64> {
    let lower = value.trim().to_ascii_lowercase();
    let digits = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let number: f64 = lower[..digits]
        .parse()
        .map_err(|_| format!("invalid size {value:?}"))?;
    let unit = lower[digits..].trim_end_matches('b').trim_end_matches('i');
    let scale = match unit {
        "" => 1u64,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(format!("invalid size {value:?}")),
    };
    Ok((number * scale as f64) as u64)
}
