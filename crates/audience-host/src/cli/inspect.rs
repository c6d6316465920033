//! `audience-host plugin inspect`: what a component says about itself, or why it cannot load.

use std::path::Path;

use serde_json::json;

use audience_runtime::{PluginOptions, PluginRuntime, RuntimeConfig, kind_name};

/// Inspect `component`; returns whether it loaded.
pub async fn run(component: &Path, json: bool) -> anyhow::Result<bool> {
    let runtime = PluginRuntime::new(RuntimeConfig { max_instances: 4, ..RuntimeConfig::default() })?;
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
    let identifiers: Vec<&str> = m.identifiers.iter().map(|k| kind_name(*k)).collect();
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
                "supports_removal": m.supports_removal,
                "limits": {
                    "max_batch_size": m.limits.max_batch_size,
                    "requests_per_second": m.limits.requests_per_second,
                    "max_concurrent_requests": m.limits.max_concurrent_requests,
                },
                "oauth": m.oauth.as_ref().map(|o| json!({
                    "authorize_url": o.authorize_url,
                    "scopes": o.scopes,
                    "scope_separator": o.scope_separator,
                })),
                "default_hosts": m.default_hosts,
            },
            "imports": plugin.imports(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(true);
    }
    println!("{} ({}) version {}", m.display_name, m.name, m.version);
    println!("  implements     {world}");
    println!("  identifiers    {}", identifiers.join(", "));
    println!("  removal        {}", if m.supports_removal { "supported" } else { "not supported" });
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
    Ok(true)
}
