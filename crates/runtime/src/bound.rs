//! Every string a plugin hands the host is bounded here, once, as the call returns.
//!
//! Why at the boundary: a plugin (or a partner's HTML error page it passes on) can return a
//! reason of megabytes. Before this, the host copied such a string into every user's verdict,
//! its own log lines, the store's status reasons and the API's answers: one bad answer for a
//! batch of 1,900 users cost gigabytes. Cut here, nothing downstream needs to think about it.
//!
//! Each text is first scrubbed of the secrets the host handed the plugin for that call (see
//! [`crate::redact`]), then cut, so that a plugin echoing its token in an error reason cannot
//! make the host write it to its log, the store or an API answer.
//!
//! What is cut: error reasons, rejection and not-synced reasons, names, ids and cursors in
//! account pages and audiences, the manifest's texts. What is not: credentials (a partner's
//! token is opaque and may legitimately be long; they are capped at a larger size instead) and
//! prepared identifiers (the plugin's own output for the partner, bounded by the request body
//! cap when sent).

use crate::redact::Secrets;
use crate::types::{
    AccountPage, Audience, AudiencePage, BatchOutcome, Credentials, DestinationError, Manifest, Preparation,
    SubmissionStatus, TargetProblem, UpsertOutcome, WriteOutcome,
};

/// The most sample values of one unattributed rejection the host keeps.
pub const MAX_SAMPLES: usize = 10;

/// The most bytes of any text a plugin returns (a reason, a name, an id) the host keeps.
pub const MAX_TEXT_BYTES: usize = 1024;

/// The most bytes of a credential (token) the host keeps; a longer one is refused by the
/// caller, never cut (a cut token would fail later, far from its cause).
pub const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;

/// `text` cut to [`MAX_TEXT_BYTES`] on a character boundary, marked with how much was cut.
pub fn cut(text: &mut String) {
    if text.len() <= MAX_TEXT_BYTES {
        return;
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let dropped = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("... [{dropped} bytes cut]"));
}

/// Types holding texts a plugin provided, each of which is scrubbed of the call's secrets and
/// cut to size as the call returns.
pub(crate) trait Bound {
    /// Apply `f` to every plugin-provided text in `self` (and bound what lists may hold).
    fn texts(&mut self, f: &mut dyn FnMut(&mut String));

    /// Scrub every text in `self` of `secrets`, then cut it to size. Scrubbing comes first, so
    /// a cut can never leave the start of a secret behind.
    fn bound(&mut self, secrets: &Secrets) {
        self.texts(&mut |text| {
            secrets.scrub(text);
            cut(text);
        });
    }
}

impl Bound for DestinationError {
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        match self {
            DestinationError::RateLimited(_) => {}
            DestinationError::Unauthorized(why)
            | DestinationError::NotFound(why)
            | DestinationError::InvalidRequest(why)
            | DestinationError::ActionRequired(why)
            | DestinationError::Transient(why) => f(why),
            DestinationError::RejectedUsers(users) => {
                for user in users {
                    f(&mut user.reason);
                }
            }
        }
    }
}

impl<T: Bound> Bound for Result<T, DestinationError> {
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        match self {
            Ok(value) => value.texts(f),
            Err(err) => err.texts(f),
        }
    }
}

impl<T: Bound> Bound for Vec<T> {
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        self.iter_mut().for_each(|item| item.texts(f));
    }
}

impl Bound for Preparation {
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        match self {
            Preparation::Ready(user) => f(&mut user.key),
            Preparation::NotSynced(why) => f(why),
        }
    }
}

impl Bound for BatchOutcome {
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        for rejected in &mut self.rejected {
            f(&mut rejected.key);
            f(&mut rejected.reason);
        }
        for dropped in &mut self.unattributed {
            f(&mut dropped.reason);
            dropped.samples.truncate(MAX_SAMPLES);
            dropped.samples.iter_mut().for_each(&mut *f);
        }
        if let Some(created) = &mut self.created {
            created.texts(f);
        }
    }
}

impl Bound for WriteOutcome {
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        match self {
            WriteOutcome::Done(outcome) => outcome.texts(f),
            WriteOutcome::Submitted(submission) => f(&mut submission.id),
        }
    }
}

impl Bound for SubmissionStatus {
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        match self {
            SubmissionStatus::Processing(_) => {}
            SubmissionStatus::Finished(outcome) => outcome.texts(f),
            SubmissionStatus::Failed(err) => err.texts(f),
        }
    }
}

