//! Filling a plugin's OAuth authorize-URL template.

use crate::plugin::types::OauthApp;

/// The authorize URL for `template` (the plugin's `oauth.authorize-url`, or the operator's
/// override): `{client-id}`, `{redirect-uri}`, `{scopes}` and `{state}` replaced, URL-encoded.
pub fn authorize_url(template: &str, app: &OauthApp, client_id: &str, redirect_uri: &str, state: &str) -> String {
    let scopes = app.scopes.join(&app.scope_separator);
    let encode =
        |value: &str| percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string();
    template
        .replace("{client-id}", &encode(client_id))
        .replace("{redirect-uri}", &encode(redirect_uri))
        .replace("{scopes}", &encode(&scopes))
        .replace("{state}", &encode(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_and_encoded() {
        let app = OauthApp {
            authorize_url: String::new(),
            scopes: vec!["ads:read".into(), "ads:write".into()],
            scope_separator: ",".into(),
        };
        let url = authorize_url(
            "https://p.example/oauth/?client_id={client-id}&redirect_uri={redirect-uri}&scope={scopes}&state={state}",
            &app,
            "app 1",
            "http://127.0.0.1:8080/v1/oauth/callback",
            "s&t",
        );
        assert_eq!(
            url,
            "https://p.example/oauth/?client_id=app%201&redirect_uri=http%3A%2F%2F127%2E0%2E0%2E1%3A8080%2Fv1%2Foauth%2Fcallback&scope=ads%3Aread%2Cads%3Awrite&state=s%26t"
        );
    }
}
