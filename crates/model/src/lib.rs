//! The vocabulary every layer of audience-host shares, defined once.
//!
//! Why a crate of its own: the store (bottom), the plugin runtime, the engine and the API all
//! speak of identifier kinds, of adding or removing users, and of timestamps. Each of those
//! facts is written here and nowhere else, in the host's own terms, so that no layer depends on
//! another layer it must not know (the store knows nothing of plugins) and nothing durable
//! depends on the serde form of a generated WIT binding (a later contract version may rename
//! its types; these names are the host's promise to its API callers and its own database).
//!
//! What it must not know: anything that does I/O.

mod action;
mod clock;
mod kind;

pub use action::{Reentry, SyncAction};
pub use clock::now_ms;
pub use kind::{IdentifierKind, UnknownKind};
