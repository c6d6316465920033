//! On-disk cache of compiled components.
//!
//! Compiling a component with Cranelift takes hundreds of milliseconds to seconds; loading a
//! precompiled artifact takes milliseconds. Entries are keyed by the SHA-256 of the component's
//! bytes *and* the engine's compatibility hash (wasmtime version and every setting that changes
//! code generation), so a new host version or a changed setting never picks up a stale entry.
//!
//! Deserializing an artifact runs its machine code, so a damaged entry must never be trusted:
//! each file carries a magic header and the SHA-256 of its payload, checked before use. A
//! truncated, corrupt or foreign file is reported, removed and rebuilt from the component.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::LoadError;

/// Bumped when the file layout changes.
const MAGIC: &[u8; 8] = b"AHCWASM1";
const HEADER_LEN: usize = MAGIC.len() + 32;

/// What happened when a component was looked up in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// No cache is configured (or its directory could not be opened); the component was
    /// compiled.
    Disabled,
    /// A valid entry was used.
    Hit,
    /// No entry existed; the component was compiled and stored.
    Miss,
    /// An entry existed but failed its checks; it was replaced by a fresh compile.
    Rebuilt,
}

/// The compile cache of one engine.
///
/// The directory is opened once, as a capability ([`cap_std::fs::Dir`]): every read, write,
/// rename and removal goes through it, and entry names are checked to be plain hex names
/// first, so no key (and no symlink planted in the directory) can reach a file outside it.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    root: Option<Arc<Dir>>,
    compat: String,
}

/// Why a cache key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("compile cache key {0:?} is not a plain hex name")]
struct BadKey(String);

/// The file name of the entry keyed by `digest` (the component's SHA-256) and `compat` (the
/// engine's compatibility hash): both must be non-empty lowercase hex, so the name has no
/// separator, no `..` and nothing else that could leave the directory.
fn entry_name(digest: &str, compat: &str) -> Result<String, BadKey> {
    let hex = |key: &str| !key.is_empty() && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    for key in [digest, compat] {
        if !hex(key) {
            return Err(BadKey(key.to_string()));
        }
    }
    Ok(format!("{digest}-{compat}.cwasm"))
}

impl CompileCache {
    /// A cache in `dir` (created when needed) for artifacts of `engine`; `None` disables it.
    /// A directory that cannot be created or opened disables the cache with a warning: it
    /// costs start-up time, not correctness.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let root = dir.as_ref().and_then(|dir| {
            let opened = std::fs::create_dir_all(dir).and_then(|()| Dir::open_ambient_dir(dir, ambient_authority()));
            opened
                .map_err(|err| {
                    tracing::warn!(path = %dir.display(), error = %err, "cannot open the compile cache directory; plugins are compiled at every start");
                })
                .ok()
                .map(Arc::new)
        });
        Self { dir, root, compat: format!("{:016x}", hasher.finish()) }
    }

    /// The name of the entry for `component_bytes`, inside the cache directory.
    fn entry_name(&self, component_bytes: &[u8]) -> Result<String, BadKey> {
        entry_name(&hex::encode(Sha256::digest(component_bytes)), &self.compat)
    }

    /// The file an entry for `component_bytes` lives in.
    pub fn entry_path(&self, component_bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(self.entry_name(component_bytes).ok()?))
    }

    /// Load `bytes` as a component, through the cache when one is configured.
    #[allow(unsafe_code, reason = "deserialising an artifact is unsafe; each use says why it is sound")]
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> Result<(Component, CacheOutcome), LoadError> {
        let Some(root) = &self.root else {
            return Ok((compile(engine, bytes)?, CacheOutcome::Disabled));
        };
        let name = match self.entry_name(bytes) {
            Ok(name) => name,
            Err(err) => {
                tracing::warn!(error = %err, "compile cache not used for this component");
                return Ok((compile(engine, bytes)?, CacheOutcome::Disabled));
            }
        };
        let outcome = match root.read(&name) {
            Ok(file) => match verified_payload(&file) {
                Some(payload) => {
                    // SAFETY: the payload is exactly what `store` wrote for these component bytes
                    // with an engine of the same compatibility hash (both are in the file name),
                    // and its SHA-256 matched, so it is an artifact wasmtime produced itself.
                    match unsafe { Component::deserialize(engine, payload) } {
                        Ok(component) => return Ok((component, CacheOutcome::Hit)),
                        Err(err) => {
                            tracing::warn!(entry = %name, error = %err, "compile cache entry refused by the engine; rebuilding it");
                            CacheOutcome::Rebuilt
                        }
                    }
                }
                None => {
                    tracing::warn!(entry = %name, "compile cache entry is truncated or corrupt; rebuilding it");
                    CacheOutcome::Rebuilt
                }
            },
            Err(_) => CacheOutcome::Miss,
        };
        let artifact = engine.precompile_component(bytes).map_err(|err| LoadError::Compile(format!("{err:#}")))?;
        if let Err(err) = store(root, &name, &artifact) {
            // A read-only or full disk costs start-up time, not correctness.
            tracing::warn!(entry = %name, error = %err, "could not write the compile cache entry");
        }
        // SAFETY: `artifact` was produced by `precompile_component` of this very engine just now.
        let component = unsafe { Component::deserialize(engine, &artifact) }
            .map_err(|err| LoadError::Compile(format!("{err:#}")))?;
        Ok((component, outcome))
    }
}

fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, LoadError> {
    Component::new(engine, bytes).map_err(|err| LoadError::Compile(format!("{err:#}")))
}

/// The payload of a cache file, when its header and checksum are intact.
fn verified_payload(file: &[u8]) -> Option<&[u8]> {
    if file.len() < HEADER_LEN || &file[..MAGIC.len()] != MAGIC {
        return None;
    }
    let (header, payload) = file.split_at(HEADER_LEN);
    let expected = &header[MAGIC.len()..];
    (Sha256::digest(payload).as_slice() == expected).then_some(payload)
}

/// Write the entry `name` atomically: to a new temporary file in the same directory, then
/// rename, so a crash mid-write leaves either no entry or a complete one.
fn store(root: &Dir, name: &str, artifact: &[u8]) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = format!(".{name}.{}.{}.tmp", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let written = (|| {
        let mut file = root.open_with(&tmp, OpenOptions::new().write(true).create_new(true))?;
        file.write_all(MAGIC)?;
        file.write_all(&Sha256::digest(artifact))?;
        file.write_all(artifact)?;
        file.sync_all()?;
        root.rename(&tmp, root, name)
    })();
    if written.is_err() {
        let _ = root.remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_files_are_not_trusted() {
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&Sha256::digest(b"payload"));
        file.extend_from_slice(b"payload");
        assert_eq!(verified_payload(&file), Some(&b"payload"[..]));
        assert_eq!(verified_payload(&file[..file.len() - 1]), None, "truncated");
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(verified_payload(&flipped), None, "bit flip");
        assert_eq!(verified_payload(b"AHCWASM1"), None, "header only");
        assert_eq!(verified_payload(b""), None, "empty");
    }

    #[test]
    fn only_plain_hex_keys_name_an_entry() {
        let digest = hex::encode(Sha256::digest(b"component"));
        // (digest, compat, allowed)
        let table = [
            (digest.as_str(), "0123456789abcdef", true),
            ("ab", "cd", true),
            ("", "cd", false),
            ("ab", "", false),
            ("../../etc/passwd", "cd", false),
            ("ab", "cd/../../x", false),
            ("/abs", "cd", false),
            ("AB", "cd", false),
            ("ab.cwasm", "cd", false),
            ("ab\0", "cd", false),
        ];
        for (digest, compat, allowed) in table {
            let name = entry_name(digest, compat);
            assert_eq!(name.is_ok(), allowed, "{digest:?} / {compat:?}: {name:?}");
        }
    }

    #[test]
    fn entries_are_written_inside_the_directory_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = Dir::open_ambient_dir(dir.path(), ambient_authority()).unwrap();
        store(&root, "ab-cd.cwasm", b"artifact").unwrap();
        let written = std::fs::read(dir.path().join("ab-cd.cwasm")).unwrap();
        assert_eq!(verified_payload(&written), Some(&b"artifact"[..]));
        // Only the entry is left behind: the temporary file was renamed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A name that would leave the directory is refused by the capability itself.
        assert!(store(&root, "../escaped.cwasm", b"x").is_err());
        assert!(!dir.path().parent().unwrap().join("escaped.cwasm").exists());
        #[cfg(unix)]
        {
            // Nor can a symlink planted in the directory lead out of it.
            let outside = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(outside.path().join("target"), dir.path().join("link-ef.cwasm")).unwrap();
            assert!(root.read("link-ef.cwasm").is_err());
            assert!(store(&root, "link-ef.cwasm", b"x").is_ok(), "the rename replaces the link itself");
            assert!(!outside.path().join("target").exists());
        }
    }
}
