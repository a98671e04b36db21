//! Typed operations over the normalized actions, as builders that run with
//! `.await` (or `.send()`) and can also build their request without sending.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tracing::{info, warn};

use igdm_model::{Conversation, Message, Page, Timestamp};
use igdm_spec::{ActionOutput, HttpRequest};

use crate::Error;
use crate::client::{CallError, Client};
use crate::ledger::SendState;

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which built-in connector can do an action this one cannot, for error
/// messages: the first other embedded connector whose file declares it.
#[must_use]
pub fn backend_hint(action: &str, connector: &str) -> Option<&'static str> {
    igdm_connectors::all()
        .iter()
        .filter(|(id, _)| *id != connector)
        .find(|(id, text)| {
            igdm_spec::Connector::load(text, &format!("{id}.md"))
                .is_ok_and(|c| c.action(action).is_some())
        })
        .map(|(id, _)| *id)
}

/// The actions that create a message. Run by name ([`Client::perform`]),
/// they go through the send ledger: at most once per idempotency key, an
/// unknown outcome reconciled, never blindly resent.
pub const MESSAGE_SENDS: &[&str] = &[
    "send",
    "send_to_user",
    "send_link",
    "send_like",
    "send_like_heart",
    "media_share",
    "send_photo",
    "send_video",
    "send_voice",
    "send_image",
    "send_audio",
    "send_file",
    "send_attachment",
    "send_quick_replies",
    "send_generic_template",
    "send_button_template",
    "reply_to_comment",
];

/// How many pages of conversations [`Client::resolve_user`] reads per folder.
const USERNAME_PAGES: usize = 5;

/// What [`Client::perform`] did.
#[derive(Debug)]
#[non_exhaustive]
pub enum Performed {
    /// A message send, through the send ledger.
    Sent(SendOutcome),
    /// Any other action: its mapped output.
    Ran(ActionOutput),
}

/// Action parameters from `(name, value)` pairs; null values are left out,
/// so optional parameters can be passed as `Value::Null` when absent.
#[must_use]
pub fn params(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

fn decode<T: DeserializeOwned>(action: &str, value: Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| Error::Shape(format!("{action}: {e}")))
}

/// Turns an action's output into a page of `T`, with the action's warnings.
///
/// # Errors
/// When the mapped data does not fit `T`.
pub fn page_of<T: DeserializeOwned>(
    action: &str,
    out: ActionOutput,
) -> Result<(Page<T>, Vec<String>), Error> {
    to_page(action, out)
}

/// Turns an action's output into a page of `T`.
pub(crate) fn to_page<T: DeserializeOwned>(
    action: &str,
    out: ActionOutput,
) -> Result<(Page<T>, Vec<String>), Error> {
    let items: Vec<T> = match out.data {
        Value::Null => Vec::new(),
        Value::Array(_) => decode(action, out.data)?,
        other => vec![decode(action, other)?],
    };
    let (next_cursor, has_more) = match out.page {
        Some(p) => (p.next_cursor, p.has_more),
        None => (None, false),
    };
    Ok((Page { items, next_cursor, has_more }, out.warnings))
}

impl Client {
    /// Runs any action of the connector and returns its mapped JSON.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn run(
        &self,
        action: &str,
        params: Map<String, Value>,
    ) -> Result<ActionOutput, Error> {
        Ok(self.call(action, &params).await?)
    }

    /// Lists conversations.
    pub fn conversations(&self) -> ListConversations<'_> {
        ListConversations { client: self, unread: false, pending: false, limit: None, cursor: None }
    }

    /// Lists the messages of a conversation, newest first.
    pub fn messages(&self, conversation_id: impl Into<String>) -> ListMessages<'_> {
        ListMessages {
            client: self,
            conversation_id: conversation_id.into(),
            limit: None,
            cursor: None,
        }
    }

    /// Sends a text message into a conversation.
    pub fn send(
        &self,
        conversation_id: impl Into<String>,
        text: impl Into<String>,
    ) -> SendMessage<'_> {
        SendMessage {
            client: self,
            conversation_id: conversation_id.into(),
            text: text.into(),
            reply_to: None,
            idempotency_key: None,
            extra: Map::new(),
        }
    }
}

/// `client.conversations()`.
#[must_use = "requests do nothing until awaited"]
#[derive(Debug)]
pub struct ListConversations<'a> {
    client: &'a Client,
    unread: bool,
    pending: bool,
    limit: Option<u32>,
    cursor: Option<String>,
}