impl Bound for TargetProblem {
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        f(&mut self.message);
    }
}

impl Bound for AudiencePage {
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        self.audiences.iter_mut().for_each(|item| item.texts(f));
        if let Some(cursor) = &mut self.next_cursor {
            f(cursor);
        }
    }
}

impl Bound for Audience {
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        f(&mut self.id);
        f(&mut self.name);
        self.identifiers.iter_mut().for_each(&mut *f);
        if let Some(detail) = &mut self.status_detail {
            f(detail);
        }
        for (label, value) in &mut self.details {
            f(label);
            f(value);
        }
    }
}

impl Bound for UpsertOutcome {
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        match self {
            UpsertOutcome::Ready(audience) => audience.texts(f),
            UpsertOutcome::CreateWithFirstBatch(why) => f(why),
        }
    }
}

impl Bound for AccountPage {
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        for account in &mut self.accounts {
            f(&mut account.id);
            f(&mut account.name);
            account.permissions.iter_mut().for_each(&mut *f);
        }
        if let Some(cursor) = &mut self.next_cursor {
            f(cursor);
        }
    }
}

impl Bound for Manifest {
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        f(&mut self.name);
        f(&mut self.version);
        f(&mut self.display_name);
        self.identifiers.iter_mut().for_each(&mut *f);
        self.default_hosts.iter_mut().for_each(&mut *f);
    }
}

impl Bound for Credentials {
    /// Credentials are checked, not cut: see [`MAX_CREDENTIAL_BYTES`].
    fn texts(&mut self, f: &mut dyn FnMut(&mut String)) {
        self.scopes.iter_mut().for_each(&mut *f);
    }
}

/// Whether credentials a plugin returned are usable as the host will send them: not over
/// [`MAX_CREDENTIAL_BYTES`], no control characters (a CR or LF would break every header they
/// are put in). `None` when they are; else what is wrong.
pub(crate) fn credentials_problem(creds: &Credentials) -> Option<String> {
    let tokens = std::iter::once(("access token", creds.access_token.as_str()))
        .chain(creds.refresh_token.as_deref().map(|t| ("refresh token", t)));
    for (what, token) in tokens {
        if token.len() > MAX_CREDENTIAL_BYTES {
            return Some(format!(
                "the {what} is {} bytes, over the {MAX_CREDENTIAL_BYTES} this host keeps",
                token.len()
            ));
        }
        if token.chars().any(char::is_control) {
            return Some(format!("the {what} contains control characters"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_kept_and_long_ones_cut_on_a_character_boundary() {
        let mut short = "fine".to_string();
        cut(&mut short);
        assert_eq!(short, "fine");
        let mut long = "é".repeat(MAX_TEXT_BYTES); // 2 bytes each
        cut(&mut long);
        assert!(long.len() < MAX_TEXT_BYTES + 40, "{}", long.len());
        assert!(long.ends_with(&format!("... [{} bytes cut]", MAX_TEXT_BYTES)), "{}", &long[long.len() - 30..]);
    }

    #[test]
    fn every_reason_of_an_error_is_cut() {
        for mut err in [
            DestinationError::Unauthorized("x".repeat(1 << 20)),
            DestinationError::NotFound("x".repeat(1 << 20)),
            DestinationError::InvalidRequest("x".repeat(1 << 20)),
            DestinationError::ActionRequired("x".repeat(1 << 20)),
            DestinationError::Transient("x".repeat(1 << 20)),
        ] {
            err.bound(&Secrets::none());
            let text = format!("{err:?}");
            assert!(text.len() < 2 * MAX_TEXT_BYTES, "{} bytes", text.len());
        }
    }

    #[test]
    fn tokens_with_line_breaks_or_of_megabytes_are_refused() {
        let creds = |token: &str| Credentials {
            access_token: token.into(),
            refresh_token: None,
            expires_at: None,
            renewable_until: None,
            scopes: vec![],
        };
        assert_eq!(credentials_problem(&creds("pina_ok")), None);
        assert!(credentials_problem(&creds("a\r\nSet-Cookie: x")).unwrap().contains("control characters"));
        assert!(credentials_problem(&creds(&"t".repeat(MAX_CREDENTIAL_BYTES + 1))).unwrap().contains("bytes"));
    }
}
