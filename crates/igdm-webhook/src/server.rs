//! The axum receiver, the group-commit writer and the processing workers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use igdm_model::{Event, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Notify, Semaphore, broadcast, mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::metrics::Metrics;
use crate::parse::parse_delivery;
use crate::signature::{SIGNATURE_HEADER, verify};
use crate::sinks::{EventOutput, EventSink, ForwardConfig, run_event_writer, run_forwarder};
use crate::store::{
    ClaimedEvent, DeliveryContent, Expansion, Lease, NewDelivery, NewEvent, WebhookStore,
};

/// The webhook path Meta (and the sandbox) POSTs to.
pub const WEBHOOK_PATH: &str = "/webhook";

/// The secrets the receiver needs (`igdm serve` reads them from the
/// environment); never printed.
#[derive(Clone)]
pub struct Secrets {
    app_secret: SecretString,
    verify_token: SecretString,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { <redacted> }")
    }
}

impl Secrets {
    /// Secrets from their values.
    pub fn new(app_secret: impl Into<String>, verify_token: impl Into<String>) -> Self {
        Self {
            app_secret: SecretString::from(app_secret.into()),
            verify_token: SecretString::from(verify_token.into()),
        }
    }

    /// The app secret that signs deliveries.
    #[must_use]
    pub fn app_secret(&self) -> &SecretString {
        &self.app_secret
    }

    /// The token the verification handshake must present.
    #[must_use]
    pub fn verify_token(&self) -> &SecretString {
        &self.verify_token
    }
}

/// Receiver settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// App secret and verify token.
    pub secrets: Secrets,
    /// Largest accepted body in bytes (413 beyond). Default 4 MiB.
    pub body_limit: usize,
    /// Processing workers in this process. Default `None`: as many as the
    /// store suggests ([`WebhookStore::processing_workers`]).
    pub workers: Option<usize>,
    /// Events a worker claims at once. Default 128.
    pub claim_batch: usize,
    /// How long a claim is held before another worker may take the event. Default 60 s.
    pub lease: Duration,
    /// How often idle workers look for work committed by other processes. Default 250 ms.
    pub poll_interval: Duration,
    /// Most deliveries committed in one transaction. Default 512.
    pub max_group: usize,
    /// How long a worker lets new events gather before claiming them, once
    /// it has caught up. Every claim, apply and completion is a write that
    /// an acknowledgement may have to wait behind (SQLite has one writer),
    /// so fewer, larger batches keep acknowledgements fast; the cost is this
    /// much processing lag. Default 20 ms; zero claims at once.
    pub batch_window: Duration,
    /// Most deliveries held in memory for this process's workers. New
    /// deliveries (or, on SQLite, their events) are stored leased to this
    /// process and handed straight to its workers while fewer than this
    /// many wait; beyond it they are stored unleased and claimed from the
    /// log (deliveries are then parsed again). Default 65,536; zero always
    /// claims from the log.
    pub local_queue: usize,
    /// Processing attempts before an event fails for good. Default 5.
    pub max_attempts: u32,
    /// Capacity of the in-process broadcast channel. Default 4096.
    pub broadcast_capacity: usize,
    /// Where to write the JSON-lines event stream, if anywhere.
    pub events: Option<EventOutput>,
    /// The outgoing hook, if any.
    pub forward: Option<ForwardConfig>,
    /// Sinks every processed event is published to before it is marked
    /// processed (at least once: an event a sink refused is processed and
    /// published again once its lease runs out), such as NATS JetStream.
    pub sinks: Vec<Arc<dyn EventSink>>,
    /// Longest time shutdown spends draining pending events. Default 10 s.
    pub drain_timeout: Duration,
    /// How long processing may wait for a busy receiver. While any
    /// verified delivery waits for its acknowledgement, workers start no new
    /// batch: processing competes with acknowledgements for the CPU and, on
    /// PostgreSQL, for the WAL flush, and it can wait while an
    /// acknowledgement cannot. Once the work that has waited longest in this
    /// process has waited this long, workers process regardless, so a
    /// receiver kept busy for good still processes everything, about this
    /// much late. Default `None`: what the store suggests
    /// ([`WebhookStore::defer_while_busy`]: 5 s on PostgreSQL, zero on
    /// SQLite); zero never waits.
    pub defer_while_busy: Option<Duration>,
}

/// How often a deferring worker looks again whether the receiver is busy.
const BUSY_POLL: Duration = Duration::from_millis(2);

