//! [`LiveAccount`]: an opened account and the tasks that keep it usable.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use igdm::{AccountConfig, Client, Home, StateFile};
use igdm_auth::oauth::Clock;
use igdm_auth::session::{KeepAlive, KeepAliveConfig, Reauth, next_step};
use igdm_auth::{Credential, CredentialStore, Vault};
use igdm_spec::{Connector, Session};
use secrecy::SecretString;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::token::{Renewer, TokenKeeper};
use crate::upkeep::{ClientProbe, StateSessions};
use crate::{RuntimeError, SandboxClock, session_from};

/// How long rotated cookies wait before they are written to the vault, so a
/// burst of calls costs one vault write.
const WRITE_BACK_DELAY: Duration = Duration::from_secs(1);

/// What [`crate::Runtime::open`] gathered for an account.
pub(crate) struct Parts {
    pub home: Home,
    pub account: AccountConfig,
    pub connector: Arc<Connector>,
    pub vault: Arc<Vault>,
    pub credential: Credential,
    pub clock: Arc<dyn Clock>,
    pub follow: Option<Arc<SandboxClock>>,
    pub check_every: Duration,
    /// The store whose outbox is the send ledger (opened at the first send).
    pub store_url: String,
    /// Where exchanges are recorded, if anywhere.
    pub recorder: Option<Arc<igdm_spec::record::Recorder>>,
}

struct Live {
    client: Client,
    home: Home,
    vault: Arc<Vault>,
    holds_cookies: bool,
    latest: Arc<Mutex<Option<Session>>>,
    write_lock: tokio::sync::Mutex<()>,
    stop: Arc<watch::Sender<Option<String>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.get_mut() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
    }
}

/// An opened account: its client, and the tasks that keep its credential
/// usable (cookie write-back, token refresh, keep-alive). Cheap to clone;
/// clones share everything. The tasks end with [`LiveAccount::finish`] or
/// when the last clone is dropped.
#[derive(Clone)]
pub struct LiveAccount {
    inner: Arc<Live>,
}

impl std::fmt::Debug for LiveAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveAccount").field("account", &self.name()).finish_non_exhaustive()
    }
}

pub(crate) async fn open(p: Parts) -> Result<LiveAccount, RuntimeError> {
    let name = p.account.name.clone();
    let (stop, _) = watch::channel(None);
    let stop = Arc::new(stop);
    let keeper = match &p.credential {
        Credential::Token(_) => Some(Arc::new(TokenKeeper::new(
            &name,
            p.vault.clone(),
            p.home.clone(),
            p.clock.clone(),
            Reauth::for_credential(&p.credential),
            stop.clone(),
        ))),
        _ => None,
    };
    let mut credential = p.credential;
    if let Some(k) = &keeper
        && let Credential::Token(t) = credential
    {
        credential = Credential::Token(k.ready(t).await?);
    }
    let holds_cookies = matches!(credential, Credential::Cookies(_));
    let latest: Arc<Mutex<Option<Session>>> = Arc::new(Mutex::new(None));
    let changed = Arc::new(Notify::new());
    let (slot, bell) = (latest.clone(), changed.clone());
    let mut builder = Client::builder(p.account, p.connector, session_from(&credential))
        .ledger(Arc::new(igdm::StoreLedger::open_on_first_use(p.store_url)))
        .state_file(StateFile::new(&p.home, &name))
        .recorder(p.recorder)
        .on_session_change(Arc::new(move |s: &Session| {
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(s.clone());
            }
            bell.notify_one();
        }));
    if let Some(k) = &keeper {
        builder = builder.token_renewal(Arc::new(Renewer::new(k.clone())));
    }
    let client = builder.build()?;
    let live = LiveAccount {
        inner: Arc::new(Live {
            client: client.clone(),
            home: p.home,
            vault: p.vault,
            holds_cookies,
            latest,
            write_lock: tokio::sync::Mutex::new(()),
            stop,
            tasks: Mutex::new(Vec::new()),
        }),
    };
    if holds_cookies {
        let weak = Arc::downgrade(&live.inner);
        live.spawn(async move {
            loop {
                changed.notified().await;
                tokio::time::sleep(WRITE_BACK_DELAY).await;
                let Some(inner) = weak.upgrade() else { return };
                let account = LiveAccount { inner };
                if let Err(e) = account.write_back().await {
                    tracing::warn!(account = account.name(), error = %e, "could not store rotated cookies");
                }
            }
        });
    }
    if let Some(k) = keeper {
        live.spawn(crate::token::keep(k, client, p.follow, p.check_every));
    }
    Ok(live)
}