impl<'a> ListConversations<'a> {
    /// Only conversations with unread messages.
    pub fn unread(mut self) -> Self {
        self.unread = true;
        self
    }
    /// The message-request (pending) folder instead of the inbox.
    pub fn pending(mut self) -> Self {
        self.pending = true;
        self
    }
    /// At most this many.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }
    /// Continue from a cursor returned by a previous page.
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    fn action(&self) -> &'static str {
        if self.pending { "list_pending" } else { "list_conversations" }
    }

    fn params(&self) -> Map<String, Value> {
        let mut p = Map::new();
        if let Some(n) = self.limit {
            p.insert("limit".into(), json!(n));
        }
        if let Some(c) = &self.cursor {
            p.insert("cursor".into(), json!(c));
        }
        if self.unread {
            p.insert("filter".into(), json!("unread"));
        }
        p
    }

    /// The request this would send.
    ///
    /// # Errors
    /// Invalid parameters or an unsupported action.
    pub async fn build_request(&self) -> Result<HttpRequest, Error> {
        self.client.build_request(self.action(), &self.params()).await
    }

    /// Sends it.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn send(self) -> Result<(Page<Conversation>, Vec<String>), Error> {
        let action = self.action();
        let out = self.client.call(action, &self.params()).await?;
        to_page(action, out)
    }
}

impl<'a> IntoFuture for ListConversations<'a> {
    type Output = Result<(Page<Conversation>, Vec<String>), Error>;
    type IntoFuture = BoxFut<'a, Self::Output>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// `client.messages(conversation)`.
#[must_use = "requests do nothing until awaited"]
#[derive(Debug)]
pub struct ListMessages<'a> {
    client: &'a Client,
    conversation_id: String,
    limit: Option<u32>,
    cursor: Option<String>,
}

impl<'a> ListMessages<'a> {
    /// At most this many.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }
    /// Continue from a cursor returned by a previous page.
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    fn params(&self) -> Map<String, Value> {
        let mut p = Map::new();
        p.insert("conversation_id".into(), json!(self.conversation_id));
        if let Some(n) = self.limit {
            p.insert("limit".into(), json!(n));
        }
        if let Some(c) = &self.cursor {
            p.insert("cursor".into(), json!(c));
        }
        p
    }

    /// The request this would send.
    ///
    /// # Errors
    /// Invalid parameters.
    pub async fn build_request(&self) -> Result<HttpRequest, Error> {
        self.client.build_request("list", &self.params()).await
    }

    /// Sends it.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn send(self) -> Result<(Page<Message>, Vec<String>), Error> {
        let out = self.client.call("list", &self.params()).await?;
        to_page("list", out)
    }
}

impl<'a> IntoFuture for ListMessages<'a> {
    type Output = Result<(Page<Message>, Vec<String>), Error>;
    type IntoFuture = BoxFut<'a, Self::Output>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// How a send ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Sent {
    /// Sent now: a new message.
    Sent,
    /// The key had already sent: the first result is returned, nothing was sent.
    Replayed,
    /// An earlier attempt whose outcome was unknown turned out to have
    /// arrived: that message is returned, nothing was sent.
    Reconciled,
}

impl Sent {
    /// The stable name (`sent`, `replayed`, `reconciled`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Replayed => "replayed",
            Self::Reconciled => "reconciled",
        }
    }
}

impl std::fmt::Display for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a send returned.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SendOutcome {
    /// The idempotency key used.
    pub idempotency_key: String,
    /// The mapped result of the send action (for a reconciled send, the
    /// message found in the conversation).
    pub result: Value,
    /// How it ended.
    pub outcome: Sent,
}

/// `client.send(conversation, text)`.
#[must_use = "requests do nothing until awaited"]
#[derive(Debug)]
pub struct SendMessage<'a> {
    client: &'a Client,
    conversation_id: String,
    text: String,
    reply_to: Option<String>,
    idempotency_key: Option<String>,
    extra: Map<String, Value>,
}

