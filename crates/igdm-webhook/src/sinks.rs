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
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the forward client; forwarding is off");
            while rx.recv().await.is_some() {}
            return;
        }
    };
    while let Some(ev) = rx.recv().await {
        let body = match serde_json::to_vec(&*ev) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "an event could not be serialized for forwarding");
                continue;
            }
        };
        let sig = sign(cfg.secret.expose_secret().as_bytes(), &body);
        let mut delay = cfg.initial_backoff;
        let mut delivered = false;
        for attempt in 1..=cfg.max_attempts.max(1) {
            let res = client
                .post(&cfg.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, &sig)
                .body(body.clone())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => {
                    delivered = true;
                    break;
                }
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
        if !delivered {
            Metrics::inc(&metrics.forward_failures);
            tracing::error!(kind = %ev.kind, "forward hook gave up on an event");
        }
    }
}
