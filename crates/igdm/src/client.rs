//! [`Client`]: one account, one connector, and the reliability layers every
//! call goes through — session-health gate, rate limits, write pacing,
//! retries with backoff, health updates and idempotent sends.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};
use url::Url;

use igdm_model::{ApiError, CallKind, ErrorClass, SessionHealth, Timestamp};
use igdm_spec::{ActionOutput, Connector, ExecError, Executor, HttpRequest, Session, Transport};

use crate::Error;
use crate::accounts::AccountConfig;
use crate::ledger::{MemoryLedger, SendLedger};
use crate::pacing::{PaceDecision, PacingPolicy, decide};
use crate::state::{AccountState, StateFile};

/// Called with the session after a call changed it (rotated cookies, a new
/// `www-claim`), so the owner can persist it.
pub type SessionSink = Arc<dyn Fn(&Session) + Send + Sync>;

/// A boxed future, as [`TokenRenewal`] returns.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Where a client gets a new access token when the provider refuses its
/// current one as expired (Graph error 190). The owner of the credential
/// (igdm-runtime) refreshes it, stores it and hands it back; the client then
/// retries the refused call once.
pub trait TokenRenewal: Send + Sync {
    /// A token to use instead of `refused`, or `None` when there is none
    /// (the refusal then stands).
    fn renew<'a>(&'a self, refused: &'a str) -> BoxFuture<'a, Option<String>>;
}

/// How failed calls are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff; doubled at each attempt, plus jitter.
    pub base_delay: Duration,
    /// Never wait longer than this for one retry; a longer Retry-After fails instead.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (1-based), honouring the provider's Retry-After.
    #[must_use]
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<u64>,
        jitter_sample: f64,
    ) -> Option<Duration> {
        if let Some(secs) = retry_after {
            let d = Duration::from_secs(secs);
            return (d <= self.max_delay).then_some(d);
        }
        let exp = self.base_delay.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let with_jitter = exp.mul_f64(1.0 + 0.5 * jitter_sample.clamp(0.0, 1.0));
        Some(with_jitter.min(self.max_delay))
    }
}

enum StateStore {
    File(StateFile),
    Memory(std::sync::Mutex<AccountState>),
}

impl StateStore {
    /// The current state, without writing anything.
    fn read(&self) -> Result<AccountState, Error> {
        match self {
            Self::File(file) => file.read(),
            Self::Memory(m) => {
                let guard =
                    m.lock().map_err(|_| Error::Config("account state lock poisoned".into()))?;
                let mut s = guard.clone();
                s.prune(Timestamp::now());
                Ok(s)
            }
        }
    }

    fn update_with<T>(
        &self,
        f: impl FnOnce(&mut AccountState) -> T,
    ) -> Result<(AccountState, T), Error> {
        match self {
            Self::File(file) => file.update_with(f),
            Self::Memory(m) => {
                let mut guard =
                    m.lock().map_err(|_| Error::Config("account state lock poisoned".into()))?;
                guard.prune(Timestamp::now());
                let out = f(&mut guard);
                Ok((guard.clone(), out))
            }
        }
    }
}

struct Bucket {
    name: String,
    spec: igdm_spec::RateLimit,
    limiters: Vec<DefaultDirectRateLimiter>,
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    account: AccountConfig,
    connector: Arc<Connector>,
    session: Session,
    transport: Option<Arc<dyn Transport>>,
    state: Option<StateFile>,
    retry: RetryPolicy,
    pacing: Option<PacingPolicy>,
    session_sink: Option<SessionSink>,
    ledger: Option<Arc<dyn SendLedger>>,
    renewal: Option<Arc<dyn TokenRenewal>>,
    recorder: Option<Arc<igdm_spec::record::Recorder>>,
}

impl ClientBuilder {
    /// Writes every exchange, redacted, into `recorder`'s directory, so that
    /// a user with a real account can contribute fixtures
    /// ([`igdm_spec::record`]; replay them with [`crate::replay`]).
    #[must_use]
    pub fn recorder(mut self, recorder: Option<Arc<igdm_spec::record::Recorder>>) -> Self {
        self.recorder = recorder;
        self
    }

