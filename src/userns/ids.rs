//! Who is running ferry: real root, or a user ferry must treat as rootless;
//! its own ids, and how many ids its user namespace has.

use std::sync::OnceLock;

use nix::unistd::{getegid, geteuid};

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

/// The caller's effective uid and gid.
pub fn own_ids() -> (u32, u32) {
    (geteuid().as_raw(), getegid().as_raw())
}

/// How many ids, counting up from 0, exist in this process's user namespace
/// (the smaller of uids and gids): all of them outside any user namespace.
pub fn mapped_ids() -> u64 {
    let contiguous = |file: &str| -> u64 {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let mut lines: Vec<(u64, u64)> = text
            .lines()
            .filter_map(|l| {
                let f: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                (f.len() == 3).then(|| (f[0], f[2]))
            })
            .collect();
        lines.sort_unstable();
        let mut next = 0;
        for (inside, count) in lines {
            if inside == next {
                next += count;
            }
        }
        next
    };
    contiguous("/proc/self/uid_map").min(contiguous("/proc/self/gid_map"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_exists_only_outside_a_user_namespace() {
        let n = mapped_ids();
        if in_user_namespace() {
            assert!((1..4_294_967_295).contains(&n), "{n}");
        } else {
            assert_eq!(n, 4_294_967_295);
        }
    }
}
