//! Keeping accounts live: a watcher polls each account's inbox, turns every
//! change into the normalized [`Event`] that `igdm serve` emits, applies it
//! to the local store, and publishes it to the sinks.
//!
//! How it polls (private API): one inbox request per poll, the way
//! Instagram's own clients resume — the answer's `seq_id` is the account's
//! realtime sequence number, so an unchanged `seq_id` means nothing happened
//! and the poll ends there; otherwise the threads the inbox carries (each
//! with its newest items, reactions, edit counts and read positions) are
//! compared with the store, message requests are read when some wait, and
//! a thread with more new items than the inbox shows is read further back.
//! The interval is short right after activity and grows while the account is
//! idle, with jitter, and every request counts against the read budget the
//! connector declares (`pacing.poll_reads_per_hour`). Official-API accounts
//! are polled the same way through the Conversations API (conversations
//! whose last activity moved are read), within the client's rate limits.
//!
//! Crash safety: the events of a poll are stored in the event log (with the
//! same de-duplication keys `igdm serve` uses, and the poll's resume point as
//! the delivery body) in one transaction before anything is applied or
//! published; they are marked done only after the sinks took them. A watcher
//! killed in between finds them pending when it starts again and publishes
//! them before it polls; a change seen twice is stored once.
//!
//! The first poll of an account (no resume point yet) takes a baseline:
//! what the inbox shows is stored without being emitted.

mod inbox;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::{Mutex, broadcast, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use igdm_model::{ApiError, Conversation, ErrorClass, Event, Timestamp};
use igdm_spec::Connector;
use igdm_store::{EventId, MessageStore, NewDelivery, NewEvent};
use igdm_webhook::{EventSink, StoreLog, WebhookStore};

use crate::ops::{page_of, params};
use crate::{Client, Error};

use inbox::{Keyed, Snapshot, Stored, ThreadSnapshot};

const HOUR: Duration = Duration::from_secs(3600);
/// The raw-payload kind under which a watcher keeps its resume point.
const RESUME_KIND: &str = "watch_resume";
/// Pages read back at most when a thread has more new items than the inbox shows.
const GAP_PAGES: usize = 5;

/// How often a watcher polls one account.
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    /// The interval right after activity.
    pub min_interval: Duration,
    /// Where the interval settles while the account stays idle.
    pub max_interval: Duration,
    /// Most requests per `budget_window` (all requests of a poll count).
    pub reads_per_window: Option<u32>,
    /// The budget's window: an hour, shorter when time is compressed
    /// ([`PollPolicy::with_interval`]).
    pub budget_window: Duration,
    /// Random spread added to each wait, as a fraction of it (0.2 = ±20 %).
    pub jitter: f64,
}

impl PollPolicy {
    /// The policy the connector declares in `pacing` (`poll_min_interval`,
    /// `poll_max_interval`, `poll_reads_per_hour`); 30 s and 5 min when it
    /// declares none.
    #[must_use]
    pub fn for_connector(connector: &Connector) -> Self {
        let p = connector.pacing.as_ref();
        let min = p.and_then(|p| p.poll_min_interval).unwrap_or(Duration::from_secs(30));
        let max = p.and_then(|p| p.poll_max_interval).unwrap_or(Duration::from_secs(300));
        Self {
            min_interval: min,
            max_interval: max.max(min),
            reads_per_window: p.and_then(|p| p.poll_reads_per_hour),
            budget_window: HOUR,
            jitter: 0.2,
        }
    }

    /// The policy with `interval` as the interval after activity.
    ///
    /// At or above the declared minimum only that interval changes. Below
    /// it, time is compressed: the idle interval and the budget's window
    /// shrink by the same factor, so the budget keeps its proportion (for
    /// emulators and tests). `allow_faster` says whether that is allowed;
    /// against Instagram itself it is not.
    ///
    /// # Errors
    /// [`Error::Config`] for a zero interval, or one below the declared
    /// minimum without `allow_faster`.
    pub fn with_interval(mut self, interval: Duration, allow_faster: bool) -> Result<Self, Error> {
        if interval.is_zero() {
            return Err(Error::Config("the poll interval must be more than zero".into()));
        }
        if interval >= self.min_interval {
            self.min_interval = interval;
            self.max_interval = self.max_interval.max(interval);
            return Ok(self);
        }
        if !allow_faster {
            return Err(Error::Config(format!(
                "the poll interval {interval:?} is below the connector's poll_min_interval ({:?}); \
                 polling Instagram faster risks the account",
                self.min_interval
            )));
        }
        let factor = self.min_interval.as_secs_f64() / interval.as_secs_f64();
        self.min_interval = interval;
        self.max_interval = self.max_interval.div_f64(factor).max(interval);
        self.budget_window = self.budget_window.div_f64(factor);
        Ok(self)
    }

