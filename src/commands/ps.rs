//! `ferry ps`: the processes of a container (host pids).
//!
//! `--format json` prints `[pid,...]` (containerd's `ctr task ps`); the
//! table runs `ps` (default `-ef`) and keeps the lines of the container's
//! processes, as runc does, or lists them from /proc without `ps`.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{Result, bail};

use crate::cli::ListFormat;
use crate::container::{Container, StateStore};

pub fn ps(store: &StateStore, id: &str, format: ListFormat, ps_args: &[String]) -> Result<()> {
    let pids = Container::load(store, id)?.processes()?;
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let wanted: BTreeSet<i32> = pids.iter().copied().collect();
    match Command::new("ps").args(&args).output() {
        Ok(out) if out.status.success() => {
            print_filtered(&String::from_utf8_lossy(&out.stdout), &wanted)
        }
        Ok(out) => bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(_) => print_from_proc(&pids),
    }
}

/// Keep the header and the lines whose PID column is one of `wanted`.
fn print_filtered(text: &str, wanted: &BTreeSet<i32>) -> Result<()> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Ok(());
    };
    let Some(col) = header.split_whitespace().position(|c| c == "PID") else {
        bail!("ps output has no PID column");
    };
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| wanted.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}

fn print_from_proc(pids: &[i32]) -> Result<()> {
    println!("{:<8} {:<8} {:<8} CMD", "UID", "PID", "PPID");
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or("?")
                .to_string()
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        println!(
            "{:<8} {:<8} {:<8} {cmd}",
            field("Uid:"),
            pid,
            field("PPid:")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_lines_are_filtered_by_pid_column() {
        let text = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00 init\nroot 42 1 0 10:00 ? 00:00 sleep\n";
        let wanted: BTreeSet<i32> = [42].into();
        print_filtered(text, &wanted).unwrap();
        assert!(print_filtered("NOPID\n", &wanted).is_err());
    }
}
