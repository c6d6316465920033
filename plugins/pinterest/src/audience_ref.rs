//! The opaque audience id handed to the host.
//!
//! What this plugin calls an audience is a Pinterest customer list (where users are uploaded)
//! paired with a CUSTOMER_LIST audience on it (what advertisers target), and `add-users` must
//! also know the list's type (see [`crate::list_type`]). The WIT lets a plugin pack several ids
//! into `audience.id`, so it is
//!
//! ```text
//! <customer_list_id>:<audience_id>:<LIST_TYPE>      e.g. 6431:2542620905475:EMAIL
//! <customer_list_id>:<audience_id>                  e.g. 6431:2542620905475
//! ```
//!
//! The typed form is what `upsert-audience` and the create path of `add-users` return: the
//! plugin chose (or created) the list for the sync's kind. The short form is what
//! `search-audiences` returns for an audience picked from Pinterest: Pinterest never reports a
//! customer list's type, so the plugin does not claim one; writes to such an audience send the
//! kind the batch's prepared users carry (one kind per sync, see [`crate::records`]).
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
    /// The identifier the list holds, when the plugin knows it.
    pub list_type: Option<ListType>,
}

/// Whether `id` has the shape of a Pinterest id (`^\d+$`, at most 18 digits).
pub fn is_pinterest_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 18 && id.bytes().all(|b| b.is_ascii_digit())
}

impl AudienceRef {
    /// The opaque id: `<customer_list_id>:<audience_id>[:<LIST_TYPE>]`.
    pub fn encode(&self) -> String {
        match self.list_type {
            Some(t) => format!("{}:{}:{t}", self.customer_list_id, self.audience_id),
            None => format!("{}:{}", self.customer_list_id, self.audience_id),
        }
    }

    /// Parse an id made by [`encode`](Self::encode); anything else is `invalid-request`.
    pub fn parse(id: &str) -> Result<Self, DestinationError> {
        let mut parts = id.split(':');
        let parsed = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(list), Some(audience), kind, None) if is_pinterest_id(list) && is_pinterest_id(audience) => {
                let list_type = match kind {
                    None => Some(None),
                    Some(kind) => ListType::parse(kind).map(Some),
                };
                list_type.map(|list_type| Self {
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
                 (expected <customer_list_id>:<audience_id>[:<EMAIL|MAID|IDFA>])",
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
            list_type: Some(ListType::Maid),
        };
        assert_eq!(r.encode(), "6431:2542620905475:MAID");
        assert_eq!(AudienceRef::parse(&r.encode()), Ok(r));
        let untyped = AudienceRef { customer_list_id: "1".into(), audience_id: "2".into(), list_type: None };
        assert_eq!(untyped.encode(), "1:2");
        assert_eq!(AudienceRef::parse("1:2"), Ok(untyped));
    }

    #[test]
    fn rejects_anything_else() {
        for bad in ["", "1", "1:2:", "1:2:EMAIL:4", "a:2:EMAIL", "1::EMAIL", "1:2:email", "1:2:PHONE", "acct-1/name"] {
            assert!(matches!(AudienceRef::parse(bad), Err(DestinationError::InvalidRequest(_))), "{bad}");
        }
    }
}
