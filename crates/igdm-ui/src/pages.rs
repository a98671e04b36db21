//! The pages: the inbox (accounts, conversations, search), a thread with
//! its composer, kept media and the embedded assets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use igdm_model::{Backend, Conversation, ErrorClass, Folder, Message, Timestamp};
use igdm_store::{ConversationFilter, MediaRef, MessageStore, OutboxEntry, OutboxState};
use serde::Deserialize;
use tracing::warn;

use crate::auth::{CSRF_FIELD, Caller};
use crate::html::{Html, url_part};
use crate::{Inbox, InboxAccount};

/// Conversations the inbox lists, across accounts.
const INBOX_PAGE: u32 = 50;
/// Messages a thread page shows.
const THREAD_PAGE: u32 = 50;
/// Search hits per account.
const SEARCH_PAGE: u32 = 30;
/// How far back the thread shows its sends from the ledger.
const LEDGER_WINDOW: Duration = Duration::from_secs(24 * 3600);

pub(crate) struct App {
    pub inbox: Inbox,
    pub stop: tokio::sync::watch::Receiver<bool>,
}

pub(crate) fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(inbox_page))
        .route("/t/{account}/{conversation}", get(thread_page))
        .route("/t/{account}/{conversation}/send", post(send))
        .route("/t/{account}/{conversation}/handover", post(handover))
        .route("/live/{account}/{conversation}", get(crate::live::thread_events))
        .route("/media/{account}/{conversation}/{message}/{position}", get(media))
        .route("/assets/app.js", get(script))
        .route("/assets/app.css", get(style))
        .with_state(app)
}

const JS: &str = include_str!("../assets/app.js");
const CSS: &str = include_str!("../assets/app.css");

async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], JS).into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

/// A whole page around `body`.
fn page(title: &str, body: &Html) -> Html {
    let mut h = Html::new();
    h.raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<title>")
        .text(title)
        .raw(" · igdm</title><link rel=\"stylesheet\" href=\"/assets/app.css\">")
        .raw("<script src=\"/assets/app.js\" defer></script></head><body>")
        .raw("<header><a class=\"home\" href=\"/\">igdm</a></header><main>")
        .append(body)
        .raw("</main></body></html>");
    h
}

fn respond(status: StatusCode, h: Html) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], h.into_string()).into_response()
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let mut b = Html::new();
    b.raw("<p class=\"error\">").text(message).raw("</p>");
    respond(status, page("error", &b))
}

fn when(t: &Timestamp) -> String {
    t.0.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn surface(b: &Backend) -> &'static str {
    match b {
        Backend::Web => "private web API",
        Backend::Graph => "official API (Instagram Login)",
        Backend::Page => "official API (Facebook Page)",
        _ => "other surface",
    }
}

/// What the inbox says about an account.
struct Standing {
    /// Its health as one word.
    health: String,
    /// Writes in the last day against the daily budget, when opened.
    budget: Option<String>,
    /// The next step, when it needs the user.
    step: Option<String>,
}

fn standing(account: &InboxAccount) -> Standing {
    let live = match &account.live {
        Ok(l) => l,
        Err(step) => {
            return Standing {
                health: "not opened".into(),
                budget: None,
                step: Some(step.clone()),
            };
        }
    };
    let client = live.client();
    let (health, budget, error) = match client.state() {
        Ok(state) => {
            let v = serde_json::to_value(&state.session.health).unwrap_or_default();
            let word = v.get("state").and_then(|s| s.as_str()).or(v.as_str()).unwrap_or("unknown");
            let used = state.writes_within(Timestamp::now(), Duration::from_secs(24 * 3600));
            let budget = match client.pacing().daily {
                Some(cap) => format!("{used} of {cap} writes in 24 h"),
                None => format!("{used} writes in 24 h"),
            };
            (word.to_owned(), Some(budget), None)
        }
        Err(e) => ("unknown".to_owned(), None, Some(e.to_string())),
    };
    match live.stopped() {
        Some(step) => Standing { health: "stopped".into(), budget, step: Some(step) },
        None => Standing { health, budget, step: error },
    }
}

fn conversation_title(c: &Conversation) -> String {
    if let Some(t) = c.title.as_deref().filter(|t| !t.is_empty()) {
        return t.to_owned();
    }
    let names: Vec<&str> = c
        .participants
        .iter()
        .map(|p| p.username.as_deref().or(p.display_name.as_deref()).unwrap_or(p.id.as_str()))
        .collect();
    if names.is_empty() { c.id.as_str().to_owned() } else { names.join(", ") }
}

