//! The credential store seam: [`CredentialStore`] is what the client library,
//! the CLI and the session upkeep use to read and write secrets, with an
//! in-memory implementation for tests ([`MemoryStore`]) and the encrypted
//! [`Vault`](crate::Vault) for real use.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use igdm_model::{SessionHealth, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::credential::{AccountSummary, Credential};
use crate::error::{AuthError, validate_account};

/// A boxed, sendable future, so the store trait stays dyn-compatible.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The non-secret state of an account, kept next to its credential: what
/// `igdm accounts status` shows and what the session upkeep decides on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountState {
    /// The session health derived from the last calls.
    pub health: SessionHealth,
    /// When a call with this credential last succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    /// When a real read (not a keep-alive) last happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read: Option<Timestamp>,
    /// When the last keep-alive ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_keep_alive: Option<Timestamp>,
    /// The last error message, when the account is not healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The exact next step for the user, when one is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
}

impl Default for AccountState {
    fn default() -> Self {
        Self {
            health: SessionHealth::Healthy,
            last_success: None,
            last_read: None,
            last_keep_alive: None,
            last_error: None,
            next_step: None,
        }
    }
}

impl AccountState {
    /// Whether calls must stop until the user acts (logged out, challenge, suspended).
    #[must_use]
    pub fn blocked(&self) -> bool {
        matches!(
            self.health,
            SessionHealth::LoggedOut { .. }
                | SessionHealth::Challenge { .. }
                | SessionHealth::Suspended
        )
    }
}

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
    /// The non-secret state of `account` (default state when none was recorded).
    fn state<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<AccountState, AuthError>>;
    /// Records the non-secret state of `account`.
    fn set_state<'a>(
        &'a self,
        account: &'a str,
        state: AccountState,
    ) -> BoxFuture<'a, Result<(), AuthError>>;
}

/// The accounts document: credentials and states by account name. This is
/// what the vault encrypts as one JSON document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Accounts {
    /// Format version.
    #[serde(default)]
    pub(crate) version: u32,
    /// Credentials by account.
    #[serde(default)]
    pub(crate) credentials: BTreeMap<String, Credential>,
    /// States by account.
    #[serde(default)]
    pub(crate) states: BTreeMap<String, AccountState>,
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

/// An in-memory store for tests and short-lived processes.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Accounts>,
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
            Ok(self.inner.write().await.remove(account))
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<AccountSummary>, AuthError>> {
        Box::pin(async move { Ok(self.inner.read().await.summaries()) })
    }

    fn state<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<AccountState, AuthError>> {
        Box::pin(async move {
            validate_account(account)?;
            Ok(self.inner.read().await.states.get(account).cloned().unwrap_or_default())
        })
    }

    fn set_state<'a>(
        &'a self,
        account: &'a str,
        state: AccountState,
    ) -> BoxFuture<'a, Result<(), AuthError>> {
        Box::pin(async move {
            validate_account(account)?;
            self.inner.write().await.states.insert(account.to_owned(), state);
            Ok(())
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
    assert_eq!(store.state("joe").await.unwrap(), AccountState::default());
    let st = AccountState {
        health: SessionHealth::LoggedOut { reason: Some("x".into()) },
        ..AccountState::default()
    };
    store.set_state("joe", st.clone()).await.unwrap();
    assert_eq!(store.state("joe").await.unwrap(), st);
    assert!(store.delete("joe").await.unwrap());
    assert!(!store.delete("joe").await.unwrap());
    assert!(store.list().await.unwrap().is_empty());
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_store_conforms() {
        super::conformance(&super::MemoryStore::new()).await;
    }
}
