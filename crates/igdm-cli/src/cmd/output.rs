//! Output: human tables by default, exactly one JSON document with `--json`,
//! and exit codes by error class (see docs/json-output.md).

use std::process::ExitCode;

use serde::Serialize;
use serde_json::{Value, json};

use igdm_model::{ApiError, Conversation, Message, Page};

/// Prints a page of items.
pub fn page<T: Serialize>(
    json_out: bool,
    page: &Page<T>,
    warnings: &[String],
    row: impl Fn(&T) -> String,
) {
    if json_out {
        let doc = json!({
            "items": page.items,
            "next_cursor": page.next_cursor,
            "has_more": page.has_more,
            "warnings": warnings,
        });
        println!("{doc}");
        return;
    }
    for item in &page.items {
        println!("{}", row(item));
    }
    if page.items.is_empty() {
        println!("(nothing)");
    }
    if let Some(c) = &page.next_cursor {
        println!("-- more: --cursor {c}");
    }
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// Prints a complete (single-page) list as the `--json` list document.
pub fn complete_list<T: Serialize>(items: &[T]) {
    println!("{}", json!({"items": items, "next_cursor": null, "has_more": false, "warnings": []}));
}

/// Prints one object.
pub fn object(json_out: bool, value: &Value, human: impl FnOnce(&Value) -> String) {
    if json_out {
        println!("{value}");
    } else {
        println!("{}", human(value));
    }
}

/// One line for a conversation.
pub fn conversation_row(c: &Conversation) -> String {
    let who: Vec<String> = c
        .participants
        .iter()
        .map(|p| p.username.clone().unwrap_or_else(|| p.id.to_string()))
        .collect();
    format!(
        "{}{}  {:<40}  {}  {}",
        if c.unread { "* " } else { "  " },
        c.id,
        c.title.clone().unwrap_or_else(|| who.join(", ")),
        c.kind,
        c.updated_at.map(|t| t.to_string()).unwrap_or_default()
    )
}

/// One line for a message.
pub fn message_row(m: &Message) -> String {
    let who = m.sender.username.clone().unwrap_or_else(|| m.sender.id.to_string());
    let body = m.text.clone().unwrap_or_else(|| format!("[{}]", m.content_type));
    let reactions: String = m.reactions.iter().map(|r| r.emoji.as_str()).collect();
    format!(
        "{}  {}  {:<16} {}{}",
        m.timestamp,
        m.id,
        if m.sender.is_self { "me".to_owned() } else { who },
        body,
        if reactions.is_empty() { String::new() } else { format!("  ({reactions})") }
    )
}

/// Prints an error (as `{"error": …}` with `--json`) and returns its exit code.
pub fn error(json_out: bool, e: &ApiError) -> ExitCode {
    if json_out {
        let doc = json!({"error": {
            "class": e.class,
            "message": e.message,
            "retryable": e.retryable,
            "retry_after": e.retry_after,
            "needs_user": e.needs_user,
            "remediation": e.remediation,
            "url": e.url,
        }});
        println!("{doc}");
    } else {
        eprintln!("error ({}): {}", e.class, e.message);
        eprintln!("  {}", e.remediation);
        if let Some(u) = &e.url {
            eprintln!("  open: {u}");
        }
    }
    ExitCode::from(igdm::exit_code(&e.class))
}

/// The exit code of a send whose outcome is unknown (nothing was resent).
pub const EXIT_OUTCOME_UNKNOWN: u8 = 7;

/// Reports an [`igdm::Error`]. A send left without a verdict prints its
/// ledger state (`outcome: unknown`, the key, the candidate messages) and
/// exits [`EXIT_OUTCOME_UNKNOWN`].
pub fn client_error(json_out: bool, e: &igdm::Error) -> ExitCode {
    let api = e.to_api_error();
    let Some(unsettled) = e.unsettled_send() else {
        return error(json_out, &api);
    };
    if json_out {
        let doc = json!({
            "idempotency_key": unsettled.idempotency_key,
            "outcome": unsettled.state,
            "candidates": unsettled.candidates,
            "error": {
                "class": api.class,
                "message": api.message,
                "retryable": api.retryable,
                "retry_after": api.retry_after,
                "needs_user": api.needs_user,
                "remediation": api.remediation,
                "url": api.url,
            },
        });
        println!("{doc}");
    } else {
        eprintln!(
            "{} (key {}): {}",
            unsettled.state.as_str(),
            unsettled.idempotency_key,
            api.message
        );
        if !api.remediation.is_empty() {
            eprintln!("  {}", api.remediation);
        }
    }
    ExitCode::from(EXIT_OUTCOME_UNKNOWN)
}
