//! The opaque audience id handed to the host.
//!
//! What this plugin calls an audience is a Pinterest customer list (where users are uploaded)
//! paired with a CUSTOMER_LIST audience on it (what advertisers target), and `add-users` must
//! also know the list's type (see [`crate::list_type`]). The WIT lets a plugin pack several ids
//! into `audience.id`, so it is
//!
//! ```text
//! <customer_list_id>:<audience_id>:<LIST_TYPE>      e.g. 6431:2542620905475:EMAIL
//! ```
//!
//! Pinterest ids are digit strings (`^\d+$`), so `:` cannot occur in them; parsing is strict so
//! a corrupted id fails loudly instead of addressing the wrong list.

use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::DestinationError;

use crate::list_type::ListType;

/// The parts of an opaque audience id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceRef {
    /// The customer list users are added to and removed from.
    pub customer_list_id: String,
    /// The CUSTOMER_LIST audience targeting that list.
    pub audience_id: String,
    /// The identifier the list holds.
    pub list_type: ListType,
}

fn is_pinterest_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 18 && id.bytes().all(|b| b.is_ascii_digit())
}

impl AudienceRef {
    /// The opaque id: `<customer_list_id>:<audience_id>:<LIST_TYPE>`.
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.customer_list_id, self.audience_id, self.list_type)
    }

    /// Parse an id made by [`encode`](Self::encode); anything else is `invalid-request`.
    pub fn parse(id: &str) -> Result<Self, DestinationError> {
        let mut parts = id.split(':');
        let parsed = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(list), Some(audience), Some(kind), None) if is_pinterest_id(list) && is_pinterest_id(audience) => {
                ListType::parse(kind).map(|list_type| Self {
                    customer_list_id: list.to_string(),
                    audience_id: audience.to_string(),
                    list_type,
                })
            }
            _ => None,
        };
        parsed.ok_or_else(|| {
            DestinationError::InvalidRequest(format!(
                "'{}' is not an audience id from the Pinterest plugin \
                 (expected <customer_list_id>:<audience_id>:<EMAIL|MAID|IDFA>)",
                excerpt(id, 60)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = AudienceRef {
            customer_list_id: "6431".into(),
            audience_id: "2542620905475".into(),
            list_type: ListType::Maid,
        };
        assert_eq!(r.encode(), "6431:2542620905475:MAID");
        assert_eq!(AudienceRef::parse(&r.encode()), Ok(r));
    }

    #[test]
    fn rejects_anything_else() {
        for bad in ["", "1:2", "1:2:EMAIL:4", "a:2:EMAIL", "1::EMAIL", "1:2:email", "1:2:PHONE", "acct-1/name"] {
            assert!(matches!(AudienceRef::parse(bad), Err(DestinationError::InvalidRequest(_))), "{bad}");
        }
    }
}
