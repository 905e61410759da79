//! Records the git commit for `ferry --version`, and assembles the exec
//! trampoline (src/process/trampoline.S, see src/process/trampoline.rs).
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    record_commit();
    build_trampoline();
}

fn record_commit() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FERRY_COMMIT={commit}");
    // Only paths that exist: in a git worktree `.git` is a file, and a
    // missing path would make cargo rebuild ferry every time.
    for path in [".git/HEAD", ".git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

/// The trampoline's source, relative to the manifest.
const TRAMPOLINE_SRC: &str = "src/process/trampoline.S";

/// The trampoline must stay tiny: it is written to a memfd per container.
const TRAMPOLINE_MAX_BYTES: u64 = 4096;

/// Assemble and link the trampoline with the C compiler (the same `cc` that
/// links Rust programs on Linux) into `$OUT_DIR/trampoline`: static, no
/// libc, stripped, one read+execute segment (about 1.2 KB).
fn build_trampoline() {
    println!("cargo:rerun-if-changed={TRAMPOLINE_SRC}");
    println!("cargo:rerun-if-env-changed=CC");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if arch != "x86_64" || os != "linux" {
        panic!(
            "ferry's exec trampoline ({TRAMPOLINE_SRC}) exists for x86_64 Linux only, \
             not {arch} {os}: port it before building ferry for this target"
        );
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("trampoline");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-nostdlib", "-static", "-no-pie", "-s"])
        .args([
            "-Wl,--build-id=none",
            "-Wl,-z,noexecstack",
            "-Wl,-z,norelro",
        ])
        .args(["-Wl,-z,max-page-size=4096", "-Wl,-z,noseparate-code"])
        .arg("-o")
        .arg(&out)
        .arg(TRAMPOLINE_SRC)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cc} to build the exec trampoline: {e}"));
    assert!(status.success(), "{cc} failed to build the exec trampoline");
    check_trampoline(&out);
}

/// A static x86-64 ELF executable without a program interpreter.
fn check_trampoline(path: &Path) {
    let bytes = std::fs::read(path).expect("read the trampoline");
    assert!(
        bytes.len() as u64 <= TRAMPOLINE_MAX_BYTES,
        "the exec trampoline is {} bytes, more than {TRAMPOLINE_MAX_BYTES}",
        bytes.len()
    );
    assert!(
        bytes.starts_with(b"\x7fELF\x02\x01") && bytes[16] == 2 && bytes[18] == 0x3e,
        "the exec trampoline is not an x86-64 ELF executable"
    );
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let phentsize = u16::from_le_bytes([bytes[54], bytes[55]]) as usize;
    let phnum = u16::from_le_bytes([bytes[56], bytes[57]]) as usize;
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        assert!(kind != PT_INTERP, "the exec trampoline must be static");
    }
}
