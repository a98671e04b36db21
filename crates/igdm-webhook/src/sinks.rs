//! Where processed events go besides the store: a JSON-lines stream (a file
//! or stdout) and an outgoing HTTP hook signed like Meta's deliveries.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use igdm_model::Event;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::signature::{SIGNATURE_HEADER, sign};

/// Where `--events` writes one JSON event per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutput {
    /// Standard output.
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

impl EventOutput {
    /// `-` means stdout, anything else a file path.
    #[must_use]
    pub fn parse(raw: &str) -> Self {
        if raw == "-" { Self::Stdout } else { Self::File(PathBuf::from(raw)) }
    }
}

/// The outgoing hook: every processed event is POSTed to `url` as JSON,
/// signed with `X-Hub-Signature-256` under `secret`.
#[derive(Clone)]
pub struct ForwardConfig {
    /// Where to POST.
    pub url: String,
    /// The signing secret.
    pub secret: SecretString,
    /// Attempts per event before giving up.
    pub max_attempts: u32,
    /// First retry delay; doubles on each attempt, capped at 30 s.
    pub initial_backoff: Duration,
}

impl std::fmt::Debug for ForwardConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardConfig")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl ForwardConfig {
    /// A hook to `url` with default retry settings (8 attempts from 200 ms).
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            secret: SecretString::from(secret.into()),
            max_attempts: 8,
            initial_backoff: Duration::from_millis(200),
        }
    }
}

/// Writes events as JSON lines until the channel closes, flushing whenever
/// the channel runs dry so a reader sees each line promptly.
pub(crate) async fn run_event_writer(output: EventOutput, mut rx: mpsc::Receiver<Arc<Event>>) {
    let sink: Box<dyn AsyncWrite + Send + Unpin> = match &output {
        EventOutput::Stdout => Box::new(tokio::io::stdout()),
        EventOutput::File(path) => {
            match tokio::fs::OpenOptions::new().create(true).append(true).open(path).await {
                Ok(f) => Box::new(f),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot open the event stream file; events are not written");
                    while rx.recv().await.is_some() {}
                    return;
                }
            }
        }
    };
    let mut w = BufWriter::new(sink);
    while let Some(ev) = rx.recv().await {
        let mut batch = vec![ev];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        for ev in batch {
            match serde_json::to_vec(&*ev) {
                Ok(mut line) => {
                    line.push(b'\n');
                    if let Err(e) = w.write_all(&line).await {
                        tracing::error!(error = %e, "writing the event stream failed");
                    }
                }
                Err(e) => tracing::error!(error = %e, "an event could not be serialized"),
            }
        }
        if let Err(e) = w.flush().await {
            tracing::error!(error = %e, "flushing the event stream failed");
        }
    }
    let _ = w.flush().await;
}

/// POSTs each event to the hook, retrying with exponential backoff.
pub(crate) async fn run_forwarder(
    cfg: ForwardConfig,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Arc<Event>>,
) {
    let client = match forward_client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the forward client; forwarding is off");
            while rx.recv().await.is_some() {}
            return;
        }
    };
    while let Some(ev) = rx.recv().await {
        if !forward_one(&client, &cfg, &ev).await {
            Metrics::inc(&metrics.forward_failures);
        }
    }
}

fn forward_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build()
}

/// POSTs one event, retrying with exponential backoff; whether it was
/// delivered.
async fn forward_one(client: &reqwest::Client, cfg: &ForwardConfig, ev: &Event) -> bool {
    let body = match serde_json::to_vec(ev) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "an event could not be serialized for forwarding");
            return false;
        }
    };
    let sig = sign(cfg.secret.expose_secret().as_bytes(), &body);
    let mut delay = cfg.initial_backoff;
    for attempt in 1..=cfg.max_attempts.max(1) {
        let res = client
            .post(&cfg.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, &sig)
            .body(body.clone())
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => {
                tracing::warn!(status = %r.status(), attempt, "forward hook refused an event")
            }
            Err(e) => tracing::warn!(error = %e, attempt, "forward hook unreachable"),
        }
        if attempt < cfg.max_attempts {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }
    tracing::error!(kind = %ev.kind, "forward hook gave up on an event");
    false
}

/// A boxed future of an [`EventSink`].
pub type SinkFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// Why a sink could not take events.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// Writing or flushing the stream failed.
    #[error("event stream: {0}")]
    Io(#[from] std::io::Error),
    /// An event could not be serialized.
    #[error("an event could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The forward hook did not take an event after every attempt.
    #[error("the forward hook did not take an event after {0} attempts")]
    Forward(u32),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// NATS refused a connection, a stream or a message.
    #[error("NATS: {0}")]
    Nats(String),
    /// A sink setting is wrong.
    #[error("{0}")]
    Invalid(String),
}

/// A destination that takes events and returns only once they are
/// delivered: a producer that marks events done after publishing them
/// (`igdm watch`) emits each at least once, even when it is killed.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Delivers `events`, in order.
    fn publish<'a>(&'a self, events: &'a [Arc<Event>]) -> SinkFuture<'a>;
}

/// JSON lines on stdout or appended to a file, flushed before
/// [`EventSink::publish`] returns.
pub struct JsonLinesSink {
    out: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
}

impl std::fmt::Debug for JsonLinesSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesSink").finish_non_exhaustive()
    }
}

