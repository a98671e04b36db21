//! Session upkeep (seed 001, phase 4): keep-alive, health marking and the
//! account status data `igdm accounts status` shows.
//!
//! The health lives in one record per account, the [`SessionState`] of a
//! [`SessionStore`] (the CLI backs it with the client's state file), so a
//! health change made by any call is what the upkeep and the status see.
//!
//! Rules:
//! - a keep-alive runs every `session.keep_alive.interval`, jittered by ±10%,
//!   and is skipped when a real read happened within the last interval
//!   (a read already proves and refreshes the session);
//! - rotated cookies (`Set-Cookie`) and a new `x-ig-set-www-claim` are
//!   written back to the store;
//! - at the first challenge or logout signal the account is marked, every
//!   further keep-alive stops, and the user is told the exact next step
//!   (`igdm login NAME`). igdm never logs in again with a password by itself.

use std::sync::Arc;
use std::time::Duration;

use igdm_model::{ApiError, CallKind, ErrorClass, SessionHealth, SessionState, Timestamp};
use rand::Rng as _;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::credential::{CookieCredential, Credential, TokenKind};
use crate::error::AuthError;
use crate::store::{BoxFuture, CredentialStore, SessionStore};

/// Parses a duration written as `4h`, `30m`, `90s`, `2d`, `500ms` or plain seconds.
///
/// # Errors
/// [`AuthError::Spec`] naming the bad value.
pub fn parse_duration(raw: &str) -> Result<Duration, AuthError> {
    let s = raw.trim();
    let bad = || AuthError::Spec(format!("bad duration `{raw}`: use e.g. 4h, 30m, 90s, 2d"));
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => return Ok(Duration::from_millis(n)),
        "m" | "min" => n.checked_mul(60).ok_or_else(bad)?,
        "h" => n.checked_mul(3600).ok_or_else(bad)?,
        "d" => n.checked_mul(86_400).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}

/// The keep-alive settings from a connector's `session.keep_alive` block.
#[derive(Debug, Clone, PartialEq)]
pub struct KeepAliveConfig {
    /// The base interval.
    pub interval: Duration,
    /// Relative jitter applied to each wait (0.1 = ±10%).
    pub jitter: f64,
    /// Skip a keep-alive when a real read happened within this window.
    pub skip_if_read_within: Duration,
}

impl KeepAliveConfig {
    /// The settings for an interval, with ±10% jitter and a skip window of one interval.
    #[must_use]
    pub fn every(interval: Duration) -> Self {
        Self { interval, jitter: 0.1, skip_if_read_within: interval }
    }

    /// Reads `session.keep_alive.interval` from a connector's `session` block;
    /// `None` when the connector has no keep-alive.
    ///
    /// # Errors
    /// [`AuthError::Spec`] for a malformed interval.
    pub fn from_session_block(session: &Value) -> Result<Option<Self>, AuthError> {
        let Some(ka) = session.get("keep_alive") else { return Ok(None) };
        let interval =
            match ka.get("interval") {
                Some(Value::String(s)) => parse_duration(s)?,
                Some(Value::Number(n)) => Duration::from_secs(n.as_u64().ok_or_else(|| {
                    AuthError::Spec("keep_alive.interval must be positive".into())
                })?),
                None => return Err(AuthError::Spec("session.keep_alive needs an interval".into())),
                Some(_) => {
                    return Err(AuthError::Spec(
                        "session.keep_alive.interval must be a duration like 4h".into(),
                    ));
                }
            };
        Ok(Some(Self::every(interval)))
    }

    /// The next wait: the interval scaled by a random factor in `1 ± jitter`.
    #[must_use]
    pub fn next_wait(&self) -> Duration {
        let j = self.jitter.clamp(0.0, 0.9);
        let factor = if j > 0.0 { rand::rng().random_range(1.0 - j..=1.0 + j) } else { 1.0 };
        self.interval.mul_f64(factor)
    }
}

/// What a keep-alive request returned.
#[non_exhaustive]
pub enum ProbeOutcome {
    /// The session works. `rotated` lists cookie updates (`None` deletes),
    /// `www_claim` a new `x-ig-set-www-claim`.
    Alive {
        /// Cookie updates from `Set-Cookie`.
        rotated: Vec<(String, Option<SecretString>)>,
        /// A new `X-IG-WWW-Claim` value.
        www_claim: Option<String>,
    },
    /// The call failed, classified.
    Failed(ApiError),
}

