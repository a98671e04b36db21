//! The bot file: intents, replies, profile (ice breakers, menu), memory,
//! handover and the optional model. See `docs/bot.md`.

use std::path::Path;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::BotError;

/// The whole bot file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    /// The brand name, available to templates as `{{brand}}`.
    #[serde(default)]
    pub brand: String,
    /// Intents, tried in order.
    #[serde(default)]
    pub intents: Vec<IntentConfig>,
    /// The intent used when nothing matches (default `general`).
    #[serde(default = "default_fallback")]
    pub fallback: String,
    /// What a story mention gets (a thank-you).
    #[serde(default)]
    pub story_mention: Vec<Reply>,
    /// Up to 4 ice breakers shown to new customers.
    #[serde(default)]
    pub ice_breakers: Vec<IceBreaker>,
    /// The persistent menu.
    #[serde(default)]
    pub persistent_menu: Vec<MenuItem>,
    /// Conversation memory.
    #[serde(default)]
    pub memory: MemoryConfig,
    /// Human takeover.
    #[serde(default)]
    pub handover: HandoverConfig,
    /// Reply window and retries.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// An optional model for classification and for writing replies.
    #[serde(default)]
    pub model: Option<ModelConfig>,
}

fn default_fallback() -> String {
    "general".into()
}

/// One intent: how to recognise it and what to answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentConfig {
    /// The intent's name (`enquiry`, `order`, …).
    pub name: String,
    /// A short description, given to the model when it classifies.
    #[serde(default)]
    pub description: String,
    /// Words or phrases; a case-insensitive whole-word match selects the intent.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Regular expressions matched against the text.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Quick-reply, postback, ice-breaker and menu payloads.
    #[serde(default)]
    pub payloads: Vec<String>,
    /// Attachment types (`image`, `video`, `audio`, `file`, `share`, `story`, `link`).
    #[serde(default)]
    pub attachments: Vec<String>,
    /// Referral refs (the `ref` of an ig.me link or an ad click) that open
    /// a conversation with this intent.
    #[serde(default)]
    pub referral_ref: Vec<String>,
    /// The replies, sent in order.
    #[serde(default)]
    pub replies: Vec<Reply>,
    /// After its replies, hand the conversation to a person: thread control
    /// goes to the inbox app where the account has the Handover Protocol, and
    /// the bot pauses for this customer until released.
    #[serde(default)]
    pub handover: bool,
}

/// One reply message. Exactly one of `text`, `card`, `image` must be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// Text (a template: `{{name}}`, `{{username}}`, `{{text}}`, `{{intent}}`, `{{brand}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// When set and a model is configured, the model writes the text
    /// following these instructions; `text` is the fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<String>,
    /// Quick replies under the text (up to 13).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<QuickReply>,
    /// A product card (generic template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// An image by URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// A quick reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickReply {
    /// The title (up to 20 characters).
    pub title: String,
    /// The payload sent back when tapped.
    pub payload: String,
}

/// A generic-template card.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    /// Title (up to 80 characters).
    pub title: String,
    /// Subtitle (up to 80 characters).
    #[serde(default)]
    pub subtitle: String,
    /// Image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Up to 3 buttons.
    #[serde(default)]
    pub buttons: Vec<Button>,
}

/// A button: a link (`url`) or a postback (`payload`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Button {
    /// The label.
    pub title: String,
    /// Opens this URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Sends this payload back as a postback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// An ice breaker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceBreaker {
    /// The question shown.
    pub question: String,
    /// The payload sent back when tapped.
    pub payload: String,
}

/// A persistent-menu item: a postback (`payload`) or a link (`url`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuItem {
    /// The label.
    pub title: String,
    /// Postback payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Conversation memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// Turns kept per customer (default 12).
    #[serde(default = "default_turns")]
    pub turns: usize,
    /// Turns older than this many days are forgotten (default 7).
    #[serde(default = "default_ttl_days")]
    pub ttl_days: u32,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self { turns: default_turns(), ttl_days: default_ttl_days() }
    }
}

fn default_turns() -> usize {
    12
}
fn default_ttl_days() -> u32 {
    7
}

/// Human takeover.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoverConfig {
    /// The bot resumes after this many minutes without human activity
    /// (default 60; 0 means only an explicit release resumes it).
    #[serde(default = "default_idle")]
    pub idle_minutes: u64,
    /// This app's id on the page flavour: a `pass_thread_control` to it
    /// releases, to another app pauses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The app a conversation is passed to when a person takes it: the Page
    /// Inbox (`263902037430900`) unless another human-agent app is used.
    #[serde(default = "default_inbox_app")]
    pub inbox_app_id: String,
}

impl Default for HandoverConfig {
    fn default() -> Self {
        Self { idle_minutes: default_idle(), app_id: None, inbox_app_id: default_inbox_app() }
    }
}

/// The Page Inbox's app id, the default target for passing a thread to
/// people (kept with the handover parameters in [`igdm::handover`]).
pub use igdm::handover::PAGE_INBOX_APP_ID;

fn default_inbox_app() -> String {
    PAGE_INBOX_APP_ID.to_owned()
}

fn default_idle() -> u64 {
    60
}

/// Reply window and retry policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Hours after the customer's last message during which the bot may
    /// reply (Instagram's standard window: 24).
    #[serde(default = "default_window")]
    pub window_hours: u32,
    /// Attempts per reply on retryable errors (default 4).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First backoff delay in milliseconds, doubled per attempt (default 500).
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            window_hours: default_window(),
            max_attempts: default_attempts(),
            backoff_ms: default_backoff(),
        }
    }
}

