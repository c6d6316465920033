//! What the host gives a plugin: the contract's imports, for every version it speaks.
//!
//! One implementation per import, on the current types; an older version's imports convert
//! their arguments and answers (see `bindings::since_v0_1_0`) and call the same code, so the
//! policy (allow-list, rate limiter, log budget) cannot differ between versions.

use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::bindings::latest::audience::destination::{hashing, http_client, log, pacing, types};
use super::bindings::since_v0_1_0::audience::destination as v0_1_0;
use super::http::Redirects;
use super::logging::LogSource;
use super::runtime::InstanceState;

/// The most values one `sha256-hex` call hashes: a batch is at most 10,000 users with a few
/// identifiers each. A plugin asking for more traps (a contract violation, not a slow host).
pub const MAX_HASH_VALUES: usize = 200_000;

impl InstanceState {
    /// Send one request through the gate, paced and measured by the engine's hooks (see
    /// [`super::outbound`]).
    ///
    /// While the request waits for the limiter and the partner, the call gives back its
    /// running permit (its plugin's other calls may run meanwhile) and queues for it again
    /// before the plugin's code resumes.
    async fn send_request(
        &mut self,
        req: http_client::Request,
    ) -> Result<http_client::Response, http_client::HttpError> {
        let checked = self.outbound.check(req)?;
        let outbound = self.outbound.clone();
        self.waiting(async move |_| outbound.send(checked, Redirects::Follow).await).await.map(Into::into)
    }
}

impl http_client::Host for InstanceState {
    async fn send(
        &mut self,
        req: http_client::Request,
    ) -> wasmtime::Result<Result<http_client::Response, http_client::HttpError>> {
        Ok(self.send_request(req).await)
    }
}

impl log::Host for InstanceState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.log.write(LogSource::Log, level, &message);
        Ok(())
    }
}

impl hashing::Host for InstanceState {
    async fn sha256_hex(
        &mut self,
        normalization: hashing::Normalization,
        values: Vec<String>,
    ) -> wasmtime::Result<Vec<String>> {
        if values.len() > MAX_HASH_VALUES {
            wasmtime::bail!("sha256-hex was asked for {} values; at most {MAX_HASH_VALUES} per call", values.len());
        }
        Ok(values.iter().map(|value| sha256_hex(normalization, value)).collect())
    }
}

impl pacing::Host for InstanceState {
    async fn report_budget(&mut self, reading: pacing::Budget) -> wasmtime::Result<()> {
        if let Some(hooks) = self.outbound.hooks() {
            let used = if reading.used_percent.is_finite() { reading.used_percent.clamp(0.0, 100.0) } else { 0.0 };
            hooks.report_budget(used, reading.regain_after_ms.map(Duration::from_millis));
        }
        Ok(())
    }
}

impl types::Host for InstanceState {}

impl v0_1_0::http_client::Host for InstanceState {
    async fn send(
        &mut self,
        req: v0_1_0::http_client::Request,
    ) -> wasmtime::Result<Result<v0_1_0::http_client::Response, v0_1_0::http_client::HttpError>> {
        Ok(self.send_request(req.into()).await.map(Into::into).map_err(Into::into))
    }
}

impl v0_1_0::log::Host for InstanceState {
    async fn log(&mut self, level: v0_1_0::log::Level, message: String) -> wasmtime::Result<()> {
        self.log.write(LogSource::Log, level.into(), &message);
        Ok(())
    }
}

impl v0_1_0::types::Host for InstanceState {}

/// `value` normalised as asked, then its lowercase hex SHA-256.
pub fn sha256_hex(normalization: hashing::Normalization, value: &str) -> String {
    use hashing::Normalization as N;
    let normalised: std::borrow::Cow<'_, str> = match normalization {
        N::None => value.into(),
        N::TrimLowercase => value.trim().to_lowercase().into(),
        N::DigitsOnly => value.chars().filter(char::is_ascii_digit).collect::<String>().into(),
        N::LettersLowercase => {
            value.chars().filter(|c| c.is_alphabetic()).flat_map(char::to_lowercase).collect::<String>().into()
        }
    };
    hex::encode(Sha256::digest(normalised.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::hashing::Normalization as N;
    use super::*;

    #[test]
    fn each_normalization_hashes_what_the_partners_document() {
        // Meta's documented examples (customer-file guide's hashing table).
        let mary = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79";
        assert_eq!(sha256_hex(N::TrimLowercase, "  Mary@Example.com "), mary);
        assert_eq!(sha256_hex(N::None, "mary@example.com"), mary);
        let phone = "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e";
        assert_eq!(sha256_hex(N::DigitsOnly, "+1 (555) 987-6543"), phone);
        assert_eq!(sha256_hex(N::LettersLowercase, "O'Brien-Smith"), sha256_hex(N::None, "obriensmith"));
        assert_eq!(sha256_hex(N::LettersLowercase, "Zoë"), sha256_hex(N::None, "zoë"));
    }
}
