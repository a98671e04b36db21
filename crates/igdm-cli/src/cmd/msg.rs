//! The messaging subcommands: every normalized action of the account's connector.

use std::process::ExitCode;

use serde_json::{Map, Value, json};

use igdm::Client;
use igdm::ops::params;
use igdm_model::{Conversation, Message};

use super::output;
use crate::Global;
use igdm_runtime::Runtime;

/// Messaging commands (they act as `--account`, default the only account).
#[derive(Debug, clap::Subcommand)]
pub enum MsgCommand {
    /// List conversations.
    Conversations {
        /// Only conversations with unread messages.
        #[arg(long)]
        unread: bool,
        /// Message requests instead of the inbox.
        #[arg(long)]
        pending: bool,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
        /// Continue from the cursor of a previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one conversation.
    Conversation {
        /// The conversation id.
        id: String,
    },
    /// List a conversation's messages, newest first.
    Messages {
        /// The conversation id.
        conversation: String,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
        /// Continue from the cursor of a previous page.
        #[arg(long)]
        cursor: Option<String>,
        /// Ask Instagram even when the local store is fresh.
        #[arg(long)]
        remote: bool,
    },
    /// Show one message.
    Message {
        /// The conversation id.
        conversation: String,
        /// The message id.
        id: String,
    },
    /// Send a message: `send CONVERSATION TEXT`, or `send --user USER TEXT`.
    Send(SendArgs),
    /// React to a message.
    React {
        /// The conversation id.
        conversation: String,
        /// The message id.
        message: String,
        /// The emoji (the official API only knows the heart).
        #[arg(default_value = "❤️")]
        emoji: String,
    },
    /// Remove your reaction from a message.
    Unreact {
        /// The conversation id.
        conversation: String,
        /// The message id.
        message: String,
    },
    /// Mark a conversation (up to a message) as read.
    MarkRead {
        /// The conversation id.
        conversation: String,
        /// The last message read (private API).
        message: Option<String>,
    },
    /// Mark a conversation as unread.
    MarkUnread {
        /// The conversation id.
        conversation: String,
    },
    /// Unsend one of your messages.
    Delete {
        /// The conversation id.
        conversation: String,
        /// The message id.
        message: String,
    },
    /// Mute a conversation.
    Mute {
        /// The conversation id.
        conversation: String,
    },
    /// Unmute a conversation.
    Unmute {
        /// The conversation id.
        conversation: String,
    },
    /// Hide (archive) a conversation.
    Archive {
        /// The conversation id.
        conversation: String,
    },
    /// Show (or stop showing) the typing indicator.
    Typing {
        /// The conversation id.
        conversation: String,
        /// Stop typing.
        #[arg(long)]
        off: bool,
    },
    /// Whether users are online.
    Presence {
        /// User ids.
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Search messages: the local store (after `igdm sync`), or the API with `--remote`.
    ///
    /// Syntax: words, "phrases", -word, OR, from:USER, in:CONVERSATION,
    /// before:YYYY-MM-DD, after:YYYY-MM-DD, has:attachment, is:unread.
    /// Newest first; sort:relevance ranks the newest 1,000 matches instead.
    Search {
        /// The query.
        query: String,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
        /// Ask Instagram instead of the local store.
        #[arg(long)]
        remote: bool,
    },
    /// The latest unread messages.
    Unread {
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
        /// Ask Instagram even when the local store is fresh.
        #[arg(long)]
        remote: bool,
    },
    /// Answer a comment on the account's post, reel, story or ad with one
    /// private message to its author (official API; within 7 days of the
    /// comment, one message per comment).
    ReplyComment {
        /// The comment's id (from a `comments` or `live_comments` webhook).
        comment_id: String,
        /// The message.
        text: String,
        /// Idempotency key: a repeated command with the same key sends at most once.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// A user's profile.
    Profile {
        /// The user id.
        user: String,
    },
    /// Ice breakers of the business profile.
    IceBreakers {
        #[command(subcommand)]
        op: IceBreakersOp,
    },
    /// The persistent menu of the business profile (official API).
    Menu {
        #[command(subcommand)]
        op: MenuOp,
    },
    /// What the account's connector can do, with limits.
    Capabilities,
    /// A raw API call through the account's auth, rate limits, write pacing and error classifier.
    Request {
        /// Path relative to the connector's API base URL (e.g. `direct_v2/inbox/`);
        /// `{name}` is replaced by `--var name=value`, percent-encoded.
        path: String,
        /// Record this exchange, redacted, into DIR (see `igdm doctor --replay`).
        #[arg(long, value_name = "DIR")]
        record: Option<std::path::PathBuf>,
        /// A value for `{name}` in the path, `name=value` (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// A form field, `key=value` (repeatable): the body is sent
        /// `application/x-www-form-urlencoded`, as the private API's writes are.
        #[arg(long = "form", value_name = "KEY=VALUE", conflicts_with = "body")]
        form: Vec<String>,
        /// HTTP method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// A header, `Name: value` (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        /// A query parameter, `key=value` (repeatable).
        #[arg(long = "query")]
        query: Vec<String>,
        /// A JSON request body (`--json` is the global output switch).
        #[arg(long)]
        body: Option<String>,
    },
    /// Message requests: list them, accept one into the inbox, or decline it.
    #[command(subcommand)]
    Requests(RequestsOp),
    /// Run any action of the account's connector (`igdm actions` lists them),
    /// through the account's limits, pacing and, for message sends, the send ledger.
    Run {
        /// The action.
        action: String,
        /// The parameters as one JSON object; `@FILE` reads it from a file, `-` from stdin.
        #[arg(long, value_name = "JSON")]
        input: Option<String>,
        /// A parameter as NAME=VALUE (repeatable; over `--input`). VALUE is read
        /// as JSON when it parses, else as text; `string` parameters keep the text.
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// For a message send: the idempotency key (the same key never sends twice).
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Every action of the account's connector, with its parameters as JSON Schema.
    Actions {
        /// Only actions whose name or description contains these words.
        #[arg(long)]
        search: Option<String>,
    },
}

/// `igdm requests list|approve|decline`.
#[derive(Debug, clap::Subcommand)]
pub enum RequestsOp {
    /// The pending message requests.
    List {
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
        /// Continue from the cursor of a previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Accept a request: the conversation moves to the inbox.
    Approve {
        /// The conversation id.
        conversation_id: String,
    },
    /// Decline a request: it leaves the requests folder.
    Decline {
        /// The conversation id.
        conversation_id: String,
    },
}

/// `igdm ice-breakers get|set|delete`.
#[derive(Debug, clap::Subcommand)]
pub enum IceBreakersOp {
    /// Show them.
    Get,
    /// Replace them: `--question "Prices?=PRICES"` up to four times.
    Set {
        /// QUESTION=PAYLOAD.
        #[arg(long = "question", required = true)]
        questions: Vec<String>,
    },
    /// Remove them.
    Delete,
}

/// `igdm menu get|set|delete`.
#[derive(Debug, clap::Subcommand)]
pub enum MenuOp {
    /// Show it.
    Get,
    /// Replace it: `--item "Prices=PRICES"` (a postback) or
    /// `--item "Shop=https://example.com"` (a web link), in order.
    Set {
        /// TITLE=PAYLOAD, or TITLE=URL for a link.
        #[arg(long = "item", required = true)]
        items: Vec<String>,
    },
    /// Remove it.
    Delete,
}

/// `igdm send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// CONVERSATION TEXT, or just TEXT with --user.
    #[arg(required = true, num_args = 1..=2)]
    pub args: Vec<String>,
    /// Send to this user id, or `@username` of someone in the account's
    /// conversations (opens the conversation when needed).
    #[arg(long)]
    pub user: Option<String>,
    /// Quote-reply to this message id.
    #[arg(long)]
    pub reply_to: Option<String>,
    /// Send an image by URL instead of text.
    #[arg(long)]
    pub image: Option<String>,
    /// A quick reply, TITLE=PAYLOAD (repeatable, official API).
    #[arg(long = "quick-reply")]
    pub quick_replies: Vec<String>,
    /// Tag a human-written reply HUMAN_AGENT (official API, up to 7 days after the customer's message).
    #[arg(long)]
    pub human_agent: bool,
    /// The same key never sends twice (default: a new key).
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Print the request instead of sending it.
    #[arg(long)]
    pub print_request: bool,
    /// Send a photo from a local JPEG file (uploaded, then sent).
    #[arg(long, value_name = "FILE", group = "media", conflicts_with = "image")]
    pub photo: Option<std::path::PathBuf>,
    /// Send a video from a local MP4 file (H.264).
    #[arg(long, value_name = "FILE", group = "media", conflicts_with = "image")]
    pub video: Option<std::path::PathBuf>,
    /// Send a voice note from a local M4A file (AAC in MP4).
    #[arg(long, value_name = "FILE", group = "media", conflicts_with = "image")]
    pub voice: Option<std::path::PathBuf>,
    /// Send a document (PDF) from a local file; accounts whose API carries files only (instagram-page).
    #[arg(long, value_name = "FILE", group = "media", conflicts_with = "image")]
    pub file: Option<std::path::PathBuf>,
    /// With --photo/--video/--voice/--file: a text sent after the media, as its own message.
    #[arg(long, value_name = "T")]
    pub text: Option<String>,
    /// Send the heart (a like): give CONVERSATION alone.
    #[arg(long, group = "item", conflicts_with_all = ["image", "media"])]
    pub like: bool,
    /// Share a post by its media id: give CONVERSATION alone.
    #[arg(long, value_name = "MEDIA_ID", group = "item", conflicts_with_all = ["image", "media"])]
    pub share: Option<String>,
    /// Send a template from a JSON file, `{"elements": [...]}` (a carousel
    /// of cards) or `{"text": "...", "buttons": [...]}` (official API): give
    /// CONVERSATION alone.
    #[arg(long, value_name = "FILE", group = "item", conflicts_with_all = ["image", "media"])]
    pub template: Option<std::path::PathBuf>,
    /// Send TEXT with a preview of URL, which TEXT must contain (repeatable;
    /// private API).
    #[arg(long = "link", value_name = "URL", conflicts_with_all = ["image", "media", "item"])]
    pub links: Vec<String>,
}

fn pairs(items: &[String], what: &str) -> anyhow::Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|q| {
            q.split_once('=')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
                .ok_or_else(|| anyhow::anyhow!("{what} must be NAME=VALUE, got {q:?}"))
        })
        .collect()
}

/// Runs a messaging command.
pub async fn run(cmd: MsgCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let mut ctx = Runtime::from_env()?;
    if let MsgCommand::Request { record: Some(dir), .. } = &cmd {
        ctx = ctx.recording_to(dir.clone())?;
    }
    // A local search needs the account's name and the store, not a client
    // (no vault, no connector).
    if let MsgCommand::Search { query, limit, remote: false } = &cmd {
        let account = ctx.account(global.account.as_deref())?.name;
        return Ok(match local_search(&ctx, &account, query, *limit, global.json).await {
            Ok(code) => code,
            Err(e) => usage_error(global.json, &e),
        });
    }
    let opened = ctx.open(global.account.as_deref()).await?;
    let code = match dispatch(opened.client(), &ctx.public_files(), cmd, global).await {
        Ok(code) => code,
        Err(Failure::Client(e)) => output::client_error(global.json, &e),
        Err(Failure::Usage(e)) => usage_error(global.json, &e),
    };
    opened.finish().await?;
    Ok(code)
}

/// Prints a usage error (an invalid request) and returns its exit code.
fn usage_error(json_out: bool, e: &anyhow::Error) -> ExitCode {
    let api = igdm_model::ApiError::new(igdm_model::ErrorClass::InvalidRequest, format!("{e:#}"));
    output::error(json_out, &api)
}

enum Failure {
    Client(igdm::Error),
    Usage(anyhow::Error),
}

impl From<igdm::Error> for Failure {
    fn from(e: igdm::Error) -> Self {
        Self::Client(e)
    }
}

impl From<igdm_runtime::RuntimeError> for Failure {
    fn from(e: igdm_runtime::RuntimeError) -> Self {
        Self::Usage(e.into())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Usage(e)
    }
}

async fn object(
    client: &Client,
    json_out: bool,
    action: &str,
    p: Map<String, Value>,
) -> Result<ExitCode, Failure> {
    let out = client.invoke(action, p).await?;
    for w in &out.warnings {
        eprintln!("warning: {w}");
    }
    output::object(json_out, &out.data, |v| serde_json::to_string_pretty(v).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

async fn dispatch(
    client: &Client,
    public: &igdm::public::PublicFiles,
    cmd: MsgCommand,
    global: &Global,
) -> Result<ExitCode, Failure> {
    let j = global.json;
    match cmd {
        MsgCommand::Conversations { unread, pending, limit, cursor } => {
            list_conversations(client, j, unread, pending, limit, cursor).await?;
        }
        MsgCommand::Conversation { id } => {
            let out = client
                .invoke("get_conversation", params(&[("conversation_id", json!(id))]))
                .await?;
            let conv: Conversation = serde_json::from_value(out.data.clone())
                .map_err(|e| igdm::Error::Shape(format!("get_conversation: {e}")))?;
            output::object(j, &out.data, |_| output::conversation_row(&conv));
        }
        MsgCommand::Messages { conversation, limit, cursor, remote } => {
            if !remote && let Some(store) = fresh_store(client).await? {
                let page = store
                    .list_messages(
                        &client.account().name,
                        &conversation,
                        limit.unwrap_or(20),
                        cursor.as_deref(),
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("local store: {e}"))?;
                output::page(j, &page, &[FROM_STORE.to_owned()], output::message_row);
                return Ok(ExitCode::SUCCESS);
            }
            let mut req = client.messages(conversation);
            if let Some(n) = limit {
                req = req.limit(n);
            }
            if let Some(c) = cursor {
                req = req.cursor(c);
            }
            let (page, warnings) = req.await?;
            output::page(j, &page, &warnings, output::message_row);
        }
        MsgCommand::Message { conversation, id } => {
            let out = client
                .invoke(
                    "get",
                    params(&[("conversation_id", json!(conversation)), ("message_id", json!(id))]),
                )
                .await?;
            let msg: Message = serde_json::from_value(out.data.clone())
                .map_err(|e| igdm::Error::Shape(format!("get: {e}")))?;
            output::object(j, &out.data, |_| output::message_row(&msg));
        }
        MsgCommand::Send(args) => return send(client, public, args, j).await,
        MsgCommand::React { conversation, message, emoji } => {
            let reaction =
                if client.connector().id == "instagram-web" { json!(null) } else { json!("love") };
            return object(
                client,
                j,
                "react",
                params(&[
                    ("conversation_id", json!(conversation)),
                    ("message_id", json!(message)),
                    ("emoji", json!(emoji)),
                    ("reaction", reaction),
                ]),
            )
            .await;
        }
        MsgCommand::Unreact { conversation, message } => {
            return object(
                client,
                j,
                "unreact",
                params(&[("conversation_id", json!(conversation)), ("message_id", json!(message))]),
            )
            .await;
        }
        MsgCommand::MarkRead { conversation, message } => {
            return object(
                client,
                j,
                "mark_read",
                params(&[
                    ("conversation_id", json!(conversation)),
                    ("message_id", message.map_or(Value::Null, |m| json!(m))),
                ]),
            )
            .await;
        }
        MsgCommand::MarkUnread { conversation } => {
            return simple(client, j, "mark_unread", conversation).await;
        }
        MsgCommand::Delete { conversation, message } => {
            return object(
                client,
                j,
                "delete",
                params(&[("conversation_id", json!(conversation)), ("message_id", json!(message))]),
            )
            .await;
        }
        MsgCommand::Mute { conversation } => return simple(client, j, "mute", conversation).await,
        MsgCommand::Unmute { conversation } => {
            return simple(client, j, "unmute", conversation).await;
        }
        MsgCommand::Archive { conversation } => {
            return simple(client, j, "archive", conversation).await;
        }
        MsgCommand::Typing { conversation, off } => {
            return object(
                client,
                j,
                "send_typing",
                params(&[("conversation_id", json!(conversation)), ("typing", json!(!off))]),
            )
            .await;
        }
        MsgCommand::Presence { users } => {
            return object(client, j, "get_presence", params(&[("user_ids", json!(users))])).await;
        }
        MsgCommand::Search { query, limit, remote: false } => {
            // `run` answers local searches before opening a client; this arm keeps the match total.
            let account = &client.account().name;
            return Ok(local_search(&Runtime::from_env()?, account, &query, limit, j).await?);
        }
        MsgCommand::Search { query, limit, remote: true } => {
            let out = client
                .invoke(
                    "search",
                    params(&[
                        ("query", json!(query)),
                        ("limit", limit.map_or(Value::Null, |n| json!(n))),
                    ]),
                )
                .await?;
            let (page, warnings) = igdm::ops::page_of::<Message>("search", out)?;
            output::page(j, &page, &warnings, output::message_row);
        }
        MsgCommand::Unread { limit, remote } => {
            if !remote && let Some(store) = fresh_store(client).await? {
                let account = &client.account().name;
                let filter = igdm_store::ConversationFilter { unread: Some(true), folder: None };
                let convs = store
                    .list_conversations(account, &filter, limit.unwrap_or(20), None)
                    .await
                    .map_err(|e| anyhow::anyhow!("local store: {e}"))?;
                let mut items = Vec::new();
                for c in &convs.items {
                    let latest = store
                        .list_messages(account, c.id.as_str(), 1, None)
                        .await
                        .map_err(|e| anyhow::anyhow!("local store: {e}"))?;
                    items.extend(latest.items.into_iter().filter(|m| !m.sender.is_self));
                }
                let page = igdm_model::Page {
                    items,
                    next_cursor: convs.next_cursor,
                    has_more: convs.has_more,
                };
                output::page(j, &page, &[FROM_STORE.to_owned()], output::message_row);
                return Ok(ExitCode::SUCCESS);
            }
            let out = client
                .invoke("get_unread", params(&[("limit", limit.map_or(Value::Null, |n| json!(n)))]))
                .await?;
            let (page, warnings) = igdm::ops::page_of::<Message>("get_unread", out)?;
            output::page(j, &page, &warnings, output::message_row);
        }
        MsgCommand::ReplyComment { comment_id, text, idempotency_key } => {
            let p = params(&[("comment_id", json!(comment_id)), ("text", json!(text))]);
            if let igdm::Performed::Sent(outcome) =
                client.perform("reply_to_comment", p, idempotency_key).await?
            {
                print_sent(j, &outcome);
            }
        }
        MsgCommand::Profile { user } => {
            return object(client, j, "get_profile", params(&[("user_id", json!(user))])).await;
        }
        MsgCommand::Menu { op } => {
            return match op {
                MenuOp::Get => object(client, j, "get_persistent_menu", Map::new()).await,
                MenuOp::Delete => object(client, j, "delete_persistent_menu", Map::new()).await,
                MenuOp::Set { items } => {
                    let list: Vec<Value> = pairs(&items, "--item")?
                        .into_iter()
                        .map(|(title, to)| {
                            if to.starts_with("https://") || to.starts_with("http://") {
                                json!({"type": "web_url", "title": title, "url": to})
                            } else {
                                json!({"type": "postback", "title": title, "payload": to})
                            }
                        })
                        .collect();
                    object(client, j, "set_persistent_menu", params(&[("items", json!(list))]))
                        .await
                }
            };
        }
        MsgCommand::IceBreakers { op } => {
            return match op {
                IceBreakersOp::Get => object(client, j, "get_ice_breakers", Map::new()).await,
                IceBreakersOp::Delete => object(client, j, "delete_ice_breakers", Map::new()).await,
                IceBreakersOp::Set { questions } => {
                    let list: Vec<Value> = pairs(&questions, "--question")?
                        .into_iter()
                        .map(|(q, p)| json!({"question": q, "payload": p}))
                        .collect();
                    object(client, j, "set_ice_breakers", params(&[("ice_breakers", json!(list))]))
                        .await
                }
            };
        }
        MsgCommand::Request { path, record: _, vars, form, method, headers, query, body } => {
            let method = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .map_err(|e| anyhow::anyhow!("--method: {e}"))?;
            let headers: Vec<(String, String)> = headers
                .iter()
                .map(|h| {
                    h.split_once(':')
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                        .ok_or_else(|| anyhow::anyhow!("--header must be Name: value, got {h:?}"))
                })
                .collect::<Result<_, _>>()?;
            let query = pairs(&query, "--query")?;
            let body = match body {
                Some(b) => igdm::RawBody::Json(
                    serde_json::from_str(&b).map_err(|e| anyhow::anyhow!("--body: {e}"))?,
                ),
                None if !form.is_empty() => igdm::RawBody::Form(pairs(&form, "--form")?),
                None => igdm::RawBody::Empty,
            };
            let path = fill_path(&path, &pairs(&vars, "--var")?)?;
            let (status, value) =
                client.raw_request(method, &path, &query, &headers, &body).await?;
            if j {
                println!("{}", json!({"status": status, "body": value}));
            } else {
                println!("HTTP {status}");
                println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            }
        }
        MsgCommand::Capabilities => {
            let doc = capabilities(client);
            output::object(j, &doc, |v| serde_json::to_string_pretty(v).unwrap_or_default());
        }
        MsgCommand::Requests(op) => {
            return match op {
                RequestsOp::List { limit, cursor } => {
                    list_conversations(client, j, false, true, limit, cursor).await
                }
                RequestsOp::Approve { conversation_id: c } => {
                    object(client, j, "approve", params(&[("conversation_id", json!(c))])).await
                }
                RequestsOp::Decline { conversation_id: c } => {
                    object(client, j, "decline", params(&[("conversation_id", json!(c))])).await
                }
            };
        }
        MsgCommand::Run { action, input, params: pairs_given, idempotency_key } => {
            let mut p = match input.as_deref() {
                None => Map::new(),
                Some(text) => run_input(text)?,
            };
            let kind = |name: &str| {
                client
                    .connector()
                    .action(&action)
                    .and_then(|a| a.params().get(name))
                    .map(|s| s.kind)
            };
            p.extend(super::spec::parse_params(&pairs_given, kind)?);
            match client.perform(&action, p, idempotency_key).await? {
                igdm::Performed::Sent(outcome) => print_sent(j, &outcome),
                igdm::Performed::Ran(out) => print_output(client, j, &action, out),
                _ => {}
            }
        }
        MsgCommand::Actions { search } => {
            let words: Vec<String> =
                search.unwrap_or_default().split_whitespace().map(str::to_lowercase).collect();
            let items: Vec<Value> = client
                .connector()
                .actions()
                .filter(|a| {
                    let hay =
                        format!("{} {}", a.name(), a.description().unwrap_or("")).to_lowercase();
                    words.iter().all(|w| hay.contains(w.as_str()))
                })
                .map(|a| {
                    json!({
                        "name": a.name(),
                        "description": a.description(),
                        "readonly": a.readonly(),
                        "input_schema": igdm_spec::params_schema(a.params()),
                        // How the CLI and the MCP server reach it (docs/actions.md).
                        "reach": igdm::catalog::entry(a.name()).map(igdm::catalog::ActionEntry::reach_json),
                    })
                })
                .collect();
            if j {
                super::output::complete_list(&items);
            } else {
                for i in &items {
                    println!(
                        "{:<24} {:<5} {}",
                        i["name"].as_str().unwrap_or(""),
                        if i["readonly"] == json!(true) { "read" } else { "write" },
                        i["description"].as_str().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

const FROM_STORE: &str = "served from the local store (synced recently); --remote asks Instagram";

/// The local store when a complete sync finished within `IGDM_FRESH_SECS`
/// (default 300 s); `None` means ask Instagram.
async fn fresh_store(client: &Client) -> Result<Option<igdm_store::Store>, Failure> {
    let ttl: i64 =
        std::env::var("IGDM_FRESH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let ctx = Runtime::from_env()?;
    if !ctx.home().join("igdm.db").exists() && std::env::var_os("IGDM_DATABASE_URL").is_none() {
        return Ok(None);
    }
    let store = ctx.store().await?;
    let last = igdm::last_synced(&*store, &client.account().name).await?;
    Ok(last.filter(|t| (igdm_model::Timestamp::now().0 - t.0).num_seconds() < ttl).map(|_| store))
}

async fn local_search(
    ctx: &Runtime,
    account: &str,
    query: &str,
    limit: Option<u32>,
    j: bool,
) -> anyhow::Result<ExitCode> {
    let store = ctx.store_reader().await?;
    let hits = store
        .search_text(account, query, limit.unwrap_or(20), None)
        .await
        .map_err(|e| anyhow::anyhow!("local search: {e}"))?;
    if j {
        let items: Vec<Value> = hits
            .items
            .iter()
            .map(|h| json!({"message": h.message, "snippet": h.snippet, "rank": h.rank}))
            .collect();
        println!(
            "{}",
            json!({"items": items, "next_cursor": hits.next_cursor, "has_more": hits.has_more, "warnings": []})
        );
    } else if hits.items.is_empty() {
        println!("(nothing; run `igdm sync` first to search locally, or use --remote)");
    } else {
        for h in &hits.items {
            println!("{}  {}  {}", h.message.timestamp, h.message.conversation_id, h.snippet);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn simple(
    client: &Client,
    j: bool,
    action: &str,
    conversation: String,
) -> Result<ExitCode, Failure> {
    object(client, j, action, params(&[("conversation_id", json!(conversation))])).await
}

async fn send(
    client: &Client,
    public: &igdm::public::PublicFiles,
    args: SendArgs,
    j: bool,
) -> Result<ExitCode, Failure> {
    let media = [
        (igdm::MediaKind::Photo, &args.photo),
        (igdm::MediaKind::Video, &args.video),
        (igdm::MediaKind::Voice, &args.voice),
        (igdm::MediaKind::File, &args.file),
    ]
    .into_iter()
    .find_map(|(k, f)| f.clone().map(|f| (k, f)));
    if let Some((kind, file)) = media {
        return send_media(client, public, &args, kind, file, j).await;
    }
    if args.text.is_some() {
        return Err(anyhow::anyhow!(
            "--text goes with --photo, --video, --voice or --file; give the text as TEXT"
        )
        .into());
    }
    if let Some((action, p)) = single_item(&args)? {
        return send_or_print(client, j, action, p, &args).await;
    }
    let (conversation, text) = match (&args.user, args.args.as_slice()) {
        (Some(_), [text]) => (None, text.clone()),
        (None, [conv, text]) => (Some(conv.clone()), text.clone()),
        (Some(_), _) => return Err(anyhow::anyhow!("with --user give only the TEXT").into()),
        (None, _) => {
            return Err(anyhow::anyhow!("give CONVERSATION TEXT (or --user USER TEXT)").into());
        }
    };
    let quick: Vec<Value> = pairs(&args.quick_replies, "--quick-reply")?
        .into_iter()
        .map(|(t, p)| json!({"title": t, "payload": p}))
        .collect();
    if let Some(user) = &args.user {
        let user = client.resolve_user(user).await?;
        let action = if args.image.is_some() { "send_image" } else { "send_to_user" };
        let p = params(&[
            ("user_id", json!(user)),
            ("text", json!(text)),
            ("url", args.image.as_ref().map_or(Value::Null, |u| json!(u))),
            ("human_agent", if args.human_agent { json!(true) } else { Value::Null }),
        ]);
        return send_or_print(client, j, action, p, &args).await;
    }
    let conversation = conversation.unwrap_or_default();
    if !args.links.is_empty() {
        if let Some(url) = args.links.iter().find(|u| !text.contains(u.as_str())) {
            return Err(anyhow::anyhow!("--link {url}: TEXT must contain the link").into());
        }
        let p = params(&[
            ("conversation_id", json!(conversation)),
            ("text", json!(text)),
            ("urls", json!(args.links)),
        ]);
        return send_or_print(client, j, "send_link", p, &args).await;
    }
    if !quick.is_empty() && args.reply_to.is_none() && client.supports("send_quick_replies") {
        let p = params(&[
            ("conversation_id", json!(conversation)),
            ("text", json!(text)),
            ("quick_replies", json!(quick)),
            ("human_agent", if args.human_agent { json!(true) } else { Value::Null }),
        ]);
        return send_or_print(client, j, "send_quick_replies", p, &args).await;
    }
    if let Some(url) = &args.image {
        let p = params(&[
            ("conversation_id", json!(conversation)),
            ("url", json!(url)),
            ("text", json!(text)),
        ]);
        return send_or_print(client, j, "send_image", p, &args).await;
    }
    let mut req = client.send(conversation, text);
    if let Some(r) = args.reply_to {
        req = req.reply_to(r);
    }
    if let Some(k) = args.idempotency_key {
        req = req.idempotency_key(k);
    }
    if !quick.is_empty() {
        req = req.param("quick_replies", json!(quick));
    }
    if args.human_agent {
        req = req.param("human_agent", json!(true));
    }
    if args.print_request {
        print_request(&req.build_request().await?);
        return Ok(ExitCode::SUCCESS);
    }
    print_sent(j, &req.await?);
    Ok(ExitCode::SUCCESS)
}

/// The one-item send `--like`, `--share` or `--template` asks for, with its
/// parameters: to CONVERSATION alone.
fn single_item(args: &SendArgs) -> anyhow::Result<Option<(&'static str, Map<String, Value>)>> {
    let (action, mut p) = if args.like {
        ("send_like", Map::new())
    } else if let Some(id) = &args.share {
        ("media_share", params(&[("media_id", json!(id))]))
    } else if let Some(file) = &args.template {
        template(file)?
    } else {
        return Ok(None);
    };
    let conversation = match (&args.user, args.args.as_slice()) {
        (None, [conversation]) => conversation.clone(),
        _ => anyhow::bail!(
            "--like, --share and --template send to CONVERSATION alone (no TEXT, no --user)"
        ),
    };
    if args.reply_to.is_some() || !args.quick_replies.is_empty() {
        anyhow::bail!("--like, --share and --template take no --reply-to or --quick-reply");
    }
    p.insert("conversation_id".into(), json!(conversation));
    if args.human_agent {
        p.insert("human_agent".into(), json!(true));
    }
    Ok(Some((action, p)))
}

/// A template file: `{"elements": [...]}` or `{"text": ..., "buttons": [...]}`.
fn template(file: &std::path::Path) -> anyhow::Result<(&'static str, Map<String, Value>)> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the template {}", file.display()))?;
    let Value::Object(t) = serde_json::from_str::<Value>(&text)
        .with_context(|| format!("the template {} is not JSON", file.display()))?
    else {
        anyhow::bail!("the template {} must be a JSON object", file.display());
    };
    match (t.get("elements"), t.get("buttons"), t.get("text")) {
        (Some(elements), None, None) => {
            Ok(("send_generic_template", params(&[("elements", elements.clone())])))
        }
        (None, Some(buttons), Some(text)) => Ok((
            "send_button_template",
            params(&[("text", text.clone()), ("buttons", buttons.clone())]),
        )),
        _ => anyhow::bail!(
            "the template {} must hold either \"elements\" (a carousel) or \"text\" and \"buttons\"",
            file.display()
        ),
    }
}

/// Sends `action` through the send ledger or, with `--print-request`,
/// prints the request it would send.
async fn send_or_print(
    client: &Client,
    j: bool,
    action: &str,
    p: Map<String, Value>,
    args: &SendArgs,
) -> Result<ExitCode, Failure> {
    if args.print_request {
        let p = client.adapt(action, p).await?;
        print_request(&client.build_request(action, &p).await?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut req = client.send_action(action, p);
    if let Some(k) = &args.idempotency_key {
        req = req.idempotency_key(k.clone());
    }
    print_sent(j, &req.await?);
    Ok(ExitCode::SUCCESS)
}

/// One page of the inbox (or of the message requests), printed.
async fn list_conversations(
    client: &Client,
    j: bool,
    unread: bool,
    pending: bool,
    limit: Option<u32>,
    cursor: Option<String>,
) -> Result<ExitCode, Failure> {
    let mut req = client.conversations();
    if unread {
        req = req.unread();
    }
    if pending {
        req = req.pending();
    }
    if let Some(n) = limit {
        req = req.limit(n);
    }
    if let Some(c) = cursor {
        req = req.cursor(c);
    }
    let (page, warnings) = req.await?;
    output::page(j, &page, &warnings, output::conversation_row);
    Ok(ExitCode::SUCCESS)
}

/// `path` with each `{name}` replaced by its `--var`, percent-encoded as a
/// path segment; a placeholder without a value, or a value without a
/// placeholder, is refused.
fn fill_path(path: &str, vars: &[(String, String)]) -> anyhow::Result<String> {
    let mut out = path.to_owned();
    for (name, value) in vars {
        let slot = format!("{{{name}}}");
        if !out.contains(&slot) {
            anyhow::bail!("--var {name}: the path has no {slot}");
        }
        let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        out = out.replace(&slot, &encoded);
    }
    if let Some(start) = out.find('{')
        && let Some(len) = out[start..].find('}')
    {
        anyhow::bail!("the path's {} has no --var", &out[start..=start + len]);
    }
    Ok(out)
}

/// The `--input` of `igdm run`: a JSON object, `@FILE` or `-` (stdin).
fn run_input(text: &str) -> anyhow::Result<Map<String, Value>> {
    use anyhow::Context as _;
    let raw = if text == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading --input from stdin")?
    } else if let Some(file) = text.strip_prefix('@') {
        std::fs::read_to_string(file).with_context(|| format!("reading --input from {file}"))?
    } else {
        text.to_owned()
    };
    match serde_json::from_str::<Value>(&raw).context("--input is not JSON")? {
        Value::Object(m) => Ok(m),
        other => anyhow::bail!("--input must be a JSON object of parameters, got {other}"),
    }
}

/// An action's output: a list document when the action pages, else its object.
fn print_output(client: &Client, j: bool, action: &str, out: igdm_spec::ActionOutput) {
    let pages = client.connector().action(action).is_some_and(igdm_spec::Action::has_page);
    if pages || out.data.is_array() {
        let items = match out.data {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            one => vec![one],
        };
        let (next_cursor, has_more) =
            out.page.map_or((None, false), |p| (p.next_cursor, p.has_more));
        let page = igdm_model::Page { items, next_cursor, has_more };
        output::page(j, &page, &out.warnings, |v| v.to_string());
    } else {
        for w in &out.warnings {
            eprintln!("warning: {w}");
        }
        output::object(j, &out.data, |v| serde_json::to_string_pretty(v).unwrap_or_default());
    }
}

fn print_sent(j: bool, outcome: &igdm::SendOutcome) {
    if j {
        println!("{}", serde_json::to_value(outcome).unwrap_or_default());
    } else {
        println!(
            "{} (key {}): {}",
            outcome.outcome,
            outcome.idempotency_key,
            outcome.result.get("id").and_then(Value::as_str).unwrap_or("")
        );
    }
}

/// `igdm send CONVERSATION --photo|--video|--voice|--file FILE [--text T]`.
async fn send_media(
    client: &Client,
    public: &igdm::public::PublicFiles,
    args: &SendArgs,
    kind: igdm::MediaKind,
    file: std::path::PathBuf,
    j: bool,
) -> Result<ExitCode, Failure> {
    if args.user.is_some() {
        return Err(anyhow::anyhow!(
            "media go to an existing conversation (Instagram refuses them otherwise): give CONVERSATION instead of --user"
        )
        .into());
    }
    if args.print_request || args.reply_to.is_some() || !args.quick_replies.is_empty() {
        return Err(anyhow::anyhow!(
            "--print-request, --reply-to and --quick-reply do not apply to media sends"
        )
        .into());
    }
    let (conversation, text) = match args.args.as_slice() {
        [conv] => (conv.clone(), args.text.clone()),
        [conv, text] if args.text.is_none() => (conv.clone(), Some(text.clone())),
        _ => {
            return Err(
                anyhow::anyhow!("give CONVERSATION, and the text once (TEXT or --text)").into()
            );
        }
    };
    let mut req = client.send_media(conversation, kind, file).public(public.clone());
    if let Some(t) = text {
        req = req.text(t);
    }
    if let Some(k) = &args.idempotency_key {
        req = req.idempotency_key(k.clone());
    }
    let out = req.await?;
    if j {
        println!("{}", serde_json::to_value(&out).unwrap_or_default());
    } else {
        let resumed = if out.resumed_from.is_empty() {
            String::new()
        } else {
            format!(", resumed {} time(s)", out.resumed_from.len())
        };
        println!(
            "sent {} ({} bytes{resumed}): {}",
            kind.name(),
            out.bytes,
            out.result.get("id").and_then(Value::as_str).unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_request(req: &igdm_spec::HttpRequest) {
    let headers: Map<String, Value> =
        req.redacted_headers().into_iter().map(|(k, v)| (k, json!(v))).collect();
    let doc = json!({
        "method": req.method.as_str(),
        "url": req.url.as_str(),
        "headers": headers,
        "body": String::from_utf8_lossy(&req.body),
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

/// The connector's capability descriptor as JSON.
pub fn capabilities(client: &Client) -> Value {
    let c = client.connector();
    let caps: Map<String, Value> = c
        .capabilities
        .as_ref()
        .map(|caps| {
            caps.actions
                .iter()
                .map(|(name, cap)| {
                    (
                        name.clone(),
                        json!({
                            "supported": cap.supported,
                            "verified": cap.verified,
                            "action": cap.action.clone().unwrap_or_else(|| name.clone()),
                            "limits": limits_json(&cap.limits),
                            "note": cap.note,
                        }),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "connector": c.id,
        "version": c.capabilities.as_ref().and_then(|x| x.version.clone()),
        "capabilities": caps,
        "limits": c.limits.as_ref().map(limits_json),
        "actions": c.actions().map(|a| a.name().to_owned()).collect::<Vec<_>>(),
    })
}

fn limits_json(l: &igdm_spec::Limits) -> Value {
    let mut m = Map::new();
    for (k, v) in [
        ("text_max_bytes", l.text_max_bytes),
        ("text_max_chars", l.text_max_chars),
        ("image_max_bytes", l.image_max_bytes),
        ("video_max_bytes", l.video_max_bytes),
        ("audio_max_bytes", l.audio_max_bytes),
        ("file_max_bytes", l.file_max_bytes),
        ("history_max_messages", l.history_max_messages),
        ("reply_window_hours", l.reply_window_hours),
        ("max_edits", l.max_edits),
        ("page_size_max", l.page_size_max),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    Value::Object(m)
}