impl<'a> SendMessage<'a> {
    /// Reply to this message.
    pub fn reply_to(mut self, message_id: impl Into<String>) -> Self {
        self.reply_to = Some(message_id.into());
        self
    }
    /// Use this idempotency key (default: a new one). The same key never sends twice.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
    /// Sets another parameter of the connector's `send` action.
    pub fn param(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    fn params(&self) -> Map<String, Value> {
        let mut p = self.extra.clone();
        p.insert("conversation_id".into(), json!(self.conversation_id));
        p.insert("text".into(), json!(self.text));
        if let Some(r) = &self.reply_to {
            p.insert("reply_to".into(), json!(r));
        }
        p
    }

    /// The request this would send.
    ///
    /// # Errors
    /// Invalid parameters.
    pub async fn build_request(&self) -> Result<HttpRequest, Error> {
        let params = self.client.adapt("send", self.params()).await?;
        self.client.build_request("send", &params).await
    }

    /// Sends it, at most once per idempotency key, recorded in the client's
    /// [send ledger](crate::ledger).
    ///
    /// # Errors
    /// As [`Client::call`]; [`Error::OutcomeUnknown`] when the send may have
    /// arrived and the conversation does not show it; [`Error::SendAmbiguous`]
    /// when more than one message could be it.
    pub async fn send(self) -> Result<SendOutcome, Error> {
        let params = self.params();
        let mut action = self.client.send_action("send", params);
        if let Some(k) = self.idempotency_key {
            action = action.idempotency_key(k);
        }
        action.send().await
    }
}

impl<'a> IntoFuture for SendMessage<'a> {
    type Output = Result<SendOutcome, Error>;
    type IntoFuture = BoxFut<'a, Self::Output>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// `client.send_action(action, params)`: any sending action (a text, an
/// image, a template, a message to a user) through the send ledger.
#[must_use = "requests do nothing until awaited"]
#[derive(Debug)]
pub struct SendAction<'a> {
    client: &'a Client,
    action: String,
    params: Map<String, Value>,
    idempotency_key: Option<String>,
}

impl Client {
    /// Runs the sending `action` with normalized `params` (adapted as by
    /// [`Client::invoke`]) at most once per idempotency key, recorded in the
    /// client's send ledger; an unknown outcome is reconciled by reading the
    /// conversation.
    pub fn send_action(
        &self,
        action: impl Into<String>,
        params: Map<String, Value>,
    ) -> SendAction<'_> {
        SendAction { client: self, action: action.into(), params, idempotency_key: None }
    }
}

/// What reading the conversation says about a send whose outcome is unknown.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    /// This message is the send.
    One(Value),
    /// No message is (yet).
    Nothing,
    /// Several messages could be it: their ids.
    Many(Vec<String>),
    /// Nothing can be read to tell (no conversation to look in, or the
    /// connector cannot list messages): the outcome stays unknown.
    CannotTell,
}

/// Official-API timestamps have whole seconds, and the provider's clock is
/// not ours: messages this much older than the attempt still count.
const CLOCK_TOLERANCE_SECS: i64 = 5;

