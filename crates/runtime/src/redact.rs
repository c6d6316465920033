//! The secrets the host hands a plugin, and their removal from whatever the host keeps of a
//! call.
//!
//! Why here: a plugin sees the partner's tokens and the app's client secret, and whatever it
//! returns (an error reason, a rejection, a log line, a panic message, a header name the gate
//! refused) ends up in the host's own log lines, the store's status reasons and errors, and the
//! API's answers. The conformance suite checks that well-behaved plugins never echo a secret,
//! but a buggy or hostile one can; the host knows every secret it handed over, so it scrubs
//! them itself, once, where the call's texts cross back (`bound`, the call log, the call's
//! errors). Nothing downstream needs to think about it.
//!
//! What is matched: the exact text of each secret of at least [`MIN_SECRET_BYTES`] bytes
//! (shorter values would scrub ordinary words; real tokens are far longer). A secret a plugin
//! transforms (encodes, splits, reverses) is not recognised: that is a plugin deliberately
//! exfiltrating, which the network allow-list, not redaction, contains.

use std::borrow::Cow;

use crate::types::{Credentials, Grant, PluginConfig};

/// Shortest value treated as a secret.
pub const MIN_SECRET_BYTES: usize = 8;

/// The name the app's client secret is replaced by.
pub const CLIENT_SECRET: &str = "client secret";
/// The name a partner's access token is replaced by.
pub const ACCESS_TOKEN: &str = "access token";
/// The name a partner's refresh token is replaced by.
pub const REFRESH_TOKEN: &str = "refresh token";
/// The name an OAuth authorization code is replaced by.
pub const AUTHORIZATION_CODE: &str = "authorization code";

/// What a secret called `name` is replaced by: `[redacted access token]`.
pub fn marker(name: &str) -> String {
    format!("[redacted {name}]")
}

/// The secrets of one call, each with the name it is replaced by.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Vec<(&'static str, String)>,
}

impl Secrets {
    /// No secrets: nothing is scrubbed.
    pub fn none() -> Self {
        Self::default()
    }

    /// `value`, under `name`, as a secret (ignored when shorter than [`MIN_SECRET_BYTES`]).
    pub fn with(mut self, name: &'static str, value: Option<&str>) -> Self {
        if let Some(value) = value
            && value.len() >= MIN_SECRET_BYTES
            && !self.values.iter().any(|(_, known)| known == value)
        {
            self.values.push((name, value.to_string()));
        }
        self
    }

    /// The operator's settings' secret (the app's client secret).
    pub fn of_config(config: &PluginConfig) -> Self {
        Self::none().with(CLIENT_SECRET, config.client_secret.as_deref())
    }

    /// These secrets and the tokens of `creds`.
    pub fn and_credentials(self, creds: &Credentials) -> Self {
        self.with(ACCESS_TOKEN, Some(&creds.access_token)).with(REFRESH_TOKEN, creds.refresh_token.as_deref())
    }

    /// These secrets and what `grant` carries (an authorization code, or credentials to renew).
    pub fn and_grant(self, grant: &Grant) -> Self {
        match grant {
            Grant::AuthorizationCode(code) => self.with(AUTHORIZATION_CODE, Some(&code.code)),
            Grant::Refresh(creds) => self.and_credentials(creds),
        }
    }

    /// These secrets and `other`'s.
    pub fn and(mut self, other: &Secrets) -> Self {
        for (name, value) in &other.values {
            self = self.with(name, Some(value));
        }
        self
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret replaced by `[redacted <name>]`; borrowed when it held none.
    pub fn scrubbed<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for (name, value) in &self.values {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), &marker(name)));
            }
        }
        out
    }

    /// Replace every secret in `text` in place.
    pub fn scrub(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.scrubbed(text) {
            *text = clean;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::AuthCode;

    fn creds(access: &str, refresh: Option<&str>) -> Credentials {
        Credentials {
            access_token: access.into(),
            refresh_token: refresh.map(str::to_string),
            expires_at: None,
            renewable_until: None,
            scopes: vec![],
        }
    }

    #[test]
    fn every_known_secret_is_replaced_by_its_name() {
        let secrets = Secrets::none()
            .with("client secret", Some("app-secret-123"))
            .and_credentials(&creds("pina_access_abc", Some("pinr_refresh_xyz")));
        let cases = [
            ("nothing secret here", "nothing secret here"),
            ("bad token pina_access_abc!", "bad token [redacted access token]!"),
            ("pinr_refresh_xyz/pinr_refresh_xyz", "[redacted refresh token]/[redacted refresh token]"),
            ("client_secret=app-secret-123&x=1", "client_secret=[redacted client secret]&x=1"),
        ];
        for (text, expected) in cases {
            assert_eq!(secrets.scrubbed(text), expected, "{text}");
            let mut owned = text.to_string();
            secrets.scrub(&mut owned);
            assert_eq!(owned, expected);
        }
        assert!(matches!(secrets.scrubbed("clean"), Cow::Borrowed(_)), "no copy when nothing matched");
    }

    #[test]
    fn short_values_are_not_secrets() {
        let secrets = Secrets::none().and_credentials(&creds("tok", Some("")));
        assert!(secrets.is_empty());
        assert_eq!(secrets.scrubbed("a tok is not scrubbed"), "a tok is not scrubbed");
    }

    #[test]
    fn a_grant_brings_its_code_or_its_tokens() {
        let code = Grant::AuthorizationCode(AuthCode { code: "code-4567890".into(), redirect_uri: "https://x".into() });
        assert_eq!(Secrets::none().and_grant(&code).scrubbed("code-4567890"), "[redacted authorization code]");
        let refresh = Grant::Refresh(creds("access-1234567", Some("refresh-1234567")));
        assert_eq!(
            Secrets::none().and_grant(&refresh).scrubbed("access-1234567 refresh-1234567"),
            "[redacted access token] [redacted refresh token]"
        );
    }
}
