//! `audience-host plugin inspect`: what a component says about itself, or why it cannot load.
//! The compiled component is kept in the compile cache (see [`super::compile_cache`]), so
//! inspecting it again does not compile it again.

use std::path::Path;

use serde_json::json;

use audience_runtime::types::{AudienceKeys, Features};
use audience_runtime::{CacheOutcome, PluginOptions, PluginRuntime, RuntimeConfig};

use super::compile_cache::CacheArgs;

/// What the compile cache did, in a word.
fn cache_word(outcome: CacheOutcome) -> &'static str {
    match outcome {
        CacheOutcome::Disabled => "off",
        CacheOutcome::Hit => "hit",
        CacheOutcome::Miss => "miss",
        CacheOutcome::Rebuilt => "rebuilt",
    }
}

/// Inspect `component`; returns whether it loaded.
pub async fn run(component: &Path, json: bool, cache: &CacheArgs) -> anyhow::Result<bool> {
    let cache_dir = cache.dir()?;
    let runtime = PluginRuntime::new(RuntimeConfig { max_instances: 4, cache_dir, ..RuntimeConfig::default() })?;
    let plugin = match runtime.load_file(component, PluginOptions::default()).await {
        Ok(plugin) => plugin,
        Err(err) => {
            if json {
                println!(
                    "{}",
                    json!({ "component": component.display().to_string(), "loads": false, "error": err.to_string() })
                );
            } else {
                println!("{} cannot be loaded: {err}", component.display());
            }
            return Ok(false);
        }
    };
    let m = plugin.manifest();
    let identifiers: Vec<&str> = m.identifiers.iter().map(String::as_str).collect();
    let features: Vec<&str> = [
        (Features::REMOVAL, "removal"),
        (Features::ASYNCHRONOUS, "asynchronous"),
        (Features::CONSENT, "consent"),
        (Features::AUDIENCE_SEARCH, "audience-search"),
    ]
    .into_iter()
    .filter(|(flag, _)| m.features.contains(*flag))
    .map(|(_, name)| name)
    .collect();
    let keys = match m.audience_keys {
        AudienceKeys::OneKind => "one-kind",
        AudienceKeys::MultiKey => "multi-key",
    };
    let world = format!("audience:destination/destination@{}", plugin.contract_version());
    if json {
        let value = json!({
            "component": component.display().to_string(),
            "loads": true,
            "world": world,
            "contract_version": plugin.contract_version(),
            "manifest": {
                "name": m.name,
                "version": m.version,
                "display_name": m.display_name,
                "identifiers": identifiers,
                "supports_removal": m.features.contains(Features::REMOVAL),
                "features": features,
                "audience_keys": keys,
                "limits": {
                    "max_batch_size": m.limits.max_batch_size,
                    "requests_per_second": m.limits.requests_per_second,
                    "max_concurrent_requests": m.limits.max_concurrent_requests,
                    "max_submissions_per_audience": m.limits.max_submissions_per_audience,
                    "app_requests_per_second": m.limits.app_requests_per_second,
                },
                "oauth": m.oauth.as_ref().map(|o| json!({
                    "authorize_url": o.authorize_url,
                    "scopes": o.scopes,
                    "scope_separator": o.scope_separator,
                })),
                "default_hosts": m.default_hosts,
            },
            "imports": plugin.imports(),
            "compile_cache": cache_word(plugin.cache_outcome()),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(true);
    }
    println!("{} ({}) version {}", m.display_name, m.name, m.version);
    println!("  implements     {world}");
    println!("  identifiers    {}", identifiers.join(", "));
    println!("  features       {}", if features.is_empty() { "none".to_string() } else { features.join(", ") });
    println!(
        "  audiences      {keys} ({})",
        if keys == "one-kind" { "one identifier kind per audience" } else { "rows of several identifiers" }
    );
    println!(
        "  limits         {} users per request, {} requests/s, {} concurrent",
        m.limits.max_batch_size, m.limits.requests_per_second, m.limits.max_concurrent_requests
    );
    match &m.oauth {
        Some(oauth) => println!(
            "  oauth          {} (scopes: {})",
            oauth.authorize_url,
            oauth.scopes.join(oauth.scope_separator.as_str())
        ),
        None => println!("  oauth          none"),
    }
    println!("  default hosts  {}", m.default_hosts.join(", "));
    println!("  imports        {}", plugin.imports().join("\n                 "));
    println!("  compile cache  {}", cache_word(plugin.cache_outcome()));
    Ok(true)
}
