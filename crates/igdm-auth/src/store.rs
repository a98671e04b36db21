//! The store seams:
//!
//! - [`CredentialStore`] is what the client library, the CLI and the session
//!   upkeep use to read and write secrets: the encrypted
//!   [`Vault`](crate::Vault) for real use, [`MemoryStore`] for tests;
//! - [`SessionStore`] holds each account's non-secret [`SessionState`]
//!   (health, last successful call, last keep-alive). It is not in the
//!   vault: the CLI backs it with the client's per-account state file, so
//!   the health a call records is the health the upkeep and
//!   `igdm accounts status` see. [`MemoryStore`] implements it for tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use igdm_model::{SessionHealth, SessionState, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::credential::{AccountSummary, Credential};
use crate::error::{AuthError, validate_account};

/// A boxed, sendable future, so the store trait stays dyn-compatible.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where credentials live. Implementations must never log secret values.
///
/// Methods return boxed futures so `dyn CredentialStore` works
/// (`Arc<dyn CredentialStore>` is what the client library holds).
pub trait CredentialStore: Send + Sync {
    /// The credential of `account`, if any.
    fn get<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<Option<Credential>, AuthError>>;
    /// Stores (replaces) the credential of `account`.
    fn put<'a>(
        &'a self,
        account: &'a str,
        credential: Credential,
    ) -> BoxFuture<'a, Result<(), AuthError>>;
    /// Removes `account` (credential and state); returns whether it existed.
    fn delete<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<bool, AuthError>>;
    /// Every account, without secrets, sorted by name.
    fn list(&self) -> BoxFuture<'_, Result<Vec<AccountSummary>, AuthError>>;
}

/// A change to an account's session state, applied under the store's lock.
pub type SessionUpdate<'a> = Box<dyn FnOnce(&mut SessionState) + Send + 'a>;

/// Where the non-secret session state of each account lives (see the module docs).
pub trait SessionStore: Send + Sync {
    /// The session state of `account` (the default, healthy state when none was recorded).
    fn session<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<SessionState, AuthError>>;
    /// Applies `update` to the session state of `account` atomically and
    /// returns the result.
    fn update_session<'a>(
        &'a self,
        account: &'a str,
        update: SessionUpdate<'a>,
    ) -> BoxFuture<'a, Result<SessionState, AuthError>>;
}

/// The account state older vaults kept encrypted next to the credentials,
/// before the session state moved to the client's state file. Read only to
/// migrate it ([`Vault::take_legacy_states`](crate::Vault::take_legacy_states)).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct LegacyState {
    #[serde(default)]
    health: Option<SessionHealth>,
    #[serde(default)]
    last_success: Option<Timestamp>,
    #[serde(default)]
    last_read: Option<Timestamp>,
    #[serde(default)]
    last_keep_alive: Option<Timestamp>,
    #[serde(default)]
    last_error: Option<String>,
}

impl LegacyState {
    /// The same facts as a [`SessionState`].
    pub(crate) fn into_session(self) -> SessionState {
        SessionState {
            health: self.health.unwrap_or(SessionHealth::Healthy),
            last_success_at: self.last_success,
            last_read_at: self.last_read,
            last_keep_alive_at: self.last_keep_alive,
            last_error: self.last_error,
        }
    }
}

/// The accounts document: credentials by account name. This is what the
/// vault encrypts as one JSON document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Accounts {
    /// Format version.
    #[serde(default)]
    pub(crate) version: u32,
    /// Credentials by account.
    #[serde(default)]
    pub(crate) credentials: BTreeMap<String, Credential>,
    /// Session states written by older versions, kept until migrated.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) states: BTreeMap<String, LegacyState>,
}

impl Accounts {
    pub(crate) fn summaries(&self) -> Vec<AccountSummary> {
        self.credentials.iter().map(|(k, c)| c.summary(k)).collect()
    }

    pub(crate) fn remove(&mut self, account: &str) -> bool {
        let had = self.credentials.remove(account).is_some();
        self.states.remove(account).is_some() || had
    }
}