    /// The next interval: back to the minimum after activity, half again as
    /// long after an idle poll, up to the maximum.
    #[must_use]
    pub fn next_interval(&self, current: Duration, active: bool) -> Duration {
        if active {
            self.min_interval
        } else {
            current.mul_f64(1.5).clamp(self.min_interval, self.max_interval)
        }
    }

    /// Most requests per hour this policy allows at idle, counted on
    /// Instagram's clock (the window scaled back when time is compressed).
    #[must_use]
    pub fn budget_per_hour(&self) -> Option<f64> {
        self.reads_per_window
            .map(|n| f64::from(n) * HOUR.as_secs_f64() / self.budget_window.as_secs_f64())
    }
}

/// The read budget: at most `limit` requests in any `window`.
#[derive(Debug)]
struct Budget {
    window: Duration,
    limit: Option<u32>,
    stamps: VecDeque<Instant>,
}

impl Budget {
    fn new(policy: &PollPolicy) -> Self {
        Self {
            window: policy.budget_window,
            limit: policy.reads_per_window,
            stamps: VecDeque::new(),
        }
    }

    /// Waits until one more request fits the budget, and counts it.
    async fn take(&mut self) {
        if let Some(limit) = self.limit {
            let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
            loop {
                let now = Instant::now();
                while self.stamps.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
                    self.stamps.pop_front();
                }
                if self.stamps.len() < limit {
                    break;
                }
                let Some(oldest) = self.stamps.front().copied() else { break };
                debug!("read budget spent; waiting");
                tokio::time::sleep_until(oldest + self.window).await;
            }
        }
        self.stamps.push_back(Instant::now());
    }
}

fn store_err(e: impl std::fmt::Display) -> Error {
    Error::Config(format!("local store: {e}"))
}

