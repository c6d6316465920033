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

/// What a sync that adds users does with a user who enters again while the host knows them to
/// be in the audience (synced). Written in the API and the store as `"resend"` / `"skip"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Reentry {
    /// Send them again (the default): partners' adds are idempotent, and a partner that drops
    /// users after a while (a retention period) gets them back.
    #[default]
    Resend,
    /// Do not send them again: count them as `already_in_audience` and leave them synced.
    Skip,
}

impl Reentry {
    /// Its name in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Reentry::Resend => "resend",
            Reentry::Skip => "skip",
        }
    }

    /// The policy of a stored name, `None` for an unknown one.
    pub fn parse(name: &str) -> Option<Reentry> {
        match name {
            "resend" => Some(Reentry::Resend),
            "skip" => Some(Reentry::Skip),
            _ => None,
        }
    }
}