impl Config {
    /// Defaults around the given secrets.
    #[must_use]
    pub fn new(secrets: Secrets) -> Self {
        Self {
            secrets,
            body_limit: 4 * 1024 * 1024,
            workers: None,
            claim_batch: 128,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(250),
            max_group: 512,
            batch_window: Duration::from_millis(20),
            local_queue: 65_536,
            max_attempts: 5,
            broadcast_capacity: 4096,
            events: None,
            forward: None,
            sinks: Vec::new(),
            drain_timeout: Duration::from_secs(10),
            defer_while_busy: None,
        }
    }
}

/// Errors of [`Server::serve`].
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Binding or serving the socket failed.
    #[error("webhook server I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The writer's settings: the largest group, and the lease new events are
/// stored under for this process's workers.
struct WriterConfig {
    max_group: usize,
    lease: Duration,
}

struct WriteJob {
    delivery: NewDelivery,
    /// Answered once the delivery is durable, or with why it is not.
    ack: oneshot::Sender<Result<(), String>>,
}

struct Shared {
    config: Config,
    store: Arc<dyn WebhookStore>,
    metrics: Arc<Metrics>,
    writer: mpsc::Sender<WriteJob>,
    work: Arc<Notify>,
    load: Arc<Load>,
}

/// How many verified deliveries wait for their acknowledgement.
#[derive(Debug, Default)]
struct Load {
    unacked: AtomicUsize,
}

impl Load {
    /// Counts a delivery as waiting until the guard is dropped (answered,
    /// or the request was abandoned).
    fn waiting(&self) -> Waiting<'_> {
        self.unacked.fetch_add(1, Ordering::Relaxed);
        Waiting(self)
    }

    fn busy(&self) -> bool {
        self.unacked.load(Ordering::Relaxed) > 0
    }
}

/// A delivery counted in [`Load`] while this lives.
struct Waiting<'a>(&'a Load);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.unacked.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Work this process stored leased to itself, waiting for its workers:
/// deliveries appended unexpanded with the events the receiver parsed from
/// them, or events stored with their delivery.
///
/// The writer hands it over here, so processing neither parses a body again
/// nor claims work back from the log (on SQLite every claim is a write that
/// acknowledgements would queue behind). When the queue is full, work is
/// stored unleased and workers claim it from the log; work whose lease is
/// running out is left to the log too, where any worker may claim it once
/// the lease expires.
struct LocalQueue {
    owner: String,
    items: std::sync::Mutex<std::collections::VecDeque<(LocalWork, tokio::time::Instant)>>,
    capacity: usize,
    /// Set when work went to the log unleased, so that workers look there
    /// without waiting for the poll interval.
    spilled: std::sync::atomic::AtomicBool,
}

/// A delivery waiting in the [`LocalQueue`].
struct LocalDelivery {
    id: i64,
    received_at: Timestamp,
    content: DeliveryContent,
}

/// What the writer hands to this process's workers.
enum LocalWork {
    /// A delivery appended unexpanded: its events are stored first.
    Delivery(LocalDelivery),
    /// Events stored with their delivery, leased to this process.
    Events(Vec<ClaimedEvent>),
}

impl LocalWork {
    fn events(&self) -> usize {
        match self {
            Self::Delivery(d) => d.content.events().len(),
            Self::Events(e) => e.len(),
        }
    }
}

/// The events of a delivery the log stored (`ids`: the id of each new
/// one, `None` for a duplicate) as claimed work, counting unknown kinds.
fn claimed_events(
    events: Vec<NewEvent>,
    ids: Vec<Option<i64>>,
    received_at: Timestamp,
    metrics: &Metrics,
) -> Vec<ClaimedEvent> {
    let mut out = Vec::with_capacity(events.len());
    for (e, id) in events.into_iter().zip(ids) {
        let Some(id) = id else { continue };
        if !e.kind.is_known() {
            Metrics::inc(&metrics.unknown_kinds);
            tracing::info!(kind = %e.kind, "webhook event of an unknown kind stored raw");
        }
        out.push(ClaimedEvent {
            id,
            kind: e.kind.as_str().to_owned(),
            account_id: e.account_id,
            payload: e.payload,
            received_at,
            attempts: 0,
        });
    }
    out
}

impl LocalQueue {
    fn len(&self) -> usize {
        self.items.lock().map_or(usize::MAX, |q| q.len())
    }

