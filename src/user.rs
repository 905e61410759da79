//! Who is running ferry: real root, or a user ferry must treat as rootless.

use std::sync::OnceLock;

/// Whether ferry runs inside a user namespace other than the initial one
/// (the initial one maps all 2^32 ids: `0 0 4294967295`).
pub fn in_user_namespace() -> bool {
    static IN_USERNS: OnceLock<bool> = OnceLock::new();
    *IN_USERNS.get_or_init(|| match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"],
        Err(_) => false,
    })
}

/// runc's `--rootless auto`: not root, or root only inside a user namespace
/// (rootless podman runs the runtime that way).
pub fn is_rootless() -> bool {
    !nix::unistd::geteuid().is_root() || in_user_namespace()
}
