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
use std::path::{Path, PathBuf};

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
    /// No cache is configured; the component was compiled.
    Disabled,
    /// A valid entry was used.
    Hit,
    /// No entry existed; the component was compiled and stored.
    Miss,
    /// An entry existed but failed its checks; it was replaced by a fresh compile.
    Rebuilt,
}

/// The compile cache of one engine.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
    compat: String,
}

impl CompileCache {
    /// A cache in `dir` (created when needed) for artifacts of `engine`; `None` disables it.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self { dir, compat: format!("{:016x}", hasher.finish()) }
    }

    /// The file an entry for `component_bytes` lives in.
    pub fn entry_path(&self, component_bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let digest = hex::encode(Sha256::digest(component_bytes));
        Some(dir.join(format!("{digest}-{}.cwasm", self.compat)))
    }

    /// Load `bytes` as a component, through the cache when one is configured.
    #[allow(unsafe_code, reason = "deserialising an artifact is unsafe; each use says why it is sound")]
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> Result<(Component, CacheOutcome), LoadError> {
        let Some(path) = self.entry_path(bytes) else {
            return Ok((compile(engine, bytes)?, CacheOutcome::Disabled));
        };
        let outcome = match std::fs::read(&path) {
            Ok(file) => match verified_payload(&file) {
                Some(payload) => {
                    // SAFETY: the payload is exactly what `store` wrote for these component bytes
                    // with an engine of the same compatibility hash (both are in the file name),
                    // and its SHA-256 matched, so it is an artifact wasmtime produced itself.
                    match unsafe { Component::deserialize(engine, payload) } {
                        Ok(component) => return Ok((component, CacheOutcome::Hit)),
                        Err(err) => {
                            tracing::warn!(path = %path.display(), error = %err, "compile cache entry refused by the engine; rebuilding it");
                            CacheOutcome::Rebuilt
                        }
                    }
                }
                None => {
                    tracing::warn!(path = %path.display(), "compile cache entry is truncated or corrupt; rebuilding it");
                    CacheOutcome::Rebuilt
                }
            },
            Err(_) => CacheOutcome::Miss,
        };
        let artifact = engine.precompile_component(bytes).map_err(|err| LoadError::Compile(format!("{err:#}")))?;
        if let Err(err) = store(&path, &artifact) {
            // A read-only or full disk costs start-up time, not correctness.
            tracing::warn!(path = %path.display(), error = %err, "could not write the compile cache entry");
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

/// Write an entry atomically: to a temporary file in the same directory, then rename, so a
/// crash mid-write leaves either no entry or a complete one.
fn store(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(MAGIC)?;
    tmp.write_all(&Sha256::digest(artifact))?;
    tmp.write_all(artifact)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|err| err.error)?;
    Ok(())
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
}