    /// The lease expiry of the work that has waited longest.
    fn oldest_until(&self) -> Option<tokio::time::Instant> {
        self.items.lock().ok()?.front().map(|(_, until)| *until)
    }

    fn push(&self, work: Vec<(LocalWork, tokio::time::Instant)>) {
        if let Ok(mut q) = self.items.lock() {
            q.extend(work);
        }
    }

    /// Puts work back at the head of the queue, in its order.
    fn push_front(&self, work: Vec<(LocalWork, tokio::time::Instant)>) {
        if let Ok(mut q) = self.items.lock() {
            for w in work.into_iter().rev() {
                q.push_front(w);
            }
        }
    }

    /// The ids of every delivery and event still waiting, emptying the queue.
    fn drain_ids(&self) -> (Vec<i64>, Vec<i64>) {
        let (mut deliveries, mut events) = (Vec::new(), Vec::new());
        if let Ok(mut q) = self.items.lock() {
            for (w, _) in q.drain(..) {
                match w {
                    LocalWork::Delivery(d) => deliveries.push(d.id),
                    LocalWork::Events(e) => events.extend(e.iter().map(|e| e.id)),
                }
            }
        }
        (deliveries, events)
    }

    /// Work holding up to `limit` events (at least one item) whose lease
    /// has at least `margin` left.
    fn take(&self, limit: usize, margin: Duration) -> Vec<(LocalWork, tokio::time::Instant)> {
        let now = tokio::time::Instant::now();
        let Ok(mut q) = self.items.lock() else { return Vec::new() };
        let mut out = Vec::new();
        let mut events = 0;
        while events < limit {
            let fits =
                q.front().is_some_and(|(d, _)| out.is_empty() || events + d.events() <= limit);
            if !fits {
                break;
            }
            let Some((d, until)) = q.pop_front() else { break };
            if until.saturating_duration_since(now) >= margin {
                events += d.events().max(1);
                out.push((d, until));
            }
        }
        out
    }
}

/// A running webhook pipeline: the receiver's router, the writer that makes
/// deliveries durable before they are acknowledged, and the workers that
/// apply events to the store and publish them.
pub struct Server {
    shared: Arc<Shared>,
    events: broadcast::Sender<Event>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    sink_tasks: Vec<JoinHandle<()>>,
    local: Arc<LocalQueue>,
}

static WORKER_SEQ: AtomicU64 = AtomicU64::new(0);

impl Server {
    /// Starts the writer and the workers on the current Tokio runtime.
    /// `store` is usually a [`crate::StoreLog`] over an `igdm_store` store.
    ///
    /// # Panics
    /// When called outside a Tokio runtime.
    pub fn new(config: Config, store: impl WebhookStore) -> Self {
        Self::from_arc(config, Arc::new(store))
    }

    /// [`Server::new`] with a shared store.
    ///
    /// # Panics
    /// When called outside a Tokio runtime.
    pub fn from_arc(config: Config, store: Arc<dyn WebhookStore>) -> Self {
        let metrics = Arc::new(Metrics::default());
        let work = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(false);
        let (events, _) = broadcast::channel(config.broadcast_capacity.max(1));
        let (writer_tx, writer_rx) = mpsc::channel::<WriteJob>(config.max_group.max(1) * 4);

        let mut sinks = Vec::new();
        let mut sink_tasks = Vec::new();
        if let Some(out) = config.events.clone() {
            let (tx, rx) = mpsc::channel(8192);
            sinks.push(tx);
            sink_tasks.push(tokio::spawn(run_event_writer(out, rx)));
        }
        if let Some(fwd) = config.forward.clone() {
            let (tx, rx) = mpsc::channel(8192);
            sinks.push(tx);
            sink_tasks.push(tokio::spawn(run_forwarder(fwd, metrics.clone(), rx)));
        }

        let base = format!("{}-{}", std::process::id(), Timestamp::now().unix_micros());
        let local = Arc::new(LocalQueue {
            owner: format!("{base}-local"),
            items: std::sync::Mutex::default(),
            capacity: config.local_queue,
            spilled: std::sync::atomic::AtomicBool::new(false),
        });
        let mut tasks = vec![tokio::spawn(run_writer(
            store.clone(),
            metrics.clone(),
            writer_rx,
            WriterConfig { max_group: config.max_group.max(1), lease: config.lease },
            local.clone(),
            work.clone(),
            stop_rx.clone(),
        ))];
        let load = Arc::new(Load::default());
        let defer = config.defer_while_busy.unwrap_or_else(|| store.defer_while_busy());
        let workers = config.workers.unwrap_or_else(|| store.processing_workers()).max(1);
        for _ in 0..workers {
            let n = WORKER_SEQ.fetch_add(1, Ordering::Relaxed);
            let w = Worker {
                id: format!("{base}-{n}"),
                store: store.clone(),
                metrics: metrics.clone(),
                work: work.clone(),
                stop: stop_rx.clone(),
                events: events.clone(),
                sinks: sinks.clone(),
                config: config.clone(),
                local: local.clone(),
                load: load.clone(),
                defer,
            };
            tasks.push(tokio::spawn(w.run()));
        }
        let shared = Arc::new(Shared { config, store, metrics, writer: writer_tx, work, load });
        Self { shared, events, stop, tasks, sink_tasks, local }
    }

