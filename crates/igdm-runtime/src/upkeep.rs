//! Session upkeep: the one session record of each account, and the
//! keep-alive of cookie sessions.
//!
//! - [`StateSessions`] is igdm-auth's [`SessionStore`] over the client's
//!   state file (`$IGDM_HOME/state/<account>.json`): the health a call
//!   records is the health the keep-alive decides on and `igdm accounts
//!   status` shows. Session states older versions kept in the vault are
//!   moved there once ([`migrate_legacy_states`]).
//! - [`ClientProbe`] runs the connector's `session.keep_alive` request
//!   through the account's [`igdm::Client`] (same transport, same live
//!   session, same health gate) and reports the cookies the session rotated
//!   so the keep-alive stores them in the vault.

use std::sync::{Arc, Mutex};

use igdm::{Home, StateFile};
use igdm_auth::session::{ProbeOutcome, SessionProbe};
use igdm_auth::{
    AuthError, BoxFuture, CookieCredential, SessionState, SessionStore, SessionUpdate, Vault,
};
use igdm_spec::Session;
use secrecy::{ExposeSecret, SecretString};

/// The session records of `$IGDM_HOME/state/`, as a [`SessionStore`].
#[derive(Debug, Clone)]
pub struct StateSessions {
    home: Home,
}

impl StateSessions {
    /// The records under `home`.
    #[must_use]
    pub fn new(home: Home) -> Self {
        Self { home }
    }

    fn file(&self, account: &str) -> Result<StateFile, AuthError> {
        igdm_auth::validate_account(account)?;
        Ok(StateFile::new(&self.home, account))
    }
}

fn state_error(account: &str, e: &igdm::Error) -> AuthError {
    AuthError::Io {
        action: "updating the session state of",
        path: account.into(),
        source: std::io::Error::other(e.to_string()),
    }
}

impl SessionStore for StateSessions {
    fn session<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<SessionState, AuthError>> {
        Box::pin(async move {
            let file = self.file(account)?;
            file.read().map(|s| s.session).map_err(|e| state_error(account, &e))
        })
    }

    fn update_session<'a>(
        &'a self,
        account: &'a str,
        update: SessionUpdate<'a>,
    ) -> BoxFuture<'a, Result<SessionState, AuthError>> {
        Box::pin(async move {
            let file = self.file(account)?;
            file.update(|s| update(&mut s.session))
                .map(|s| s.session)
                .map_err(|e| state_error(account, &e))
        })
    }
}

/// Moves session states an older igdm kept in the vault into the state
/// files. A recorded logout or challenge is kept unless the state file
/// already says the account needs the user; the latest times win.
///
/// # Errors
/// Vault or state file errors.
pub async fn migrate_legacy_states(vault: &Vault, home: &Home) -> Result<(), crate::RuntimeError> {
    for (account, old) in vault.take_legacy_states().await? {
        StateFile::new(home, &account).update(|s| {
            let new = &mut s.session;
            if old.blocked() && !new.blocked() {
                new.health = old.health.clone();
                new.last_error.clone_from(&old.last_error);
            }
            new.last_success_at = new.last_success_at.max(old.last_success_at);
            new.last_read_at = new.last_read_at.max(old.last_read_at);
            new.last_keep_alive_at = new.last_keep_alive_at.max(old.last_keep_alive_at);
        })?;
        tracing::info!(account, "session state moved from the vault to the state file");
    }
    Ok(())
}

/// The keep-alive request sent through the account's client.
pub struct ClientProbe {
    client: igdm::Client,
    latest: Arc<Mutex<Option<Session>>>,
}

impl ClientProbe {
    /// A probe over `client`, whose latest changed session lands in `latest`.
    #[must_use]
    pub fn new(client: igdm::Client, latest: Arc<Mutex<Option<Session>>>) -> Self {
        Self { client, latest }
    }

    /// Cookie values and the `www-claim` of the live session that differ
    /// from the stored credential.
    fn rotated(
        &self,
        stored: &CookieCredential,
    ) -> (Vec<(String, Option<SecretString>)>, Option<String>) {
        let Ok(guard) = self.latest.lock() else { return (Vec::new(), None) };
        let Some(session) = guard.as_ref() else { return (Vec::new(), None) };
        let rotated = session
            .cookies()
            .filter(|(name, value)| stored.get(name).is_none_or(|v| v.expose_secret() != *value))
            .map(|(name, value)| (name.to_owned(), Some(SecretString::from(value.to_owned()))))
            .collect();
        (rotated, session.extra("ig_www_claim").map(str::to_owned))
    }
}

impl SessionProbe for ClientProbe {
    fn keep_alive<'a>(&'a self, credential: &'a CookieCredential) -> BoxFuture<'a, ProbeOutcome> {
        Box::pin(async move {
            match self.client.keep_alive().await {
                Ok(()) => {
                    let (rotated, www_claim) = self.rotated(credential);
                    ProbeOutcome::Alive { rotated, www_claim }
                }
                Err(igdm::Error::Api(api)) => ProbeOutcome::Failed(api),
                Err(other) => ProbeOutcome::Failed(other.to_api_error()),
            }
        })
    }
}