impl JsonLinesSink {
    /// Opens `output` (a file is created when missing and appended to).
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub async fn open(output: &EventOutput) -> std::io::Result<Self> {
        let out: Box<dyn AsyncWrite + Send + Unpin> = match output {
            EventOutput::Stdout => Box::new(tokio::io::stdout()),
            EventOutput::File(path) => {
                Box::new(tokio::fs::OpenOptions::new().create(true).append(true).open(path).await?)
            }
        };
        Ok(Self { out: tokio::sync::Mutex::new(out) })
    }
}

impl EventSink for JsonLinesSink {
    fn publish<'a>(&'a self, events: &'a [Arc<Event>]) -> SinkFuture<'a> {
        Box::pin(async move {
            let mut buf = Vec::new();
            for ev in events {
                serde_json::to_writer(&mut buf, &**ev)?;
                buf.push(b'\n');
            }
            let mut out = self.out.lock().await;
            out.write_all(&buf).await?;
            out.flush().await?;
            Ok(())
        })
    }
}

/// The signed HTTP hook as an [`EventSink`]: each event is POSTed (with
/// [`ForwardConfig`]'s retries) before the next.
#[derive(Debug)]
pub struct ForwardSink {
    cfg: ForwardConfig,
    client: reqwest::Client,
}

impl ForwardSink {
    /// A sink posting to `cfg.url`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(cfg: ForwardConfig) -> Result<Self, SinkError> {
        let client = forward_client().map_err(|e| SinkError::Client(e.to_string()))?;
        Ok(Self { cfg, client })
    }
}

impl EventSink for ForwardSink {
    fn publish<'a>(&'a self, events: &'a [Arc<Event>]) -> SinkFuture<'a> {
        Box::pin(async move {
            for ev in events {
                if !forward_one(&self.client, &self.cfg, ev).await {
                    return Err(SinkError::Forward(self.cfg.max_attempts));
                }
            }
            Ok(())
        })
    }
}

/// An event's id: the first 128 bits of the SHA-256 of its JSON, in hex.
/// The same event published again (a retried delivery, a redelivery after
/// a crash) has the same id, which is what the JetStream sink sends as
/// `Nats-Msg-Id` so that the stream keeps it once.
#[must_use]
pub fn event_id(event: &Event) -> String {
    use sha2::Digest as _;
    let json = serde_json::to_vec(event).unwrap_or_default();
    hex::encode(&sha2::Sha256::digest(&json)[..16])
}

/// A token of a NATS subject made from `raw` (`.`, wildcards and spaces
/// become `_`).
fn subject_token(raw: &str) -> String {
    let t: String = raw
        .chars()
        .map(|c| if c == '.' || c == '*' || c == '>' || c.is_whitespace() { '_' } else { c })
        .collect();
    if t.is_empty() { "_".to_owned() } else { t }
}

/// NATS JetStream: each event is published to `PREFIX.ACCOUNT.KIND` with
/// its [`event_id`] as `Nats-Msg-Id` and acknowledged by the stream before
/// [`EventSink::publish`] returns. The stream (named after the prefix,
/// subjects `PREFIX.>`) is created when missing; within its duplicate
/// window (2 minutes by default) a message published again is kept once.
#[derive(Debug, Clone)]
pub struct NatsSink {
    js: async_nats::jetstream::Context,
    prefix: String,
}

impl NatsSink {
    /// The stream name for a subject prefix (`igdm.events` → `IGDM_EVENTS`).
    #[must_use]
    pub fn stream_name(prefix: &str) -> String {
        prefix
            .chars()
            .map(
                |c| {
                    if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_uppercase() } else { '_' }
                },
            )
            .collect()
    }

    /// Connects to `url` and makes sure the stream for `prefix` exists.
    ///
    /// # Errors
    /// A prefix that is not a plain subject (empty tokens, wildcards), or a
    /// server that refuses the connection or the stream.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, SinkError> {
        let valid = !prefix.is_empty()
            && prefix.split('.').all(|t| {
                !t.is_empty()
                    && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        if !valid {
            return Err(SinkError::Invalid(format!(
                "--nats-subject {prefix:?} must be dot-separated tokens of letters, digits, '_' or '-'"
            )));
        }
        let client =
            async_nats::connect(url).await.map_err(|e| SinkError::Nats(format!("{url}: {e}")))?;
        let js = async_nats::jetstream::new(client);
        js.get_or_create_stream(async_nats::jetstream::stream::Config {
            name: Self::stream_name(prefix),
            subjects: vec![format!("{prefix}.>")],
            ..Default::default()
        })
        .await
        .map_err(|e| SinkError::Nats(format!("stream for {prefix}.>: {e}")))?;
        Ok(Self { js, prefix: prefix.to_owned() })
    }
}

impl EventSink for NatsSink {
    fn publish<'a>(&'a self, events: &'a [Arc<Event>]) -> SinkFuture<'a> {
        Box::pin(async move {
            // Publish them all, then wait for the acknowledgements.
            let mut acks = Vec::with_capacity(events.len());
            for ev in events {
                let subject = format!(
                    "{}.{}.{}",
                    self.prefix,
                    subject_token(&ev.account_id),
                    subject_token(ev.kind.as_str())
                );
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", event_id(ev).as_str());
                let body = bytes::Bytes::from(serde_json::to_vec(&**ev)?);
                let ack = self
                    .js
                    .publish_with_headers(subject, headers, body)
                    .await
                    .map_err(|e| SinkError::Nats(e.to_string()))?;
                acks.push(ack);
            }
            for ack in acks {
                ack.await.map_err(|e| SinkError::Nats(e.to_string()))?;
            }
            Ok(())
        })
    }
}