    /// The HTTP routes: `GET/POST /webhook`, `GET /healthz`, `GET /metrics`.
    pub fn router(&self) -> Router {
        Router::new()
            .route(WEBHOOK_PATH, get(verify_subscription).post(receive))
            .route("/healthz", get(|| async { "ok" }))
            .route("/metrics", get(metrics))
            .layer(DefaultBodyLimit::max(self.shared.config.body_limit))
            .with_state(self.shared.clone())
    }

    /// A receiver of every processed event, in processing order. A receiver
    /// that falls behind by more than the channel capacity skips events
    /// (`RecvError::Lagged`); the store and the event stream do not.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The counters behind `/metrics`.
    #[must_use]
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Binds `addr` and serves until Ctrl-C or SIGTERM, then drains.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn serve(self, addr: SocketAddr) -> Result<(), ServeError> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        self.serve_with_shutdown(listener, shutdown_signal()).await
    }

    /// Serves on `listener` until `signal` completes, then stops accepting,
    /// waits for in-flight requests, and drains the writer and the workers.
    ///
    /// # Errors
    /// When serving fails.
    pub async fn serve_with_shutdown(
        self,
        listener: tokio::net::TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        self.serve_with_shutdown_and(listener, Router::new(), signal).await
    }

    /// As [`Server::serve_with_shutdown`], with `extra` routes beside the
    /// webhook's (`igdm serve --public-url` serves offered files).
    ///
    /// # Errors
    /// As [`Server::serve_with_shutdown`].
    pub async fn serve_with_shutdown_and(
        self,
        listener: tokio::net::TcpListener,
        extra: Router,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let app = self.router().merge(extra);
        let res = axum::serve(listener, app).with_graceful_shutdown(signal).await;
        self.shutdown().await;
        res.map_err(ServeError::Io)
    }

    /// Stops the writer (after it commits what it holds) and the workers
    /// (after they process what is pending, up to the drain timeout), then
    /// flushes the event stream and the forward hook.
    pub async fn shutdown(self) {
        let Self { shared, events, stop, tasks, sink_tasks, local } = self;
        let _ = stop.send(true);
        shared.work.notify_waiters();
        for t in tasks {
            let _ = t.await;
        }
        // What the drain did not reach goes back to the log, for the next
        // process to claim at once instead of after the lease.
        let (left_deliveries, left_events) = local.drain_ids();
        if !left_deliveries.is_empty() {
            match shared.store.release_deliveries(&local.owner, &left_deliveries).await {
                Ok(()) => tracing::info!(
                    deliveries = left_deliveries.len(),
                    "unprocessed deliveries released"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, deliveries = left_deliveries.len(), "releasing unprocessed deliveries failed; their leases will run out")
                }
            }
        }
        if !left_events.is_empty() {
            match shared.store.release_events(&local.owner, &left_events).await {
                Ok(()) => tracing::info!(events = left_events.len(), "unprocessed events released"),
                Err(e) => {
                    tracing::warn!(error = %e, events = left_events.len(), "releasing unprocessed events failed; their leases will run out")
                }
            }
        }
        drop(events);
        drop(shared);
        for t in sink_tasks {
            let _ = t.await;
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: draining in-flight work");
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn verify_subscription(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mode = q.get("hub.mode").map(String::as_str);
    let token = q.get("hub.verify_token").map(String::as_bytes).unwrap_or_default();
    let expected = s.config.secrets.verify_token.expose_secret().as_bytes();
    match (mode, q.get("hub.challenge")) {
        (Some("subscribe"), Some(challenge)) if !expected.is_empty() && ct_eq(token, expected) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], challenge.clone())
                .into_response()
        }
        _ => (StatusCode::FORBIDDEN, "forbidden").into_response(),
    }
}