impl<'a> SendAction<'a> {
    /// Use this idempotency key (default: a new one). The same key never sends twice.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sends it.
    ///
    /// # Errors
    /// As [`SendMessage::send`].
    pub async fn send(self) -> Result<SendOutcome, Error> {
        let client = self.client;
        let action = self.action.as_str();
        let key = self.idempotency_key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let mut raw = self.params;
        // The private API de-duplicates on client_context and echoes it on
        // the item: carry the key there (a fresh token for a key too long).
        let declares_context = client
            .connector()
            .action(action)
            .is_some_and(|a| a.params().contains_key("client_context"));
        if declares_context && !raw.contains_key("client_context") {
            let token =
                if key.len() <= 64 { key.clone() } else { uuid::Uuid::new_v4().to_string() };
            raw.insert("client_context".into(), json!(token));
        }
        let target = Target::of(&raw);
        let params = client.adapt(action, raw.clone()).await?;
        // Validate before recording anything.
        client.build_request(action, &params).await?;
        let begun = client
            .ledger()
            .begin(&crate::ledger::NewSend {
                idempotency_key: key.clone(),
                account_id: client.account().name.clone(),
                conversation_id: target.conversation.clone(),
                recipient_id: target.user.clone(),
                payload: json!({"action": action, "params": raw}),
            })
            .await?;
        let entry = begun.entry;
        match entry.state {
            SendState::Sent => {
                info!(key = %key, "idempotency key already sent; returning the first result");
                return Ok(SendOutcome {
                    idempotency_key: key,
                    result: entry.result.unwrap_or(Value::Null),
                    outcome: Sent::Replayed,
                });
            }
            SendState::Sending | SendState::Unknown if !begun.created => {
                // An earlier attempt ended without a verdict: read the conversation first.
                let stored = Target::of_entry(&entry);
                match client.reconcile(&entry, &stored, entry.created_at).await? {
                    Found::One(found) => return client.reconciled(key, found).await,
                    Found::Many(candidates) => {
                        return Err(Error::SendAmbiguous { key, candidates });
                    }
                    Found::Nothing => {}
                    Found::CannotTell => return Err(Error::OutcomeUnknown { key }),
                }
            }
            SendState::Unrecognized => {
                return Err(Error::Ledger(format!(
                    "the send under key {key} is in a state this version of igdm does not know; nothing was sent"
                )));
            }
            _ => {}
        }
        let attempt = Timestamp::now();
        client.ledger().mark(&key, SendState::Sending, None, None).await?;
        match client.call(action, &params).await {
            Ok(out) => {
                client.ledger().mark(&key, SendState::Sent, Some(&out.data), None).await?;
                Ok(SendOutcome { idempotency_key: key, result: out.data, outcome: Sent::Sent })
            }
            Err(CallError::OutcomeUnknown(why)) => {
                warn!(key = %key, %why, "send outcome unknown; reading the conversation to reconcile");
                client.ledger().mark(&key, SendState::Unknown, None, Some(&why)).await?;
                match client.reconcile(&entry, &target, attempt).await? {
                    Found::One(found) => client.reconciled(key, found).await,
                    Found::Many(candidates) => Err(Error::SendAmbiguous { key, candidates }),
                    Found::Nothing | Found::CannotTell => Err(Error::OutcomeUnknown { key }),
                }
            }
            Err(e) => {
                // Refused for sure, nothing arrived: a retry may send
                // (pending), or the refusal is final (failed).
                let e = Error::from(e);
                let api = e.to_api_error();
                let state = if api.retryable { SendState::Pending } else { SendState::Failed };
                if let Err(err) = client.ledger().mark(&key, state, None, Some(&api.message)).await
                {
                    warn!(key = %key, error = %err, "could not record the refused send");
                }
                Err(e)
            }
        }
    }
}

impl<'a> IntoFuture for SendAction<'a> {
    type Output = Result<SendOutcome, Error>;
    type IntoFuture = BoxFut<'a, Self::Output>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// Where a send went and what identifies its message, for reconciliation.
#[derive(Debug, Clone, Default)]
struct Target {
    conversation: Option<String>,
    user: Option<String>,
    text: Option<String>,
    client_context: Option<String>,
}

impl Target {
    fn of(params: &Map<String, Value>) -> Self {
        let get = |k: &str| params.get(k).and_then(Value::as_str).map(str::to_owned);
        Self {
            conversation: get("conversation_id"),
            user: get("user_id"),
            text: get("text"),
            client_context: get("client_context"),
        }
    }

    /// The target recorded in a ledger entry (its normalized parameters).
    fn of_entry(entry: &crate::ledger::LedgerEntry) -> Self {
        let mut t = match &entry.payload["params"] {
            Value::Object(p) => Self::of(p),
            _ => Self::default(),
        };
        // The parameters say where it went; the entry's columns only when
        // they do not (the bot files a reply under its customer's id).
        if t.conversation.is_none() && t.user.is_none() {
            t.conversation.clone_from(&entry.conversation_id);
            t.user.clone_from(&entry.recipient_id);
        }
        t
    }
}

impl Client {
    /// Reads the conversation for a send left `sending` or `unknown` in the
    /// ledger (by an interrupted process, or an unknown outcome) and records
    /// what it finds, without sending anything: `Some` with the message when
    /// it arrived (or the result when the key is already sent), `None` when
    /// the conversation does not show it (the caller decides whether to send
    /// again with the same key).
    ///
    /// # Errors
    /// [`Error::SendAmbiguous`] when several messages could be it;
    /// [`Error::OutcomeUnknown`] when there is nothing to read (a private
    /// reply to a comment names no conversation); a key the ledger does not
    /// have; the reads' errors.
    pub async fn reconcile_send(&self, key: &str) -> Result<Option<SendOutcome>, Error> {
        let entry = self
            .ledger()
            .get(key)
            .await?
            .ok_or_else(|| Error::Ledger(format!("no send under key {key}")))?;
        if entry.state == SendState::Sent {
            return Ok(Some(SendOutcome {
                idempotency_key: entry.idempotency_key,
                result: entry.result.unwrap_or(Value::Null),
                outcome: Sent::Replayed,
            }));
        }
        let target = Target::of_entry(&entry);
        match self.reconcile(&entry, &target, entry.created_at).await? {
            Found::One(found) => self.reconciled(key.to_owned(), found).await.map(Some),
            Found::Many(candidates) => {
                Err(Error::SendAmbiguous { key: key.to_owned(), candidates })
            }
            Found::Nothing => Ok(None),
            Found::CannotTell => Err(Error::OutcomeUnknown { key: key.to_owned() }),
        }
    }

