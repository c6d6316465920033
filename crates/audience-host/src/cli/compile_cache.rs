//! Where `plugin inspect` and `plugin test` keep compiled components.
//!
//! Why: compiling a component takes a second or more each time; a plugin author runs these
//! tools over and over on the same build. They use the runtime's compile cache as `serve` does
//! (entries keyed by the component's bytes and the engine, checked before use), so a second
//! run of either tool on an unchanged component loads it in milliseconds.
//!
//! Which directory, first match wins: `--no-cache` (none), `--cache-dir DIR`,
//! `runtime.cache_dir` of the `--config` file (what `serve` with that file uses), else the
//! user's cache directory (`$XDG_CACHE_HOME/audience-host/compile-cache`, or
//! `~/.cache/audience-host/compile-cache`); with none of those known, no cache.

use std::path::{Path, PathBuf};

use audience_host::config::HostConfig;

/// The compile-cache flags of the plugin tools.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CacheArgs {
    /// Keep compiled components here (default: `runtime.cache_dir` of --config, else
    /// ~/.cache/audience-host/compile-cache).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Use the compile cache of this host configuration (its `runtime.cache_dir`), as `serve
    /// --config FILE` does.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Compile from scratch and keep nothing.
    #[arg(long, conflicts_with_all = ["cache_dir", "config"])]
    pub no_cache: bool,
}

impl CacheArgs {
    /// The cache directory these flags choose in this environment; `None`: no cache.
    pub fn dir(&self) -> anyhow::Result<Option<PathBuf>> {
        let configured = match &self.config {
            Some(path) => Some(HostConfig::load(Some(path))?.runtime.cache_dir),
            None => None,
        };
        let env = |name: &str| std::env::var_os(name).map(PathBuf::from).filter(|p| !p.as_os_str().is_empty());
        Ok(choose(self.no_cache, self.cache_dir.as_deref(), configured, env("XDG_CACHE_HOME"), env("HOME")))
    }
}

/// The cache directory: none when disabled; else the flag; else the configuration's; else
/// under the user's cache directory (`xdg_cache_home`, or `home`/.cache).
fn choose(
    no_cache: bool,
    flag: Option<&Path>,
    configured: Option<Option<PathBuf>>,
    xdg_cache_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    if no_cache {
        return None;
    }
    if let Some(dir) = flag {
        return Some(dir.to_path_buf());
    }
    if let Some(configured) = configured {
        return configured;
    }
    let user_cache = xdg_cache_home.or_else(|| home.map(|home| home.join(".cache")))?;
    Some(user_cache.join("audience-host").join("compile-cache"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_source_that_says_where_wins() {
        let p = |s: &str| Some(PathBuf::from(s));
        // ((no_cache, flag, configured, XDG_CACHE_HOME, HOME), the directory)
        type Case =
            ((bool, Option<&'static str>, Option<Option<PathBuf>>, Option<PathBuf>, Option<PathBuf>), Option<PathBuf>);
        let table: [Case; 7] = [
            ((true, Some("/flag"), Some(p("/conf")), p("/xdg"), p("/home/u")), None),
            ((false, Some("/flag"), Some(p("/conf")), p("/xdg"), p("/home/u")), p("/flag")),
            ((false, None, Some(p("data/compile-cache")), p("/xdg"), p("/home/u")), p("data/compile-cache")),
            ((false, None, Some(None), p("/xdg"), p("/home/u")), None),
            ((false, None, None, p("/xdg"), p("/home/u")), p("/xdg/audience-host/compile-cache")),
            ((false, None, None, None, p("/home/u")), p("/home/u/.cache/audience-host/compile-cache")),
            ((false, None, None, None, None), None),
        ];
        for ((no_cache, flag, configured, xdg, home), expected) in table {
            let flag = flag.map(Path::new);
            assert_eq!(
                choose(no_cache, flag, configured.clone(), xdg.clone(), home.clone()),
                expected,
                "{flag:?} {configured:?} {xdg:?} {home:?}"
            );
        }
    }
}
