//! Constructors for the contract's larger records, with the usual defaults.
//!
//! The 0.2.0 records grew fields most plugins leave at their "not reported" value (an
//! audience's size and state, a batch outcome's unattributed rows, the newer limits). These
//! helpers fill them in, so a plugin states only what it knows and then sets the rest with
//! struct update syntax or plain assignment.
//!
//! ```
//! use audience_plugin_sdk::build;
//! use audience_plugin_sdk::types::{AudienceState, WriteOutcome};
//! let mut audience = build::audience("aud-1", "VIPs");
//! audience.state = AudienceState::Ready;
//! assert!(!audience.created && audience.size.lower.is_none());
//! assert!(matches!(build::done(vec![]), WriteOutcome::Done(o) if o.rejected.is_empty() && o.created.is_none()));
//! ```

use crate::types::{
    Audience, AudienceSize, AudienceState, BatchOutcome, Credentials, Limits, RejectedUser, Submission,
    UnattributedRejection, WriteOutcome,
};

/// At most this many samples are kept in an [`UnattributedRejection`] (the contract's limit).
pub const MAX_UNATTRIBUTED_SAMPLES: usize = 10;

/// An audience size nobody reported yet (both bounds none).
pub fn unknown_size() -> AudienceSize {
    AudienceSize { lower: None, upper: None }
}

/// An exact audience size.
pub fn exact_size(count: u64) -> AudienceSize {
    AudienceSize { lower: Some(count), upper: Some(count) }
}

/// An audience found at the partner: not created by this call, identifiers unknown, size not
/// reported, state `unknown`, no status detail or details.
pub fn audience(id: impl Into<String>, name: impl Into<String>) -> Audience {
    Audience {
        id: id.into(),
        name: name.into(),
        created: false,
        identifiers: Vec::new(),
        size: unknown_size(),
        state: AudienceState::Unknown,
        status_detail: None,
        details: Vec::new(),
    }
}

/// A batch outcome with these individual rejections, nothing unattributed, nothing created.
pub fn batch_outcome(rejected: Vec<RejectedUser>) -> BatchOutcome {
    BatchOutcome { rejected, unattributed: Vec::new(), created: None }
}

/// `write-outcome.done` with these individual rejections (see [`batch_outcome`]).
pub fn done(rejected: Vec<RejectedUser>) -> WriteOutcome {
    WriteOutcome::Done(batch_outcome(rejected))
}

/// `write-outcome.submitted`: the partner accepted the batch as `id`; ask after `check_after_ms`.
pub fn submitted(id: impl Into<String>, check_after_ms: u32) -> WriteOutcome {
    WriteOutcome::Submitted(Submission { id: id.into(), check_after_ms })
}

/// Rows the partner dropped without naming them; keeps at most [`MAX_UNATTRIBUTED_SAMPLES`]
/// samples.
pub fn unattributed(count: u32, reason: impl Into<String>, mut samples: Vec<String>) -> UnattributedRejection {
    samples.truncate(MAX_UNATTRIBUTED_SAMPLES);
    UnattributedRejection { count, reason: reason.into(), samples }
}

/// Limits with the three classic numbers; no cap on outstanding submissions
/// (`max-submissions-per-audience` 0) and no per-application rate.
pub fn limits(max_batch_size: u32, requests_per_second: f64, max_concurrent_requests: u32) -> Limits {
    Limits {
        max_batch_size,
        requests_per_second,
        max_concurrent_requests,
        max_submissions_per_audience: 0,
        app_requests_per_second: None,
    }
}

/// Credentials holding only an access token: no refresh token, no expiry, renewable-until
/// unknown, no scopes.
pub fn access_token(token: impl Into<String>) -> Credentials {
    Credentials {
        access_token: token.into(),
        refresh_token: None,
        expires_at: None,
        renewable_until: None,
        scopes: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        assert_eq!(exact_size(5), AudienceSize { lower: Some(5), upper: Some(5) });
        let u = unattributed(3, "bad rows", (0..20).map(|i| i.to_string()).collect());
        assert_eq!((u.count, u.samples.len()), (3, MAX_UNATTRIBUTED_SAMPLES));
        let l = limits(100, 5.0, 2);
        assert_eq!((l.max_submissions_per_audience, l.app_requests_per_second), (0, None));
        assert!(
            matches!(submitted("job-1", 50), WriteOutcome::Submitted(s) if s.id == "job-1" && s.check_after_ms == 50)
        );
        assert_eq!(access_token("t").refresh_token, None);
    }
}