    async fn reconciled(&self, key: String, found: Value) -> Result<SendOutcome, Error> {
        self.ledger().mark(&key, SendState::Sent, Some(&found), None).await?;
        info!(key = %key, "an attempt whose outcome was unknown had arrived; not sending it again");
        Ok(SendOutcome { idempotency_key: key, result: found, outcome: Sent::Reconciled })
    }

    /// Reads the conversation for the message a send produced.
    ///
    /// Where the connector echoes the send's `client_context` on items (the
    /// private API), only the item carrying it is the send. Otherwise (the
    /// official API, whose sends carry no id of the caller's) the candidates
    /// are the account's own messages with the same text (or, for a send
    /// without text, without text) since the attempt,
    /// less those other sends in the ledger already claimed: exactly one is
    /// the send; none leaves it unknown; several are reported, never guessed.
    async fn reconcile(
        &self,
        entry: &crate::ledger::LedgerEntry,
        target: &Target,
        since: Timestamp,
    ) -> Result<Found, Error> {
        let key = entry.idempotency_key.as_str();
        if !self.supports("list") {
            return Ok(Found::CannotTell);
        }
        let conversation = match (&target.conversation, &target.user) {
            (Some(c), _) => c.clone(),
            (None, Some(user)) if self.supports("find_conversation") => {
                let mut p = Map::new();
                p.insert("user_id".into(), json!(user));
                let out = self.invoke("find_conversation", p).await?;
                match out.data.get("id").and_then(Value::as_str) {
                    Some(id) => id.to_owned(),
                    None => return Ok(Found::Nothing),
                }
            }
            _ => return Ok(Found::CannotTell),
        };
        let mut p = Map::new();
        p.insert("conversation_id".into(), json!(conversation));
        p.insert("limit".into(), json!(20));
        let out = self.invoke("list", p).await?;
        let items = match &out.data {
            Value::Array(items) => items.clone(),
            _ => Vec::new(),
        };
        let echoes = items.iter().any(|m| m.get("client_context").is_some());
        if let (Some(cc), true) = (&target.client_context, echoes) {
            return Ok(items
                .into_iter()
                .find(|m| {
                    m["sender"]["is_self"] == true && m["client_context"].as_str() == Some(cc)
                })
                .map_or(Found::Nothing, Found::One));
        }
        // A send without text (an image, a card) is recognized as a message
        // without text (an empty one, on the official API).
        let text = target.text.as_deref().filter(|t| !t.is_empty());
        let (page, _) = to_page::<Message>("list", out)?;
        let floor = Timestamp(since.0 - chrono::Duration::seconds(CLOCK_TOLERANCE_SECS));
        // Messages other sends of the ledger already are.
        let mut claimed: Vec<String> = Vec::new();
        for other in [Some(conversation.as_str()), target.user.as_deref()].into_iter().flatten() {
            let day = Timestamp(floor.0 - chrono::Duration::days(1));
            for e in self.ledger().since(&entry.account_id, other, day).await? {
                if e.idempotency_key != key
                    && let Some(id) =
                        e.result.as_ref().and_then(|r| r.get("id")).and_then(Value::as_str)
                {
                    claimed.push(id.to_owned());
                }
            }
        }
        let me = self.account().user_id.clone();
        let mut candidates: Vec<Message> = page
            .items
            .into_iter()
            .filter(|m| {
                (m.sender.is_self || me.as_deref() == Some(m.sender.id.as_str()))
                    && m.text.as_deref().filter(|t| !t.is_empty()) == text
                    && m.timestamp.0 >= floor.0
                    && !claimed.iter().any(|c| c == m.id.as_str())
            })
            .collect();
        Ok(match candidates.len() {
            0 => Found::Nothing,
            1 => {
                let m = candidates.remove(0);
                Found::One(serde_json::to_value(m).map_err(|e| Error::Shape(e.to_string()))?)
            }
            _ => Found::Many(candidates.into_iter().map(|m| m.id.0).collect()),
        })
    }
}

/// Parameters igdm adds on its own that a connector may ignore without loss:
/// `client_context` carries the idempotency key where the private API can
/// echo it, and the official API has no such field.
const IGDM_OWN_PARAMS: &[&str] = &["client_context"];

/// Parameters [`Client::invoke`] honours itself when the action does not:
/// `limit` cuts the mapped list.
const CLIENT_SIDE_PARAMS: &[&str] = &["limit"];

/// The embedded connectors whose `action` declares `param`.
#[must_use]
pub fn connectors_supporting(action: &str, param: &str) -> Vec<&'static str> {
    igdm_connectors::all()
        .iter()
        .filter(|(id, text)| {
            igdm_spec::Connector::load(text, &format!("{id}.md"))
                .is_ok_and(|c| c.action(action).is_some_and(|a| a.params().contains_key(param)))
        })
        .map(|(id, _)| *id)
        .collect()
}