fn thread_href(account: &str, conversation: &str) -> String {
    format!("/t/{}/{}", url_part(account), url_part(conversation))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct InboxQuery {
    account: Option<String>,
    unread: Option<String>,
    folder: Option<String>,
    q: Option<String>,
}

async fn inbox_page(State(app): State<Arc<App>>, Query(q): Query<InboxQuery>) -> Response {
    let inbox = &app.inbox;
    let only = q.account.as_deref().filter(|a| !a.is_empty());
    if let Some(name) = only
        && inbox.account(name).is_none()
    {
        return error_page(StatusCode::NOT_FOUND, &format!("no account named {name}"));
    }
    let unread = q.unread.as_deref().is_some_and(|u| !u.is_empty() && u != "0");
    let folder = match q.folder.as_deref().unwrap_or("") {
        "" => None,
        "inbox" => Some(Folder::Inbox),
        "requests" => Some(Folder::Pending),
        other => {
            return error_page(
                StatusCode::BAD_REQUEST,
                &format!("no folder named {other}: inbox or requests"),
            );
        }
    };
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let chosen: Vec<&InboxAccount> =
        inbox.accounts.iter().filter(|a| only.is_none_or(|n| a.name == n)).collect();

    let mut b = Html::new();
    b.raw("<section class=\"accounts\"><h2>Accounts</h2><ul>");
    for a in &inbox.accounts {
        let Standing { health: word, budget, step } = standing(a);
        b.raw("<li><a href=\"/?account=")
            .text(&url_part(&a.name))
            .raw("\">")
            .text(&a.name)
            .raw("</a> <span class=\"surface\">")
            .text(surface(&a.backend))
            .raw("</span> <span class=\"health health-")
            .text(&word)
            .raw("\">")
            .text(&word)
            .raw("</span>");
        if let Some(budget) = budget {
            b.raw(" <span class=\"budget\">").text(&budget).raw("</span>");
        }
        if let Some(step) = step {
            b.raw("<p class=\"next-step\">").text(&step).raw("</p>");
        }
        b.raw("</li>");
    }
    b.raw("</ul></section>");

    b.raw("<form class=\"filters\" method=\"get\" action=\"/\"><select name=\"account\"><option value=\"\">all accounts</option>");
    for a in &inbox.accounts {
        b.raw("<option value=\"").text(&a.name).raw("\"");
        if only == Some(a.name.as_str()) {
            b.raw(" selected");
        }
        b.raw(">").text(&a.name).raw("</option>");
    }
    b.raw("</select> <label><input type=\"checkbox\" name=\"unread\" value=\"1\"");
    if unread {
        b.raw(" checked");
    }
    b.raw("> unread only</label> <select name=\"folder\">");
    for (value, label) in [("", "all folders"), ("inbox", "inbox"), ("requests", "requests")] {
        b.raw("<option value=\"").text(value).raw("\"");
        if q.folder.as_deref().unwrap_or("") == value {
            b.raw(" selected");
        }
        b.raw(">").text(label).raw("</option>");
    }
    b.raw("</select> <input type=\"search\" name=\"q\" placeholder=\"search messages\" value=\"")
        .text(search.unwrap_or(""))
        .raw("\"> <button>Show</button></form>");

    match search {
        Some(text) => search_results(&mut b, inbox.store.as_ref(), &chosen, text).await,
        None => conversation_list(&mut b, inbox.store.as_ref(), &chosen, unread, folder).await,
    }
    respond(StatusCode::OK, page("inbox", &b))
}

async fn conversation_list(
    b: &mut Html,
    store: &dyn MessageStore,
    accounts: &[&InboxAccount],
    unread: bool,
    folder: Option<Folder>,
) {
    let filter = ConversationFilter { unread: unread.then_some(true), folder };
    let mut rows: Vec<(&str, Conversation)> = Vec::new();
    for a in accounts {
        match store.list_conversations(&a.name, &filter, INBOX_PAGE, None).await {
            Ok(page) => rows.extend(page.items.into_iter().map(|c| (a.name.as_str(), c))),
            Err(e) => {
                b.raw("<p class=\"error\">").text(&format!("{}: {e}", a.name)).raw("</p>");
            }
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.1.updated_at));
    rows.truncate(INBOX_PAGE as usize);
    b.raw("<section class=\"conversations\"><h2>Conversations</h2>");
    if rows.is_empty() {
        b.raw("<p class=\"empty\">No conversations in the local store yet.</p>");
    }
    b.raw("<ul id=\"conversations\">");
    for (account, c) in &rows {
        b.raw("<li class=\"conv");
        if c.unread {
            b.raw(" unread");
        }
        b.raw("\"><a href=\"")
            .text(&thread_href(account, c.id.as_str()))
            .raw("\"><span class=\"title\">")
            .text(&conversation_title(c))
            .raw("</span> <span class=\"account\">")
            .text(account)
            .raw("</span>");
        if c.folder == Folder::Pending {
            b.raw(" <span class=\"folder\">request</span>");
        }
        if c.unread {
            let n = c.unread_count.map_or_else(|| "new".to_owned(), |n| n.to_string());
            b.raw(" <span class=\"badge\">").text(&n).raw("</span>");
        }
        if let Some(t) = &c.updated_at {
            b.raw(" <time>").text(&when(t)).raw("</time>");
        }
        b.raw("</a></li>");
    }
    b.raw("</ul></section>");
}

async fn search_results(
    b: &mut Html,
    store: &dyn MessageStore,
    accounts: &[&InboxAccount],
    text: &str,
) {
    let mut hits = Vec::new();
    for a in accounts {
        match store.search_text(&a.name, text, SEARCH_PAGE, None).await {
            Ok(page) => hits.extend(page.items.into_iter().map(|h| (a.name.as_str(), h))),
            Err(e) => {
                b.raw("<p class=\"error\">").text(&format!("{}: {e}", a.name)).raw("</p>");
            }
        }
    }
    hits.sort_by_key(|h| std::cmp::Reverse(h.1.message.timestamp));
    b.raw("<section class=\"search\"><h2>Search: ").text(text).raw("</h2>");
    if hits.is_empty() {
        b.raw("<p class=\"empty\">No message matches.</p>");
    }
    b.raw("<ul id=\"hits\">");
    for (account, hit) in &hits {
        let m = &hit.message;
        b.raw("<li class=\"conv\"><a href=\"")
            .text(&thread_href(account, m.conversation_id.as_str()))
            .raw("\"><span class=\"account\">")
            .text(account)
            .raw("</span> <span class=\"who\">")
            .text(&sender_name(m))
            .raw("</span> <span class=\"snippet\">")
            .text(&hit.snippet)
            .raw("</span> <time>")
            .text(&when(&m.timestamp))
            .raw("</time></a></li>");
    }
    b.raw("</ul></section>");
}

fn sender_name(m: &Message) -> String {
    if m.sender.is_self {
        return "you".into();
    }
    m.sender
        .username
        .clone()
        .or_else(|| m.sender.display_name.clone())
        .unwrap_or_else(|| m.sender.id.as_str().to_owned())
}

/// One message as a list item (also what live updates send).
pub(crate) fn message_item(account: &str, m: &Message, kept: &[&MediaRef]) -> Html {
    let mut b = Html::new();
    b.raw("<li class=\"msg ")
        .raw(if m.sender.is_self { "out" } else { "in" })
        .raw("\" id=\"m-")
        .text(&url_part(m.id.as_str()))
        .raw("\" data-id=\"")
        .text(m.id.as_str())
        .raw("\"><div class=\"meta\"><span class=\"who\">")
        .text(&sender_name(m))
        .raw("</span> <time>")
        .text(&when(&m.timestamp))
        .raw("</time>");
    if m.edited_at.is_some() {
        b.raw(" <span class=\"edited\">edited</span>");
    }
    b.raw(" <button type=\"button\" class=\"reply\">reply</button></div>");
    if let Some(r) = &m.reply_to {
        b.raw("<blockquote class=\"quote\">")
            .text(r.preview.as_deref().unwrap_or("an earlier message"))
            .raw("</blockquote>");
    }
    if m.is_deleted {
        b.raw("<p class=\"body unsent\">unsent</p>");
    } else if let Some(t) = m.text.as_deref().filter(|t| !t.is_empty()) {
        b.raw("<p class=\"body\">").text(t).raw("</p>");
    } else if m.attachments.is_empty() {
        b.raw("<p class=\"body kind\">").text(m.content_type.as_str()).raw("</p>");
    }
    for (position, a) in m.attachments.iter().enumerate() {
        let kind = a.kind.as_str();
        match kept.iter().find(|r| r.position as usize == position) {
            Some(_) => {
                b.raw("<p class=\"media\"><a href=\"/media/")
                    .text(&url_part(account))
                    .raw("/")
                    .text(&url_part(m.conversation_id.as_str()))
                    .raw("/")
                    .text(&url_part(m.id.as_str()))
                    .raw("/")
                    .text(&position.to_string())
                    .raw("\">")
                    .text(kind)
                    .raw("</a></p>");
            }
            // Never the CDN link: Instagram would see who looks.
            None => {
                b.raw("<p class=\"media missing\">")
                    .text(kind)
                    .raw(" (not kept locally: `igdm sync --media` keeps it)</p>");
            }
        }
    }
    if !m.reactions.is_empty() {
        b.raw("<ul class=\"reactions\">");
        for r in &m.reactions {
            b.raw("<li>").text(&r.emoji).raw("</li>");
        }
        b.raw("</ul>");
    }
    b.raw("</li>");
    b
}

/// A message shown above the composer after a send.
pub(crate) struct Notice {
    class: &'static str,
    text: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ThreadQuery {
    before: Option<String>,
}

async fn thread_page(
    State(app): State<Arc<App>>,
    Path((account, conversation)): Path<(String, String)>,
    Query(q): Query<ThreadQuery>,
    Extension(caller): Extension<Caller>,
) -> Response {
    render_thread(&app, &caller, &account, &conversation, q.before.as_deref(), None, "").await
}

fn text_of(entry: &OutboxEntry) -> &str {
    entry.payload["params"]["text"].as_str().unwrap_or("(not a text)")
}

fn sent_id(entry: &OutboxEntry) -> Option<&str> {
    entry.result.as_ref()?.get("id")?.as_str()
}

async fn render_thread(
    app: &App,
    caller: &Caller,
    account: &str,
    conversation: &str,
    before: Option<&str>,
    notice: Option<Notice>,
    draft: &str,
) -> Response {
    let inbox = &app.inbox;
    let Some(acct) = inbox.account(account) else {
        return error_page(StatusCode::NOT_FOUND, &format!("no account named {account}"));
    };
    let store = inbox.store.as_ref();
    let stored = store.get_conversation(account, conversation).await.ok().flatten();
    let title = stored.as_ref().map_or_else(|| conversation.to_owned(), conversation_title);
    let messages = match store.list_messages(account, conversation, THREAD_PAGE, before).await {
        Ok(p) => p,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let kept = store.conversation_media(account, conversation).await.unwrap_or_default();
    let mut kept_by: HashMap<&str, Vec<&MediaRef>> = HashMap::new();
    for r in &kept {
        kept_by.entry(r.message_id.as_str()).or_default().push(r);
    }
    let href = thread_href(account, conversation);

    let mut b = Html::new();
    b.raw("<h1>").text(&title).raw(" <span class=\"account\">").text(account).raw("</span></h1>");
    // Only the official API limits replies to a window.
    if let Some(c) = &stored
        && acct.backend != Backend::Web
        && let Some(ends) = &c.reply_window_ends_at
    {
        b.raw("<p class=\"window\">").text(&window_text(ends, Timestamp::now())).raw("</p>");
    }
    // Who answers: the bot, or a person who took the conversation over.
    if acct.backend != Backend::Web
        && let Ok(live) = &acct.live
        && let Some(me) = live.client().account().user_id.as_deref()
        && let Some(customer) = stored.as_ref().and_then(|c| customer_of(c, me))
    {
        let state = igdm_bot::CustomerState::load(store, me, customer).await.unwrap_or_default();
        let (says, action, label) = match &state.takeover {
            Some(t) => (
                format!(
                    "A person has this conversation (since {}); the bot stays quiet.",
                    when(&t.last_activity)
                ),
                "release",
                "Give back to the bot",
            ),
            None => ("The bot answers this conversation.".to_owned(), "take", "Take over"),
        };
        b.raw("<form class=\"handover\" method=\"post\" action=\"")
            .text(&href)
            .raw("/handover\"><input type=\"hidden\" name=\"")
            .raw(CSRF_FIELD)
            .raw("\" value=\"")
            .text(caller.csrf())
            .raw("\"><input type=\"hidden\" name=\"do\" value=\"")
            .raw(action)
            .raw("\"><span class=\"owner\">")
            .text(&says)
            .raw("</span> <button>")
            .text(label)
            .raw("</button></form>");
    }
    if let Some(cursor) = messages.next_cursor.as_deref().filter(|_| messages.has_more) {
        b.raw("<p><a class=\"older\" href=\"")
            .text(&href)
            .raw("?before=")
            .text(&url_part(cursor))
            .raw("\">Older messages</a></p>");
    }
    b.raw("<ol id=\"messages\"");
    if inbox.hub.is_some() && before.is_none() {
        b.raw(" data-live=\"/live/")
            .text(&url_part(account))
            .raw("/")
            .text(&url_part(conversation))
            .raw("\"");
    }
    b.raw(">");
    let shown: Vec<&str> = messages.items.iter().map(|m| m.id.as_str()).collect();
    for m in messages.items.iter().rev() {
        let refs = kept_by.get(m.id.as_str()).map(Vec::as_slice).unwrap_or_default();
        b.append(&message_item(account, m, refs));
    }
    b.raw("</ol>");

    // The send ledger: what was sent from here and is not shown above.
    let window = chrono::TimeDelta::from_std(LEDGER_WINDOW).unwrap_or_default();
    let since = Timestamp(Timestamp::now().0 - window);
    let entries = store.outbox_since(account, conversation, since).await.unwrap_or_default();
    let pending: Vec<&OutboxEntry> = entries
        .iter()
        .filter(|e| {
            !(e.state == OutboxState::Sent && sent_id(e).is_some_and(|id| shown.contains(&id)))
        })
        .collect();
    if !pending.is_empty() {
        b.raw("<section class=\"sends\"><h2>Sends</h2><ul>");
        for e in pending {
            b.raw("<li class=\"send state-")
                .text(e.state.as_str())
                .raw("\"><span class=\"state\">")
                .text(e.state.as_str())
                .raw("</span> ")
                .text(text_of(e));
            if e.state == OutboxState::Unknown {
                b.raw(" <span class=\"why\">outcome unknown: igdm never resends it blindly; it is settled when the thread shows it</span>");
            }
            if let Some(err) = &e.last_error {
                b.raw(" <span class=\"why\">").text(err).raw("</span>");
            }
            b.raw("</li>");
        }
        b.raw("</ul></section>");
    }

    if let Some(n) = &notice {
        b.raw("<p class=\"notice ")
            .raw(n.class)
            .raw("\" role=\"status\">")
            .text(&n.text)
            .raw("</p>");
    }
    match &acct.live {
        Ok(_) => {
            b.raw("<form id=\"compose\" method=\"post\" action=\"")
                .text(&href)
                .raw("/send\"><input type=\"hidden\" name=\"")
                .raw(CSRF_FIELD)
                .raw("\" value=\"")
                .text(caller.csrf())
                .raw("\"><input type=\"hidden\" name=\"key\" value=\"")
                .text(&format!("ui-{}", igdm::random_token()))
                .raw("\"><input type=\"hidden\" name=\"reply_to\" value=\"\">")
                .raw("<p class=\"replying\" hidden></p>")
                .raw("<textarea name=\"text\" rows=\"3\" required placeholder=\"Write a reply\">")
                .text(draft)
                .raw("</textarea>");
            if acct.backend != Backend::Web {
                b.raw(
                    "<label class=\"human-agent\"><input type=\"checkbox\" name=\"human_agent\" value=\"on\"> \
                     A person is answering (HUMAN_AGENT: up to 7 days after the customer's last message)</label>",
                );
            }
            b.raw("<button>Send</button></form>");
        }
        Err(step) => {
            b.raw("<p class=\"next-step\">This account is not open: ").text(step).raw("</p>");
        }
    }
    let status = match &notice {
        Some(n) if n.class == "failed" => StatusCode::BAD_GATEWAY,
        Some(n) if n.class == "refused" => StatusCode::UNPROCESSABLE_ENTITY,
        Some(n) if n.class == "unknown" => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    respond(status, page(&title, &b))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SendForm {
    text: String,
    key: String,
    #[serde(default)]
    reply_to: String,
    /// `on` when the person ticked HUMAN_AGENT.
    #[serde(default)]
    human_agent: String,
}

/// How much of the official API's reply window is left at `now`, or what
/// a person can still do once it closed: the window is 24 hours after the
/// customer's last message, and a person's reply tagged HUMAN_AGENT may
/// follow for up to 7 days.
fn window_text(ends: &Timestamp, now: Timestamp) -> String {
    let left = ends.0 - now.0;
    if left > chrono::TimeDelta::zero() {
        return format!("Reply window: {} left (until {}).", span(left), when(ends));
    }
    let human_until = Timestamp(ends.0 + chrono::TimeDelta::days(6));
    if human_until.0 > now.0 {
        format!(
            "The 24-hour reply window closed {} ago. A person can still answer until {}: tick \
             \"A person is answering\" (HUMAN_AGENT). After that, the customer must write first.",
            span(now.0 - ends.0),
            when(&human_until)
        )
    } else {
        "The reply window closed, and so did the 7 days a person has (HUMAN_AGENT): \
         the customer must write first."
            .to_owned()
    }
}

/// A duration in days, hours and minutes, coarse.
fn span(d: chrono::TimeDelta) -> String {
    let minutes = d.num_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, (minutes / 60) % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{mins} min"),
        (0, h) => format!("{h} h {mins} min"),
        (d, h) => format!("{d} d {h} h"),
    }
}

/// The customer of a one-to-one conversation of the account `me`.
fn customer_of<'a>(c: &'a Conversation, me: &str) -> Option<&'a str> {
    let mut others = c.participants.iter().filter(|p| p.id.as_str() != me);
    let one = others.next()?;
    others.next().is_none().then_some(one.id.as_str())
}

#[derive(Debug, Deserialize)]
pub(crate) struct HandoverForm {
    #[serde(rename = "do")]
    action: String,
}

/// `POST /t/{account}/{conversation}/handover`: a person takes the
/// conversation from the bot (`do=take`) or gives it back (`do=release`),
/// through Meta's Handover Protocol where the account has it and always in
/// the state the bot reads, as `igdm handover` does.
async fn handover(
    State(app): State<Arc<App>>,
    Path((account, conversation)): Path<(String, String)>,
    Extension(caller): Extension<Caller>,
    Form(form): Form<HandoverForm>,
) -> Response {
    let Some(acct) = app.inbox.account(&account) else {
        return error_page(StatusCode::NOT_FOUND, &format!("no account named {account}"));
    };
    let live = match &acct.live {
        Ok(l) => l.clone(),
        Err(step) => return error_page(StatusCode::CONFLICT, step),
    };
    let client = live.client();
    let Some(me) = client.account().user_id.clone() else {
        return error_page(StatusCode::CONFLICT, "the account has no Instagram id: log in again");
    };
    let store = app.inbox.store.as_ref();
    let stored = store.get_conversation(&account, &conversation).await.ok().flatten();
    let Some(customer) = stored.as_ref().and_then(|c| customer_of(c, &me)).map(str::to_owned)
    else {
        return error_page(StatusCode::CONFLICT, "handover needs a one-to-one conversation");
    };
    let done = match form.action.as_str() {
        "take" => {
            igdm_bot::hand_to_person(
                client,
                store,
                &me,
                &customer,
                Timestamp::now(),
                igdm::handover::PAGE_INBOX_APP_ID,
                "taken over in igdm ui",
            )
            .await
        }
        "release" => igdm_bot::give_back(client, store, &me, &customer, "").await,
        other => return error_page(StatusCode::BAD_REQUEST, &format!("no handover {other:?}")),
    };
    let notice = match done {
        Ok(d) => Notice {
            class: "done",
            text: match (form.action.as_str(), d.meta_action) {
                ("take", Some(a)) => format!("You have the conversation; the bot stays quiet ({a})."),
                ("take", None) => "You have the conversation; the bot stays quiet (recorded locally: this account's API has no handover).".to_owned(),
                (_, Some(a)) => format!("The bot answers again ({a})."),
                (_, None) => "The bot answers again.".to_owned(),
            },
        },
        Err(e) => Notice { class: "failed", text: format!("Handover failed: {e}") },
    };
    render_thread(&app, &caller, &account, &conversation, None, Some(notice), "").await
}

async fn send(
    State(app): State<Arc<App>>,
    Path((account, conversation)): Path<(String, String)>,
    Extension(caller): Extension<Caller>,
    Form(form): Form<SendForm>,
) -> Response {
    let text = form.text.trim();
    let key = form.key.trim();
    if text.is_empty() {
        let n = Notice { class: "refused", text: "Nothing to send: the reply is empty.".into() };
        return render_thread(&app, &caller, &account, &conversation, None, Some(n), "").await;
    }
    if key.is_empty() || key.len() > 100 {
        return error_page(
            StatusCode::BAD_REQUEST,
            "the form's idempotency key is missing or too long",
        );
    }
    let Some(acct) = app.inbox.account(&account) else {
        return error_page(StatusCode::NOT_FOUND, &format!("no account named {account}"));
    };
    let live = match &acct.live {
        Ok(l) => l.clone(),
        Err(step) => return error_page(StatusCode::CONFLICT, step),
    };
    let mut send = live.client().send(conversation.clone(), text.to_owned()).idempotency_key(key);
    if !form.reply_to.trim().is_empty() {
        send = send.reply_to(form.reply_to.trim().to_owned());
    }
    if form.human_agent == "on" {
        send = send.param("human_agent", serde_json::json!(true));
    }
    match send.send().await {
        Ok(outcome) => {
            // The send's answer is the message: store it so the thread shows it now.
            match serde_json::from_value::<Message>(outcome.result.clone()) {
                Ok(m) => {
                    if let Err(e) = app.inbox.store.upsert_message(&account, &m).await {
                        warn!(error = %e, "could not store the sent message");
                    }
                }
                Err(e) => warn!(error = %e, "the send's answer is not a message"),
            }
            Redirect::to(&format!("{}#compose", thread_href(&account, &conversation)))
                .into_response()
        }
        Err(e) if e.is_outcome_unknown() => {
            let n = Notice {
                class: "unknown",
                text: format!(
                    "Instagram did not say whether this reply arrived, and the thread does not show it yet. \
                     igdm did not send it again. ({e})"
                ),
            };
            render_thread(&app, &caller, &account, &conversation, None, Some(n), "").await
        }
        Err(e) => {
            let api = e.to_api_error();
            let class = if api.class == ErrorClass::InvalidRequest { "refused" } else { "failed" };
            let mut text = format!("Not sent: {}", api.message);
            if !api.remediation.is_empty() {
                text.push_str(". ");
                text.push_str(&api.remediation);
            }
            let n = Notice { class, text };
            render_thread(&app, &caller, &account, &conversation, None, Some(n), form.text.as_str())
                .await
        }
    }
}

async fn media(
    State(app): State<Arc<App>>,
    Path((account, conversation, message, position)): Path<(String, String, String, u32)>,
) -> Response {
    let Some(dir) = &app.inbox.media else {
        return error_page(StatusCode::NOT_FOUND, "no media store");
    };
    let refs = match app.inbox.store.media_refs(&account, &conversation, &message).await {
        Ok(r) => r,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let Some(r) = refs.into_iter().find(|r| r.position == position) else {
        return error_page(StatusCode::NOT_FOUND, "this attachment is not kept locally");
    };
    let bytes = match dir.path_of(&r.sha256) {
        Ok(path) => tokio::fs::read(path).await,
        Err(e) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let Ok(bytes) = bytes else {
        return error_page(StatusCode::NOT_FOUND, "the kept file is gone");
    };
    // Only media types render inline; anything else downloads.
    let mime = r.mime.unwrap_or_default();
    let inline = ["image/", "video/", "audio/"].iter().any(|p| mime.starts_with(p))
        && mime != "image/svg+xml";
    let (kind, disposition) = if inline {
        (mime, "inline")
    } else {
        ("application/octet-stream".to_owned(), "attachment")
    };
    ([(header::CONTENT_TYPE, kind), (header::CONTENT_DISPOSITION, disposition.to_owned())], bytes)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::{Timestamp, window_text};

    fn at(hours: i64) -> Timestamp {
        Timestamp(chrono::DateTime::UNIX_EPOCH + chrono::TimeDelta::hours(1_000_000 + hours))
    }

    #[test]
    fn the_window_says_what_is_left_and_what_a_person_can_still_do() {
        let ends = at(24);
        assert!(window_text(&ends, at(0)).starts_with("Reply window: 1 d 0 h left"));
        assert!(window_text(&ends, at(21)).starts_with("Reply window: 3 h 0 min left"));
        let closed = window_text(&ends, at(30));
        assert!(closed.contains("closed 6 h 0 min ago"), "{closed}");
        assert!(closed.contains("HUMAN_AGENT"), "{closed}");
        // 7 days after the customer's message (6 after the window) a person
        // can no longer answer either.
        assert!(window_text(&ends, at(24 + 6 * 24 + 1)).contains("the customer must write first"));
    }
}
