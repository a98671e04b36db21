//! Following a sandbox's virtual clock.
//!
//! The sandbox issues and refreshes tokens with expiries in its own virtual
//! time, which its control API moves forward. A process started with
//! `IGDM_SANDBOX_CLOCK=http://HOST:PORT/_sandbox/clock` measures token
//! lifetimes on that clock instead of the system's, so a test can move a
//! running `igdm serve` or `igdm mcp` through virtual days. Only a sandbox
//! answers this URL; it is meant for tests.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::Duration as ChronoDuration;
use igdm_auth::oauth::Clock;
use igdm_model::Timestamp;

use crate::RuntimeError;

/// The variable naming a sandbox clock to follow.
pub const SANDBOX_CLOCK_ENV: &str = "IGDM_SANDBOX_CLOCK";

/// The path every sandbox serves its clock at.
const CLOCK_PATH: &str = "/_sandbox/clock";

/// The system clock shifted by a sandbox's offset, read with [`SandboxClock::sync`].
#[derive(Debug)]
pub struct SandboxClock {
    url: String,
    http: reqwest::Client,
    offset_us: AtomicI64,
}

impl SandboxClock {
    /// A clock following the sandbox clock at `url` (ending in `/_sandbox/clock`).
    ///
    /// # Errors
    /// A URL that is not a sandbox clock.
    pub fn new(url: &str) -> Result<Self, RuntimeError> {
        let err = |message: &str| RuntimeError::Clock {
            url: url.to_owned(),
            message: message.to_owned(),
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| err(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || !parsed.path().ends_with(CLOCK_PATH) {
            return Err(err("expected the http(s) URL of a sandbox's /_sandbox/clock"));
        }
        Ok(Self { url: url.to_owned(), http: reqwest::Client::new(), offset_us: AtomicI64::new(0) })
    }

    /// Reads the sandbox's time and keeps its offset from the system clock.
    ///
    /// # Errors
    /// An unreachable sandbox or an answer without `now_us`.
    pub async fn sync(&self) -> Result<(), RuntimeError> {
        let err = |message: String| RuntimeError::Clock { url: self.url.clone(), message };
        let body: serde_json::Value = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| err(e.to_string()))?
            .json()
            .await
            .map_err(|e| err(e.to_string()))?;
        let now_us = body["now_us"].as_i64().ok_or_else(|| err(format!("no now_us in {body}")))?;
        let local = Timestamp::now().0.timestamp_micros();
        self.offset_us.store(now_us - local, Ordering::SeqCst);
        Ok(())
    }
}

impl Clock for SandboxClock {
    fn now(&self) -> Timestamp {
        let off = self.offset_us.load(Ordering::SeqCst);
        Timestamp(Timestamp::now().0 + ChronoDuration::microseconds(off))
    }
}
