//! The five capability sets of `process.capabilities`, applied with `caps`.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

/// Errors applying capabilities.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("unknown capability {0:?}")]
    Unknown(String),
    #[error("cannot set the {set} capability set: {source}")]
    Apply {
        set: &'static str,
        source: caps::errors::CapsError,
    },
}

/// The capability sets a process should end with.
#[derive(Debug, Default, Clone)]
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

fn convert(set: &Option<Capabilities>) -> Result<CapsHashSet, CapsError> {
    let mut out = CapsHashSet::new();
    for cap in set.iter().flatten() {
        let name = serde_json::to_value(cap)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.insert(Capability::from_str(&name).map_err(|_| CapsError::Unknown(name))?);
    }
    Ok(out)
}

impl CapSets {
    /// Translate the spec's sets; an absent `capabilities` means none at all.
    pub fn from_spec(caps: Option<&LinuxCapabilities>) -> Result<CapSets, CapsError> {
        let Some(c) = caps else {
            return Ok(CapSets::default());
        };
        Ok(CapSets {
            bounding: convert(c.bounding())?,
            effective: convert(c.effective())?,
            permitted: convert(c.permitted())?,
            inheritable: convert(c.inheritable())?,
            ambient: convert(c.ambient())?,
        })
    }

    /// Drop every capability outside the bounding set (needs CAP_SETPCAP,
    /// so it runs before the user switch).
    pub fn drop_bounding(&self) -> Result<(), CapsError> {
        let supported = caps::runtime::thread_all_supported();
        for cap in supported.difference(&self.bounding) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(|source| CapsError::Apply {
                set: "bounding",
                source,
            })?;
        }
        Ok(())
    }

    /// Set the permitted, inheritable, effective and ambient sets (after the
    /// user switch, with keepcaps set).
    pub fn apply(&self) -> Result<(), CapsError> {
        let set = |which, name, caps: &CapsHashSet| {
            caps::set(None, which, caps).map_err(|source| CapsError::Apply { set: name, source })
        };
        // Effective must stay within permitted, and permitted can only shrink:
        // widen effective last.
        set(
            CapSet::Effective,
            "effective",
            &self
                .effective
                .intersection(&self.permitted)
                .copied()
                .collect(),
        )?;
        set(CapSet::Inheritable, "inheritable", &self.inheritable)?;
        set(CapSet::Permitted, "permitted", &self.permitted)?;
        set(CapSet::Effective, "effective", &self.effective)?;
        caps::clear(None, CapSet::Ambient).map_err(|source| CapsError::Apply {
            set: "ambient",
            source,
        })?;
        for cap in &self.ambient {
            // The kernel only allows ambient caps that are permitted and
            // inheritable; runc skips the others the same way.
            if self.permitted.contains(cap) && self.inheritable.contains(cap) {
                caps::raise(None, CapSet::Ambient, *cap).map_err(|source| CapsError::Apply {
                    set: "ambient",
                    source,
                })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Capability as OciCap;

    #[test]
    fn translates_spec_names() {
        let spec = LinuxCapabilities::default();
        let sets = CapSets::from_spec(Some(&spec)).unwrap();
        assert!(sets.bounding.contains(&Capability::CAP_KILL));
        assert!(sets.bounding.contains(&Capability::CAP_AUDIT_WRITE));
        assert!(sets.bounding.contains(&Capability::CAP_NET_BIND_SERVICE));
        assert_eq!(sets.bounding.len(), 3);
        let one: Capabilities = [OciCap::SysAdmin].into_iter().collect();
        assert!(
            convert(&Some(one))
                .unwrap()
                .contains(&Capability::CAP_SYS_ADMIN)
        );
    }
}
