//! The igdm DM bot: intents, replies, reply windows, memory and human handover on top of the webhook pipeline.
//!
//! A [`Bot`] takes normalized webhook [`Event`]s (from
//! `igdm_webhook::Server::subscribe`, see [`Bot::run`]) and answers customers
//! through an [`igdm::Client`]. Every reply is first recorded in the store's
//! outbox under a key derived from the triggering event and the reply's
//! index, then sent; a repeated delivery or a restart never sends a reply
//! twice. Before each send the bot checks the reply window locally and
//! whether a person has taken the conversation over.

#![warn(clippy::unwrap_used)]

pub mod config;
pub mod handover;
pub mod model;
pub mod state;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, broadcast};
use tracing::{debug, info, warn};

use igdm::Client;
use igdm_model::{AttachmentType, ErrorClass, Event, EventKind, Timestamp};
use igdm_store::{MessageStore, NewOutbox, OutboxEntry, OutboxState, StoreError};

pub use config::BotConfig;
use config::{CompiledIntent, Reply};
pub use handover::{HandoverDone, give_back, hand_to_person, request_control};
pub use model::Model;
pub use state::{CustomerState, Role, Takeover, Turn};

/// Errors of the bot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotError {
    /// The bot file is invalid.
    #[error("bot file: {0}")]
    Config(String),
    /// The model call failed.
    #[error("model: {0}")]
    Model(String),
    /// Stored bot state is unreadable.
    #[error("bot state: {0}")]
    State(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The client failed outside a send (profile sync, lookups).
    #[error(transparent)]
    Client(#[from] igdm::Error),
}

/// How often [`Bot::run`] retries replies left open (retryable failures).
pub const RESUME_EVERY: StdDuration = StdDuration::from_secs(30);

/// The longest backoff waited inside one event's handling; longer waits
/// (a provider's `Retry-After`) are left to the periodic resume.
const MAX_INLINE_WAIT: StdDuration = StdDuration::from_secs(5);

/// Where the bot reads the time: the system clock by default.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// What became of one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendStatus {
    /// Sent now; Instagram's message id.
    Sent {
        /// The message id, when the answer carried one.
        message_id: Option<String>,
    },
    /// An earlier run already sent it (nothing was sent now).
    AlreadySent,
    /// An interrupted earlier attempt turned out to have arrived.
    Reconciled,
    /// Refused by the bot's policy before any request; why.
    Refused {
        /// The reason.
        reason: String,
    },
    /// Failed for good.
    Failed {
        /// The error.
        error: String,
    },
    /// Its outcome is unknown and several messages in the conversation
    /// could be it: nothing was resent and none was taken for it. The entry
    /// stays `unknown`; [`Bot::resume`] reads the conversation again.
    Unknown {
        /// The ids of the messages that could be the reply.
        candidates: Vec<String>,
    },
    /// Still open after the retries; [`Bot::resume`] tries again.
    Pending {
        /// The last error.
        error: String,
    },
}

/// One reply's outbox key and fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    /// The outbox key.
    pub key: String,
    /// What happened.
    pub status: SendStatus,
}

/// What the bot did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// Not for the bot (kind, read receipts, …); why.
    Ignored(String),
    /// The event was handled before; open replies were driven again.
    Duplicate(Vec<SendReport>),
    /// A person has the conversation: nothing was sent.
    Paused,
    /// Replies for an intent.
    Replied {
        /// The intent (`story_mention` for a story mention).
        intent: String,
        /// One report per reply.
        sends: Vec<SendReport>,
    },
    /// A person took the conversation over.
    TakenOver,
    /// The conversation went back to the bot.
    Released,
}

/// What an inbound event calls for.
enum Plan {
    /// Nothing (more) to send.
    Done(Handled),
    /// Replies recorded in the outbox, to deliver.
    Send {
        intent: String,
        handover: bool,
        entries: Vec<OutboxEntry>,
        account: String,
        customer: String,
        state: CustomerState,
    },
}

