//! The backend-independent behaviour suite (`audience_store::suite`), run on SQLite.

audience_store::store_suite!(crate::common::SqliteHarness::new());
