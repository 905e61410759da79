//! The caller's subordinate ids (`/etc/subuid`, `/etc/subgid`) and the
//! maps that give a user namespace the caller at 0 and its range after.

use std::path::Path;

use nix::unistd::geteuid;
use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};

use super::ids::own_ids;

/// One subordinate range: first host id and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub len: u32,
}

/// The caller's own ids and first subordinate ranges.
#[derive(Debug, Clone, Copy)]
pub struct SubIds {
    pub uid: u32,
    pub gid: u32,
    pub subuid: Range,
    pub subgid: Range,
}

/// The unprivileged caller's subordinate ids, if it has both kinds. `None`
/// for root, and for a caller that already is root in a user namespace (as
/// under `podman unshare`): that one works with the ids it has.
pub fn subordinate_ids() -> Option<SubIds> {
    let (uid, gid) = own_ids();
    if uid == 0 {
        return None;
    }
    let first = |file: &str, own: u32| {
        subordinate_ranges(Path::new(file), own)
            .into_iter()
            .find_map(|(start, len)| {
                Some(Range {
                    start: u32::try_from(start).ok()?,
                    len: u32::try_from(len).ok().filter(|&n| n > 0)?,
                })
            })
    };
    Some(SubIds {
        uid,
        gid,
        subuid: first("/etc/subuid", uid)?,
        subgid: first("/etc/subgid", gid)?,
    })
}

fn mapping(container: u32, host: u32, size: u32) -> LinuxIdMapping {
    LinuxIdMappingBuilder::default()
        .container_id(container)
        .host_id(host)
        .size(size)
        .build()
        .expect("all fields set")
}

/// The uid and gid maps: 0 is the caller, 1..=N its subordinate range.
pub fn mappings(s: &SubIds) -> (Vec<LinuxIdMapping>, Vec<LinuxIdMapping>) {
    (
        vec![
            mapping(0, s.uid, 1),
            mapping(1, s.subuid.start, s.subuid.len),
        ],
        vec![
            mapping(0, s.gid, 1),
            mapping(1, s.subgid.start, s.subgid.len),
        ],
    )
}

/// The caller's ranges in /etc/subuid or /etc/subgid (by user name or id).
pub(crate) fn subordinate_ranges(file: &Path, own: u32) -> Vec<(u64, u64)> {
    let name = nix::unistd::User::from_uid(geteuid())
        .ok()
        .flatten()
        .map(|u| u.name);
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, len) = (f.next()?, f.next()?.parse().ok()?, f.next()?.parse().ok()?);
            (Some(who) == name.as_deref() || who == own.to_string()).then_some((start, len))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_put_the_caller_at_zero_and_its_range_after() {
        let s = SubIds {
            uid: 1000,
            gid: 1001,
            subuid: Range {
                start: 100_000,
                len: 65_536,
            },
            subgid: Range {
                start: 200_000,
                len: 1000,
            },
        };
        let (u, g) = mappings(&s);
        let t = |m: &[LinuxIdMapping]| -> Vec<(u32, u32, u32)> {
            m.iter()
                .map(|m| (m.container_id(), m.host_id(), m.size()))
                .collect()
        };
        assert_eq!(t(&u), [(0, 1000, 1), (1, 100_000, 65_536)]);
        assert_eq!(t(&g), [(0, 1001, 1), (1, 200_000, 1000)]);
    }
}