fn default_window() -> u32 {
    24
}
fn default_attempts() -> u32 {
    4
}
fn default_backoff() -> u64 {
    500
}

/// Which chat API the model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelApi {
    /// OpenAI-compatible `POST {url}/chat/completions`.
    Openai,
    /// Anthropic `POST {url}/v1/messages`.
    Anthropic,
}

/// The optional model. The URL and key come from the environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The API flavour.
    pub api: ModelApi,
    /// The model name sent in requests.
    pub model: String,
    /// Environment variable holding the base URL (default `IGDM_BOT_MODEL_URL`).
    #[serde(default = "default_url_env")]
    pub url_env: String,
    /// Environment variable holding the API key (default `IGDM_BOT_MODEL_KEY`).
    #[serde(default = "default_key_env")]
    pub key_env: String,
    /// Ask the model for the intent when no rule matched (default true).
    #[serde(default = "yes")]
    pub classify: bool,
    /// The system prompt for written replies.
    #[serde(default)]
    pub system: String,
    /// Most tokens per written reply (default 280).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Request timeout in seconds (default 20).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_url_env() -> String {
    "IGDM_BOT_MODEL_URL".into()
}
fn default_key_env() -> String {
    "IGDM_BOT_MODEL_KEY".into()
}
fn yes() -> bool {
    true
}
fn default_max_tokens() -> u32 {
    280
}
fn default_timeout() -> u64 {
    20
}

/// An intent with its rules compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledIntent {
    pub config: IntentConfig,
    pub keywords: Vec<Regex>,
    pub patterns: Vec<Regex>,
}

impl BotConfig {
    /// Reads and validates a bot file.
    ///
    /// # Errors
    /// [`BotError::Config`] naming the file and the problem.
    pub fn load(path: &Path) -> Result<Self, BotError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BotError::Config(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| BotError::Config(format!("{}: {e}", path.display())))
    }

    /// Parses and validates bot YAML.
    ///
    /// # Errors
    /// [`BotError::Config`] on a YAML, shape or rule problem.
    pub fn parse(text: &str) -> Result<Self, BotError> {
        let config: Self =
            serde_saphyr::from_str(text).map_err(|e| BotError::Config(e.to_string()))?;
        config.compile()?;
        Ok(config)
    }

    /// Checks every rule and reply; compiles keywords and patterns.
    pub(crate) fn compile(&self) -> Result<Vec<CompiledIntent>, BotError> {
        let bad = |m: String| Err(BotError::Config(m));
        if self.ice_breakers.len() > 4 {
            return bad(format!("at most 4 ice breakers, found {}", self.ice_breakers.len()));
        }
        for m in &self.persistent_menu {
            if m.payload.is_some() == m.url.is_some() {
                return bad(format!("menu item {:?}: set exactly one of payload, url", m.title));
            }
        }
        if self.memory.turns == 0 {
            return bad("memory.turns must be at least 1".into());
        }
        let mut out = Vec::new();
        for i in &self.intents {
            if i.name.trim().is_empty() {
                return bad("an intent has no name".into());
            }
            if out.iter().any(|c: &CompiledIntent| c.config.name == i.name) {
                return bad(format!("intent {:?} is defined twice", i.name));
            }
            let mut keywords = Vec::new();
            for k in &i.keywords {
                let re = Regex::new(&format!(r"(?i)\b{}\b", regex::escape(k.trim())))
                    .map_err(|e| BotError::Config(format!("intent {}: {e}", i.name)))?;
                keywords.push(re);
            }
            let mut patterns = Vec::new();
            for p in &i.patterns {
                let re = Regex::new(p).map_err(|e| {
                    BotError::Config(format!("intent {}: pattern {p:?}: {e}", i.name))
                })?;
                patterns.push(re);
            }
            for r in &i.replies {
                r.check(&i.name)?;
            }
            out.push(CompiledIntent { config: i.clone(), keywords, patterns });
        }
        for r in &self.story_mention {
            r.check("story_mention")?;
        }
        if !self.intents.is_empty() && !self.intents.iter().any(|i| i.name == self.fallback) {
            return bad(format!("the fallback intent {:?} is not defined", self.fallback));
        }
        Ok(out)
    }
}

impl Reply {
    fn check(&self, intent: &str) -> Result<(), BotError> {
        let kinds = usize::from(self.text.is_some() || self.generate.is_some())
            + usize::from(self.card.is_some())
            + usize::from(self.image.is_some());
        if kinds != 1 {
            return Err(BotError::Config(format!(
                "intent {intent}: each reply needs exactly one of text/generate, card, image"
            )));
        }
        if self.quick_replies.len() > 13 {
            return Err(BotError::Config(format!("intent {intent}: at most 13 quick replies")));
        }
        if let Some(q) = self.quick_replies.iter().find(|q| q.title.chars().count() > 20) {
            return Err(BotError::Config(format!(
                "intent {intent}: quick reply title {:?} is longer than 20 characters",
                q.title
            )));
        }
        if let Some(c) = &self.card {
            if c.title.chars().count() > 80 || c.subtitle.chars().count() > 80 {
                return Err(BotError::Config(format!(
                    "intent {intent}: card title and subtitle are at most 80 characters"
                )));
            }
            if c.buttons.len() > 3 {
                return Err(BotError::Config(format!("intent {intent}: at most 3 card buttons")));
            }
            if let Some(b) = c.buttons.iter().find(|b| b.url.is_some() == b.payload.is_some()) {
                return Err(BotError::Config(format!(
                    "intent {intent}: button {:?}: set exactly one of url, payload",
                    b.title
                )));
            }
        }
        Ok(())
    }
}
