//! The contract's identifier kinds and the host's ([`audience_model::IdentifierKind`]) are the
//! same list under two types: the generated one changes with each contract version, the
//! host's never does. These conversions are the only place the two meet.

use audience_model::IdentifierKind as HostKind;

use crate::types::IdentifierKind as WitKind;

/// A contract identifier kind's name (`email`, `mobile-ad-id`, ...), from the host's one table.
pub fn kind_name(kind: WitKind) -> &'static str {
    HostKind::from(kind).name()
}

impl From<WitKind> for HostKind {
    fn from(kind: WitKind) -> Self {
        match kind {
            WitKind::Email => HostKind::Email,
            WitKind::Phone => HostKind::Phone,
            WitKind::MobileAdId => HostKind::MobileAdId,
            WitKind::Idfa => HostKind::Idfa,
            WitKind::ExternalId => HostKind::ExternalId,
        }
    }
}

impl From<HostKind> for WitKind {
    fn from(kind: HostKind) -> Self {
        match kind {
            HostKind::Email => WitKind::Email,
            HostKind::Phone => WitKind::Phone,
            HostKind::MobileAdId => WitKind::MobileAdId,
            HostKind::Idfa => WitKind::Idfa,
            HostKind::ExternalId => WitKind::ExternalId,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_converts_both_ways_under_the_same_name() {
        for host in HostKind::ALL {
            let wit = WitKind::from(host);
            assert_eq!(HostKind::from(wit), host);
        }
    }
}
