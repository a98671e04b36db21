//! Live updates of an open thread: server-sent events fed by the
//! watchers' event stream ([`igdm::watch::Hub::events`]). The hub publishes
//! an event after applying it to the store, so each event's message is read
//! back from the store and sent as the same list item the page renders
//! (one renderer, one escaping); the script appends it, or replaces the
//! item when a reaction, an edit or an unsend changed a message shown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use igdm_model::{Event, EventKind};

use crate::pages::{App, message_item};

/// Whether the event changes how a message looks.
fn shows(e: &Event) -> bool {
    matches!(
        e.kind,
        EventKind::Message
            | EventKind::Reaction
            | EventKind::MessageEdit
            | EventKind::MessageDeleted
    )
}

pub(crate) async fn thread_events(
    State(app): State<Arc<App>>,
    Path((account, conversation)): Path<(String, String)>,
) -> Response {
    let Some(hub) = app.inbox.hub.clone() else {
        return (StatusCode::NOT_FOUND, "live updates need the watchers: `igdm ui` runs them\n")
            .into_response();
    };
    if app.inbox.account(&account).is_none() {
        return (StatusCode::NOT_FOUND, "no such account\n").into_response();
    }
    let store = app.inbox.store.clone();
    let mut stop = app.stop.clone();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let stream = hub
        .events()
        .filter_map(move |e| {
            let (store, account, conversation) =
                (store.clone(), account.clone(), conversation.clone());
            async move {
                if !shows(&e) {
                    return None;
                }
                let id = e.message_id?;
                // The store knows which of this account's conversations holds it
                // (the official API names conversations by the customer in events).
                let m = store.find_message(&account, &id).await.ok()??;
                if m.conversation_id.as_str() != conversation {
                    return None;
                }
                let kept = store.media_refs(&account, &conversation, &id).await.unwrap_or_default();
                let refs: Vec<_> = kept.iter().collect();
                let item = message_item(&account, &m, &refs);
                Some(Ok::<_, Infallible>(
                    SseEvent::default().event("message").data(item.into_string()),
                ))
            }
        })
        .take_until(stopped);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response()
}
