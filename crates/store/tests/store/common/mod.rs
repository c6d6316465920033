//! A [`Harness`] for the SQLite backend: a fresh temporary directory per harness.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use audience_store::suite::Harness;
use audience_store::{CredentialKey, SqliteStore, Store};

/// One temporary database file.
pub struct SqliteHarness {
    dir: tempfile::TempDir,
}

impl SqliteHarness {
    /// A harness on a new, empty directory.
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("a temporary directory") }
    }

    /// The database file (inside a subdirectory, to check that it is created).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("data").join("store.db")
    }
}

#[async_trait]
impl Harness for SqliteHarness {
    async fn open(&self, key: CredentialKey) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(self.path(), key).expect("open the store"))
    }

    async fn stored_bytes_contain(&self, needle: &[u8]) -> bool {
        // The database, its WAL and anything else SQLite wrote beside it.
        let dir = self.dir.path().join("data");
        std::fs::read_dir(&dir)
            .expect("list the store's directory")
            .map(|entry| std::fs::read(entry.expect("an entry").path()).expect("read a file"))
            .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    }
}
