//! The optional model: OpenAI-compatible chat completions or Anthropic's
//! messages API, for classifying intents and writing replies.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::BotError;
use crate::config::{ModelApi, ModelConfig};
use crate::state::{Role, Turn};

/// A configured model endpoint. The key is never logged or printed.
pub struct Model {
    config: ModelConfig,
    url: String,
    key: Option<SecretString>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("api", &self.config.api).field("url", &self.url).finish()
    }
}

impl Model {
    /// Reads the URL and key from the environment variables the config names.
    ///
    /// # Errors
    /// [`BotError::Config`] when the URL variable is unset.
    pub fn from_env(config: &ModelConfig) -> Result<Self, BotError> {
        let url = std::env::var(&config.url_env).map_err(|_| {
            BotError::Config(format!(
                "the model needs its base URL in the environment variable {}",
                config.url_env
            ))
        })?;
        let key = std::env::var(&config.key_env).ok().map(SecretString::from);
        Self::new(config, url, key)
    }

    /// A model at `url` with an optional key.
    ///
    /// # Errors
    /// [`BotError::Config`] when the HTTP client cannot be built.
    pub fn new(
        config: &ModelConfig,
        url: String,
        key: Option<SecretString>,
    ) -> Result<Self, BotError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .build()
            .map_err(|e| BotError::Config(format!("model HTTP client: {e}")))?;
        Ok(Self { config: config.clone(), url: url.trim_end_matches('/').to_owned(), key, http })
    }

    /// Whether rules that miss should ask the model.
    #[must_use]
    pub fn classifies(&self) -> bool {
        self.config.classify
    }

    /// Asks for one of `intents` (name, description); `None` when the answer
    /// names none of them.
    ///
    /// # Errors
    /// [`BotError::Model`] on a transport or shape problem.
    pub async fn classify(
        &self,
        text: &str,
        intents: &[(String, String)],
    ) -> Result<Option<String>, BotError> {
        let list: Vec<String> = intents
            .iter()
            .map(|(n, d)| if d.is_empty() { n.clone() } else { format!("{n}: {d}") })
            .collect();
        let system = format!(
            "Classify the customer's Instagram message into exactly one intent. Intents:\n{}\nAnswer with the intent name only.",
            list.join("\n")
        );
        let snippet: String = text.chars().take(400).collect();
        let answer = self.chat(&system, &[], &snippet, 10).await?.to_lowercase();
        let word: String =
            answer.chars().filter(|c| c.is_alphanumeric() || *c == '_' || *c == '-').collect();
        Ok(intents
            .iter()
            .find(|(n, _)| n.to_lowercase() == word)
            .or_else(|| intents.iter().find(|(n, _)| answer.contains(&n.to_lowercase())))
            .map(|(n, _)| n.clone()))
    }

    /// Writes a reply following `instructions`, with the conversation so far.
    ///
    /// # Errors
    /// [`BotError::Model`] on a transport or shape problem, or an empty answer.
    pub async fn write(
        &self,
        instructions: &str,
        history: &[Turn],
        text: &str,
    ) -> Result<String, BotError> {
        let system = if self.config.system.is_empty() {
            instructions.to_owned()
        } else {
            format!("{}\n\n{instructions}", self.config.system)
        };
        let out = self.chat(&system, history, text, self.config.max_tokens).await?;
        let out = out.trim().to_owned();
        if out.is_empty() {
            return Err(BotError::Model("the model answered with no text".into()));
        }
        Ok(out)
    }

    async fn chat(
        &self,
        system: &str,
        history: &[Turn],
        text: &str,
        max_tokens: u32,
    ) -> Result<String, BotError> {
        let mut messages: Vec<Value> = history
            .iter()
            .map(|t| {
                let role = match t.role {
                    Role::Customer => "user",
                    Role::Bot => "assistant",
                };
                json!({"role": role, "content": t.text})
            })
            .collect();
        messages.push(json!({"role": "user", "content": text}));
        let req = match self.config.api {
            ModelApi::Openai => {
                let mut all = vec![json!({"role": "system", "content": system})];
                all.extend(messages);
                let url = if self.url.ends_with("/chat/completions") {
                    self.url.clone()
                } else {
                    format!("{}/chat/completions", self.url)
                };
                let mut r = self.http.post(url).json(&json!({
                    "model": self.config.model, "messages": all, "max_tokens": max_tokens,
                }));
                if let Some(k) = &self.key {
                    r = r.bearer_auth(k.expose_secret());
                }
                r
            }
            ModelApi::Anthropic => {
                let url = if self.url.ends_with("/v1/messages") {
                    self.url.clone()
                } else {
                    format!("{}/v1/messages", self.url)
                };
                let mut r =
                    self.http.post(url).header("anthropic-version", "2023-06-01").json(&json!({
                        "model": self.config.model, "system": system,
                        "messages": merge_roles(messages), "max_tokens": max_tokens,
                    }));
                if let Some(k) = &self.key {
                    r = r.header("x-api-key", k.expose_secret());
                }
                r
            }
        };
        let resp = req.send().await.map_err(|e| BotError::Model(e.without_url().to_string()))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| BotError::Model(format!("HTTP {status}: {}", e.without_url())))?;
        if !status.is_success() {
            return Err(BotError::Model(format!("HTTP {status}: {body}")));
        }
        let text = match self.config.api {
            ModelApi::Openai => body["choices"][0]["message"]["content"].as_str(),
            ModelApi::Anthropic => body["content"]
                .as_array()
                .and_then(|c| c.iter().find(|b| b["type"] == "text"))
                .and_then(|b| b["text"].as_str()),
        };
        text.map(str::to_owned)
            .ok_or_else(|| BotError::Model(format!("no text in the model's answer: {body}")))
    }
}

/// Anthropic needs alternating roles starting with `user`: merge neighbours.
fn merge_roles(messages: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for m in messages {
        let role = m["role"].as_str().unwrap_or("user").to_owned();
        let content = m["content"].as_str().unwrap_or_default().to_owned();
        match out.last_mut() {
            Some(last) if last["role"] == role.as_str() => {
                let joined = format!("{}\n{content}", last["content"].as_str().unwrap_or_default());
                last["content"] = json!(joined);
            }
            None if role != "user" => {}
            _ => out.push(json!({"role": role, "content": content})),
        }
    }
    out
}