impl Client {
    /// Adapts normalized parameters to what the connector's `action`
    /// declares: official-API connectors address a conversation by the
    /// customer's id (`user_id`), so a `conversation_id` is resolved to its
    /// other participant.
    ///
    /// A parameter the action does not declare is refused before any request
    /// (class `invalid_request`, naming the parameter and the connectors that
    /// take it): dropping it would do something other than what was asked.
    /// Only igdm's own carriers (`client_context`) are dropped silently, and
    /// `limit`, which [`invoke`](Self::invoke) applies to the result itself.
    ///
    /// # Errors
    /// An undeclared parameter; a conversation that cannot be resolved.
    pub async fn adapt(
        &self,
        action: &str,
        mut params: Map<String, Value>,
    ) -> Result<Map<String, Value>, Error> {
        let Some(spec) = self.connector().action(action) else {
            return Err(self.unsupported(action));
        };
        let declared = spec.params();
        let resolve_user = declared.contains_key("user_id") && !params.contains_key("user_id");
        if let Some(name) = params.keys().find(|k| {
            let honoured = declared.contains_key(k.as_str())
                || IGDM_OWN_PARAMS.contains(&k.as_str())
                || CLIENT_SIDE_PARAMS.contains(&k.as_str())
                || (resolve_user && k.as_str() == "conversation_id");
            !honoured
        }) {
            return Err(Error::Api(self.not_honoured(action, name)));
        }
        if resolve_user
            && let Some(conv) =
                params.get("conversation_id").and_then(Value::as_str).map(str::to_owned)
        {
            let user = self.recipient_of(&conv).await?;
            params.insert("user_id".into(), json!(user));
        }
        params.retain(|k, _| declared.contains_key(k));
        Ok(params)
    }

    /// The refusal of a parameter this connector's `action` cannot honour.
    fn not_honoured(&self, action: &str, param: &str) -> igdm_model::ApiError {
        let others: Vec<&str> = connectors_supporting(action, param)
            .into_iter()
            .filter(|id| *id != self.connector().id)
            .collect();
        let hint = if others.is_empty() {
            "no igdm connector takes it".to_owned()
        } else {
            format!("it needs an account on {}", others.join(" or "))
        };
        let mut e = igdm_model::ApiError::invalid(
            param,
            format!(
                "the {} connector cannot honour `{param}` on {action}; {hint}; nothing was sent",
                self.connector().id
            ),
        );
        e.remediation = format!("Leave out `{param}`, or use an account whose connector takes it.");
        e
    }

