//! The lifecycle of an Instagram Login token in a running account.
//!
//! Every token account gets the renewal and the vault watch below; only an
//! Instagram Login token is ever refreshed (a Page token that the API
//! refuses stops the account). Instagram's rules: a long-lived token lasts 60 days; it can be refreshed
//! once it is at least 24 hours old and while it has not expired, and the
//! refresh gives a new 60-day token. An open account therefore
//!
//! - refreshes its token when fewer than [`REFRESH_WHEN_REMAINING`] are left
//!   (or, when its expiry was never stated — a token given by hand, maybe
//!   weeks old — once at once and, if the API finds it too young, a day
//!   after it was added, so the expiry becomes known), and hands the new token to the live client
//!   ([`igdm::Client::set_access_token`]) without a restart;
//! - takes a token another process refreshed from the vault;
//! - answers the client's [`igdm::TokenRenewal`] when the API refuses the
//!   token as expired (error 190): the vault's newer token, else a refresh;
//!   the client retries the refused call once;
//! - stops, with the exact next step, when the token expired or cannot be
//!   refreshed: the state file records the account as logged out (its health
//!   gate then refuses every call) and [`crate::LiveAccount::stopped`] says
//!   what to run.

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as ChronoDuration;
use igdm::{Home, StateFile};
use igdm_auth::oauth::{Clock, MIN_AGE_FOR_REFRESH, OAuthError, TokenManager};
use igdm_auth::session::{Reauth, next_step};
use igdm_auth::{AuthError, Credential, CredentialStore, TokenCredential, TokenKind, Vault};
use igdm_model::{ApiError, ErrorClass, Timestamp};
use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::{RuntimeError, SandboxClock};

pub use igdm_auth::oauth::REFRESH_WHEN_REMAINING;

/// When `t` should be refreshed: `None` when it cannot be (only Instagram
/// Login tokens are refreshed; a Page token does not expire). An Instagram
/// Login token whose expiry is unknown is due once it is a day old.
#[must_use]
pub fn refresh_due(t: &TokenCredential) -> Option<Timestamp> {
    if t.kind != TokenKind::InstagramUser {
        return None;
    }
    let old_enough = t.issued_at.0 + MIN_AGE_FOR_REFRESH;
    match t.expires_at {
        Some(exp) => Some(Timestamp((exp.0 - REFRESH_WHEN_REMAINING).max(old_enough))),
        None => Some(Timestamp(old_enough)),
    }
}

/// Keeps one account's Instagram Login token (see the module docs).
pub(crate) struct TokenKeeper {
    account: String,
    vault: Arc<Vault>,
    manager: TokenManager,
    home: Home,
    clock: Arc<dyn Clock>,
    reauth: Reauth,
    stop: Arc<watch::Sender<Option<String>>>,
    /// One refresh at a time: calls refused together share one refresh.
    refreshing: tokio::sync::Mutex<()>,
    /// Whether a token of unknown expiry was tried before its recorded day.
    tried_early: std::sync::atomic::AtomicBool,
}

/// What a look at the token found.
enum Look {
    /// The token the client holds is current; look again at this time.
    Until(Timestamp),
    /// A new token the client must use.
    New(TokenCredential),
}

impl TokenKeeper {
    pub(crate) fn new(
        account: &str,
        vault: Arc<Vault>,
        home: Home,
        clock: Arc<dyn Clock>,
        reauth: Reauth,
        stop: Arc<watch::Sender<Option<String>>>,
    ) -> Self {
        let store: Arc<dyn CredentialStore> = vault.clone();
        let manager = TokenManager::new(store, account, None, clock.clone());
        Self {
            account: account.to_owned(),
            vault,
            manager,
            home,
            clock,
            reauth,
            stop,
            refreshing: tokio::sync::Mutex::new(()),
            tried_early: std::sync::atomic::AtomicBool::new(false),
        }
    }

    async fn stored(&self) -> Result<TokenCredential, RuntimeError> {
        match self.vault.get(&self.account).await? {
            Some(Credential::Token(t)) => Ok(t),
            _ => Err(self.stop("its token is no longer in the vault")),
        }
    }

    /// Marks the account logged out in its state file and announces the
    /// next step; the returned error carries it.
    fn stop(&self, why: &str) -> RuntimeError {
        let now = self.clock.now();
        let api = ApiError::new(ErrorClass::AuthExpired, format!("the access token {why}"));
        let health = StateFile::new(&self.home, &self.account)
            .update_with(|s| {
                s.session.record_failure(&api, now);
                s.session.health.clone()
            })
            .map(|(_, h)| h)
            .unwrap_or_else(|e| {
                tracing::warn!(account = %self.account, error = %e, "could not record the logout");
                igdm_model::SessionHealth::from_error(&api, now)
                    .unwrap_or(igdm_model::SessionHealth::Healthy)
            });
        let step = next_step(&self.account, &health, self.reauth).unwrap_or_else(|| {
            format!("Run `{}` to authorize again.", self.reauth.command(&self.account))
        });
        let next_step = format!("The access token {why}. {step}");
        tracing::error!(account = %self.account, "{next_step}");
        self.stop.send_replace(Some(next_step.clone()));
        RuntimeError::Stopped { account: self.account.clone(), next_step }
    }