/// Runs the connector's `session.keep_alive` request for a cookie session
/// (implemented over igdm-spec's executor by the client; by a plain HTTP
/// call in tests).
pub trait SessionProbe: Send + Sync {
    /// Runs one keep-alive request with `credential`.
    fn keep_alive<'a>(&'a self, credential: &'a CookieCredential) -> BoxFuture<'a, ProbeOutcome>;
}

/// What one keep-alive decision did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Tick {
    /// A real read happened recently; nothing was sent.
    SkippedRecentRead,
    /// The account needs the user; nothing was sent.
    SkippedBlocked(SessionHealth),
    /// The keep-alive succeeded; `rotated` cookies were stored.
    Alive {
        /// How many cookies changed.
        rotated: usize,
    },
    /// The keep-alive failed with a passing error; the session is kept.
    TransientFailure(String),
    /// The keep-alive revealed a dead or challenged session; the account is marked.
    Marked(SessionHealth),
}

/// How an account signs in again, which decides the next step shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reauth {
    /// A cookie session: log in through the browser.
    Browser,
    /// An Instagram Login token: authorize the app again.
    InstagramLogin,
    /// A Facebook Page token: exchange a Facebook user token for Page tokens again.
    FacebookPage,
}

impl Reauth {
    /// How the account holding `credential` signs in again.
    #[must_use]
    pub fn for_credential(credential: &Credential) -> Self {
        match credential {
            Credential::Token(t) if t.kind == TokenKind::Page => Self::FacebookPage,
            Credential::Token(_) | Credential::App(_) => Self::InstagramLogin,
            Credential::Cookies(_) => Self::Browser,
        }
    }

    /// The command that signs `account` in again.
    #[must_use]
    pub fn command(self, account: &str) -> String {
        match self {
            Self::Browser => format!("igdm login {account}"),
            Self::InstagramLogin => {
                format!("igdm oauth {account} --app-id ID --app-secret-env VAR --redirect-uri URL")
            }
            Self::FacebookPage => format!(
                "igdm oauth {account} --page --user-token-env VAR --app-id ID --app-secret-env VAR"
            ),
        }
    }
}

/// The exact next step for a health that needs the user.
#[must_use]
pub fn next_step(account: &str, health: &SessionHealth, reauth: Reauth) -> Option<String> {
    let relogin = reauth.command(account);
    match health {
        SessionHealth::LoggedOut { .. } => Some(format!("The session has ended: run `{relogin}` to sign in again.")),
        SessionHealth::Challenge { url } => Some(match url {
            Some(u) => format!("Instagram wants to verify it is you: open {u} (or the Instagram app), complete the check, then run `{relogin}`."),
            None => format!("Instagram wants to verify it is you: open Instagram in a browser or the app, complete the check, then run `{relogin}`."),
        }),
        SessionHealth::Suspended => Some("The account is suspended: resolve it in the Instagram app; igdm will not call Instagram for it.".to_owned()),
        _ => None,
    }
}

/// Records a successful call (a real read when `read`); see
/// [`SessionState::record_success`] for what it clears.
///
/// # Errors
/// Store errors.
pub async fn record_success(
    sessions: &dyn SessionStore,
    account: &str,
    read: bool,
) -> Result<SessionState, AuthError> {
    let kind = if read { CallKind::Read } else { CallKind::Write };
    let now = Timestamp::now();
    sessions.update_session(account, Box::new(move |s| s.record_success(kind, now))).await
}

/// Records a failed call: when the error says something about the session
/// (logout, challenge, block, throttle) the health is updated; when the user
/// must act, [`next_step`] says exactly what to run.
///
/// # Errors
/// Store errors.
pub async fn record_failure(
    sessions: &dyn SessionStore,
    account: &str,
    err: &ApiError,
) -> Result<SessionState, AuthError> {
    let now = Timestamp::now();
    let e = err.clone();
    let st = sessions
        .update_session(
            account,
            Box::new(move |s| {
                s.record_failure(&e, now);
            }),
        )
        .await?;
    if st.blocked() {
        tracing::warn!(account, class = %err.class, "session needs the user; calls stop until they act");
    }
    Ok(st)
}

/// Keeps one cookie session alive.
pub struct KeepAlive {
    credentials: Arc<dyn CredentialStore>,
    sessions: Arc<dyn SessionStore>,
    probe: Arc<dyn SessionProbe>,
    account: String,
    config: KeepAliveConfig,
}

