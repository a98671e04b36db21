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
        let sandbox = igdm_sandbox::Sandbox::new(igdm_sandbox::SandboxConfig::default());
        let running = igdm_sandbox::serve(sandbox, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        Self { running, http: reqwest::Client::new() }
    }

    pub fn url(&self) -> String {
        self.running.base_url()
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let r = self.http.post(format!("{}{path}", self.url())).json(&body).send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {v}");
        v
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

/// Whether a Chromium is installed; prints a loud SKIPPED line when not.
#[cfg(feature = "browser")]
pub fn chromium_or_skip(test: &str) -> bool {
    if igdm_auth::browser::find_chromium().is_some() {
        return true;
    }
    eprintln!(
        "\n!!!!!!!! SKIPPED {test}: no Chromium installed (apt-get install chromium) !!!!!!!!\n"
    );
    false
}