    /// Records every send in this ledger (default: a [`MemoryLedger`], for
    /// this process only). Front ends pass the local store's outbox
    /// ([`crate::StoreLedger`]) so that every process shares one ledger.
    #[must_use]
    pub fn ledger(mut self, ledger: Arc<dyn SendLedger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// Uses this transport instead of a fresh [`igdm_spec::ReqwestTransport`].
    #[must_use]
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Persists health and the pacing ledger in this file
    /// (default: in memory, for this process only).
    #[must_use]
    pub fn state_file(mut self, file: StateFile) -> Self {
        self.state = Some(file);
        self
    }

    /// Replaces the retry policy.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Replaces the pacing policy (default: the connector's, with the account's overrides).
    #[must_use]
    pub fn pacing(mut self, pacing: PacingPolicy) -> Self {
        self.pacing = Some(pacing);
        self
    }

    /// Called whenever a call changes the session (rotated cookies).
    #[must_use]
    pub fn on_session_change(mut self, sink: SessionSink) -> Self {
        self.session_sink = Some(sink);
        self
    }

    /// Asks `renewal` for a new access token when the provider refuses the
    /// current one as expired, and retries the refused call once with it.
    #[must_use]
    pub fn token_renewal(mut self, renewal: Arc<dyn TokenRenewal>) -> Self {
        self.renewal = Some(renewal);
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// When the base URL is not a URL or no HTTP client can be built.
    pub fn build(self) -> Result<Client, Error> {
        let base_url = self
            .account
            .base_url
            .as_deref()
            .map(Url::parse)
            .transpose()
            .map_err(|e| Error::Config(format!("base URL of {:?}: {e}", self.account.name)))?;
        let transport = match self.transport {
            Some(t) => t,
            None => Arc::new(
                igdm_spec::ReqwestTransport::new()
                    .map_err(|e| Error::Config(format!("HTTP client: {e}")))?,
            ),
        };
        let executor = Executor::new(self.connector.clone(), transport.clone())
            .with_base_url(base_url.clone())
            .with_recorder(self.recorder);
        let pacing = self.pacing.unwrap_or_else(|| pacing_from(&self.connector, &self.account));
        let buckets = self
            .connector
            .rate_limits
            .iter()
            .map(|(name, spec)| Bucket {
                name: name.clone(),
                spec: spec.clone(),
                limiters: limiters_for(spec),
            })
            .collect();
        let in_flight = self
            .connector
            .pacing
            .as_ref()
            .and_then(|p| p.concurrency)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .map(|n| Arc::new(Semaphore::new(n)));
        Ok(Client {
            ledger: self.ledger.unwrap_or_else(|| Arc::new(MemoryLedger::default())),
            inner: Arc::new(Inner {
                account: self.account,
                connector: self.connector,
                executor,
                session: Mutex::new(self.session),
                in_flight,
                state: match self.state {
                    Some(f) => StateStore::File(f),
                    None => StateStore::Memory(std::sync::Mutex::new(AccountState::default())),
                },
                retry: self.retry,
                pacing,
                buckets,
                session_sink: self.session_sink,
                renewal: self.renewal,
                transport,
                base_url,
            }),
        })
    }
}

fn limiters_for(spec: &igdm_spec::RateLimit) -> Vec<DefaultDirectRateLimiter> {
    let mut out = Vec::new();
    if let Some(ps) = spec.per_second.filter(|p| *p > 0.0) {
        // The provider sees arrival times, not the times this process decided
        // to send: a request delayed in flight can land next to the one after
        // it. Small budgets are therefore spent one at a time with a 10 %
        // margin; large ones keep their burst.
        let period = Duration::from_secs_f64(1.1 / ps);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let burst = if ps > 10.0 { NonZeroU32::new(ps.floor() as u32) } else { NonZeroU32::new(1) };
        if let (Some(q), Some(b)) = (Quota::with_period(period), burst) {
            out.push(RateLimiter::direct(q.allow_burst(b)));
        }
    }
    for (n, per) in [
        (spec.per_minute, Duration::from_secs(60)),
        (spec.per_hour, Duration::from_secs(3600)),
        (spec.per_day, Duration::from_secs(86_400)),
    ] {
        if let Some(n) = n.and_then(NonZeroU32::new) {
            out.extend(
                Quota::with_period(per / n.get()).map(|q| RateLimiter::direct(q.allow_burst(n))),
            );
        }
    }
    out
}

fn pacing_from(connector: &Connector, account: &AccountConfig) -> PacingPolicy {
    let base = connector.pacing.clone().unwrap_or_default();
    let o = &account.pacing;
    PacingPolicy {
        min_interval: o
            .min_interval_secs
            .map(Duration::from_secs_f64)
            .or(base.write_min_interval)
            .unwrap_or(Duration::ZERO),
        jitter: if o.min_interval_secs.is_some() {
            Duration::ZERO
        } else {
            base.write_jitter.unwrap_or(Duration::ZERO)
        },
        hourly: o.hourly.or(base.writes_per_hour),
        daily: o.daily.or(base.writes_per_day),
    }
}

struct Inner {
    account: AccountConfig,
    connector: Arc<Connector>,
    executor: Executor,
    session: Mutex<Session>,
    /// The connector's `pacing.concurrency`: requests in flight per account.
    in_flight: Option<Arc<Semaphore>>,
    state: StateStore,
    retry: RetryPolicy,
    pacing: PacingPolicy,
    buckets: Vec<Bucket>,
    session_sink: Option<SessionSink>,
    renewal: Option<Arc<dyn TokenRenewal>>,
    transport: Arc<dyn Transport>,
    base_url: Option<Url>,
}

/// A client for one account. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    ledger: Arc<dyn SendLedger>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("account", &self.inner.account.name)
            .field("connector", &self.inner.connector.id)
            .finish_non_exhaustive()
    }
}