impl LiveAccount {
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        if let Ok(mut tasks) = self.inner.tasks.lock() {
            tasks.push(handle);
        }
    }

    /// The account's client (clones share its session and state).
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The account's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.client.account().name
    }

    /// The home the account was opened from.
    #[must_use]
    pub fn home(&self) -> &Home {
        &self.inner.home
    }

    /// Whether the account's credential is a cookie session.
    #[must_use]
    pub fn holds_cookies(&self) -> bool {
        self.inner.holds_cookies
    }

    /// The vault the credential came from.
    #[must_use]
    pub fn vault(&self) -> Arc<Vault> {
        self.inner.vault.clone()
    }

    /// Why the account stopped, as the exact next step for the user, once
    /// its credential can no longer be used (a token that expired or could
    /// not be refreshed, a keep-alive that met a logout or challenge).
    #[must_use]
    pub fn stopped(&self) -> Option<String> {
        self.inner.stop.borrow().clone()
    }

    /// Waits until the account stops; returns the next step.
    pub async fn wait_stopped(&self) -> String {
        let mut rx = self.inner.stop.subscribe();
        loop {
            if let Some(step) = rx.borrow_and_update().clone() {
                return step;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The keep-alive of the account, or `None` when it holds no cookie
    /// session or its connector declares no `session.keep_alive`. The
    /// interval is the connector's unless `interval` overrides it; a
    /// keep-alive is skipped when a real read happened within one interval.
    #[must_use]
    pub fn keep_alive(&self, interval: Option<Duration>) -> Option<KeepAlive> {
        let client = &self.inner.client;
        if !self.holds_cookies() || !client.has_keep_alive() {
            return None;
        }
        let declared = client.connector().session.keep_alive.as_ref().and_then(|k| k.interval);
        let every = interval.or(declared).unwrap_or(Duration::from_secs(4 * 3600));
        let credentials: Arc<dyn CredentialStore> = self.vault();
        Some(KeepAlive::new(
            credentials,
            Arc::new(StateSessions::new(self.inner.home.clone())),
            Arc::new(ClientProbe::new(client.clone(), self.inner.latest.clone())),
            client.account().name.clone(),
            KeepAliveConfig::every(every),
        ))
    }

    /// Keeps the web session alive for as long as the account is held (the
    /// connector's interval, jittered, skipped after a recent real read).
    /// When the session needs the user, the account stops with the next
    /// step ([`LiveAccount::stopped`]). False when the account has no
    /// keep-alive (see [`LiveAccount::keep_alive`]).
    pub fn schedule_keep_alive(&self) -> bool {
        let Some(ka) = self.keep_alive(None) else { return false };
        tracing::info!(account = ka.account(), "keeping the web session alive");
        let stop = self.inner.stop.clone();
        self.spawn(async move {
            let health = ka
                .run(false, |account, tick| match tick {
                    Ok(t) => tracing::debug!(account, tick = ?t, "keep-alive"),
                    Err(e) => tracing::warn!(account, error = %e, "keep-alive could not run"),
                })
                .await;
            if let Some(step) = next_step(ka.account(), &health, Reauth::Browser) {
                tracing::error!(account = ka.account(), "keep-alive stopped: {step}");
                stop.send_replace(Some(step));
            }
        });
        true
    }

    /// Writes cookies the session rotated since they were stored to the
    /// vault; true when something was written. Runs on its own shortly after
    /// a call rotated them, and at [`LiveAccount::finish`].
    ///
    /// # Errors
    /// Vault errors.
    pub async fn write_back(&self) -> Result<bool, RuntimeError> {
        if !self.holds_cookies() {
            return Ok(false);
        }
        let _one = self.inner.write_lock.lock().await;
        let Some(session) = self.inner.latest.lock().ok().and_then(|s| s.clone()) else {
            return Ok(false);
        };
        let Some(Credential::Cookies(mut cookies)) = self.inner.vault.get(self.name()).await?
        else {
            return Ok(false);
        };
        let mut any = false;
        for (name, value) in session.cookies() {
            any |= cookies.apply(name, Some(SecretString::from(value.to_owned())));
        }
        if let Some(claim) = session.extra("ig_www_claim")
            && cookies.device.www_claim != claim
        {
            claim.clone_into(&mut cookies.device.www_claim);
            any = true;
        }
        if any {
            self.inner.vault.put(self.name(), Credential::Cookies(cookies)).await?;
        }
        Ok(any)
    }

    /// Ends the account's tasks and writes rotated cookies back to the vault.
    ///
    /// # Errors
    /// Vault errors.
    pub async fn finish(&self) -> Result<(), RuntimeError> {
        if let Ok(mut tasks) = self.inner.tasks.lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
        self.write_back().await.map(|_| ())
    }
}
