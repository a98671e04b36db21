//! Shared helpers of the integration tests: a real sandbox on loopback and its control API.

#![allow(dead_code)]

use serde_json::{Value, json};

/// A running sandbox and an HTTP client for its control API.
pub struct Sb {
    pub running: igdm_sandbox::RunningSandbox,
    pub http: reqwest::Client,
}

impl Sb {
    pub async fn start() -> Self {
        Self { running: igdm_test::sandbox::start().await, http: reqwest::Client::new() }
    }

    pub fn url(&self) -> String {
        self.running.base_url()
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        igdm_test::sandbox::post_ok(&self.url(), path, body).await
    }

    /// Creates an account through the control API; returns its JSON (password and codes included).
    pub async fn account(
        &self,
        kind: &str,
        username: &str,
        two_factor: bool,
        challenge: bool,
    ) -> Value {
        self.post(
            "/_sandbox/accounts",
            json!({"kind": kind, "username": username, "password": "pw-123456", "two_factor": two_factor, "challenge": challenge}),
        )
        .await
    }

    pub async fn advance(&self, seconds: i64) {
        self.post("/_sandbox/clock/advance", json!({"seconds": seconds})).await;
    }
}

/// Whether Chromium is there for `test`; a missing one fails the test under CI
/// and is listed as skipped elsewhere (`igdm_test::prereq`).
#[cfg(feature = "browser")]
pub fn chromium_or_skip(test: &str) -> bool {
    igdm_test::prereq::chromium(test).is_some()
}