fn jitter() -> f64 {
    rand::random::<f64>()
}

impl Client {
    /// Starts building a client for `account` served by `connector`, with `session`'s credentials.
    #[must_use]
    pub fn builder(
        account: AccountConfig,
        connector: Arc<Connector>,
        session: Session,
    ) -> ClientBuilder {
        ClientBuilder {
            account,
            connector,
            session,
            transport: None,
            state: None,
            retry: RetryPolicy::default(),
            pacing: None,
            session_sink: None,
            ledger: None,
            renewal: None,
            recorder: None,
        }
    }

    /// This client with its sends recorded in `ledger` instead; the clone
    /// shares everything else (session, health, rate limits) with `self`.
    #[must_use]
    pub fn with_ledger(&self, ledger: Arc<dyn SendLedger>) -> Self {
        Self { inner: self.inner.clone(), ledger }
    }

    /// The send ledger.
    #[must_use]
    pub fn ledger(&self) -> &Arc<dyn SendLedger> {
        &self.ledger
    }

    /// The account.
    #[must_use]
    pub fn account(&self) -> &AccountConfig {
        &self.inner.account
    }

    /// The connector.
    #[must_use]
    pub fn connector(&self) -> &Arc<Connector> {
        &self.inner.connector
    }

    /// The pacing policy in force.
    #[must_use]
    pub fn pacing(&self) -> &PacingPolicy {
        &self.inner.pacing
    }

    /// The persisted account state (health, pacing ledger).
    ///
    /// # Errors
    /// When the state file cannot be read.
    pub fn state(&self) -> Result<AccountState, Error> {
        self.inner.state.read()
    }

    /// Whether the connector has `action`.
    #[must_use]
    pub fn supports(&self, action: &str) -> bool {
        self.inner.connector.action(action).is_some()
    }

