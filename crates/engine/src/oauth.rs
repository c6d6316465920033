//! Building a partner's OAuth authorize URL from a plugin's template (or the operator's
//! override), shared by the API's connect flow and the in-process lab.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use audience_runtime::types::OauthApp;

/// RFC 3986 unreserved characters stay as they are; everything else is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Fill a template's `{client-id}`, `{redirect-uri}`, `{scopes}` and `{state}`, each
/// URL-encoded.
pub fn fill_template(template: &str, client_id: &str, redirect_uri: &str, scopes: &str, oauth_state: &str) -> String {
    let enc = |v: &str| utf8_percent_encode(v, COMPONENT).to_string();
    template
        .replace("{client-id}", &enc(client_id))
        .replace("{redirect-uri}", &enc(redirect_uri))
        .replace("{scopes}", &enc(scopes))
        .replace("{state}", &enc(oauth_state))
}

/// The template to use: the operator's override (a whole template when it has placeholders,
/// otherwise a page that keeps the manifest template's query string) or the manifest's.
pub fn template_for(manifest_template: &str, override_url: Option<&str>) -> String {
    match override_url {
        Some(url) if url.contains('{') => url.to_string(),
        Some(page) => match manifest_template.split_once('?') {
            Some((_, query)) => {
                let separator = if page.contains('?') { '&' } else { '?' };
                format!("{page}{separator}{query}")
            }
            None => page.to_string(),
        },
        None => manifest_template.to_string(),
    }
}

/// The authorize URL for a plugin's OAuth app, optionally sent to another page (a sandbox).
pub fn authorize_url(
    app: &OauthApp,
    page_override: Option<&str>,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
) -> String {
    let template = template_for(&app.authorize_url, page_override);
    fill_template(&template, client_id, redirect_uri, &app.scopes.join(&app.scope_separator), state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> OauthApp {
        OauthApp {
            authorize_url: "https://p.example/oauth/?client_id={client-id}&redirect_uri={redirect-uri}&scope={scopes}&state={state}"
                .into(),
            scopes: vec!["ads:read".into(), "ads:write".into()],
            scope_separator: ",".into(),
        }
    }

    #[test]
    fn placeholders_are_replaced_and_encoded() {
        let url = authorize_url(&app(), None, "app 1", "http://127.0.0.1:8080/v1/oauth/callback", "s&t");
        assert_eq!(
            url,
            "https://p.example/oauth/?client_id=app%201&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fv1%2Foauth%2Fcallback&scope=ads%3Aread%2Cads%3Awrite&state=s%26t"
        );
    }

    #[test]
    fn a_page_override_keeps_the_query_and_a_template_override_replaces_all() {
        let url = authorize_url(&app(), Some("http://127.0.0.1:9000/oauth/"), "a", "r", "s");
        assert_eq!(
            url,
            "http://127.0.0.1:9000/oauth/?client_id=a&redirect_uri=r&scope=ads%3Aread%2Cads%3Awrite&state=s"
        );
        let url = authorize_url(&app(), Some("http://x/?state={state}"), "a", "r", "s");
        assert_eq!(url, "http://x/?state=s");
    }
}