impl std::fmt::Debug for KeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeepAlive")
            .field("account", &self.account)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KeepAlive {
    /// A keep-alive for `account`: its cookies come from (and rotations go
    /// to) `credentials`, its health from and to `sessions`.
    #[must_use]
    pub fn new(
        credentials: Arc<dyn CredentialStore>,
        sessions: Arc<dyn SessionStore>,
        probe: Arc<dyn SessionProbe>,
        account: impl Into<String>,
        config: KeepAliveConfig,
    ) -> Self {
        Self { credentials, sessions, probe, account: account.into(), config }
    }

    /// The account.
    #[must_use]
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Makes one keep-alive decision now.
    ///
    /// # Errors
    /// Store errors, or a missing / non-cookie credential.
    pub async fn tick(&self) -> Result<Tick, AuthError> {
        let st = self.sessions.session(&self.account).await?;
        if st.blocked() {
            return Ok(Tick::SkippedBlocked(st.health));
        }
        let now = Timestamp::now();
        let window = chrono::Duration::from_std(self.config.skip_if_read_within)
            .unwrap_or(chrono::Duration::MAX);
        if st.last_read_at.is_some_and(|r| now.0 - r.0 < window) {
            tracing::debug!(account = %self.account, "keep-alive skipped: a read happened recently");
            return Ok(Tick::SkippedRecentRead);
        }
        let mut cred = match self.credentials.get(&self.account).await? {
            Some(Credential::Cookies(c)) => c,
            Some(other) => {
                return Err(AuthError::WrongKind {
                    account: self.account.clone(),
                    found: other.kind(),
                    expected: "cookies",
                });
            }
            None => return Err(AuthError::NotFound(self.account.clone())),
        };
        let outcome = self.probe.keep_alive(&cred).await;
        match outcome {
            ProbeOutcome::Alive { rotated, www_claim } => {
                let mut changed = 0;
                for (name, value) in rotated {
                    if cred.apply(&name, value) {
                        changed += 1;
                    }
                }
                if let Some(claim) = www_claim.filter(|c| *c != cred.device.www_claim) {
                    cred.device.www_claim = claim;
                    changed += 1;
                }
                if changed > 0 {
                    self.credentials.put(&self.account, Credential::Cookies(cred)).await?;
                    tracing::debug!(account = %self.account, changed, "keep-alive rotated session values");
                }
                self.sessions
                    .update_session(
                        &self.account,
                        Box::new(move |s| s.record_success(CallKind::KeepAlive, now)),
                    )
                    .await?;
                Ok(Tick::Alive { rotated: changed })
            }
            ProbeOutcome::Failed(err) => {
                self.sessions
                    .update_session(
                        &self.account,
                        Box::new(move |s| s.last_keep_alive_at = Some(now)),
                    )
                    .await?;
                let st = record_failure(self.sessions.as_ref(), &self.account, &err).await?;
                if st.blocked() {
                    Ok(Tick::Marked(st.health))
                } else if matches!(err.class, ErrorClass::Transient | ErrorClass::RateLimited) {
                    Ok(Tick::TransientFailure(err.message))
                } else {
                    Ok(Tick::Marked(st.health))
                }
            }
        }
    }

    /// Runs keep-alives until the account needs the user, then returns its
    /// health (give it to [`next_step`]). The first decision is made at once
    /// when `immediate`, else after a jittered interval (a login or a call
    /// just proved the session). `report` sees every decision.
    pub async fn run(
        &self,
        immediate: bool,
        mut report: impl FnMut(&str, &Result<Tick, AuthError>) + Send,
    ) -> SessionHealth {
        let mut first = immediate;
        loop {
            if !first {
                tokio::time::sleep(self.config.next_wait()).await;
            }
            first = false;
            let tick = self.tick().await;
            report(&self.account, &tick);
            if let Ok(Tick::Marked(h) | Tick::SkippedBlocked(h)) = tick
                && h.needs_user()
            {
                tracing::warn!(account = %self.account, "keep-alive stopped: the account needs the user");
                return h;
            }
        }
    }

    /// Runs [`Self::run`] in a task that logs each decision; it ends when
    /// the account needs the user (or when aborted).
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            self.run(false, |account, tick| match tick {
                Ok(t) => tracing::debug!(account, tick = ?t, "keep-alive"),
                Err(e) => tracing::warn!(account, error = %e, "keep-alive could not run"),
            })
            .await;
        })
    }
}