    /// The refusal of `action`, which this account's connector lacks,
    /// naming the connector that has it when one does.
    #[must_use]
    pub fn unsupported(&self, action: &str) -> Error {
        let hint = match crate::ops::backend_hint(action, &self.inner.connector.id) {
            Some(other) => format!(": the {other} connector can"),
            None => String::new(),
        };
        Error::Unsupported {
            connector: self.inner.connector.id.clone(),
            action: action.to_owned(),
            hint,
        }
    }

    /// Builds the request `action` would send, without sending it.
    ///
    /// # Errors
    /// Unknown action or invalid parameters.
    pub async fn build_request(
        &self,
        action: &str,
        params: &Map<String, Value>,
    ) -> Result<HttpRequest, Error> {
        if !self.supports(action) {
            return Err(self.unsupported(action));
        }
        let session = self.inner.session.lock().await;
        self.inner.executor.build_request(action, params, &session).map_err(exec_error)
    }

    /// Runs `action` with `params` through every layer: the health gate, the
    /// rate-limit buckets, write pacing, retries, health updates.
    ///
    /// A write whose outcome is unknown is returned as an error carrying the
    /// transport's verdict; it is never retried here.
    ///
    /// # Errors
    /// Classified provider errors, refusals by igdm's own checks, transport failures.
    pub async fn call(
        &self,
        action: &str,
        params: &Map<String, Value>,
    ) -> Result<ActionOutput, CallError> {
        let spec = self
            .inner
            .connector
            .action(action)
            .ok_or_else(|| CallError::Other(self.unsupported(action)))?;
        let write = !spec.readonly();
        // Validate before anything waits: bad input fails at once.
        {
            let session = self.inner.session.lock().await;
            self.inner
                .executor
                .build_request(action, params, &session)
                .map_err(|e| CallError::Other(exec_error(e)))?;
        }
        self.gate(write)?;
        for bucket in &self.inner.buckets {
            if bucket.spec.applies(action, spec.readonly()) {
                for limiter in &bucket.limiters {
                    if limiter.check().is_err() {
                        debug!(bucket = %bucket.name, action, "rate limit bucket full; waiting");
                        limiter.until_ready().await;
                    }
                }
            }
        }
        if write {
            self.pace().await?;
        }
        let mut attempt = 0u32;
        let mut renewed = false;
        loop {
            attempt += 1;
            let used = self.token_in_use().await;
            let result = self
                .with_session(async |s: &mut Session| {
                    self.inner.executor.execute(action, params, s).await
                })
                .await;
            match result {
                Ok(out) => {
                    self.record_success(write)?;
                    return Ok(out);
                }
                Err(e) if e.outcome_unknown() => {
                    if write {
                        if let Err(err) =
                            self.inner.state.update_with(|s| s.writes.push(Timestamp::now()))
                        {
                            warn!(error = %err, "could not record the write in the ledger");
                        }
                        return Err(CallError::OutcomeUnknown(e.to_string()));
                    }
                    if let Some(d) = self.retry_delay(attempt, None) {
                        debug!(
                            action,
                            attempt,
                            delay_ms = d.as_millis() as u64,
                            "read failed in transport; retrying"
                        );
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    return Err(CallError::Api(exec_error(e).to_api_error()));
                }
                Err(ExecError::Api(api)) => {
                    // A token refused as expired changed nothing: renewed
                    // once, the call is tried once more.
                    if api.class == ErrorClass::AuthExpired
                        && !renewed
                        && self.renew_token(used.as_deref()).await
                    {
                        renewed = true;
                        info!(
                            action,
                            "the access token was refused as expired; retrying with a renewed one"
                        );
                        continue;
                    }
                    // Only refusals that certainly changed nothing are retried for writes.
                    let safe = !write || matches!(api.class, ErrorClass::RateLimited);
                    if api.retryable
                        && safe
                        && let Some(d) = self.retry_delay(attempt, api.retry_after)
                    {
                        info!(action, attempt, class = %api.class, delay_ms = d.as_millis() as u64, "retrying");
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    self.record_failure(&api)?;
                    return Err(CallError::Api(api));
                }
                Err(e) if e.nothing_sent() && matches!(e, ExecError::Transport(_)) => {
                    if let Some(d) = self.retry_delay(attempt, None) {
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    return Err(CallError::Api(exec_error(e).to_api_error()));
                }
                Err(e) => return Err(CallError::Other(exec_error(e))),
            }
        }
    }

    /// The access token a call is about to use, when a [`TokenRenewal`]
    /// may have to replace it.
    async fn token_in_use(&self) -> Option<String> {
        self.inner.renewal.as_ref()?;
        self.inner.session.lock().await.access_token().map(str::to_owned)
    }

    /// Asks the [`TokenRenewal`] for a token to replace `used`, the one the
    /// provider refused; true when the session now holds another token
    /// (possibly renewed meanwhile by a concurrent call).
    async fn renew_token(&self, used: Option<&str>) -> bool {
        let Some(renewal) = &self.inner.renewal else { return false };
        let Some(current) = self.inner.session.lock().await.access_token().map(str::to_owned)
        else {
            return false;
        };
        if used.is_some_and(|u| u != current) {
            return true;
        }
        match renewal.renew(&current).await {
            Some(fresh) if fresh != current => {
                self.set_access_token(fresh).await;
                true
            }
            _ => false,
        }
    }

    /// Replaces the access token of the live session (a refreshed token):
    /// calls that start afterwards use it, without a new client.
    pub async fn set_access_token(&self, token: impl Into<String>) {
        self.inner.session.lock().await.set_access_token(token);
    }

    /// Runs `action` once, through the health gate and the rate-limit
    /// buckets but without write pacing or retries: for the steps of a
    /// larger operation that retries them itself (the chunks of a resumable
    /// upload, which resume from the server's offset rather than resend).
    /// Success is recorded without entering the write ledger: the message
    /// the steps lead to is the paced write.
    ///
    /// # Errors
    /// Classified provider errors, refusals by igdm's own checks, transport failures.
    pub async fn call_once(
        &self,
        action: &str,
        params: &Map<String, Value>,
    ) -> Result<ActionOutput, CallError> {
        let spec = self
            .inner
            .connector
            .action(action)
            .ok_or_else(|| CallError::Other(self.unsupported(action)))?;
        self.gate(!spec.readonly())?;
        for bucket in &self.inner.buckets {
            if bucket.spec.applies(action, spec.readonly()) {
                for limiter in &bucket.limiters {
                    limiter.until_ready().await;
                }
            }
        }
        let result = self
            .with_session(async |s: &mut Session| {
                self.inner.executor.execute(action, params, s).await
            })
            .await;
        match result {
            Ok(out) => {
                self.record_success(false)?;
                Ok(out)
            }
            Err(e) if e.outcome_unknown() => Err(CallError::OutcomeUnknown(e.to_string())),
            Err(ExecError::Api(api)) => {
                self.record_failure(&api)?;
                Err(CallError::Api(api))
            }
            Err(e) => Err(CallError::Other(exec_error(e))),
        }
    }

    fn retry_delay(&self, attempt: u32, retry_after: Option<u64>) -> Option<Duration> {
        if attempt >= self.inner.retry.max_attempts {
            return None;
        }
        self.inner.retry.delay(attempt, retry_after, jitter())
    }

    fn gate(&self, write: bool) -> Result<(), CallError> {
        let now = Timestamp::now();
        let state = self.inner.state.read().map_err(CallError::Other)?;
        let allowed = if write {
            state.session.health.writes_allowed(now)
        } else {
            state.session.health.reads_allowed(now)
        };
        if allowed {
            return Ok(());
        }
        Err(CallError::Api(health_error(&state.session.health, &self.inner.account.name, now)))
    }

    async fn pace(&self) -> Result<(), CallError> {
        loop {
            let now = Timestamp::now();
            let state = self.inner.state.read().map_err(CallError::Other)?;
            match decide(&self.inner.pacing, &state, now, jitter()) {
                PaceDecision::Go => return Ok(()),
                PaceDecision::Wait(d) => {
                    debug!(wait_ms = d.as_millis() as u64, "pacing: waiting before the next write");
                    tokio::time::sleep(d).await;
                }
                PaceDecision::BudgetExhausted { budget, until } => {
                    let secs = (until.0 - now.0).num_seconds().max(1);
                    let mut e = ApiError::new(
                        ErrorClass::RateLimited,
                        format!("the {budget} write budget of this account is spent until {until}"),
                    )
                    .with_retry_after(u64::try_from(secs).ok());
                    e.remediation =
                        "Wait, or raise the budget for this account (accounts file `pacing`)."
                            .into();
                    return Err(CallError::Api(e));
                }
            }
        }
    }

    fn record_success(&self, write: bool) -> Result<(), CallError> {
        let kind = if write { CallKind::Write } else { CallKind::Read };
        self.inner
            .state
            .update_with(|s| note_success(s, kind, Timestamp::now()))
            .map(|_| ())
            .map_err(CallError::Other)
    }

    fn record_failure(&self, api: &ApiError) -> Result<(), CallError> {
        let now = Timestamp::now();
        if SessionHealth::from_error(api, now).is_none() {
            return Ok(());
        }
        let (state, _) = self
            .inner
            .state
            .update_with(|s| s.session.record_failure(api, now))
            .map_err(CallError::Other)?;
        let health = &state.session.health;
        if health.needs_user() {
            warn!(account = %self.inner.account.name, state = health.name(), "account needs attention: {}", api.remediation);
        }
        Ok(())
    }

    /// Marks the account healthy again (after a new login); the write ledger
    /// is kept.
    ///
    /// # Errors
    /// When the state cannot be written.
    pub fn reset_health(&self) -> Result<(), Error> {
        self.inner
            .state
            .update_with(|s| {
                s.session.health = SessionHealth::Healthy;
                s.session.last_error = None;
            })
            .map(|_| ())
    }

    /// Whether the connector declares a `session.keep_alive` probe.
    #[must_use]
    pub fn has_keep_alive(&self) -> bool {
        self.inner.connector.session.keep_alive.is_some()
    }

    /// Runs the connector's `session.keep_alive` probe with the live session
    /// (rotated cookies reach the session sink like those of any call).
    ///
    /// It passes the health gate for reads, and records its outcome in the
    /// account state: a success sets `last_success_at` and
    /// `last_keep_alive_at` but not `last_read_at` (a keep-alive is not a real
    /// read); a failure updates the health. It is never retried here: the
    /// keep-alive schedule tries again at its next turn.
    ///
    /// # Errors
    /// The gate's refusal for an account that needs the user, the classified
    /// refusal of the probe, a transport failure, or a connector without a
    /// keep-alive.
    pub async fn keep_alive(&self) -> Result<(), Error> {
        self.gate(false).map_err(Error::from)?;
        let result = self
            .with_session(async |s: &mut Session| self.inner.executor.keep_alive(s).await)
            .await;
        let now = Timestamp::now();
        match result {
            Ok(_) => {
                self.inner.state.update_with(|s| note_success(s, CallKind::KeepAlive, now))?;
                Ok(())
            }
            Err(ExecError::UnknownAction(a)) => Err(Error::Config(format!(
                "the {} connector declares no {a}",
                self.inner.connector.id
            ))),
            Err(e) => {
                let api = exec_error(e).to_api_error();
                self.inner.state.update_with(|s| s.session.last_keep_alive_at = Some(now))?;
                self.record_failure(&api)?;
                Err(Error::Api(api))
            }
        }
    }

    /// Runs the connector's `auth.validate` probe.
    ///
    /// # Errors
    /// When the credentials are refused.
    pub async fn validate(&self) -> Result<ActionOutput, Error> {
        self.with_session(async |s: &mut Session| self.inner.executor.validate(s).await)
            .await
            .map_err(exec_error)
    }

    /// Waits for a request slot when the connector limits requests in flight
    /// per account (`pacing.concurrency`); `None` when it does not.
    async fn request_slot(&self) -> Option<OwnedSemaphorePermit> {
        let sem = self.inner.in_flight.clone()?;
        sem.acquire_owned().await.ok()
    }

    /// Runs one request `f` on a copy of the session, in a request slot. The
    /// session lock is held only to copy and to [fold the changes
    /// back](Self::fold_session), never across the request, so calls on one
    /// client run concurrently.
    async fn with_session<T>(&self, f: impl AsyncFnOnce(&mut Session) -> T) -> T {
        let permit = self.request_slot().await;
        let base = self.inner.session.lock().await.clone();
        let mut working = base.clone();
        let out = f(&mut working).await;
        self.fold_session(&base, &working).await;
        drop(permit);
        out
    }

    /// Folds what a call changed in its copy (`working`, cloned from `base`)
    /// into the shared session, and hands the result to the session sink.
    async fn fold_session(&self, base: &Session, working: &Session) {
        if working.revision() == base.revision() {
            return;
        }
        let mut session = self.inner.session.lock().await;
        let before = session.revision();
        session.absorb_changes(base, working);
        if session.revision() != before
            && let Some(sink) = &self.inner.session_sink
        {
            sink(&session);
        }
    }

    /// A raw call for what no action covers: `path` is relative to the
    /// connector's API base URL (after any base-URL override). It goes through
    /// the account's auth headers (taken from the connector's validation
    /// probe), the health gate, the rate-limit buckets that apply to every
    /// read or write, write pacing and budgets for any method but `GET` and
    /// `HEAD`, and the connector's error classifier.
    ///
    /// # Errors
    /// Classified provider errors; a connector without a probe to take auth
    /// from; a spent write budget.
    pub async fn raw_request(
        &self,
        method: http::Method,
        path: &str,
        query: &[(String, String)],
        headers: &[(String, String)],
        body: &RawBody,
    ) -> Result<(u16, Value), Error> {
        let write = method != http::Method::GET && method != http::Method::HEAD;
        self.gate(write).map_err(Error::from)?;
        for bucket in &self.inner.buckets {
            if bucket.spec.applies("request", !write) {
                for limiter in &bucket.limiters {
                    limiter.until_ready().await;
                }
            }
        }
        let connector = &self.inner.connector;
        let mut base = connector.api.base_url.clone().ok_or_else(|| {
            Error::Config(format!("the {} connector declares no api.base_url", connector.id))
        })?;
        if let Some(over) = &self.inner.base_url {
            let prefix = over.path().trim_end_matches('/');
            let joined = format!("{prefix}{}", base.path());
            base = over.clone();
            base.set_path(&joined);
        }
        if path.contains("://") {
            return Err(Error::Api(ApiError::invalid(
                "path",
                "give a path relative to the API base URL",
            )));
        }
        let mut url = base
            .join(&format!(
                "{}/{}",
                base.path().trim_end_matches('/'),
                path.trim_start_matches('/')
            ))
            .map_err(|e| Error::Api(ApiError::invalid("path", e)))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        let mut req = {
            let session = self.inner.session.lock().await;
            self.inner.executor.build_validate_request(&session).map_err(exec_error)?
        };
        req.method = method;
        req.url = url;
        req.headers.remove(http::header::CONTENT_TYPE);
        req.headers.remove(http::header::CONTENT_LENGTH);
        req.body = bytes::Bytes::new();
        let (bytes, content_type) = match body {
            RawBody::Empty => (Vec::new(), None),
            RawBody::Json(v) => (
                serde_json::to_vec(v).map_err(|e| Error::Shape(e.to_string()))?,
                Some("application/json"),
            ),
            RawBody::Form(fields) => (
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .finish()
                    .into_bytes(),
                Some("application/x-www-form-urlencoded; charset=UTF-8"),
            ),
        };
        if let Some(ct) = content_type {
            req.body = bytes::Bytes::from(bytes);
            req.headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(ct));
        }
        for (k, v) in headers {
            let name = http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| Error::Api(ApiError::invalid("header", e)))?;
            let value = http::HeaderValue::from_str(v)
                .map_err(|e| Error::Api(ApiError::invalid("header", e)))?;
            req.headers.insert(name, value);
        }
        if write {
            self.pace().await?;
        }
        debug!(method = %req.method, path = req.url.path(), "raw request");
        let permit = self.request_slot().await;
        let kept = self.inner.executor.recorder().map(|r| (r.clone(), req.clone()));
        let resp = self
            .inner
            .transport
            .send(req)
            .await
            .map_err(|e| exec_error(ExecError::Transport(e)))?;
        drop(permit);
        if let Some((recorder, sent)) = kept {
            recorder.record(&connector.id, None, &Value::Null, &sent, &resp);
        }
        if let Some(err) = connector.classify(&resp) {
            self.record_failure(&err).map_err(Error::from)?;
            return Err(Error::Api(err));
        }
        self.record_success(write).map_err(Error::from)?;
        let body = serde_json::from_slice(&resp.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&resp.body).into_owned()));
        Ok((resp.status, body))
    }
}

