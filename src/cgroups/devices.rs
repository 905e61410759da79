//! The device allow/deny list: the spec's rules, then runc's defaults (so
//! /dev/null and friends keep working under a deny-all rule). The nodes
//! `linux.devices` creates get no rule of their own: creating a node must
//! not grant access that `linux.resources.devices` refuses (runc and crun
//! agree; the runtime-spec only asks that the node exist).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

/// One device rule; `None` major/minor is a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// 'a', 'b' or 'c'.
    pub kind: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Some of "rwm".
    pub access: String,
}

impl Rule {
    /// The v1 `devices.allow` / `devices.deny` line.
    pub fn v1_line(&self) -> String {
        if self.kind == 'a' {
            return "a".into();
        }
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

/// runc's always-allowed devices.
const DEFAULTS: [(char, Option<u32>, Option<u32>, &str); 11] = [
    ('c', None, None, "m"),
    ('b', None, None, "m"),
    ('c', Some(1), Some(3), "rwm"),
    ('c', Some(1), Some(8), "rwm"),
    ('c', Some(1), Some(7), "rwm"),
    ('c', Some(5), Some(0), "rwm"),
    ('c', Some(1), Some(5), "rwm"),
    ('c', Some(1), Some(9), "rwm"),
    ('c', Some(136), None, "rwm"),
    ('c', Some(5), Some(2), "rwm"),
    ('c', Some(10), Some(200), "rwm"),
];

fn kind_of(t: LinuxDeviceType) -> Option<char> {
    match t {
        LinuxDeviceType::A => Some('a'),
        LinuxDeviceType::B => Some('b'),
        LinuxDeviceType::C | LinuxDeviceType::U => Some('c'),
        // FIFOs are not device-controlled.
        LinuxDeviceType::P => None,
    }
}

fn number(field: &'static str, v: Option<i64>) -> Result<Option<u32>, CgroupError> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| CgroupError::invalid(field, n, "must be -1 (any) or a device number")),
    }
}

/// The spec rules (`linux.resources.devices`) as parsed rules.
pub fn spec_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, CgroupError> {
    let mut out = Vec::new();
    for r in rules {
        let Some(kind) = kind_of(r.typ().unwrap_or(LinuxDeviceType::A)) else {
            continue;
        };
        let access = r.access().clone().unwrap_or_else(|| "rwm".into());
        if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(CgroupError::invalid(
                "device access",
                format!("{access:?}"),
                "use some of r, w and m",
            ));
        }
        out.push(Rule {
            allow: r.allow(),
            kind,
            major: number("device major", r.major())?,
            minor: number("device minor", r.minor())?,
            access,
        });
    }
    Ok(out)
}

/// The full list for a new container: the spec's rules, then runc's
/// defaults.
pub fn container_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, CgroupError> {
    let mut out = spec_rules(rules)?;
    out.extend(DEFAULTS.iter().map(|&(kind, major, minor, access)| Rule {
        allow: true,
        kind,
        major,
        minor,
        access: access.into(),
    }));
    Ok(out)
}

/// Whether the list ends in "allow everything" mode: then the v2 program
/// (and the v1 list) need not be restrictive.
pub fn allows_all(rules: &[Rule]) -> bool {
    rules
        .iter()
        .rev()
        .find(|r| r.kind == 'a')
        .is_some_and(|r| r.allow && r.access.len() == 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn deny_all_then_defaults() {
        let rules = container_rules(&[rule(r#"{"allow":false,"access":"rwm"}"#)]).unwrap();
        assert_eq!(rules[0].v1_line(), "a");
        assert!(!rules[0].allow);
        assert_eq!(rules[1].v1_line(), "c *:* m");
        assert_eq!(rules[3].v1_line(), "c 1:3 rwm");
        assert!(rules.iter().any(|r| r.v1_line() == "c 136:* rwm"));
        assert!(!allows_all(&rules));
    }

    #[test]
    fn listed_devices_get_no_rule_of_their_own() {
        // /dev/kmsg (1:11) is not among the defaults: nothing but the
        // spec's own rules may allow it.
        let rules = container_rules(&[rule(r#"{"allow":false,"access":"rwm"}"#)]).unwrap();
        assert!(
            !rules
                .iter()
                .any(|r| r.allow && r.major == Some(1) && r.minor == Some(11)),
            "{rules:?}"
        );
        assert_eq!(rules.len(), 1 + DEFAULTS.len());
    }

    #[test]
    fn bad_access_and_numbers_are_rejected() {
        let e = spec_rules(&[rule(r#"{"allow":true,"type":"c","access":"rwx"}"#)]).unwrap_err();
        assert!(e.to_string().contains("device access"), "{e}");
        assert!(spec_rules(&[rule(r#"{"allow":true,"type":"c","major":-7}"#)]).is_err());
        let r = spec_rules(&[rule(r#"{"allow":true,"type":"b","major":8,"minor":-1}"#)]).unwrap();
        assert_eq!(r[0].v1_line(), "b 8:* rwm");
    }

    #[test]
    fn unknown_device_type_fails_to_parse() {
        assert!(serde_json::from_str::<LinuxDeviceCgroup>(r#"{"allow":true,"type":"x"}"#).is_err());
    }
}
