//! The backend-independent behaviour suite (`audience_store::suite`), run on SQLite.

mod common;

audience_store::store_suite!(common::SqliteHarness::new());