/// The body of a [`Client::raw_request`].
#[derive(Debug, Clone, Default)]
pub enum RawBody {
    /// No body.
    #[default]
    Empty,
    /// A JSON document.
    Json(Value),
    /// Form fields, sent `application/x-www-form-urlencoded` (the private
    /// API's writes).
    Form(Vec<(String, String)>),
}

/// What [`Client::call`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// A classified refusal.
    #[error("{0}")]
    Api(ApiError),
    /// A write may or may not have been applied.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// Anything else.
    #[error(transparent)]
    Other(Error),
}

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Api(a) => Error::Api(a),
            CallError::OutcomeUnknown(m) => Error::WriteOutcomeUnknown(m),
            CallError::Other(e) => e,
        }
    }
}

/// Records a call that worked at `now` (and a write in the ledger).
fn note_success(s: &mut AccountState, kind: CallKind, now: Timestamp) {
    s.session.record_success(kind, now);
    if kind == CallKind::Write {
        s.writes.push(now);
    }
}

pub(crate) fn exec_error(e: ExecError) -> Error {
    match e {
        ExecError::UnknownAction(a) => Error::Config(format!("unknown action `{a}`")),
        other => Error::Api(other.to_api_error()),
    }
}

fn health_error(health: &SessionHealth, account: &str, now: Timestamp) -> ApiError {
    let login = format!("igdm login {account}");
    let (class, message, retry_after) = match health {
        SessionHealth::LoggedOut { reason } => (
            ErrorClass::AuthExpired,
            format!(
                "the session of {account} has ended{}; no call was made",
                reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
            ),
            None,
        ),
        SessionHealth::Challenge { url } => (
            ErrorClass::Challenge,
            format!(
                "Instagram asked {account} to verify it is them{}; all calls are stopped until you do",
                url.as_deref().map(|u| format!(" at {u}")).unwrap_or_default()
            ),
            None,
        ),
        SessionHealth::Suspended => {
            (ErrorClass::Checkpoint, format!("{account} is suspended"), None)
        }
        SessionHealth::ActionBlocked { until } => (
            ErrorClass::ActionBlocked,
            format!(
                "Instagram blocked sends from {account}; writes are paused until {until} (reads still work)"
            ),
            u64::try_from((until.0 - now.0).num_seconds().max(1)).ok(),
        ),
        SessionHealth::RateLimited { until } => (
            ErrorClass::RateLimited,
            format!("{account} is rate limited until {until}"),
            u64::try_from((until.0 - now.0).num_seconds().max(1)).ok(),
        ),
        _ => (ErrorClass::Transient, format!("{account} is {}", health.name()), None),
    };
    let mut e = ApiError::new(class, message).with_retry_after(retry_after);
    if let SessionHealth::Challenge { url } = health {
        e.url.clone_from(url);
    }
    if e.needs_user {
        e.remediation = match health {
            SessionHealth::Challenge { .. } => {
                format!("Complete the check in Instagram (browser or app), then run `{login}`.")
            }
            _ => format!("Run `{login}`."),
        };
    }
    e
}