/// Everything `igdm accounts status` shows for one account (no secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountStatus {
    /// The account name.
    pub account: String,
    /// `"cookies"`, `"token"` or `"app"`.
    pub kind: String,
    /// The label (username) when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The provider user id when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The health: recorded state, or `expiring` / `logged_out` derived from the token expiry.
    pub health: SessionHealth,
    /// When the token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<Timestamp>,
    /// When a call last succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<Timestamp>,
    /// When the last keep-alive ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_keep_alive_at: Option<Timestamp>,
    /// The last error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// What the user must do, when anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
    /// The base URL the credential belongs to, when not the real service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

impl AccountStatus {
    /// The status of `account` with `credential` and its recorded `state`
    /// at `now`: a token past its expiry shows as logged out, one within the
    /// refresh window as expiring; `next_step` says what to run when the
    /// user must act.
    #[must_use]
    pub fn derive(
        account: &str,
        credential: &Credential,
        state: &SessionState,
        now: Timestamp,
    ) -> Self {
        let summary = credential.summary(account);
        let mut health = state.health.clone();
        let (expires, base_url) = match credential {
            Credential::Token(t) => (t.expires_at, t.base_url.clone()),
            Credential::Cookies(c) => (None, c.base_url.clone()),
            Credential::App(_) => (None, None),
        };
        if let (Some(exp), false) = (expires, state.blocked()) {
            if now >= exp {
                health =
                    SessionHealth::LoggedOut { reason: Some("the access token expired".into()) };
            } else if matches!(health, SessionHealth::Healthy)
                && exp.0 - now.0 < crate::oauth::REFRESH_WHEN_REMAINING
                && matches!(credential, Credential::Token(t) if t.kind == TokenKind::InstagramUser || t.kind == TokenKind::ShortLived)
            {
                health = SessionHealth::Expiring { at: exp };
            }
        }
        Self {
            account: account.to_owned(),
            kind: summary.kind,
            label: summary.label,
            user_id: summary.user_id,
            next_step: next_step(account, &health, Reauth::for_credential(credential)),
            health,
            token_expires_at: expires,
            last_success_at: state.last_success_at,
            last_keep_alive_at: state.last_keep_alive_at,
            last_error: state.last_error.clone(),
            base_url,
        }
    }
}

/// The status of every account at `now`, sorted by name.
///
/// # Errors
/// Store errors.
pub async fn accounts_status(
    credentials: &dyn CredentialStore,
    sessions: &dyn SessionStore,
    now: Timestamp,
) -> Result<Vec<AccountStatus>, AuthError> {
    let mut out = Vec::new();
    for summary in credentials.list().await? {
        if let Some(s) = account_status(credentials, sessions, &summary.account, now).await? {
            out.push(s);
        }
    }
    Ok(out)
}