/// The bot.
pub struct Bot {
    config: BotConfig,
    intents: Vec<CompiledIntent>,
    client: Arc<Client>,
    store: Arc<dyn MessageStore>,
    model: Option<Model>,
    clock: Clock,
    lock: Mutex<()>,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("intents", &self.intents.len())
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Bot {
    /// A bot for `config`, sending with `client`, keeping state and the
    /// outbox in `store`. The model, when configured, reads its URL and key
    /// from the environment (see [`Bot::with_model`] to pass one).
    ///
    /// # Errors
    /// [`BotError::Config`] for an invalid file or a missing model URL.
    pub fn new(
        config: BotConfig,
        client: Arc<Client>,
        store: Arc<dyn MessageStore>,
    ) -> Result<Self, BotError> {
        let intents = config.compile()?;
        let model = config.model.as_ref().map(Model::from_env).transpose()?;
        // The replies' outbox rows are the client's send ledger.
        let client = Arc::new(client.with_ledger(Arc::new(igdm::StoreLedger::new(store.clone()))));
        Ok(Self {
            config,
            intents,
            client,
            store,
            model,
            clock: Arc::new(Timestamp::now),
            lock: Mutex::new(()),
        })
    }

    /// Uses this model instead of the one from the environment.
    #[must_use]
    pub fn with_model(mut self, model: Model) -> Self {
        self.model = Some(model);
        self
    }

    /// Reads the time from `clock` (tests drive a virtual clock).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The bot file.
    #[must_use]
    pub fn config(&self) -> &BotConfig {
        &self.config
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    fn account(&self, event: &Event) -> String {
        event.account_id.clone()
    }

    /// Handles events from the webhook pipeline until the channel closes.
    /// Open outbox entries of earlier runs are driven first, and open
    /// entries are retried every [`RESUME_EVERY`].
    pub async fn run(&self, mut events: broadcast::Receiver<Event>) {
        match self.resume().await {
            Ok(r) if !r.is_empty() => info!(replies = r.len(), "bot resumed open replies"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "bot could not resume open replies"),
        }
        let mut tick = tokio::time::interval(RESUME_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let received = tokio::select! {
                r = events.recv() => r,
                _ = tick.tick() => {
                    match self.resume().await {
                        Ok(r) if !r.is_empty() => info!(replies = r.len(), "bot retried open replies"),
                        Ok(_) => {}
                        Err(e) => warn!(error = %e, "bot could not retry open replies"),
                    }
                    continue;
                }
            };
            match received {
                Ok(event) => match self.handle(&event).await {
                    Ok(h) => {
                        debug!(kind = %event.kind.as_str(), outcome = ?h, "bot handled an event")
                    }
                    Err(e) => {
                        warn!(kind = %event.kind.as_str(), error = %e, "bot failed on an event")
                    }
                },
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    warn!(skipped = n, "bot fell behind the event stream; events were skipped");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    }

    /// Handles one event: replies to customer messages and taps, thanks for
    /// story mentions, notices human takeovers.
    ///
    /// # Errors
    /// Store and state errors. Send failures are reported in [`Handled`].
    pub async fn handle(&self, event: &Event) -> Result<Handled, BotError> {
        let _guard = self.lock.lock().await;
        match event.kind {
            EventKind::Message if event.is_echo => self.on_echo(event).await,
            EventKind::Message | EventKind::Postback => self.on_inbound(event).await,
            EventKind::Referral if self.referral_intent(event).is_some() => {
                self.on_inbound(event).await
            }
            EventKind::Handover => self.on_thread_control(event).await,
            _ => Ok(Handled::Ignored(format!("{} events need no reply", event.kind.as_str()))),
        }
    }

    fn idle(&self) -> Option<Duration> {
        let m = self.config.handover.idle_minutes;
        (m > 0).then(|| Duration::minutes(i64::try_from(m).unwrap_or(i64::MAX / 60_000_000)))
    }

    fn ttl(&self) -> Duration {
        Duration::days(i64::from(self.config.memory.ttl_days))
    }

    async fn on_echo(&self, event: &Event) -> Result<Handled, BotError> {
        let Some(customer) = event.conversation_id.clone().or_else(|| event.recipient_id.clone())
        else {
            return Ok(Handled::Ignored("echo without a conversation".into()));
        };
        let account = self.account(event);
        let mut state = CustomerState::load(&*self.store, &account, &customer).await?;
        if let Some(mid) = &event.message_id
            && state.bot_mids.iter().any(|m| m == mid)
        {
            return Ok(Handled::Ignored("echo of the bot's own reply".into()));
        }
        // A message the bot did not send: a person replied from Instagram.
        let held = state.takeover.as_ref().is_some_and(|t| t.until_released);
        state.takeover = Some(Takeover {
            by: "echo".into(),
            last_activity: event.timestamp,
            until_released: held,
        });
        if let Some(text) = &event.text {
            state.remember(
                Turn { role: Role::Bot, text: text.clone(), at: event.timestamp },
                self.config.memory.turns,
                self.ttl(),
            );
        }
        state.save(&*self.store, &account, &customer).await?;
        info!(customer = %customer, "a person replied from Instagram; the bot pauses for this conversation");
        Ok(Handled::TakenOver)
    }

    async fn on_thread_control(&self, event: &Event) -> Result<Handled, BotError> {
        let Some(customer) = event.conversation_id.clone().or_else(|| event.sender_id.clone())
        else {
            return Ok(Handled::Ignored("thread control without a conversation".into()));
        };
        let details = event.details.clone().unwrap_or(Value::Null);
        let action = details["action"].as_str().unwrap_or_default();
        let ours = |id: &Value| {
            let id = id.as_str().map(str::to_owned).or_else(|| id.as_u64().map(|n| n.to_string()));
            match (&self.config.handover.app_id, id) {
                (Some(app), Some(id)) => *app == id,
                // Unconfigured: any app but the inbox people answer in (the
                // bot's own escalation comes back as such a pass).
                (None, Some(id)) => id != self.config.handover.inbox_app_id,
                (None, None) => true,
                (Some(_), None) => false,
            }
        };
        let take = match action {
            // Whoever now owns the thread: another app means a person.
            "take_thread_control" | "pass_thread_control" => {
                !ours(&details[action]["new_owner_app_id"])
            }
            _ => return Ok(Handled::Ignored(format!("thread control action {action:?}"))),
        };
        let account = self.account(event);
        if take {
            set_takeover(&*self.store, &account, &customer, event.timestamp, "thread_control")
                .await?;
            Ok(Handled::TakenOver)
        } else {
            release(&*self.store, &account, &customer).await?;
            Ok(Handled::Released)
        }
    }

    /// Records the replies to an inbound event in the outbox (and the turn in
    /// memory) without sending them: the first half of [`Bot::handle`].
    /// Returns the recorded entries (none for a duplicate, a paused
    /// conversation or an event that needs no reply).
    ///
    /// # Errors
    /// Store and state errors.
    pub async fn prepare(&self, event: &Event) -> Result<Vec<OutboxEntry>, BotError> {
        let _guard = self.lock.lock().await;
        let referral = event.kind == EventKind::Referral && self.referral_intent(event).is_some();
        if event.is_echo
            || !(referral || matches!(event.kind, EventKind::Message | EventKind::Postback))
        {
            return Ok(Vec::new());
        }
        Ok(match self.plan(event).await? {
            Plan::Send { entries, .. } => entries,
            Plan::Done(_) => Vec::new(),
        })
    }

    async fn on_inbound(&self, event: &Event) -> Result<Handled, BotError> {
        match self.plan(event).await? {
            Plan::Done(h) => Ok(h),
            Plan::Send { intent, handover, entries, account, customer, mut state } => {
                let mut sends = Vec::new();
                for entry in &entries {
                    let status = self.deliver(entry, &mut state).await?;
                    if matches!(status, SendStatus::Sent { .. } | SendStatus::Reconciled) {
                        // Only what the customer received becomes memory.
                        let summary = entry.payload["summary"].as_str().unwrap_or_default();
                        state.remember(
                            Turn { role: Role::Bot, text: summary.to_owned(), at: event.timestamp },
                            self.config.memory.turns,
                            self.ttl(),
                        );
                    }
                    sends.push(SendReport { key: entry.idempotency_key.clone(), status });
                }
                state.save(&*self.store, &account, &customer).await?;
                if handover {
                    let done = hand_to_person(
                        &self.client,
                        &*self.store,
                        &account,
                        &customer,
                        event.timestamp,
                        &self.config.handover.inbox_app_id,
                        &format!("igdm bot: intent {intent}"),
                    )
                    .await?;
                    info!(customer = %customer, intent = %intent, meta = ?done.meta_action, "the intent hands the conversation to a person");
                }
                Ok(Handled::Replied { intent, sends })
            }
        }
    }

    async fn plan(&self, event: &Event) -> Result<Plan, BotError> {
        let Some(customer) = event.conversation_id.clone().or_else(|| event.sender_id.clone())
        else {
            return Ok(Plan::Done(Handled::Ignored("message without a sender".into())));
        };
        let account = self.account(event);
        let key = event_key(event);
        let mut state = CustomerState::load(&*self.store, &account, &customer).await?;
        if !state.mark_seen(&key) {
            // Seen before: drive whatever it left open, send nothing new.
            let mut sends = Vec::new();
            for entry in self.store.outbox_pending().await? {
                if entry.idempotency_key.starts_with(&format!("{key}:")) {
                    let status = self.deliver(&entry, &mut state).await?;
                    sends.push(SendReport { key: entry.idempotency_key.clone(), status });
                }
            }
            state.save(&*self.store, &account, &customer).await?;
            return Ok(Plan::Done(Handled::Duplicate(sends)));
        }
        if state.last_inbound.is_none_or(|t| t.0 < event.timestamp.0) {
            state.last_inbound = Some(event.timestamp);
        }
        let now = self.now();
        let said = describe(event);
        let history = {
            let mut s = state.clone();
            s.forget(self.config.memory.turns, self.ttl(), Some(now));
            s.turns
        };
        state.remember(
            Turn { role: Role::Customer, text: said.clone(), at: event.timestamp },
            self.config.memory.turns,
            self.ttl(),
        );
        if state.paused(now, self.idle()) {
            state.save(&*self.store, &account, &customer).await?;
            info!(customer = %customer, "a person has this conversation; the bot stays quiet");
            return Ok(Plan::Done(Handled::Paused));
        }
        if state.username.is_none() {
            self.look_up(&customer, &mut state).await;
        }

        let (intent, replies) = self.choose(event, &said).await;
        let handover = self.intents.iter().any(|i| i.config.name == intent && i.config.handover);
        let vars = Vars {
            name: state.name.clone().or_else(|| state.username.clone()),
            username: state.username.clone(),
            text: said.clone(),
            intent: intent.clone(),
            brand: self.config.brand.clone(),
        };
        // Build every reply and record it in the outbox before sending any.
        let mut entries = Vec::new();
        for (i, reply) in replies.iter().enumerate() {
            let (action, params, summary) =
                self.render(reply, &vars, &customer, &history, &said).await;
            let new = NewOutbox {
                idempotency_key: format!("{key}:{i}"),
                account_id: account.clone(),
                conversation_id: Some(customer.clone()),
                recipient_id: Some(customer.clone()),
                payload: json!({"action": action, "params": params, "summary": summary}),
            };
            let begun = self.store.outbox_begin(&new).await?;
            entries.push(begun.entry);
        }
        state.save(&*self.store, &account, &customer).await?;
        Ok(Plan::Send { intent, handover, entries, account, customer, state })
    }

    async fn look_up(&self, customer: &str, state: &mut CustomerState) {
        if !self.client.supports("get_profile") {
            return;
        }
        let mut p = Map::new();
        p.insert("user_id".into(), json!(customer));
        match self.client.invoke("get_profile", p).await {
            Ok(out) => {
                state.username = out.data["username"].as_str().map(str::to_owned);
                state.name =
                    out.data["display_name"].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
            }
            Err(e) => {
                debug!(error = %e, "customer profile unavailable; templates use a neutral greeting")
            }
        }
    }

    /// The intent whose `referral_ref` names the event's referral (an
    /// ig.me link or an ad click that opened the conversation).
    fn referral_intent(&self, event: &Event) -> Option<&CompiledIntent> {
        let details = event.details.as_ref()?;
        let referral = &details["referral"];
        let r =
            referral["ref"].as_str().or_else(|| referral["ads_context_data"]["ad_id"].as_str())?;
        self.intents.iter().find(|i| i.config.referral_ref.iter().any(|x| x == r))
    }

    /// The intent of an event and its replies.
    async fn choose(&self, event: &Event, said: &str) -> (String, Vec<Reply>) {
        if is_story_mention(event) && !self.config.story_mention.is_empty() {
            return ("story_mention".into(), self.config.story_mention.clone());
        }
        let payload = event
            .quick_reply_payload
            .as_deref()
            .or_else(|| event.postback.as_ref().and_then(|p| p.payload.as_deref()));
        let text = event
            .text
            .as_deref()
            .or_else(|| event.postback.as_ref().and_then(|p| p.title.as_deref()))
            .unwrap_or_default();
        let kinds: Vec<&str> = event.attachments.iter().map(|a| a.kind.as_str()).collect();
        let by_rule = self.referral_intent(event).or_else(|| {
            self.intents
                .iter()
                .find(|i| payload.is_some_and(|p| i.config.payloads.iter().any(|x| x == p)))
        });
        let by_rule = by_rule
            .or_else(|| {
                self.intents
                    .iter()
                    .find(|i| kinds.iter().any(|k| i.config.attachments.iter().any(|a| a == k)))
            })
            .or_else(|| {
                (!text.is_empty()).then(|| {
                    self.intents.iter().find(|i| {
                        i.keywords.iter().any(|r| r.is_match(text))
                            || i.patterns.iter().any(|r| r.is_match(text))
                    })
                })?
            });
        let mut name = by_rule.map(|i| i.config.name.clone());
        if name.is_none()
            && let Some(model) = self.model.as_ref().filter(|m| m.classifies())
        {
            let list: Vec<(String, String)> = self
                .intents
                .iter()
                .map(|i| (i.config.name.clone(), i.config.description.clone()))
                .collect();
            match model.classify(said, &list).await {
                Ok(found) => name = found,
                Err(e) => {
                    warn!(error = %e, "model classification failed; using the fallback intent")
                }
            }
        }
        let name = name.unwrap_or_else(|| self.config.fallback.clone());
        let replies = self
            .intents
            .iter()
            .find(|i| i.config.name == name)
            .map(|i| i.config.replies.clone())
            .unwrap_or_default();
        (name, replies)
    }

    /// The connector action, its parameters and a one-line summary for memory.
    async fn render(
        &self,
        reply: &Reply,
        vars: &Vars,
        customer: &str,
        history: &[Turn],
        said: &str,
    ) -> (&'static str, Value, String) {
        if let Some(card) = &reply.card {
            let buttons: Vec<Value> = card
                .buttons
                .iter()
                .map(|b| match (&b.url, &b.payload) {
                    (Some(url), _) => json!({"type": "web_url", "title": vars.fill(&b.title), "url": url}),
                    (None, payload) => json!({"type": "postback", "title": vars.fill(&b.title), "payload": payload}),
                })
                .collect();
            let mut element =
                json!({"title": vars.fill(&card.title), "subtitle": vars.fill(&card.subtitle)});
            if let Some(img) = &card.image_url {
                element["image_url"] = json!(img);
            }
            if !buttons.is_empty() {
                element["buttons"] = json!(buttons);
            }
            let summary = format!("[card: {}]", vars.fill(&card.title));
            return (
                "send_generic_template",
                json!({"user_id": customer, "elements": [element], "human_agent": false}),
                summary,
            );
        }
        if let Some(url) = &reply.image {
            return (
                "send_image",
                json!({"user_id": customer, "url": url, "human_agent": false}),
                format!("[image: {url}]"),
            );
        }
        let mut text = reply.text.as_deref().map(|t| vars.fill(t));
        if let (Some(instructions), Some(model)) = (&reply.generate, &self.model) {
            match model.write(&vars.fill(instructions), history, said).await {
                Ok(t) => text = Some(t),
                Err(e) => {
                    warn!(error = %e, "the model could not write the reply; using the fallback text")
                }
            }
        }
        let text = text
            .unwrap_or_else(|| vars.fill("Thanks for your message! We'll get back to you soon."));
        let text = clip_bytes(&text, 1000);
        let mut params = json!({"user_id": customer, "text": text, "human_agent": false});
        if !reply.quick_replies.is_empty() {
            params["quick_replies"] = reply
                .quick_replies
                .iter()
                .map(|q| json!({"content_type": "text", "title": vars.fill(&q.title), "payload": q.payload}))
                .collect();
        }
        ("send", params, text)
    }

    /// Sends one outbox entry at most once: checks the policy, retries
    /// retryable errors with backoff, reconciles interrupted attempts. The
    /// entry is the client's send-ledger record under its key: the client's
    /// send path moves it through its states.
    async fn deliver(
        &self,
        entry: &OutboxEntry,
        state: &mut CustomerState,
    ) -> Result<SendStatus, BotError> {
        let key = entry.idempotency_key.as_str();
        let current = self.store.outbox_get(key).await?.unwrap_or_else(|| entry.clone());
        match current.state {
            OutboxState::Sent => return Ok(SendStatus::AlreadySent),
            OutboxState::Failed => {
                return Ok(SendStatus::Failed {
                    error: current.last_error.unwrap_or_else(|| "failed earlier".into()),
                });
            }
            OutboxState::Sending | OutboxState::Unknown => {
                // An interrupted attempt may have arrived, even if the window
                // has closed since: read the conversation before the policy.
                match self.client.reconcile_send(key).await {
                    Ok(Some(found)) => {
                        if let Some(mid) = found.result["id"].as_str() {
                            state.add_bot_mid(mid);
                        }
                        info!(key, "an interrupted send had arrived; not sending it again");
                        return Ok(SendStatus::Reconciled);
                    }
                    Ok(None) => {}
                    Err(igdm::Error::SendAmbiguous { candidates, .. }) => {
                        return Ok(ambiguous(key, candidates));
                    }
                    Err(e) => {
                        debug!(key, error = %e, "could not read the conversation to reconcile")
                    }
                }
            }
            _ => {}
        }

        // Policy, before any request.
        let now = self.now();
        let window = Duration::hours(i64::from(self.config.policy.window_hours));
        let refusal = match state.last_inbound {
            None => Some("the customer has not written: no reply window is open".to_owned()),
            Some(last) if now.0 - last.0 > window => Some(format!(
                "outside the {}-hour reply window: the customer last wrote at {} ({} h ago); the bot never uses the HUMAN_AGENT tag",
                self.config.policy.window_hours,
                last.0.to_rfc3339(),
                (now.0 - last.0).num_hours()
            )),
            _ => None,
        };
        if let Some(reason) = refusal {
            warn!(key, %reason, "reply refused by policy");
            self.store.outbox_mark(key, OutboxState::Failed, None, Some(&reason)).await?;
            return Ok(SendStatus::Refused { reason });
        }

        let action = current.payload["action"].as_str().unwrap_or("send").to_owned();
        let mut params = match &current.payload["params"] {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        // Bot replies never carry the HUMAN_AGENT tag.
        params.insert("human_agent".into(), json!(false));

        let attempts = self.config.policy.max_attempts.max(1);
        let mut delay = StdDuration::from_millis(self.config.policy.backoff_ms);
        let mut last_error = String::new();
        for attempt in 1..=attempts {
            let sent =
                self.client.send_action(action.as_str(), params.clone()).idempotency_key(key).await;
            match sent {
                Ok(out) => {
                    let mid = out.result["id"].as_str().map(str::to_owned);
                    if let Some(mid) = &mid {
                        state.add_bot_mid(mid);
                    }
                    return Ok(match out.outcome {
                        igdm::Sent::Reconciled => SendStatus::Reconciled,
                        igdm::Sent::Replayed => SendStatus::AlreadySent,
                        _ => SendStatus::Sent { message_id: mid },
                    });
                }
                Err(igdm::Error::SendAmbiguous { candidates, .. }) => {
                    return Ok(ambiguous(key, candidates));
                }
                Err(e) => {
                    let api = e.to_api_error();
                    last_error = api.message.clone();
                    // An unknown outcome that the conversation does not show
                    // (yet): the next attempt reconciles again before sending.
                    let unknown = matches!(e, igdm::Error::OutcomeUnknown { .. });
                    let retryable = (api.retryable || unknown)
                        && !matches!(api.class, ErrorClass::OutsideWindow);
                    if !retryable {
                        self.store
                            .outbox_mark(key, OutboxState::Failed, None, Some(&last_error))
                            .await?;
                        warn!(key, error = %last_error, "reply failed");
                        return Ok(SendStatus::Failed { error: last_error });
                    }
                    if attempt < attempts {
                        let wait = api
                            .retry_after
                            .map(StdDuration::from_secs)
                            .map_or(delay, |r| r.max(delay));
                        if wait > MAX_INLINE_WAIT {
                            // Too long to hold the event loop: the periodic resume retries it.
                            break;
                        }
                        debug!(key, attempt, wait_ms = wait.as_millis() as u64, "retrying a reply");
                        tokio::time::sleep(wait).await;
                        delay = delay.saturating_mul(2);
                    }
                }
            }
        }
        Ok(SendStatus::Pending { error: last_error })
    }

    /// Drives every open outbox entry of the bot (after a restart).
    ///
    /// # Errors
    /// Store errors.
    pub async fn resume(&self) -> Result<Vec<SendReport>, BotError> {
        let _guard = self.lock.lock().await;
        let mut out = Vec::new();
        for entry in self.store.outbox_pending().await? {
            if !entry.idempotency_key.starts_with("bot:") {
                continue;
            }
            let Some(customer) = entry.recipient_id.clone() else { continue };
            let mut state = CustomerState::load(&*self.store, &entry.account_id, &customer).await?;
            let status = self.deliver(&entry, &mut state).await?;
            state.save(&*self.store, &entry.account_id, &customer).await?;
            out.push(SendReport { key: entry.idempotency_key.clone(), status });
        }
        Ok(out)
    }

    /// Makes the account's ice breakers and persistent menu match the file
    /// (an empty list deletes them). Returns the actions called.
    ///
    /// # Errors
    /// The client's errors.
    pub async fn sync_profile(&self) -> Result<Vec<String>, BotError> {
        let mut done = Vec::new();
        if self.config.ice_breakers.is_empty() {
            self.client.invoke("delete_ice_breakers", Map::new()).await?;
            done.push("delete_ice_breakers".to_owned());
        } else {
            let items: Vec<Value> = self
                .config
                .ice_breakers
                .iter()
                .map(|b| json!({"question": b.question, "payload": b.payload}))
                .collect();
            let mut p = Map::new();
            p.insert("ice_breakers".into(), json!(items));
            self.client.invoke("set_ice_breakers", p).await?;
            done.push("set_ice_breakers".to_owned());
        }
        if self.config.persistent_menu.is_empty() {
            self.client.invoke("delete_persistent_menu", Map::new()).await?;
            done.push("delete_persistent_menu".to_owned());
        } else {
            let items: Vec<Value> = self
                .config
                .persistent_menu
                .iter()
                .map(|m| match (&m.url, &m.payload) {
                    (Some(url), _) => json!({"type": "web_url", "title": m.title, "url": url}),
                    (None, payload) => {
                        json!({"type": "postback", "title": m.title, "payload": payload})
                    }
                })
                .collect();
            let mut p = Map::new();
            p.insert("items".into(), json!(items));
            self.client.invoke("set_persistent_menu", p).await?;
            done.push("set_persistent_menu".to_owned());
        }
        Ok(done)
    }
}

/// Hands the conversation with `customer` to a person until [`release`]
/// (what `igdm handover take` does). Works across processes: a running bot
/// reads it from the store on the next event.
///
/// # Errors
/// Store errors.
pub async fn take_over(
    store: &dyn MessageStore,
    account: &str,
    customer: &str,
    now: Timestamp,
) -> Result<(), BotError> {
    let mut state = CustomerState::load(store, account, customer).await?;
    state.takeover =
        Some(Takeover { by: "command".into(), last_activity: now, until_released: true });
    state.save(store, account, customer).await
}

async fn set_takeover(
    store: &dyn MessageStore,
    account: &str,
    customer: &str,
    now: Timestamp,
    by: &str,
) -> Result<(), BotError> {
    let mut state = CustomerState::load(store, account, customer).await?;
    state.takeover = Some(Takeover { by: by.into(), last_activity: now, until_released: true });
    state.save(store, account, customer).await
}

/// Gives the conversation with `customer` back to the bot (what `igdm
/// handover release` does). Returns whether a takeover was in place.
///
/// # Errors
/// Store errors.
pub async fn release(
    store: &dyn MessageStore,
    account: &str,
    customer: &str,
) -> Result<bool, BotError> {
    let mut state = CustomerState::load(store, account, customer).await?;
    let was = state.takeover.take().is_some();
    state.save(store, account, customer).await?;
    Ok(was)
}

/// The outbox key prefix of an event: `bot:` + a hash of what identifies it
/// (the message id when there is one).
#[must_use]
pub fn event_key(event: &Event) -> String {
    let mut h = Sha256::new();
    h.update(event.account_id.as_bytes());
    h.update([0]);
    match &event.message_id {
        Some(mid) => h.update(mid.as_bytes()),
        None => {
            h.update(event.kind.as_str().as_bytes());
            h.update([0]);
            h.update(event.sender_id.as_deref().unwrap_or_default().as_bytes());
            h.update([0]);
            h.update(event.timestamp.unix_micros().to_string().as_bytes());
            h.update([0]);
            if let Some(p) = &event.postback {
                h.update(p.payload.as_deref().unwrap_or_default().as_bytes());
            }
        }
    }
    format!("bot:{}", &hex::encode(h.finalize())[..32])
}

/// A reply that several messages in the conversation could be: reported,
/// neither resent nor taken for one of them.
fn ambiguous(key: &str, candidates: Vec<String>) -> SendStatus {
    warn!(key, ?candidates, "several messages could be this reply; not sending it again");
    SendStatus::Unknown { candidates }
}

fn is_story_mention(event: &Event) -> bool {
    event.reply_to.is_none() && event.attachments.iter().any(|a| a.kind == AttachmentType::Story)
}

/// What the customer did, in words (for memory and the model).
fn describe(event: &Event) -> String {
    if let Some(t) = event.text.as_deref().filter(|t| !t.is_empty()) {
        return t.to_owned();
    }
    if let Some(p) = &event.postback {
        return format!("[tapped {:?}]", p.title.as_deref().or(p.payload.as_deref()).unwrap_or(""));
    }
    if is_story_mention(event) {
        return "[mentioned the account in their story]".into();
    }
    match event.attachments.first() {
        Some(a) => format!("[sent a {}]", a.kind.as_str()),
        None => "[sent a message]".into(),
    }
}

fn clip_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Template variables.
struct Vars {
    name: Option<String>,
    username: Option<String>,
    text: String,
    intent: String,
    brand: String,
}

impl Vars {
    fn fill(&self, template: &str) -> String {
        let name = self.name.clone().unwrap_or_else(|| "there".into());
        let first = name.split_whitespace().next().unwrap_or("there").to_owned();
        template
            .replace("{{name}}", &name)
            .replace("{{first_name}}", &first)
            .replace("{{username}}", self.username.as_deref().unwrap_or("there"))
            .replace("{{text}}", &self.text)
            .replace("{{intent}}", &self.intent)
            .replace("{{brand}}", &self.brand)
    }
}