/// Where watchers keep and send what they see: the message store, the
/// event log, the sinks and the in-process channel. One hub serves every
/// watcher of a process.
pub struct Hub {
    messages: Arc<dyn MessageStore>,
    log: Arc<dyn MessageStore>,
    sinks: Vec<Arc<dyn EventSink>>,
    events: broadcast::Sender<Event>,
    /// Commits and recoveries go one at a time, so that a recovery never
    /// takes the events a commit is still publishing.
    serial: Mutex<()>,
    owner: String,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("sinks", &self.sinks.len()).finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub over the message store and the event log (a database of its own
    /// on SQLite: one watcher process per log).
    #[must_use]
    pub fn new(messages: Arc<dyn MessageStore>, log: Arc<dyn MessageStore>) -> Self {
        let (events, _) = broadcast::channel(4096);
        Self {
            messages,
            log,
            sinks: Vec::new(),
            events,
            serial: Mutex::new(()),
            owner: format!("watch-{}", std::process::id()),
        }
    }

    /// Adds a sink; every event goes to every sink, in order.
    #[must_use]
    pub fn with_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// The message store.
    #[must_use]
    pub fn messages(&self) -> &Arc<dyn MessageStore> {
        &self.messages
    }

    /// A receiver of every event published from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Every event published from now on, as a [`Stream`]. A consumer that
    /// falls more than 4,096 events behind skips the oldest; the store and
    /// the sinks do not.
    pub fn events(&self) -> impl Stream<Item = Event> + Send + 'static {
        futures::stream::unfold(self.subscribe(), |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => return Some((e, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(skipped = n, "an event stream fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    fn applier(&self, names: HashMap<String, String>) -> StoreLog {
        StoreLog::new(self.log.clone())
            .with_message_store(self.messages.clone())
            .with_account_names(names)
    }

    /// Publishes what an earlier run (or a failed publish) left pending in
    /// the log: applies it again (applying is idempotent), hands it to the
    /// sinks and marks it done. Returns how many events it published.
    ///
    /// # Errors
    /// When the log cannot be read or a sink refuses.
    pub async fn recover(&self) -> Result<usize, Error> {
        let _serial = self.serial.lock().await;
        let claimed = self
            .log
            .claim_events(&self.owner, 10_000, Duration::from_secs(5))
            .await
            .map_err(store_err)?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(claimed.len());
        let mut events = Vec::with_capacity(claimed.len());
        let mut names = HashMap::new();
        for stored in claimed {
            ids.push(stored.id);
            match serde_json::from_value::<Event>(stored.payload) {
                Ok(e) => {
                    names.insert(e.account_id.clone(), stored.account_id);
                    events.push(e);
                }
                Err(e) => warn!(error = %e, "a stored event could not be read; skipped"),
            }
        }
        self.applier(names).apply_events(&events).await.map_err(store_err)?;
        let n = events.len();
        self.publish(events, &ids).await?;
        info!(events = n, "published events left pending by an earlier run");
        Ok(n)
    }

    /// Hands events to the sinks and the channel, then marks them done. An
    /// event a sink refused stays pending in the log and is published again
    /// before the next poll.
    async fn publish(&self, events: Vec<Event>, ids: &[EventId]) -> Result<(), Error> {
        let shared: Vec<Arc<Event>> = events.into_iter().map(Arc::new).collect();
        for sink in &self.sinks {
            sink.publish(&shared).await.map_err(|e| Error::Config(e.to_string()))?;
        }
        for e in &shared {
            let _ = self.events.send((**e).clone());
        }
        self.log.complete_events(ids).await.map_err(store_err)
    }

    /// Stores a poll's events (de-duplicated) with its resume point, applies
    /// the new ones and the snapshot to the store, publishes them. Returns
    /// how many were new.
    async fn commit(&self, poll: Poll<'_>) -> Result<usize, Error> {
        let _serial = self.serial.lock().await;
        let new: Vec<NewEvent> = poll
            .events
            .iter()
            .map(|k| {
                Ok(NewEvent {
                    dedup_key: k.key.clone(),
                    kind: k.event.kind.clone(),
                    account_id: poll.account.to_owned(),
                    payload: serde_json::to_value(&k.event)
                        .map_err(|e| Error::Shape(e.to_string()))?,
                })
            })
            .collect::<Result<_, Error>>()?;
        let body = serde_json::to_vec(&poll.resume).map_err(|e| Error::Shape(e.to_string()))?;
        let recorded = self
            .log
            .record_deliveries(&[NewDelivery {
                raw_body: &body,
                received_at: Timestamp::now(),
                events: &new,
                dead_letter: None,
            }])
            .await
            .map_err(store_err)?;
        let event_ids = recorded.first().map(|r| r.event_ids.clone()).unwrap_or_default();
        let mut ids = Vec::new();
        let mut fresh = Vec::new();
        for (k, id) in poll.events.into_iter().zip(event_ids) {
            if let Some(id) = id {
                ids.push(id);
                fresh.push(k.event);
            }
        }
        self.apply_snapshot(poll.account, poll.names, poll.conversations, &fresh, &poll.messages)
            .await?;
        let n = fresh.len();
        if n > 0 {
            self.publish(fresh, &ids).await?;
        }
        self.messages
            .put_raw_payload(poll.account, RESUME_KIND, "inbox", &poll.resume)
            .await
            .map_err(store_err)?;
        Ok(n)
    }

    /// Writes the conversations, the events and the messages as seen.
    async fn apply_snapshot(
        &self,
        account: &str,
        names: HashMap<String, String>,
        conversations: &[Conversation],
        events: &[Event],
        messages: &[igdm_model::Message],
    ) -> Result<(), Error> {
        for c in conversations {
            self.messages.upsert_conversation(account, c).await.map_err(store_err)?;
        }
        self.applier(names).apply_events(events).await.map_err(store_err)?;
        if !messages.is_empty() {
            self.messages.upsert_messages(account, messages).await.map_err(store_err)?;
        }
        Ok(())
    }
}

/// What one poll hands to [`Hub::commit`].
struct Poll<'a> {
    account: &'a str,
    names: HashMap<String, String>,
    resume: Value,
    conversations: &'a [Conversation],
    events: Vec<Keyed>,
    messages: Vec<igdm_model::Message>,
}

/// Why a watcher stopped.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WatchStop {
    /// It was asked to stop.
    Stopped,
    /// The session needs the user (a challenge, a checkpoint, a logout):
    /// the error says what to do next.
    NeedsUser(ApiError),
}

/// Watches one account: polls it per its [`PollPolicy`] and commits what
/// changed through the [`Hub`].
pub struct Watcher {
    client: Client,
    hub: Arc<Hub>,
    policy: PollPolicy,
    budget: Budget,
    resume: Option<Value>,
    resume_loaded: bool,
    viewer: Option<String>,
    /// Where arriving media are kept (`watch --media`), if anywhere.
    media: Option<Arc<crate::keep::MediaStore>>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("account", &self.client.account().name)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Whether an error ends the account's watch until the user acts.
fn needs_user(e: &Error) -> Option<ApiError> {
    match e {
        Error::Api(a)
            if a.needs_user
                || matches!(
                    a.class,
                    ErrorClass::AuthExpired
                        | ErrorClass::Challenge
                        | ErrorClass::Checkpoint
                        | ErrorClass::Consent
                ) =>
        {
            Some(a.clone())
        }
        _ => None,
    }
}

impl Watcher {
    /// A watcher of `client`'s account.
    #[must_use]
    pub fn new(client: Client, hub: Arc<Hub>, policy: PollPolicy) -> Self {
        let budget = Budget::new(&policy);
        let viewer = client.account().user_id.clone();
        Self {
            client,
            hub,
            policy,
            budget,
            resume: None,
            resume_loaded: false,
            viewer,
            media: None,
        }
    }

    /// Keeps the photos, videos, voice notes and files of arriving messages
    /// in `media` (the content-addressed media store) as they are committed.
    #[must_use]
    pub fn with_media(mut self, media: Arc<crate::keep::MediaStore>) -> Self {
        self.media = Some(media);
        self
    }

    /// Keeps the media of committed messages. A file that cannot be kept
    /// (a refused link, a limit) is logged, never fatal to the watch: a later
    /// `igdm sync --media` or `igdm media get` catches up.
    async fn keep_media(&self, messages: &[igdm_model::Message]) {
        let Some(media) = &self.media else { return };
        let mut keeper = crate::keep::Keeper::new(&self.client, &*self.hub.messages, media);
        for m in messages {
            match keeper.keep_message(m).await {
                Ok((files, _)) => {
                    debug!(message = %m.id.as_str(), files = files.len(), "media kept");
                }
                Err(e) => {
                    warn!(message = %m.id.as_str(), error = %e, "media of an arriving message not kept");
                }
            }
        }
    }

    /// The account's name.
    #[must_use]
    pub fn account(&self) -> &str {
        &self.client.account().name
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &PollPolicy {
        &self.policy
    }

    /// Polls until `stop` turns true or the session needs the user. The first
    /// poll runs at once; `ready` is called after it (baseline taken).
    ///
    /// # Errors
    /// Local store failures and errors no later poll can fix; rate limits
    /// and passing failures only slow the watcher down.
    pub async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
        ready: impl FnOnce(&str) + Send,
    ) -> Result<WatchStop, Error> {
        let mut ready = Some(ready);
        let mut interval = self.policy.min_interval;
        loop {
            if *stop.borrow() {
                return Ok(WatchStop::Stopped);
            }
            match self.poll_once().await {
                Ok(n) => {
                    if let Some(r) = ready.take() {
                        r(self.account());
                    }
                    interval = self.policy.next_interval(interval, n > 0);
                }
                Err(e) => {
                    if let Some(a) = needs_user(&e) {
                        return Ok(WatchStop::NeedsUser(a));
                    }
                    let api = e.to_api_error();
                    if !matches!(api.class, ErrorClass::RateLimited | ErrorClass::Transient) {
                        return Err(e);
                    }
                    warn!(account = self.account(), error = %e, "poll failed; slowing down");
                    interval = self.policy.max_interval;
                    if let Some(s) = api.retry_after {
                        interval = interval.max(Duration::from_secs(s));
                    }
                }
            }
            let spread = 1.0 + self.policy.jitter * (rand::random::<f64>() * 2.0 - 1.0);
            let wait = interval.mul_f64(spread.max(0.0));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One poll: publishes what an earlier run left pending, reads the
    /// inbox, and commits what changed. Returns how many new events it
    /// published.
    ///
    /// # Errors
    /// API errors (classified) and local store failures.
    pub async fn poll_once(&mut self) -> Result<usize, Error> {
        let recovered = self.hub.recover().await?;
        let name = self.client.account().name.clone();
        if !self.resume_loaded {
            self.resume = self
                .hub
                .messages
                .get_raw_payload(&name, RESUME_KIND, "inbox")
                .await
                .map_err(store_err)?;
            self.resume_loaded = true;
        }
        let snap = self.snapshot().await?;
        if let Some(v) = &snap.viewer {
            self.viewer = Some(v.clone());
        }
        if snap.unchanged {
            debug!(account = %name, "nothing new");
            return Ok(recovered);
        }
        let baseline = self.resume.is_none();
        let seq = snap.seq_id;
        let viewer = self.viewer.clone().unwrap_or_else(|| name.clone());
        let now = snap
            .snapshot_at_ms
            .and_then(Timestamp::from_unix_millis)
            .unwrap_or_else(Timestamp::now);
        let mut events = Vec::new();
        let mut messages = Vec::new();
        let mut conversations = Vec::new();
        for mut t in snap.threads {
            let stored = self.stored(&name, t.conversation.id.as_str()).await?;
            if !baseline {
                self.fill_gap(&mut t, &stored).await?;
            }
            events.extend(inbox::diff_thread(&viewer, &viewer, &t, &stored, now));
            messages.extend(t.messages);
            conversations.push(t.conversation);
        }
        let resume = json!({
            "source": "igdm-watch",
            "account": name,
            "seq_id": seq,
            "snapshot_at_ms": snap.snapshot_at_ms,
        });
        let names = HashMap::from([(viewer.clone(), name.clone())]);
        if baseline {
            // What the account already had: stored, not emitted.
            let silent: Vec<Event> = events.into_iter().map(|k| k.event).collect();
            self.hub.apply_snapshot(&name, names, &conversations, &silent, &messages).await?;
            self.hub
                .messages
                .put_raw_payload(&name, RESUME_KIND, "inbox", &resume)
                .await
                .map_err(store_err)?;
            self.resume = Some(resume);
            info!(account = %name, "baseline taken");
            return Ok(recovered);
        }
        // Only the messages this poll reports as new: older ones are
        // `sync --media`'s, and a link that keeps failing must not cost a
        // re-read on every poll.
        let with_media: Vec<igdm_model::Message> = if self.media.is_some() {
            let arrived: std::collections::HashSet<&str> = events
                .iter()
                .filter(|k| k.event.kind == igdm_model::EventKind::Message)
                .filter_map(|k| k.event.message_id.as_deref())
                .collect();
            messages
                .iter()
                .filter(|m| arrived.contains(m.id.as_str()))
                .filter(|m| m.attachments.iter().any(|a| a.url.is_some()))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let poll = Poll {
            account: &name,
            names,
            resume: resume.clone(),
            conversations: &conversations,
            events,
            messages,
        };
        let n = self.hub.commit(poll).await?;
        self.resume = Some(resume);
        self.keep_media(&with_media).await;
        Ok(recovered + n)
    }

    /// What the store holds of a conversation, for the comparison.
    async fn stored(&self, account: &str, conv: &str) -> Result<Stored, Error> {
        let store = &self.hub.messages;
        let messages = store.list_messages(account, conv, 50, None).await.map_err(store_err)?.items;
        let receipt = store
            .get_raw_payload(account, "read_receipt", conv)
            .await
            .map_err(store_err)?
            .and_then(|r| {
                let who = r.get("sender_id")?.as_str()?.to_owned();
                let at = Timestamp::parse(r.get("timestamp")?.as_str()?)?;
                Some((who, at.unix_millis()))
            });
        Ok(Stored { messages, receipt })
    }

    /// Reads a thread further back when every item the inbox shows is new
    /// and the store knows older ones: the items in between were missed.
    async fn fill_gap(&mut self, t: &mut ThreadSnapshot, stored: &Stored) -> Result<(), Error> {
        let Some(newest_known) = stored.messages.first() else { return Ok(()) };
        let known = |m: &igdm_model::Message| m.timestamp <= newest_known.timestamp;
        let mut cursor = t.oldest_cursor.clone();
        let mut pages = 0;
        while t.has_older && !t.messages.iter().any(known) && pages < GAP_PAGES {
            let Some(c) = cursor.take() else { break };
            self.budget.take().await;
            let out = self
                .client
                .invoke(
                    "list",
                    params(&[
                        ("conversation_id", json!(t.conversation.id.as_str())),
                        ("cursor", json!(c)),
                        ("limit", json!(20)),
                    ]),
                )
                .await?;
            let (page, _) = page_of::<igdm_model::Message>("list", out)?;
            pages += 1;
            t.has_older = page.has_more && !page.items.is_empty();
            cursor = page.next_cursor;
            t.messages.extend(page.items);
        }
        Ok(())
    }

    /// Reads the inbox (and the message requests when some wait).
    async fn snapshot(&mut self) -> Result<Snapshot, Error> {
        let connector = self.client.connector().clone();
        let mut snap = Snapshot::default();
        self.budget.take().await;
        let out = self.client.invoke("list_conversations", params(&[("limit", json!(20))])).await?;
        let raw = out.raw_json().unwrap_or(Value::Null);
        let (page, _) = page_of::<Conversation>("list_conversations", out)?;
        let inline = raw.get("inbox").and_then(|i| i.get("threads")).is_some();
        if inline {
            // The realtime sequence number moves with every change to the
            // account's threads: when it has not, there is nothing to read.
            let seq = raw.get("seq_id").and_then(Value::as_i64);
            let last = self.resume.as_ref().and_then(|r| r.get("seq_id")).and_then(Value::as_i64);
            if seq.is_some() && seq == last {
                snap.seq_id = seq;
                snap.unchanged = true;
                return Ok(snap);
            }
            inbox::read_inbox(&connector, &raw, page.items, &mut snap)?;
            if snap.pending_requests > 0 && connector.action("list_pending").is_some() {
                self.budget.take().await;
                let out =
                    self.client.invoke("list_pending", params(&[("limit", json!(20))])).await?;
                let raw = out.raw_json().unwrap_or(Value::Null);
                let (page, _) = page_of::<Conversation>("list_pending", out)?;
                inbox::read_inbox(&connector, &raw, page.items, &mut snap)?;
            }
            return Ok(snap);
        }
        // Conversations API: read the conversations whose activity moved.
        let name = self.client.account().name.clone();
        for conversation in page.items {
            let id = conversation.id.to_string();
            let stored = self.hub.messages.get_conversation(&name, &id).await.map_err(store_err)?;
            let moved = stored
                .as_ref()
                .and_then(|s| s.updated_at)
                .is_none_or(|s| conversation.updated_at.is_some_and(|u| u > s));
            if !moved && self.resume.is_some() {
                continue;
            }
            self.budget.take().await;
            let out = self
                .client
                .invoke("list", params(&[("conversation_id", json!(id)), ("limit", json!(20))]))
                .await?;
            let (messages, _) = page_of::<igdm_model::Message>("list", out)?;
            snap.threads.push(ThreadSnapshot {
                conversation,
                has_older: messages.has_more,
                oldest_cursor: messages.next_cursor,
                messages: messages.items,
                edit_counts: HashMap::new(),
                reaction_times: HashMap::new(),
                last_seen: Vec::new(),
            });
        }
        Ok(snap)
    }
}

/// `(policy, requests, elapsed)` → the requests per hour on Instagram's
/// clock that `requests` made in `elapsed` amount to under `policy` (which
/// may compress time).
#[must_use]
pub fn hourly_rate(policy: &PollPolicy, requests: u64, elapsed: Duration) -> f64 {
    let scale = HOUR.as_secs_f64() / policy.budget_window.as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let n = requests as f64;
    n / (elapsed.as_secs_f64() * scale) * HOUR.as_secs_f64()
}
