//! The typed, async API of a loaded plugin: one method per export of the contract.
//!
//! Each method runs in a fresh instance (see [`super::runtime`]) of whichever contract version
//! the component speaks; a 0.1.0 component's arguments and answers are converted here through
//! `bindings::since_v0_1_0`, so callers only ever see the current types. A partner's refusal
//! comes back as [`CallError::Destination`]; the plugin misbehaving as [`CallError::Plugin`];
//! the host's own gate refusing one of the call's requests as [`CallError::HostRefused`]; an
//! export the component's version lacks as [`CallError::Unsupported`].

use audience_model::SyncAction;
use futures::future::BoxFuture;
use wasmtime::Store;

use super::bindings::since_v0_1_0 as v0_1_0;
use super::bound::{Bound, credentials_problem};
use super::error::{CallError, PluginError};
use super::redact::Secrets;
use super::runtime::{Guest, InstanceState, Plugin};
use super::types::*;

impl Plugin {
    /// Run one export that answers `result<T, destination-error>` handing the plugin
    /// `secrets` (besides the client secret), scrub and bound its texts, and report a failure
    /// after a refusal of the host's gate as that refusal.
    async fn call_partner<T: Bound + Send>(
        &self,
        secrets: Secrets,
        f: impl for<'a> FnOnce(
            &'a mut Store<InstanceState>,
            Guest<'a>,
        ) -> BoxFuture<'a, wasmtime::Result<Result<T, DestinationError>>>
        + Send,
    ) -> Result<T, CallError> {
        let secrets = self.inner.secrets_with(secrets);
        let (mut result, refused) = self.inner.call_checked(self.hooks.clone(), &secrets, f).await?;
        result.bound(&secrets);
        match (result, refused) {
            (Ok(value), _) => Ok(value),
            (Err(_), Some(why)) => Err(CallError::HostRefused(why)),
            (Err(err), None) => Err(CallError::Destination(err)),
        }
    }

    fn unsupported(&self, function: &'static str) -> CallError {
        CallError::Unsupported { function, version: self.inner.version() }
    }

    /// Normalise and hash users for the partner (`prepare-users`). Returns exactly one
    /// preparation per user, in order; a plugin that returns another count breaks the contract.
    pub async fn prepare_users(
        &self,
        fields: &[IdentifierKind],
        users: Vec<RawUser>,
    ) -> Result<Vec<Preparation>, PluginError> {
        let expected = users.len();
        let fields = fields.to_vec();
        let secrets = self.inner.secrets_with(Secrets::none());
        let mut prepared = self
            .inner
            .call(self.hooks.clone(), &secrets, move |store, guest| {
                Box::pin(async move {
                    match guest {
                        Guest::Latest(guest) => guest.call_prepare_users(store, &fields, &users).await,
                        Guest::V0_1_0(guest) => {
                            let old = v0_1_0::down_raw_users(&users);
                            let answers = guest.call_prepare_users(store, &v0_1_0::down_fields(&fields), &old).await?;
                            Ok(answers
                                .into_iter()
                                .zip(users.into_iter().map(|u| u.consent).chain(std::iter::repeat(None)))
                                .map(|(prep, consent)| v0_1_0::up_preparation(prep, consent))
                                .collect())
                        }
                    }
                })
            })
            .await?;
        if prepared.len() != expected {
            return Err(PluginError::Contract(format!(
                "prepare-users returned {} results for {expected} users",
                prepared.len()
            )));
        }
        prepared.bound(&secrets);
        Ok(prepared)
    }

    /// Exchange an authorization code, or renew credentials (`authorize`).
    pub async fn authorize(&self, config: &PluginConfig, grant: Grant) -> Result<Credentials, CallError> {
        let config = config.clone();
        let secrets = Secrets::of_config(&config).and_grant(&grant);
        let creds = self
            .call_partner(secrets, move |store, guest| {
                Box::pin(async move {
                    match guest {
                        Guest::Latest(guest) => guest.call_authorize(store, &config, &grant).await,
                        Guest::V0_1_0(guest) => match v0_1_0::down_grant(&grant) {
                            Some(old) => Ok(guest
                                .call_authorize(store, &v0_1_0::down_config(&config), &old)
                                .await?
                                .map(Into::into)
                                .map_err(Into::into)),
                            None => Ok(Err(DestinationError::Unauthorized(
                                "these credentials have no refresh token, and a contract 0.1.0 plugin can renew only \
                                 with one: authorize the connection again"
                                    .into(),
                            ))),
                        },
                    }
                })
            })
            .await?;
        if let Some(problem) = credentials_problem(&creds) {
            return Err(PluginError::Contract(format!("authorize returned unusable credentials: {problem}")).into());
        }
        Ok(creds)
    }

    /// One page of ad accounts (`list-accounts`).
    pub async fn list_accounts(
        &self,
        config: &PluginConfig,
        creds: &Credentials,
        cursor: Option<String>,
    ) -> Result<AccountPage, CallError> {
        let (config, creds) = (config.clone(), creds.clone());
        self.call_partner(Secrets::of_config(&config).and_credentials(&creds), move |store, guest| {
            Box::pin(async move {
                match guest {
                    Guest::Latest(guest) => guest.call_list_accounts(store, &config, &creds, cursor.as_deref()).await,
                    Guest::V0_1_0(guest) => Ok(guest
                        .call_list_accounts(
                            store,
                            &v0_1_0::down_config(&config),
                            &v0_1_0::down_credentials(&creds),
                            cursor.as_deref(),
                        )
                        .await?
                        .map(Into::into)
                        .map_err(Into::into)),
                }
            })
        })
        .await
    }

    /// One page of the account's audiences whose name contains `query` (`search-audiences`).
    pub async fn search_audiences(
        &self,
        config: &PluginConfig,
        creds: &Credentials,
        account_id: &str,
        query: &str,
        cursor: Option<String>,
    ) -> Result<AudiencePage, CallError> {
        if self.inner.version() == v0_1_0::VERSION {
            return Err(self.unsupported("search-audiences"));
        }
        let (config, creds, account_id, query) =
            (config.clone(), creds.clone(), account_id.to_string(), query.to_string());
        self.call_partner(Secrets::of_config(&config).and_credentials(&creds), move |store, guest| {
            Box::pin(async move {
                match guest {
                    Guest::Latest(guest) => {
                        guest
                            .call_search_audiences(store, &config, &creds, &account_id, &query, cursor.as_deref())
                            .await
                    }
                    Guest::V0_1_0(_) => Ok(Err(DestinationError::InvalidRequest("unsupported".into()))),
                }
            })
        })
        .await
    }

    /// The audience `audience_id` with the partner's current size and state (`read-audience`).
    pub async fn read_audience(
        &self,
        config: &PluginConfig,
        creds: &Credentials,
        account_id: &str,
        audience_id: &str,
    ) -> Result<Audience, CallError> {
        if self.inner.version() == v0_1_0::VERSION {
            return Err(self.unsupported("read-audience"));
        }
        let (config, creds, account_id, audience_id) =
            (config.clone(), creds.clone(), account_id.to_string(), audience_id.to_string());
        self.call_partner(Secrets::of_config(&config).and_credentials(&creds), move |store, guest| {
            Box::pin(async move {
                match guest {
                    Guest::Latest(guest) => {
                        guest.call_read_audience(store, &config, &creds, &account_id, &audience_id).await
                    }
                    Guest::V0_1_0(_) => Ok(Err(DestinationError::InvalidRequest("unsupported".into()))),
                }
            })
        })
        .await
    }

    /// Every problem with a sync's target before it is created (`check-target`).
    pub async fn check_target(
        &self,
        config: &PluginConfig,
        creds: &Credentials,
        account_id: &str,
        spec: &AudienceSpec,
    ) -> Result<Vec<TargetProblem>, CallError> {
        if self.inner.version() == v0_1_0::VERSION {
            return Err(self.unsupported("check-target"));
        }
        let (config, creds, account_id, spec) = (config.clone(), creds.clone(), account_id.to_string(), spec.clone());
        self.call_partner(Secrets::of_config(&config).and_credentials(&creds), move |store, guest| {
            Box::pin(async move {
                match guest {
                    Guest::Latest(guest) => guest.call_check_target(store, &config, &creds, &account_id, &spec).await,
                    Guest::V0_1_0(_) => Ok(Err(DestinationError::InvalidRequest("unsupported".into()))),
                }
            })
        })
        .await
    }

    /// Find or create the audience of `spec` (`upsert-audience`).
    pub async fn upsert_audience(
        &self,
        config: &PluginConfig,
        creds: &Credentials,
        account_id: &str,
        spec: &AudienceSpec,
    ) -> Result<UpsertOutcome, CallError> {
        let (config, creds, account_id, spec) = (config.clone(), creds.clone(), account_id.to_string(), spec.clone());
        self.call_partner(Secrets::of_config(&config).and_credentials(&creds), move |store, guest| {
            Box::pin(async move {
                match guest {
                    Guest::Latest(guest) => {
                        guest.call_upsert_audience(store, &config, &creds, &account_id, &spec).await
                    }
                    Guest::V0_1_0(guest) => Ok(guest
                        .call_upsert_audience(
                            store,
                            &v0_1_0::down_config(&config),
                            &v0_1_0::down_credentials(&creds),
                            &account_id,
                            &v0_1_0::down_spec(&spec),
                        )
                        .await?
                        .map(Into::into)
                        .map_err(Into::into)),
                }
            })
        })
        .await
    }

    /// Add one batch of users (`add-users`).
    pub async fn add_users(
        &self,
        config: &PluginConfig,
        creds: &Credentials,
        account_id: &str,
        target: &AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, CallError> {
        self.write_users(SyncAction::Add, config, creds, account_id, target, batch).await
    }

    /// Remove one batch of users (`remove-users`).
    pub async fn remove_users(
        &self,
        config: &PluginConfig,
        creds: &Credentials,
        account_id: &str,
        target: &AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, CallError> {
        self.write_users(SyncAction::Remove, config, creds, account_id, target, batch).await
    }

    /// Add or remove one batch, as `action` says.
    pub async fn write_users(
        &self,
        action: SyncAction,
        config: &PluginConfig,
        creds: &Credentials,
        account_id: &str,
        target: &AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, CallError> {
        let (config, creds, account_id, target) =
            (config.clone(), creds.clone(), account_id.to_string(), target.clone());
        let sent = batch.users.len();
        let outcome = self
            .call_partner(Secrets::of_config(&config).and_credentials(&creds), move |store, guest| {
                Box::pin(async move {
                    match guest {
                        Guest::Latest(guest) => match action {
                            SyncAction::Add => {
                                guest.call_add_users(store, &config, &creds, &account_id, &target, &batch).await
                            }
                            SyncAction::Remove => {
                                guest.call_remove_users(store, &config, &creds, &account_id, &target, &batch).await
                            }
                        },
                        Guest::V0_1_0(guest) => {
                            let (config, creds) = (v0_1_0::down_config(&config), v0_1_0::down_credentials(&creds));
                            let (target, users) =
                                (v0_1_0::down_target(&target), v0_1_0::down_prepared_users(batch.users));
                            let answer = match action {
                                SyncAction::Add => {
                                    guest.call_add_users(store, &config, &creds, &account_id, &target, &users).await?
                                }
                                SyncAction::Remove => {
                                    guest
                                        .call_remove_users(store, &config, &creds, &account_id, &target, &users)
                                        .await?
                                }
                            };
                            Ok(answer.map(Into::into).map_err(Into::into))
                        }
                    }
                })
            })
            .await?;
        if let WriteOutcome::Done(done) = &outcome {
            check_outcome(done, sent)?;
        }
        Ok(outcome)
    }

    /// How a submitted batch is doing (`check-submission`). `sent` is how many users the batch
    /// held, to check the answer against.
    pub async fn check_submission(
        &self,
        config: &PluginConfig,
        creds: &Credentials,
        account_id: &str,
        target: &AudienceTarget,
        submission_id: &str,
        sent: usize,
    ) -> Result<SubmissionStatus, CallError> {
        if self.inner.version() == v0_1_0::VERSION {
            return Err(self.unsupported("check-submission"));
        }
        let (config, creds, account_id, target, id) =
            (config.clone(), creds.clone(), account_id.to_string(), target.clone(), submission_id.to_string());
        let status = self
            .call_partner(Secrets::of_config(&config).and_credentials(&creds), move |store, guest| {
                Box::pin(async move {
                    match guest {
                        Guest::Latest(guest) => {
                            guest.call_check_submission(store, &config, &creds, &account_id, &target, &id).await
                        }
                        Guest::V0_1_0(_) => Ok(Err(DestinationError::InvalidRequest("unsupported".into()))),
                    }
                })
            })
            .await?;
        if let SubmissionStatus::Finished(done) = &status {
            check_outcome(done, sent)?;
        }
        Ok(status)
    }
}

/// A batch outcome cannot reject more users (named or not) than the batch held.
fn check_outcome(outcome: &BatchOutcome, sent: usize) -> Result<(), PluginError> {
    let unattributed: u64 = outcome.unattributed.iter().map(|u| u64::from(u.count)).sum();
    let rejected = outcome.rejected.len() as u64 + unattributed;
    if rejected > sent as u64 {
        return Err(PluginError::Contract(format!("{rejected} users reported rejected in a batch of {sent}")));
    }
    Ok(())
}
