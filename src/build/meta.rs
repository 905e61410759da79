//! The metadata instructions: each changes the stage's image config and
//! adds an `empty_layer` history entry (with the instruction as Docker
//! writes it); the words are substituted where Docker substitutes them.

use serde_json::{Value, json};

use super::BuildError;
use super::ast::{Command, Healthcheck, Instruction};
use super::stage::{Stage, join_abs};

/// Apply a metadata instruction; false if `ins` is not one (RUN, COPY,
/// ADD, ARG are the builder's).
pub fn apply(st: &mut Stage, ins: &Instruction) -> Result<bool, BuildError> {
    let text = match ins {
        Instruction::Env(pairs) => env(st, pairs)?,
        Instruction::Label(pairs) => label(st, pairs)?,
        Instruction::Workdir(w) => {
            let dir = join_abs(&st.workdir(), &sub(st, w)?);
            st.cfg()["WorkingDir"] = json!(dir);
            format!("WORKDIR {dir}")
        }
        Instruction::User(u) => {
            let u = sub(st, u)?;
            st.cfg()["User"] = json!(u);
            format!("USER {u}")
        }
        Instruction::Expose(ports) => expose(st, ports)?,
        Instruction::Entrypoint(c) => entrypoint(st, c),
        Instruction::Cmd(c) => {
            let argv = st.argv(c);
            st.cfg()["Cmd"] = json!(argv);
            st.cmd_from_base = false;
            format!("CMD {}", json!(argv))
        }
        Instruction::Volume(vols) => volume(st, vols)?,
        Instruction::StopSignal(s) => {
            let s = sub(st, s)?;
            st.cfg()["StopSignal"] = json!(s);
            format!("STOPSIGNAL {s}")
        }
        Instruction::Shell(sh) => {
            st.cfg()["Shell"] = json!(sh);
            format!("SHELL {}", json!(sh))
        }
        Instruction::Healthcheck(h) => {
            let v = healthcheck(h);
            st.cfg()["Healthcheck"] = v.clone();
            format!("HEALTHCHECK {v}")
        }
        Instruction::Onbuild(text) => {
            add_to_list(st.cfg(), "OnBuild", json!(text));
            format!("ONBUILD {text}")
        }
        Instruction::Maintainer(m) => {
            st.config["author"] = json!(m);
            format!("MAINTAINER {m}")
        }
        Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) | Instruction::Arg(_) => {
            return Ok(false);
        }
    };
    st.meta(text);
    Ok(true)
}

/// A word substituted with the stage's variables.
fn sub(st: &Stage, w: &str) -> Result<String, BuildError> {
    st.expand(w)
}

/// `ENV`: every value substituted with the variables before it (as
/// Docker: one ENV's pairs do not see each other).
fn env(st: &mut Stage, pairs: &[(String, String)]) -> Result<String, BuildError> {
    let mut env = st.env();
    let mut text = Vec::new();
    for (k, v) in pairs {
        let v = sub(st, v)?;
        text.push(format!("{k}={v}"));
        env.retain(|(e, _)| e != k);
        env.push((k.clone(), v));
    }
    let list: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    st.cfg()["Env"] = json!(list);
    Ok(format!("ENV {}", text.join(" ")))
}

fn label(st: &mut Stage, pairs: &[(String, String)]) -> Result<String, BuildError> {
    let mut text = Vec::new();
    for (k, v) in pairs {
        let (k, v) = (sub(st, k)?, sub(st, v)?);
        text.push(format!("{k}={v}"));
        set_in_map(st.cfg(), "Labels", &k, json!(v));
    }
    Ok(format!("LABEL {}", text.join(" ")))
}

/// `EXPOSE 80 53/udp`: `ExposedPorts` keys, `/tcp` by default.
fn expose(st: &mut Stage, ports: &[String]) -> Result<String, BuildError> {
    let mut text = Vec::new();
    for p in ports {
        let p = sub(st, p)?;
        let full = if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        };
        set_in_map(st.cfg(), "ExposedPorts", &full, json!({}));
        text.push(p);
    }
    Ok(format!("EXPOSE {}", text.join(" ")))
}

/// `ENTRYPOINT`: a `CMD` inherited from the base is reset (Docker).
fn entrypoint(st: &mut Stage, c: &Command) -> String {
    let argv = st.argv(c);
    st.cfg()["Entrypoint"] = json!(argv);
    if st.cmd_from_base {
        if let Some(o) = st.cfg().as_object_mut() {
            o.remove("Cmd");
        }
        st.cmd_from_base = false;
    }
    format!("ENTRYPOINT {}", json!(argv))
}

fn volume(st: &mut Stage, vols: &[String]) -> Result<String, BuildError> {
    let mut text = Vec::new();
    for v in vols {
        let v = sub(st, v)?;
        set_in_map(st.cfg(), "Volumes", &v, json!({}));
        text.push(v);
    }
    Ok(format!("VOLUME {}", json!(text)))
}

/// `cfg[map][key] = value`, making `cfg[map]` an object if needed.
fn set_in_map(cfg: &mut Value, map: &str, key: &str, value: Value) {
    if !cfg[map].is_object() {
        cfg[map] = json!({});
    }
    cfg[map][key] = value;
}

fn add_to_list(cfg: &mut Value, list: &str, value: Value) {
    if !cfg[list].is_array() {
        cfg[list] = json!([]);
    }
    if let Some(a) = cfg[list].as_array_mut() {
        a.push(value);
    }
}

/// The config's `Healthcheck` object (durations in nanoseconds).
fn healthcheck(h: &Healthcheck) -> Value {
    let Healthcheck::Check {
        command,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    } = h
    else {
        return json!({ "Test": ["NONE"] });
    };
    let test = match command {
        Command::Exec(v) => std::iter::once("CMD".to_string())
            .chain(v.iter().cloned())
            .collect::<Vec<_>>(),
        Command::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
    };
    let mut v = json!({ "Test": test });
    for (k, x) in [
        ("Interval", interval),
        ("Timeout", timeout),
        ("StartPeriod", start_period),
        ("StartInterval", start_interval),
    ] {
        if let Some(x) = x {
            v[k] = json!(x);
        }
    }
    if let Some(r) = retries {
        v["Retries"] = json!(r);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthchecks_as_docker_records_them() {
        let h = Healthcheck::Check {
            command: Command::Shell("curl -f http://localhost/".into()),
            interval: Some(30_000_000_000),
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: Some(3),
        };
        assert_eq!(
            healthcheck(&h),
            json!({ "Test": ["CMD-SHELL", "curl -f http://localhost/"], "Interval": 30_000_000_000u64, "Retries": 3 })
        );
        assert_eq!(healthcheck(&Healthcheck::None), json!({ "Test": ["NONE"] }));
    }
}