/// An in-memory credential and session store for tests and short-lived processes.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Accounts>,
    sessions: RwLock<BTreeMap<String, SessionState>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl CredentialStore for MemoryStore {
    fn get<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<Option<Credential>, AuthError>> {
        Box::pin(async move {
            validate_account(account)?;
            Ok(self.inner.read().await.credentials.get(account).cloned())
        })
    }

    fn put<'a>(
        &'a self,
        account: &'a str,
        credential: Credential,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        Box::pin(async move {
            validate_account(account)?;
            self.inner.write().await.credentials.insert(account.to_owned(), credential);
            Ok(())
        })
    }

    fn delete<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<bool, AuthError>> {
        Box::pin(async move {
            validate_account(account)?;
            let had_session = self.sessions.write().await.remove(account).is_some();
            Ok(self.inner.write().await.remove(account) || had_session)
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<AccountSummary>, AuthError>> {
        Box::pin(async move { Ok(self.inner.read().await.summaries()) })
    }
}

impl SessionStore for MemoryStore {
    fn session<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<SessionState, AuthError>> {
        Box::pin(async move {
            validate_account(account)?;
            Ok(self.sessions.read().await.get(account).cloned().unwrap_or_default())
        })
    }

    fn update_session<'a>(
        &'a self,
        account: &'a str,
        update: SessionUpdate<'a>,
    ) -> BoxFuture<'a, Result<SessionState, AuthError>> {
        Box::pin(async move {
            validate_account(account)?;
            let mut all = self.sessions.write().await;
            let state = all.entry(account.to_owned()).or_default();
            update(state);
            Ok(state.clone())
        })
    }
}

/// Shared conformance checks every [`CredentialStore`] passes.
#[cfg(test)]
pub(crate) async fn conformance(store: &dyn CredentialStore) {
    use secrecy::ExposeSecret;

    use crate::credential::CookieCredential;

    assert!(store.get("nobody").await.unwrap().is_none());
    assert!(matches!(store.get("bad name").await, Err(AuthError::InvalidAccount(_))));
    let mut cookies = BTreeMap::new();
    cookies.insert("sessionid".to_owned(), "77%3Aabc".into());
    store
        .put(
            "joe",
            Credential::Cookies(CookieCredential::new(
                cookies,
                "instagram.com",
                Some("joe".into()),
            )),
        )
        .await
        .unwrap();
    let Some(Credential::Cookies(c)) = store.get("joe").await.unwrap() else {
        panic!("stored cookies")
    };
    assert_eq!(c.get("sessionid").unwrap().expose_secret(), "77%3Aabc");
    let list = store.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].user_id.as_deref(), Some("77"));
    assert!(store.delete("joe").await.unwrap());
    assert!(!store.delete("joe").await.unwrap());
    assert!(store.list().await.unwrap().is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_conforms() {
        super::conformance(&super::MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn memory_sessions_update_atomically() {
        let store = MemoryStore::new();
        assert_eq!(store.session("joe").await.unwrap(), SessionState::default());
        let logged_out = SessionHealth::LoggedOut { reason: Some("x".into()) };
        let h = logged_out.clone();
        let st = store.update_session("joe", Box::new(move |s| s.health = h)).await.unwrap();
        assert_eq!(st.health, logged_out);
        assert_eq!(store.session("joe").await.unwrap(), st);
        assert!(store.delete("joe").await.unwrap(), "a session alone counts as existing");
        assert_eq!(store.session("joe").await.unwrap(), SessionState::default());
    }

    #[test]
    fn legacy_states_keep_their_facts() {
        let old: LegacyState = serde_json::from_str(
            r#"{"health":{"state":"challenge","url":"https://i/challenge/"},"last_success":"2026-01-02T03:04:05Z","next_step":"x"}"#,
        )
        .unwrap();
        let s = old.into_session();
        assert!(matches!(s.health, SessionHealth::Challenge { .. }));
        assert!(s.last_success_at.is_some());
    }
}
