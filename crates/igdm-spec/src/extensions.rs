//! igdm extension keys of a connector: `capabilities`, `pacing`,
//! `rate_limits`, `limits`. The engine parses and checks them; enforcing them
//! is the job of the layers that wrap the transport.

use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};

/// Parses `500ms`, `30s`, `5m`, `4h`, `1d` or a bare number of seconds.
#[must_use]
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let s = raw.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// Deserializes an optional duration string.
pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let raw: Option<crate::yaml::KeyString> = Option::deserialize(d)?;
    raw.map(|r| {
        parse_duration(&r.0).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{}` is not a duration (500ms, 30s, 5m, 4h, 1d)",
                r.0
            ))
        })
    })
    .transpose()
}

/// Size and count limits (connector-wide under `limits:`, per capability under
/// `capabilities.<name>.limits`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Most UTF-8 bytes of a message text (Graph: 1000).
    pub text_max_bytes: Option<u64>,
    /// Most characters of a message text (private API bridges: 20000).
    pub text_max_chars: Option<u64>,
    /// Largest image upload in bytes.
    pub image_max_bytes: Option<u64>,
    /// Longest side, in pixels, of an image the provider takes as sent
    /// (larger images are scaled down before upload).
    pub image_max_side: Option<u64>,
    /// Largest video upload in bytes.
    pub video_max_bytes: Option<u64>,
    /// Largest audio upload in bytes.
    pub audio_max_bytes: Option<u64>,
    /// Largest file upload in bytes.
    pub file_max_bytes: Option<u64>,
    /// How many past messages of a conversation can be read (Graph: 20).
    pub history_max_messages: Option<u64>,
    /// Hours after the user's last message during which replies are allowed (Graph: 24).
    pub reply_window_hours: Option<u64>,
    /// Edits allowed per message.
    pub max_edits: Option<u64>,
    /// Page size the provider allows.
    pub page_size_max: Option<u64>,
}

/// One normalized capability.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capability {
    /// The connector action implementing it (default: the capability's name).
    pub action: Option<String>,
    /// `false` declares it explicitly unsupported.
    #[serde(default = "yes")]
    pub supported: bool,
    /// `false` when no public source confirms the endpoint the action calls
    /// (it is offered, but callers should not rely on it by default).
    #[serde(default = "yes")]
    pub verified: bool,
    /// Limits for this capability.
    #[serde(default)]
    pub limits: Limits,
    /// A note for people and agents.
    pub note: Option<String>,
}

fn yes() -> bool {
    true
}

/// `capabilities:` — what the connector supports, by normalized name
/// (`list_conversations`, `list_messages`, `get_message`, `search`,
/// `send_text`, `send_media`, `reply`, `react`, `unreact`, `mark_read`,
/// `unsend`, `mute`, `typing`, `presence`, …).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// A version tag for the descriptor (for example `2026-11+instagram-web`).
    pub version: Option<String>,
    /// Normalized name → capability.
    #[serde(default)]
    pub actions: IndexMap<String, Capability>,
}

/// `pacing:` — how writes are spaced per account.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pacing {
    /// Minimum time between two writes of one account.
    #[serde(default, deserialize_with = "de_duration")]
    pub write_min_interval: Option<Duration>,
    /// Random extra delay added to `write_min_interval` (uniform in `0..=jitter`).
    #[serde(default, deserialize_with = "de_duration")]
    pub write_jitter: Option<Duration>,
    /// Most writes per rolling hour.
    pub writes_per_hour: Option<u32>,
    /// Most writes per rolling day.
    pub writes_per_day: Option<u32>,
    /// Requests in flight per account at once.
    pub concurrency: Option<u32>,
    /// Shortest polling interval for reads: how often a watcher polls
    /// right after activity.
    #[serde(default, deserialize_with = "de_duration")]
    pub poll_min_interval: Option<Duration>,
    /// Longest polling interval: where a watcher's interval settles after
    /// a long idle time.
    #[serde(default, deserialize_with = "de_duration")]
    pub poll_max_interval: Option<Duration>,
    /// Most requests a watcher may make per rolling hour for one account
    /// (its read budget, every request of a poll counted).
    pub poll_reads_per_hour: Option<u32>,
    /// How long writes stay paused after an action block.
    #[serde(default, deserialize_with = "de_duration")]
    pub action_block_cooldown: Option<Duration>,
    /// Typing indicator duration before a send, when the caller simulates typing.
    #[serde(default, deserialize_with = "de_duration")]
    pub typing_delay: Option<Duration>,
}

/// Which actions a rate-limit bucket counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppliesTo {
    /// Every action (`"*"`).
    All,
    /// Every action not marked `readonly` (`"writes"`).
    Writes,
    /// Every `readonly` action (`"reads"`).
    Reads,
    /// These actions.
    Actions(Vec<String>),
}

/// One bucket of `rate_limits:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per second.
    pub per_second: Option<f64>,
    /// Requests per minute.
    pub per_minute: Option<u32>,
    /// Requests per hour.
    pub per_hour: Option<u32>,
    /// Requests per day.
    pub per_day: Option<u32>,
    /// `"*"`, `"writes"`, `"reads"` or a list of action names.
    #[serde(deserialize_with = "de_applies_to")]
    pub applies_to: AppliesTo,
}

impl RateLimit {
    /// Whether the bucket counts `action` (`readonly` tells reads from writes).
    #[must_use]
    pub fn applies(&self, action: &str, readonly: bool) -> bool {
        match &self.applies_to {
            AppliesTo::All => true,
            AppliesTo::Writes => !readonly,
            AppliesTo::Reads => readonly,
            AppliesTo::Actions(a) => a.iter().any(|n| n == action),
        }
    }
}

fn de_applies_to<'de, D: Deserializer<'de>>(d: D) -> Result<AppliesTo, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(s) if s == "*" => AppliesTo::All,
        Raw::One(s) if s == "writes" => AppliesTo::Writes,
        Raw::One(s) if s == "reads" => AppliesTo::Reads,
        Raw::One(s) => AppliesTo::Actions(vec![s]),
        Raw::Many(v) => AppliesTo::Actions(v),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("4h"), Some(Duration::from_secs(4 * 3600)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("soon"), None);
    }
}
