//! The store's folder, opened once as a capability.
//!
//! The SQLite store is one file, with its `-wal` and `-shm` beside it, in a folder the operator
//! names (`store = "data/audience-host.db"`). That folder is opened once, as a
//! [`cap_std::fs::Dir`], and the database file is looked at only through it: its name must be a
//! plain file name (a path ending in `..`, or the root, names no file), and it must not be a symbolic
//! link. A link in its place would point every write of the host at whatever file it names,
//! anywhere the process may write; through the `Dir`, nothing outside the folder is reached.
//!
//! SQLite itself cannot open a file through a directory handle: it is given the path, with
//! `SQLITE_OPEN_NOFOLLOW` ([`OPEN_FLAGS`]), so a link put in the file's place after this check
//! is refused by SQLite too. The compile cache is the runtime's own `Dir`
//! (`audience_runtime`'s cache module), whether or not it lies inside this folder.

use std::io;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use rusqlite::OpenFlags;

use crate::{StoreError, StoreResult};

/// What every connection of the store adds to its open flags: never follow a symbolic link in
/// the database file's place.
pub(crate) const OPEN_FLAGS: OpenFlags = OpenFlags::SQLITE_OPEN_NOFOLLOW;

/// The store's folder, held open for as long as the store is.
pub(crate) struct StoreFolder {
    /// The folder. Held so that it is the folder opened at start, whatever its path names later.
    _dir: Dir,
    /// The database file's path, as SQLite is given it.
    path: PathBuf,
}

impl StoreFolder {
    /// Opens (creating it if needed) the folder of the database at `path` and checks the file
    /// through it.
    pub(crate) fn open(path: &Path) -> StoreResult<Self> {
        let (folder, name) = split(path).map_err(|why| refused(path, &why))?;
        std::fs::create_dir_all(folder)
            .map_err(|e| StoreError::Database(format!("creating the store's folder {}: {e}", folder.display())))?;
        let dir = Dir::open_ambient_dir(folder, ambient_authority())
            .map_err(|e| StoreError::Database(format!("opening the store's folder {}: {e}", folder.display())))?;
        match dir.symlink_metadata(name) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refused(path, "it is a symbolic link; point `store` at the database file itself"));
            }
            Ok(meta) if !meta.is_file() => return Err(refused(path, "it is not a regular file")),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::Database(format!("looking at the store {}: {e}", path.display()))),
        }
        Ok(Self { _dir: dir, path: folder.join(name) })
    }

    /// The database file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

fn refused(path: &Path, why: &str) -> StoreError {
    StoreError::Database(format!("the store {} cannot be used: {why}", path.display()))
}

/// The folder and the file name of the database at `path`; the folder is `.` for a bare name.
fn split(path: &Path) -> Result<(&Path, &Path), String> {
    let name = match path.components().next_back() {
        Some(Component::Normal(name)) => Path::new(name),
        _ => return Err("it names no file; give a file name, e.g. data/audience-host.db".into()),
    };
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    Ok((folder, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_path_is_a_folder_and_a_plain_file_name() {
        let cases: [(&str, Option<(&str, &str)>); 8] = [
            ("data/audience-host.db", Some(("data", "audience-host.db"))),
            ("audience-host.db", Some((".", "audience-host.db"))),
            ("/var/lib/audience/host.db", Some(("/var/lib/audience", "host.db"))),
            ("./host.db", Some((".", "host.db"))),
            ("data/..", None),
            ("data/", Some((".", "data"))),
            ("/", None),
            ("", None),
        ];
        for (path, expected) in cases {
            let got = split(Path::new(path))
                .ok()
                .map(|(folder, name)| (folder.to_str().unwrap().to_string(), name.to_str().unwrap().to_string()));
            assert_eq!(got, expected.map(|(f, n)| (f.to_string(), n.to_string())), "{path:?}");
        }
    }

    #[test]
    fn a_new_store_gets_its_folder_and_an_existing_file_is_used() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("nested/data/host.db");
        assert_eq!(StoreFolder::open(&path).unwrap().path(), path);
        std::fs::write(&path, b"").unwrap();
        assert_eq!(StoreFolder::open(&path).unwrap().path(), path);
    }

    #[test]
    fn a_link_or_a_folder_in_the_files_place_is_refused_with_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("elsewhere.db");
        std::fs::write(&elsewhere, b"").unwrap();
        let link = tmp.path().join("host.db");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let err = StoreFolder::open(&link).err().expect("a link is refused").to_string();
        assert!(err.contains("symbolic link") && err.contains("point `store` at the database file"), "{err}");

        let folder = tmp.path().join("folder.db");
        std::fs::create_dir(&folder).unwrap();
        let err = StoreFolder::open(&folder).err().expect("a folder is refused").to_string();
        assert!(err.contains("not a regular file"), "{err}");

        let err = StoreFolder::open(&tmp.path().join("..")).err().expect("no file name").to_string();
        assert!(err.contains("names no file"), "{err}");
    }
}