    /// Refreshes `held` now (a refresh the rules allow); a token another
    /// process stored meanwhile is taken instead. `Ok(None)` when the token
    /// is too young to be refreshed yet. A refused refresh stops the account
    /// only when the API itself refused the token (`refused`, error 190 on a
    /// call): a token that still works is kept until it no longer does.
    async fn refresh(
        &self,
        held: &str,
        refused: bool,
    ) -> Result<Option<TokenCredential>, RuntimeError> {
        let _one = self.refreshing.lock().await;
        let stored = self.stored().await?;
        if stored.access_token.expose_secret() != held {
            return Ok(Some(stored));
        }
        let now = self.clock.now();
        if stored.expires_at.is_some_and(|e| now >= e) {
            return Err(self.stop("has expired"));
        }
        if stored.kind != TokenKind::InstagramUser {
            return Err(self.stop("was refused and this kind of token cannot be refreshed"));
        }
        if now.0 - stored.issued_at.0 < MIN_AGE_FOR_REFRESH {
            return Ok(None);
        }
        match self.manager.refresh_now().await {
            Ok(fresh) => {
                tracing::info!(account = %self.account, expires_at = ?fresh.expires_at, "token refreshed");
                Ok(Some(fresh))
            }
            Err(AuthError::OAuth(OAuthError::TokenExpired { message, .. })) if refused => {
                Err(self.stop(&format!("was refused and cannot be refreshed ({message})")))
            }
            Err(AuthError::OAuth(OAuthError::TooEarlyToRefresh { .. })) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A token whose expiry nobody stated was given by hand: its recorded
    /// issue time is when it was added, and it may be much older (close to
    /// its end). It is refreshed once at once, leaving the 24-hour rule to
    /// the API; `Ok(None)` when the API refuses (the token is young: the
    /// regular schedule takes it a day after it was added).
    async fn refresh_early(&self, held: &str) -> Result<Option<TokenCredential>, RuntimeError> {
        let _one = self.refreshing.lock().await;
        let stored = self.stored().await?;
        if stored.access_token.expose_secret() != held {
            return Ok(Some(stored));
        }
        match self.manager.refresh_ignoring_age().await {
            Ok(fresh) => {
                tracing::info!(account = %self.account, expires_at = ?fresh.expires_at, "token refreshed; its expiry is known now");
                Ok(Some(fresh))
            }
            Err(e) => {
                tracing::debug!(account = %self.account, error = %e, "not refreshed yet; trying a day after the token was added");
                Ok(None)
            }
        }
    }

    /// Looks at the token the client holds (`held`, stored as `current`).
    async fn look(&self, held: &TokenCredential) -> Result<Look, RuntimeError> {
        let now = self.clock.now();
        if held.kind == TokenKind::InstagramUser
            && held.expires_at.is_none()
            && !self.tried_early.swap(true, std::sync::atomic::Ordering::SeqCst)
            && let Some(fresh) = self.refresh_early(held.access_token.expose_secret()).await?
        {
            return Ok(Look::New(fresh));
        }
        let Some(due) = refresh_due(held) else {
            return Ok(Look::Until(Timestamp(now.0 + ChronoDuration::days(365))));
        };
        if now < due {
            return Ok(Look::Until(due));
        }
        match self.refresh(held.access_token.expose_secret(), false).await {
            Ok(Some(fresh)) => Ok(Look::New(fresh)),
            Ok(None) => Ok(Look::Until(Timestamp(held.issued_at.0 + MIN_AGE_FOR_REFRESH))),
            Err(e @ RuntimeError::Stopped { .. }) => Err(e),
            Err(e) => {
                // The token still works as far as anyone knows: keep it, and
                // try again in an hour (of the runtime's clock).
                tracing::warn!(account = %self.account, error = %e, "could not refresh the token; trying again in an hour");
                Ok(Look::Until(Timestamp(now.0 + ChronoDuration::hours(1))))
            }
        }
    }

    /// The token to open the account with: `stored`, refreshed first when
    /// due. A refresh that fails for a reason other than the token (the
    /// network) leaves the still valid token in use.
    pub(crate) async fn ready(
        &self,
        stored: TokenCredential,
    ) -> Result<TokenCredential, RuntimeError> {
        if stored.expires_at.is_some_and(|e| self.clock.now() >= e) {
            return Err(self.stop("has expired"));
        }
        match self.look(&stored).await {
            Ok(Look::New(fresh)) => Ok(fresh),
            Ok(Look::Until(_)) => Ok(stored),
            Err(e @ RuntimeError::Stopped { .. }) => Err(e),
            Err(e) => {
                tracing::warn!(account = %self.account, error = %e, "could not refresh the token now; trying again later");
                Ok(stored)
            }
        }
    }
}

/// The client's [`igdm::TokenRenewal`]: on error 190, the vault's newer
/// token or a refresh; `None` (after stopping the account when the token is
/// beyond saving) otherwise.
pub(crate) struct Renewer {
    keeper: Arc<TokenKeeper>,
}

impl Renewer {
    pub(crate) fn new(keeper: Arc<TokenKeeper>) -> Self {
        Self { keeper }
    }
}

impl igdm::TokenRenewal for Renewer {
    fn renew<'a>(&'a self, refused: &'a str) -> igdm::client::BoxFuture<'a, Option<String>> {
        Box::pin(async move {
            match self.keeper.refresh(refused, true).await {
                Ok(Some(fresh)) => Some(fresh.access_token.expose_secret().to_owned()),
                Ok(None) => {
                    tracing::warn!(account = %self.keeper.account, "the token was refused but is too young to refresh");
                    None
                }
                Err(e) => {
                    tracing::warn!(account = %self.keeper.account, error = %e, "could not renew the refused token");
                    None
                }
            }
        })
    }
}

/// The refresh schedule of an open account: sleeps until the token is due
/// (at most `check_every` at a time, reading a followed sandbox clock at
/// each wake), refreshes it and hands it to `client`; ends when the account
/// stops.
pub(crate) async fn keep(
    keeper: Arc<TokenKeeper>,
    client: igdm::Client,
    follow: Option<Arc<SandboxClock>>,
    check_every: Duration,
) {
    let Ok(mut held) = keeper.stored().await else { return };
    loop {
        if let Some(f) = &follow
            && let Err(e) = f.sync().await
        {
            tracing::debug!(error = %e, "could not read the sandbox clock");
        }
        // A token another process refreshed is taken as it is.
        match keeper.stored().await {
            Ok(t) if t.access_token.expose_secret() != held.access_token.expose_secret() => {
                client.set_access_token(t.access_token.expose_secret()).await;
                held = t;
            }
            Ok(_) => {}
            Err(RuntimeError::Stopped { .. }) => return,
            Err(e) => {
                tracing::warn!(account = %keeper.account, error = %e, "could not read the vault")
            }
        }
        let wait = match keeper.look(&held).await {
            Ok(Look::New(fresh)) => {
                client.set_access_token(fresh.access_token.expose_secret()).await;
                held = fresh;
                continue;
            }
            Ok(Look::Until(at)) => {
                (at.0 - keeper.clock.now().0).to_std().unwrap_or(Duration::ZERO).min(check_every)
            }
            Err(RuntimeError::Stopped { .. }) => return,
            Err(e) => {
                tracing::warn!(account = %keeper.account, error = %e, "token refresh failed; trying again later");
                check_every
            }
        };
        tokio::time::sleep(wait.max(Duration::from_millis(50))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn token(kind: TokenKind, issued: i64, expires: Option<i64>) -> TokenCredential {
        let at = |d: i64| Timestamp(chrono::DateTime::UNIX_EPOCH + ChronoDuration::days(d));
        TokenCredential {
            access_token: SecretString::from("t".to_owned()),
            expires_at: expires.map(at),
            issued_at: at(issued),
            scopes: Vec::new(),
            kind,
            user_id: None,
            page_id: None,
            app_id: None,
            base_url: None,
        }
    }

    fn day(d: i64) -> Option<Timestamp> {
        Some(Timestamp(chrono::DateTime::UNIX_EPOCH + ChronoDuration::days(d)))
    }

    #[test]
    fn a_60_day_token_is_due_a_week_before_it_expires() {
        assert_eq!(refresh_due(&token(TokenKind::InstagramUser, 100, Some(160))), day(153));
    }

    #[test]
    fn an_unknown_expiry_is_due_once_the_token_is_a_day_old() {
        assert_eq!(refresh_due(&token(TokenKind::InstagramUser, 100, None)), day(101));
    }

    #[test]
    fn a_short_token_waits_for_the_day_instagram_requires() {
        // Issued with 3 days left: the 7-day window is already open, but a
        // refresh is refused before the token is 24 h old.
        assert_eq!(refresh_due(&token(TokenKind::InstagramUser, 100, Some(103))), day(101));
    }

    #[test]
    fn page_tokens_are_never_refreshed() {
        assert_eq!(refresh_due(&token(TokenKind::Page, 100, None)), None);
    }
}