    /// The user id for `user`: an id as given, or for `@username` the id of
    /// the participant with that username in the account's conversations
    /// (inbox, then message requests where the connector has them; the
    /// newest `USERNAME_PAGES` pages of each). Neither Instagram surface
    /// offers igdm a confirmed lookup of arbitrary usernames, so someone the
    /// account never talked to must be given by id.
    ///
    /// # Errors
    /// A username no conversation shows (`not_found`), and the errors of
    /// listing conversations.
    pub async fn resolve_user(&self, user: &str) -> Result<String, Error> {
        let Some(name) = user.strip_prefix('@') else {
            return Ok(user.to_owned());
        };
        if name.is_empty() {
            return Err(Error::Api(igdm_model::ApiError::invalid("user", "@ needs a username")));
        }
        for pending in [false, true] {
            if pending && !self.supports("list_pending") {
                continue;
            }
            let mut cursor: Option<String> = None;
            for _ in 0..USERNAME_PAGES {
                let mut req = self.conversations();
                if pending {
                    req = req.pending();
                }
                if let Some(c) = cursor.take() {
                    req = req.cursor(c);
                }
                let (page, _) = req.await?;
                let found =
                    page.items.iter().flat_map(|c| &c.participants).find(|p| {
                        p.username.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(name))
                    });
                if let Some(p) = found {
                    return Ok(p.id.to_string());
                }
                match page.next_cursor {
                    Some(c) if page.has_more => cursor = Some(c),
                    _ => break,
                }
            }
        }
        let mut e = igdm_model::ApiError::new(
            igdm_model::ErrorClass::NotFound,
            format!("no conversation of this account has a participant @{name}"),
        );
        e.remediation = "Give the user's id instead: Instagram offers no username lookup igdm can rely on for someone the account never talked to.".into();
        Err(Error::Api(e))
    }

    /// Runs any action of the connector by name, as front ends do for
    /// what no typed builder covers: an action in [`MESSAGE_SENDS`] goes
    /// through [`Client::send_action`] (with `idempotency_key`, or a new
    /// one), any other through [`Client::invoke`]. Parameters are checked
    /// against the action before any request; one it does not declare is
    /// refused.
    ///
    /// # Errors
    /// As [`SendAction::send`] and [`Client::invoke`]; an idempotency key
    /// given for an action that sends no message is refused (it could not
    /// be honoured).
    pub async fn perform(
        &self,
        action: &str,
        params: Map<String, Value>,
        idempotency_key: Option<String>,
    ) -> Result<Performed, Error> {
        if MESSAGE_SENDS.contains(&action) {
            let mut req = self.send_action(action, params);
            if let Some(k) = idempotency_key {
                req = req.idempotency_key(k);
            }
            return Ok(Performed::Sent(req.await?));
        }
        if idempotency_key.is_some() {
            return Err(Error::Api(igdm_model::ApiError::invalid(
                "idempotency_key",
                format!("{action} sends no message; only message sends take an idempotency key"),
            )));
        }
        Ok(Performed::Ran(self.invoke(action, params).await?))
    }

    /// Runs a normalized action: parameters are [adapted](Self::adapt) first.
    ///
    /// # Errors
    /// As [`Client::call`].
    pub async fn invoke(
        &self,
        action: &str,
        params: Map<String, Value>,
    ) -> Result<ActionOutput, Error> {
        let declares_limit =
            self.connector().action(action).is_some_and(|a| a.params().contains_key("limit"));
        let limit = (!declares_limit)
            .then(|| params.get("limit").and_then(Value::as_u64))
            .flatten()
            .and_then(|n| usize::try_from(n).ok());
        let params = self.adapt(action, params).await?;
        let mut out = self.run(action, params).await?;
        if let (Some(n), Value::Array(items)) = (limit, &mut out.data) {
            items.truncate(n);
        }
        Ok(out)
    }

    /// The participant of `conversation` who is not this account.
    async fn recipient_of(&self, conversation: &str) -> Result<String, Error> {
        let mut p = Map::new();
        p.insert("conversation_id".into(), json!(conversation));
        let out = self.call("get_conversation", &p).await?;
        let conv: Conversation = decode("get_conversation", out.data)?;
        let me = self.account().user_id.clone();
        conv.participants.into_iter().map(|p| p.id.0).find(|id| Some(id) != me.as_ref()).ok_or_else(
            || Error::Shape(format!("conversation {conversation} has no other participant")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::backend_hint;

    #[test]
    fn the_hint_names_a_connector_whose_file_declares_the_action() {
        assert_eq!(backend_hint("approve", "instagram-graph"), Some("instagram-web"));
        assert_eq!(backend_hint("set_ice_breakers", "instagram-web"), Some("instagram-graph"));
        assert_eq!(backend_hint("set_ice_breakers", "instagram-graph"), Some("instagram-page"));
        assert_eq!(backend_hint("get_thread_owner", "instagram-graph"), Some("instagram-page"));
        assert_eq!(backend_hint("no_such_action", "instagram-web"), None);
    }
}