async fn receive(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    Metrics::inc(&s.metrics.deliveries);
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Metrics::inc(&s.metrics.rejected_too_large);
            }
            return rejection.into_response();
        }
    };
    let signed = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).is_some_and(|sig| {
        verify(s.config.secrets.app_secret.expose_secret().as_bytes(), &body, sig)
    });
    if !signed {
        Metrics::inc(&s.metrics.rejected_signature);
        tracing::warn!("webhook delivery with a missing or wrong signature rejected");
        return (StatusCode::UNAUTHORIZED, "invalid signature").into_response();
    }
    Metrics::inc(&s.metrics.verified);
    let received_at = Timestamp::now();
    let content = delivery_content(&body, received_at);
    let _waiting = s.load.waiting();
    let (ack, done) = oneshot::channel();
    let job = WriteJob { delivery: NewDelivery { raw_body: body, received_at, content }, ack };
    if s.writer.send(job).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match done.await {
        Ok(Ok(())) => (StatusCode::OK, "EVENT_RECEIVED").into_response(),
        Ok(Err(e)) => {
            Metrics::inc(&s.metrics.store_errors);
            tracing::error!(error = %e, "a delivery could not be recorded; Meta will retry");
            (StatusCode::INTERNAL_SERVER_ERROR, "not recorded").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response(),
    }
}

/// The `object` of Instagram's deliveries, for Instagram Login and for the
/// Page flavour alike (Meta's webhook examples,
/// <https://developers.facebook.com/documentation/instagram-platform/webhooks/examples>).
/// `page` deliveries are the Facebook Page's own Messenger events.
const INSTAGRAM_OBJECT: &str = "instagram";

/// What a signed body holds: its events with their dedup keys, or why it
/// cannot be parsed or applied (another platform's delivery).
fn delivery_content(body: &[u8], received_at: Timestamp) -> DeliveryContent {
    match parse_delivery(body, received_at) {
        Ok(parsed) if parsed.object.as_deref().is_some_and(|o| o != INSTAGRAM_OBJECT) => {
            let object = parsed.object.unwrap_or_default();
            tracing::warn!(%object, "a delivery for another platform; kept, not applied");
            DeliveryContent::DeadLetter {
                reason: format!(
                    "object {object:?} is not Instagram's (\"{INSTAGRAM_OBJECT}\"): kept, not applied"
                ),
            }
        }
        Ok(parsed) => {
            let mut events = Vec::with_capacity(parsed.events.len());
            for p in parsed.events {
                match serde_json::to_value(&p.event) {
                    Ok(payload) => events.push(NewEvent {
                        dedup_key: p.dedup_key,
                        kind: p.event.kind,
                        account_id: p.event.account_id,
                        payload,
                    }),
                    Err(e) => tracing::error!(error = %e, "a parsed event could not be serialized"),
                }
            }
            DeliveryContent::Events(events)
        }
        Err(e) => {
            tracing::warn!(error = %e, "signed delivery could not be parsed; dead-lettered");
            DeliveryContent::DeadLetter { reason: e.to_string() }
        }
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let counts = match s.store.counts().await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "store counts unavailable for /metrics");
            None
        }
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render(counts))
        .into_response()
}

