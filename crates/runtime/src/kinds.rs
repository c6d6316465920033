//! The contract names identifier kinds with strings (since 0.2.0); the host's
//! [`audience_model::IdentifierKind`] is a closed list of the names it accepts from callers.
//! These conversions are the only place the two meet.

use audience_model::IdentifierKind as HostKind;

/// The contract's name of a host kind (`email`, `mobile-ad-id`, ...), from the host's one table.
pub fn kind_name(kind: HostKind) -> String {
    kind.name().to_string()
}

/// The host kind of a contract name; `None` for a name the host does not accept (a plugin may
/// list kinds a newer host knows).
pub fn host_kind(name: &str) -> Option<HostKind> {
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_kind_converts_both_ways_under_the_same_name() {
        for host in HostKind::ALL {
            assert_eq!(host_kind(&kind_name(host)), Some(host));
        }
        assert_eq!(host_kind("shoe-size"), None);
    }
}