/// The status of one account at `now`; `None` when it has no credential.
///
/// # Errors
/// Store errors.
pub async fn account_status(
    credentials: &dyn CredentialStore,
    sessions: &dyn SessionStore,
    account: &str,
    now: Timestamp,
) -> Result<Option<AccountStatus>, AuthError> {
    let Some(cred) = credentials.get(account).await? else { return Ok(None) };
    let st = sessions.session(account).await?;
    Ok(Some(AccountStatus::derive(account, &cred, &st, now)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::credential::TokenCredential;
    use crate::store::MemoryStore;

    #[test]
    fn next_step_names_the_way_each_credential_signs_in_again() {
        let token = |kind| {
            Credential::Token(TokenCredential {
                access_token: "t".into(),
                expires_at: None,
                issued_at: Timestamp::now(),
                scopes: vec![],
                kind,
                user_id: None,
                page_id: None,
                app_id: None,
                base_url: None,
            })
        };
        let out = SessionHealth::LoggedOut { reason: None };
        let step = |c: &Credential| next_step("shop", &out, Reauth::for_credential(c)).unwrap();
        let page = step(&token(TokenKind::Page));
        assert!(page.contains("igdm oauth shop --page --user-token-env"), "{page}");
        let ig = step(&token(TokenKind::InstagramUser));
        assert!(ig.contains("igdm oauth shop --app-id") && !ig.contains("--page"), "{ig}");
        let cookies =
            Credential::Cookies(CookieCredential::new(BTreeMap::new(), "instagram.com", None));
        assert!(step(&cookies).contains("`igdm login shop`"));
        assert_eq!(next_step("shop", &SessionHealth::Healthy, Reauth::Browser), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("4h").unwrap(), Duration::from_secs(14_400));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        for bad in ["", "h", "0s", "4 hours", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let c = KeepAliveConfig::from_session_block(
            &serde_json::json!({"keep_alive": {"interval": "4h"}}),
        )
        .unwrap()
        .unwrap();
        for _ in 0..50 {
            let w = c.next_wait();
            assert!(w >= Duration::from_secs(12_960) && w <= Duration::from_secs(15_840), "{w:?}");
        }
        assert!(KeepAliveConfig::from_session_block(&serde_json::json!({})).unwrap().is_none());
    }

    struct Scripted(Mutex<Vec<ProbeOutcome>>, Mutex<usize>);

    impl SessionProbe for Scripted {
        fn keep_alive<'a>(&'a self, _c: &'a CookieCredential) -> BoxFuture<'a, ProbeOutcome> {
            Box::pin(async move {
                *self.1.lock().unwrap() += 1;
                self.0.lock().unwrap().remove(0)
            })
        }
    }

    #[tokio::test]
    async fn keep_alive_rotates_skips_and_stops_at_logout() {
        let store = Arc::new(MemoryStore::new());
        let mut m = BTreeMap::new();
        m.insert("sessionid".to_owned(), SecretString::from("1%3Aa"));
        m.insert("csrftoken".to_owned(), SecretString::from("old"));
        store
            .put("joe", Credential::Cookies(CookieCredential::new(m, "instagram.com", None)))
            .await
            .unwrap();
        let probe = Arc::new(Scripted(
            Mutex::new(vec![
                ProbeOutcome::Alive {
                    rotated: vec![("csrftoken".into(), Some("new".into()))],
                    www_claim: Some("hmac.X".into()),
                },
                ProbeOutcome::Failed(ApiError::new(ErrorClass::AuthExpired, "login_required")),
            ]),
            Mutex::new(0),
        ));
        let ka = KeepAlive::new(
            store.clone(),
            store.clone(),
            probe.clone(),
            "joe",
            KeepAliveConfig::every(Duration::from_secs(3600)),
        );
        assert_eq!(ka.tick().await.unwrap(), Tick::Alive { rotated: 2 });
        let Some(Credential::Cookies(c)) = store.get("joe").await.unwrap() else { panic!() };
        assert_eq!(c.get("csrftoken").unwrap().expose_secret(), "new");
        assert_eq!(c.device.www_claim, "hmac.X");
        // A real read just now: skipped, nothing sent.
        record_success(store.as_ref(), "joe", true).await.unwrap();
        assert_eq!(ka.tick().await.unwrap(), Tick::SkippedRecentRead);
        assert_eq!(*probe.1.lock().unwrap(), 1);
        store.update_session("joe", Box::new(|s| s.last_read_at = None)).await.unwrap();
        let Tick::Marked(SessionHealth::LoggedOut { .. }) = ka.tick().await.unwrap() else {
            panic!("marked")
        };
        let st = store.session("joe").await.unwrap();
        assert_eq!(
            next_step("joe", &st.health, Reauth::Browser).as_deref(),
            Some("The session has ended: run `igdm login joe` to sign in again.")
        );
        // Blocked: no further calls.
        assert!(matches!(ka.tick().await.unwrap(), Tick::SkippedBlocked(_)));
        assert_eq!(*probe.1.lock().unwrap(), 2);
        // Success does not silently clear a logout.
        record_success(store.as_ref(), "joe", false).await.unwrap();
        assert!(store.session("joe").await.unwrap().blocked());
    }

    #[tokio::test]
    async fn status_derives_token_expiry() {
        let store = MemoryStore::new();
        let now = Timestamp::now();
        let tok = |days: i64| {
            Credential::Token(TokenCredential {
                access_token: "t".into(),
                expires_at: Some(Timestamp(now.0 + chrono::Duration::days(days))),
                issued_at: now,
                scopes: vec![],
                kind: TokenKind::InstagramUser,
                user_id: Some("5".into()),
                page_id: None,
                app_id: None,
                base_url: None,
            })
        };
        store.put("a", tok(30)).await.unwrap();
        store.put("b", tok(3)).await.unwrap();
        store.put("c", tok(-1)).await.unwrap();
        let all = accounts_status(&store, &store, now).await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].health, SessionHealth::Healthy);
        assert!(matches!(all[1].health, SessionHealth::Expiring { .. }));
        assert!(matches!(all[2].health, SessionHealth::LoggedOut { .. }));
        assert_eq!(
            all[2].next_step.as_deref(),
            Some(
                "The session has ended: run \
                 `igdm oauth c --app-id ID --app-secret-env VAR --redirect-uri URL` to sign in again."
            )
        );
        assert!(account_status(&store, &store, "zz", now).await.unwrap().is_none());
    }
}
