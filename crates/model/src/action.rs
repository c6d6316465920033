//! What a sync does with the users that enter it.

use serde::{Deserialize, Serialize};

/// Add users to the audience, or remove them. Written in the API and the store as `"add"` /
/// `"remove"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SyncAction {
    /// Add users to the audience (the default).
    #[default]
    Add,
    /// Remove users from the audience.
    Remove,
}

impl SyncAction {
    /// The name of the plugin export that carries this action out.
    pub fn export_name(self) -> &'static str {
        match self {
            SyncAction::Add => "add-users",
            SyncAction::Remove => "remove-users",
        }
    }
}
