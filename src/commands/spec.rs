//! `ferry spec`: a default config.json, the same as runc's.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::container::template;

pub fn spec(bundle: Option<&Path>, rootless: bool) -> Result<()> {
    let dir = bundle.unwrap_or(Path::new("."));
    let path = dir.join("config.json");
    let spec = template::for_host(rootless);
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} exists: remove it first", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
    };
    let text = serde_json::to_string_pretty(&spec)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    Ok(())
}