/// Commits deliveries in groups: whatever queued while earlier commits ran
/// goes into the next transaction, and each request is answered only after
/// the transaction holding its delivery commits. Up to
/// [`WebhookStore::commit_concurrency`] commits run at once.
async fn run_writer(
    store: Arc<dyn WebhookStore>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<WriteJob>,
    WriterConfig { max_group, lease }: WriterConfig,
    local: Arc<LocalQueue>,
    work: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(store.commit_concurrency().max(1)));
    let mut inflight = JoinSet::new();
    loop {
        // Take a commit slot first, so that jobs pile up while all slots are
        // busy and the next transaction carries them all.
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let first = tokio::select! {
            biased;
            job = rx.recv() => job,
            () = stopped(&mut stop) => None,
        };
        let first = match first {
            Some(job) => Some(job),
            None => {
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { break };
        let mut jobs = vec![first];
        while jobs.len() < max_group {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (store, metrics, work, local) =
            (store.clone(), metrics.clone(), work.clone(), local.clone());
        inflight.spawn(async move {
            commit_group(&*store, &metrics, jobs, &local, lease).await;
            work.notify_waiters();
            drop(permit);
        });
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
}

async fn commit_group(
    store: &dyn WebhookStore,
    metrics: &Metrics,
    jobs: Vec<WriteJob>,
    local: &LocalQueue,
    lease: Duration,
) {
    let (deliveries, acks): (Vec<_>, Vec<_>) =
        jobs.into_iter().map(|j| (j.delivery, j.ack)).unzip();
    // Lease the new work to this process while its workers keep up.
    let leased = local.len() < local.capacity;
    let lease_at = |now: Timestamp| {
        let lease = chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::minutes(1));
        Lease { owner: &local.owner, until: Timestamp(now.0 + lease) }
    };
    let mut started = tokio::time::Instant::now();
    let mut result =
        store.append_deliveries(&deliveries, leased.then(|| lease_at(Timestamp::now()))).await;
    if let Err(e) = &result {
        // A transaction can fail for a passing reason (a deadlock with another
        // process, a dropped connection): try the group once more before
        // answering 500.
        tracing::warn!(error = %e, deliveries = deliveries.len(), "group commit failed; retrying once");
        tokio::time::sleep(Duration::from_millis(20)).await;
        started = tokio::time::Instant::now();
        result =
            store.append_deliveries(&deliveries, leased.then(|| lease_at(Timestamp::now()))).await;
    }
    match result {
        Ok(receipts) => {
            Metrics::inc(&metrics.commits);
            let mut handed = Vec::new();
            for (d, r) in deliveries.into_iter().zip(receipts) {
                if r.dead_lettered {
                    Metrics::inc(&metrics.dead_letters);
                    continue;
                }
                let work = match (r.expanded, d.content) {
                    (Some(x), DeliveryContent::Events(events)) => {
                        metrics.events_inserted.fetch_add(x.inserted as u64, Ordering::Relaxed);
                        metrics.dedup_hits.fetch_add(x.duplicates as u64, Ordering::Relaxed);
                        let claimed = claimed_events(events, x.event_ids, d.received_at, metrics);
                        (!claimed.is_empty()).then_some(LocalWork::Events(claimed))
                    }
                    (None, content) => Some(LocalWork::Delivery(LocalDelivery {
                        id: r.delivery_id,
                        received_at: d.received_at,
                        content,
                    })),
                    (Some(_), DeliveryContent::DeadLetter { .. }) => None,
                };
                if let Some(work) = work.filter(|_| leased) {
                    handed.push((work, started + lease));
                }
            }
            if leased {
                local.push(handed);
            } else {
                local.spilled.store(true, Ordering::Relaxed);
            }
            for ack in acks {
                let _ = ack.send(Ok(()));
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for ack in acks {
                let _ = ack.send(Err(msg.clone()));
            }
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

struct Worker {
    id: String,
    store: Arc<dyn WebhookStore>,
    metrics: Arc<Metrics>,
    work: Arc<Notify>,
    stop: watch::Receiver<bool>,
    events: broadcast::Sender<Event>,
    sinks: Vec<mpsc::Sender<Arc<Event>>>,
    config: Config,
    local: Arc<LocalQueue>,
    load: Arc<Load>,
    /// [`Config::defer_while_busy`], resolved.
    defer: Duration,
}

impl Worker {
    /// Waits while the receiver is busy, until the work that has waited
    /// longest in this process has waited [`Config::defer_while_busy`] (or
    /// that long from now, when none waits), or the server stops.
    async fn defer_while_busy(&mut self) {
        let defer = self.defer;
        if defer.is_zero() || !self.load.busy() {
            return;
        }
        let started = tokio::time::Instant::now();
        // Local work was leased for `config.lease` when it was stored.
        let queued = self.local.oldest_until().and_then(|u| u.checked_sub(self.config.lease));
        let deadline = queued.unwrap_or(started) + defer;
        while self.load.busy() && tokio::time::Instant::now() < deadline && !*self.stop.borrow() {
            tokio::select! {
                () = tokio::time::sleep(BUSY_POLL) => {},
                changed = self.stop.changed() => if changed.is_err() { break },
            }
        }
        let waited = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.metrics.deferred_micros.fetch_add(waited, Ordering::Relaxed);
    }

    /// Events to process: this process's own deliveries first, then the
    /// log's unexpanded deliveries, then the log's events.
    ///
    /// The log is asked at most once per poll interval while it keeps coming
    /// back short: what this process receives reaches it through the local
    /// queue, so the log holds only other processes' work, retries, expired
    /// leases and what spilled over the local queue.
    async fn next_batch(
        &self,
        last_log_claim: &mut Option<tokio::time::Instant>,
        stopping: bool,
    ) -> Result<Vec<ClaimedEvent>, crate::store::BoxError> {
        let limit = self.config.claim_batch.max(1);
        loop {
            let local = self.local.take(limit, self.config.lease / 2);
            if local.is_empty() {
                break;
            }
            let mut events = Vec::new();
            let (mut deliveries, mut untils) = (Vec::new(), Vec::new());
            for (work, until) in local {
                match work {
                    LocalWork::Events(e) => events.extend(e),
                    LocalWork::Delivery(d) => {
                        deliveries.push(d);
                        untils.push(until);
                    }
                }
            }
            if !deliveries.is_empty() {
                match self.expand(deliveries).await {
                    Ok(new) => events.extend(new),
                    Err((e, deliveries)) => {
                        // Still leased to this process: keep them for the next try.
                        let back = deliveries.into_iter().map(LocalWork::Delivery).zip(untils);
                        self.local.push_front(back.collect());
                        if events.is_empty() {
                            return Err(e);
                        }
                        Metrics::inc(&self.metrics.processing_errors);
                        tracing::error!(error = %e, "expanding deliveries failed");
                    }
                }
            }
            if !events.is_empty() {
                return Ok(events);
            }
        }
        let due = stopping
            || self.local.spilled.swap(false, Ordering::Relaxed)
            || last_log_claim.is_none_or(|t| t.elapsed() >= self.config.poll_interval);
        if !due {
            return Ok(Vec::new());
        }
        let raw = self.store.claim_deliveries(&self.id, limit, self.config.lease).await?;
        let more_raw = raw.len() >= limit;
        if !raw.is_empty() {
            let deliveries = raw
                .into_iter()
                .map(|d| LocalDelivery {
                    id: d.id,
                    received_at: d.received_at,
                    content: delivery_content(&d.raw_body, d.received_at),
                })
                .collect();
            let events = self.expand(deliveries).await.map_err(|(e, _)| e)?;
            if !events.is_empty() {
                *last_log_claim = None;
                return Ok(events);
            }
        }
        let claimed = self.store.claim_events(&self.id, limit, self.config.lease).await?;
        // A full batch means more may be waiting: ask again right away.
        *last_log_claim = (claimed.len() < limit && !more_raw).then(tokio::time::Instant::now);
        Ok(claimed)
    }

    /// Stores the events of `deliveries`, claimed by this worker, and
    /// answers the new ones (duplicates are dropped). On failure the
    /// deliveries come back with the error.
    async fn expand(
        &self,
        deliveries: Vec<LocalDelivery>,
    ) -> Result<Vec<ClaimedEvent>, (crate::store::BoxError, Vec<LocalDelivery>)> {
        let batch: Vec<Expansion<'_>> = deliveries
            .iter()
            .map(|d| Expansion { delivery_id: d.id, content: &d.content })
            .collect();
        let lease =
            chrono::TimeDelta::from_std(self.config.lease).unwrap_or(chrono::TimeDelta::minutes(1));
        let until = Timestamp(Timestamp::now().0 + lease);
        let receipts = match self
            .store
            .expand_deliveries(&batch, Some(Lease { owner: &self.id, until }))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                drop(batch);
                return Err((e, deliveries));
            }
        };
        drop(batch);
        let mut out = Vec::new();
        for (d, r) in deliveries.into_iter().zip(receipts) {
            // Another worker expanded it after this one's lease ran out.
            let Some(r) = r else { continue };
            self.metrics.events_inserted.fetch_add(r.inserted as u64, Ordering::Relaxed);
            self.metrics.dedup_hits.fetch_add(r.duplicates as u64, Ordering::Relaxed);
            if r.dead_lettered {
                Metrics::inc(&self.metrics.dead_letters);
            }
            let DeliveryContent::Events(events) = d.content else { continue };
            out.extend(claimed_events(events, r.event_ids, d.received_at, &self.metrics));
        }
        Ok(out)
    }

    async fn run(mut self) {
        let mut drain_deadline: Option<tokio::time::Instant> = None;
        let mut last_log_claim = None;
        loop {
            let stopping = *self.stop.borrow();
            if stopping && drain_deadline.is_none() {
                drain_deadline = Some(tokio::time::Instant::now() + self.config.drain_timeout);
            }
            if drain_deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                break;
            }
            if !stopping {
                self.defer_while_busy().await;
            }
            let notified = self.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let claimed = match self.next_batch(&mut last_log_claim, stopping).await {
                Ok(c) => c,
                Err(e) => {
                    Metrics::inc(&self.metrics.processing_errors);
                    tracing::error!(error = %e, "claiming events failed");
                    if stopping {
                        break;
                    }
                    tokio::time::sleep(self.config.poll_interval).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                if stopping {
                    break;
                }
                tokio::select! {
                    () = notified => {},
                    () = tokio::time::sleep(self.config.poll_interval) => {},
                    _ = self.stop.changed() => {},
                }
                if !*self.stop.borrow() && !self.config.batch_window.is_zero() {
                    tokio::select! {
                        () = tokio::time::sleep(self.config.batch_window) => {},
                        _ = self.stop.changed() => {},
                    }
                }
                continue;
            }
            let caught_up = claimed.len() < self.config.claim_batch;
            let mut decoded = Vec::with_capacity(claimed.len());
            for c in claimed {
                match <Event as serde::Deserialize>::deserialize(&c.payload) {
                    Ok(e) => decoded.push((c, e)),
                    Err(e) => {
                        Metrics::inc(&self.metrics.processing_errors);
                        let msg = format!("stored payload is not an event: {e}");
                        if let Err(e) = self.store.fail_event(c.id, &msg, None).await {
                            tracing::error!(error = %e, "recording a failure failed");
                        }
                    }
                }
            }
            let known: Vec<Event> =
                decoded.iter().filter(|(_, e)| e.kind.is_known()).map(|(_, e)| e.clone()).collect();
            let batch_ok = match self.store.apply_events(&known).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "applying a batch failed; applying its events one by one");
                    false
                }
            };
            let mut done = Vec::with_capacity(decoded.len());
            let mut out = Vec::with_capacity(decoded.len());
            for (c, event) in decoded {
                // Applying is idempotent, so after a failed batch each event
                // is applied again on its own to find the one that fails.
                let applied = if batch_ok || !event.kind.is_known() {
                    Ok(())
                } else {
                    self.store.apply_event(&event).await
                };
                match applied {
                    Ok(()) => {
                        let lag = Timestamp::now().0.signed_duration_since(c.received_at.0);
                        self.metrics.observe_lag(
                            u64::try_from(lag.num_microseconds().unwrap_or(0)).unwrap_or(0),
                        );
                        done.push(c.id);
                        out.push(event);
                    }
                    Err(e) => {
                        Metrics::inc(&self.metrics.processing_errors);
                        let retry = (c.attempts + 1 < self.config.max_attempts)
                            .then(|| Duration::from_secs(1u64 << c.attempts.min(8)));
                        tracing::warn!(error = %e, kind = %event.kind, attempts = c.attempts + 1, "applying an event failed");
                        if let Err(e) = self.store.fail_event(c.id, &e.to_string(), retry).await {
                            tracing::error!(error = %e, "recording a failure failed");
                        }
                    }
                }
            }
            if !self.config.sinks.is_empty() && !out.is_empty() {
                let shared: Vec<Arc<Event>> = out.iter().cloned().map(Arc::new).collect();
                let mut refused = false;
                for sink in &self.config.sinks {
                    if let Err(e) = sink.publish(&shared).await {
                        // Left leased: processed and published again once
                        // the lease runs out.
                        Metrics::inc(&self.metrics.processing_errors);
                        tracing::error!(error = %e, "a sink refused events");
                        refused = true;
                        break;
                    }
                }
                if refused {
                    continue;
                }
            }
            if let Err(e) = self.store.complete_events(&done).await {
                // The lease expires and another worker re-applies them;
                // applying is idempotent.
                Metrics::inc(&self.metrics.processing_errors);
                tracing::error!(error = %e, "marking events processed failed");
                continue;
            }
            self.metrics.processed.fetch_add(done.len() as u64, Ordering::Relaxed);
            for event in out {
                let event = Arc::new(event);
                for sink in &self.sinks {
                    let _ = sink.send(event.clone()).await;
                }
                let _ = self.events.send(Arc::unwrap_or_clone(event));
            }
            if caught_up && !stopping && !self.config.batch_window.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(self.config.batch_window) => {},
                    _ = self.stop.changed() => {},
                }
            }
        }
    }
}
