//! The typed, async API of a loaded plugin: one method per export of the contract.
//!
//! Each method runs in a fresh instance (see [`super::runtime`]). A partner's refusal comes
//! back as [`CallError::Destination`]; the plugin misbehaving as [`CallError::Plugin`].

use audience_model::SyncAction;

use super::bound::{Bound, credentials_problem};
use super::error::{CallError, PluginError};
use super::runtime::Plugin;
use super::types::*;

impl Plugin {
    /// Normalise and hash users for the partner (`prepare-users`). Returns exactly one
    /// preparation per user, in order; a plugin that returns another count breaks the contract.
    pub async fn prepare_users(
        &self,
        fields: &[IdentifierKind],
        users: Vec<RawUser>,
    ) -> Result<Vec<Preparation>, PluginError> {
        let expected = users.len();
        let fields = fields.to_vec();
        let prepared = self
            .inner
            .call(self.hooks.clone(), move |store, guest| {
                Box::pin(async move { guest.call_prepare_users(store, &fields, &users).await })
            })
            .await?;
        if prepared.len() != expected {
            return Err(PluginError::Contract(format!(
                "prepare-users returned {} results for {expected} users",
                prepared.len()
            )));
        }
        let mut prepared = prepared;
        prepared.bound();
        Ok(prepared)
    }

    /// Exchange an authorization code or a refresh token for credentials (`authorize`).
    pub async fn authorize(&self, config: &PluginConfig, grant: Grant) -> Result<Credentials, CallError> {
        let config = config.clone();
        let mut creds = self
            .inner
            .call(self.hooks.clone(), move |store, guest| {
                Box::pin(async move { guest.call_authorize(store, &config, &grant).await })
            })
            .await?;
        creds.bound();
        let creds = creds.map_err(CallError::Destination)?;
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
        let mut page = self
            .inner
            .call(self.hooks.clone(), move |store, guest| {
                Box::pin(async move { guest.call_list_accounts(store, &config, &creds, cursor.as_deref()).await })
            })
            .await?;
        page.bound();
        page.map_err(CallError::Destination)
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
        let mut outcome = self
            .inner
            .call(self.hooks.clone(), move |store, guest| {
                Box::pin(async move { guest.call_upsert_audience(store, &config, &creds, &account_id, &spec).await })
            })
            .await?;
        outcome.bound();
        outcome.map_err(CallError::Destination)
    }

    /// Add one batch of users (`add-users`).
    pub async fn add_users(
        &self,
        config: &PluginConfig,
        creds: &Credentials,
        account_id: &str,
        target: &AudienceTarget,
        users: Vec<PreparedUser>,
    ) -> Result<BatchOutcome, CallError> {
        self.write_users(SyncAction::Add, config, creds, account_id, target, users).await
    }

    /// Remove one batch of users (`remove-users`).
    pub async fn remove_users(
        &self,
        config: &PluginConfig,
        creds: &Credentials,
        account_id: &str,
        target: &AudienceTarget,
        users: Vec<PreparedUser>,
    ) -> Result<BatchOutcome, CallError> {
        self.write_users(SyncAction::Remove, config, creds, account_id, target, users).await
    }

    /// Add or remove one batch, as `action` says.
    pub async fn write_users(
        &self,
        action: SyncAction,
        config: &PluginConfig,
        creds: &Credentials,
        account_id: &str,
        target: &AudienceTarget,
        users: Vec<PreparedUser>,
    ) -> Result<BatchOutcome, CallError> {
        let (config, creds, account_id, target) =
            (config.clone(), creds.clone(), account_id.to_string(), target.clone());
        let sent = users.len();
        let mut outcome = self
            .inner
            .call(self.hooks.clone(), move |store, guest| {
                Box::pin(async move {
                    match action {
                        SyncAction::Add => {
                            guest.call_add_users(store, &config, &creds, &account_id, &target, &users).await
                        }
                        SyncAction::Remove => {
                            guest.call_remove_users(store, &config, &creds, &account_id, &target, &users).await
                        }
                    }
                })
            })
            .await?;
        outcome.bound();
        let outcome = outcome.map_err(CallError::Destination)?;
        if outcome.rejected.len() > sent {
            return Err(PluginError::Contract(format!(
                "{} users reported rejected in a batch of {sent}",
                outcome.rejected.len()
            ))
            .into());
        }
        Ok(outcome)
    }
}
