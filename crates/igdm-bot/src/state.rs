//! What the bot remembers per customer, kept in the store as a raw payload
//! (`kind` [`STATE_KIND`], object id = the customer's id) so every igdm
//! process sharing the store (the server, `igdm handover`) sees the same state.

use chrono::Duration;
use igdm_model::Timestamp;
use igdm_store::MessageStore;
use serde::{Deserialize, Serialize};

use crate::BotError;

/// The raw-payload kind the state is stored under.
pub const STATE_KIND: &str = "bot.customer";

/// How many event keys and sent message ids are remembered.
const KEEP_IDS: usize = 100;

/// Who said a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The customer.
    Customer,
    /// The bot.
    Bot,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Who said it.
    pub role: Role,
    /// What was said (a description for non-text content).
    pub text: String,
    /// When.
    pub at: Timestamp,
}

/// Why and since when a person has the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Takeover {
    /// `echo` (a person replied from Instagram), `command` (`igdm handover
    /// take`) or `thread_control`.
    pub by: String,
    /// When the person last acted; the idle time counts from here.
    pub last_activity: Timestamp,
    /// When set, only an explicit release ends it (no idle expiry).
    #[serde(default)]
    pub until_released: bool,
}

/// The per-customer state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerState {
    /// The customer's last message, postback, ice-breaker or menu tap.
    #[serde(default)]
    pub last_inbound: Option<Timestamp>,
    /// Recent turns, oldest first.
    #[serde(default)]
    pub turns: Vec<Turn>,
    /// Set while a person has the conversation.
    #[serde(default)]
    pub takeover: Option<Takeover>,
    /// Message ids the bot sent (to tell its echoes from a person's).
    #[serde(default)]
    pub bot_mids: Vec<String>,
    /// Keys of events already handled.
    #[serde(default)]
    pub seen: Vec<String>,
    /// The customer's username, once looked up.
    #[serde(default)]
    pub username: Option<String>,
    /// The customer's display name, once looked up.
    #[serde(default)]
    pub name: Option<String>,
}

impl CustomerState {
    /// Loads the state of `customer` (empty when none is stored).
    ///
    /// # Errors
    /// Store errors; a stored document of the wrong shape.
    pub async fn load(
        store: &dyn MessageStore,
        account: &str,
        customer: &str,
    ) -> Result<Self, BotError> {
        match store.get_raw_payload(account, STATE_KIND, customer).await? {
            None => Ok(Self::default()),
            Some(v) => serde_json::from_value(v)
                .map_err(|e| BotError::State(format!("customer {customer}: {e}"))),
        }
    }

    /// Stores the state of `customer`.
    ///
    /// # Errors
    /// Store errors.
    pub async fn save(
        &self,
        store: &dyn MessageStore,
        account: &str,
        customer: &str,
    ) -> Result<(), BotError> {
        let v = serde_json::to_value(self).map_err(|e| BotError::State(e.to_string()))?;
        store.put_raw_payload(account, STATE_KIND, customer, &v).await?;
        Ok(())
    }

    /// Appends a turn, then keeps the last `keep` turns younger than `ttl`.
    pub fn remember(&mut self, turn: Turn, keep: usize, ttl: Duration) {
        self.turns.push(turn);
        self.forget(keep, ttl, None);
    }

    /// Drops turns older than `ttl` (relative to `now`, or to the newest turn)
    /// and all but the last `keep`.
    pub fn forget(&mut self, keep: usize, ttl: Duration, now: Option<Timestamp>) {
        let newest = now.or_else(|| self.turns.last().map(|t| t.at));
        if let Some(now) = newest {
            self.turns.retain(|t| now.0 - t.at.0 <= ttl);
        }
        if self.turns.len() > keep {
            let cut = self.turns.len() - keep;
            self.turns.drain(..cut);
        }
    }

    /// Records a message id the bot sent.
    pub fn add_bot_mid(&mut self, mid: &str) {
        if !self.bot_mids.iter().any(|m| m == mid) {
            push_capped(&mut self.bot_mids, mid.to_owned());
        }
    }

    /// Records an event key; `false` when it was already there.
    pub fn mark_seen(&mut self, key: &str) -> bool {
        if self.seen.iter().any(|k| k == key) {
            return false;
        }
        push_capped(&mut self.seen, key.to_owned());
        true
    }

    /// Whether a person has the conversation at `now`, given the idle time
    /// (`None`: no idle expiry). An expired takeover is cleared.
    pub fn paused(&mut self, now: Timestamp, idle: Option<Duration>) -> bool {
        let Some(t) = &self.takeover else { return false };
        let expired =
            !t.until_released && idle.is_some_and(|idle| now.0 - t.last_activity.0 >= idle);
        if expired {
            self.takeover = None;
        }
        !expired
    }
}

fn push_capped(list: &mut Vec<String>, item: String) {
    list.push(item);
    if list.len() > KEEP_IDS {
        let cut = list.len() - KEEP_IDS;
        list.drain(..cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_seconds(1_800_000_000 + secs).unwrap_or_else(Timestamp::now)
    }

    #[test]
    fn memory_keeps_the_last_turns_within_the_ttl() {
        let mut s = CustomerState::default();
        for i in 0..20 {
            s.remember(
                Turn { role: Role::Customer, text: format!("t{i}"), at: at(i) },
                12,
                Duration::days(7),
            );
        }
        assert_eq!(s.turns.len(), 12);
        assert_eq!(s.turns[0].text, "t8");
        s.remember(
            Turn { role: Role::Bot, text: "late".into(), at: at(8 * 86_400) },
            12,
            Duration::days(7),
        );
        assert_eq!(s.turns.len(), 1, "turns older than 7 days are forgotten");
    }

    #[test]
    fn takeover_expires_after_the_idle_time_unless_held() {
        let mut s = CustomerState {
            takeover: Some(Takeover {
                by: "echo".into(),
                last_activity: at(0),
                until_released: false,
            }),
            ..Default::default()
        };
        assert!(s.paused(at(60), Some(Duration::minutes(30))));
        assert!(!s.paused(at(31 * 60), Some(Duration::minutes(30))));
        assert!(s.takeover.is_none());
        s.takeover =
            Some(Takeover { by: "command".into(), last_activity: at(0), until_released: true });
        assert!(s.paused(at(86_400), Some(Duration::minutes(30))));
    }
}
