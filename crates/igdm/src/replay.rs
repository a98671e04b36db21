//! Replaying recorded exchanges ([`igdm_spec::record`]) through the
//! connectors offline: each recorded response is mapped by its action exactly
//! as a live call would map it, then decoded into the model type that front
//! ends read it as. A recording from a real account that no longer maps is a
//! wire change the sandbox cannot show.

use std::path::{Path, PathBuf};

use igdm_model::{Conversation, Message, User};
use igdm_spec::record::Recording;
use igdm_spec::{Connector, HttpResponse};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::ops::page_of;

/// What replaying one recording found.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    /// The recording file.
    pub file: PathBuf,
    /// Its connector, when the file could be read.
    pub connector: Option<String>,
    /// Its action, when it ran one.
    pub action: Option<String>,
    /// Whether it mapped without a problem.
    pub ok: bool,
    /// What went wrong: unreadable file, unknown connector or action, a
    /// mapping error or warning, a decode failure, an unclassified error
    /// response.
    pub problems: Vec<String>,
    /// How many model items the mapped response decoded into.
    pub items: usize,
}

/// Replays every recording in `dir`, resolving connectors by id with
/// `connector`.
///
/// # Errors
/// When `dir` cannot be listed. Problems with single recordings are reported
/// in their [`Replayed`], never as an error.
pub fn replay_dir(
    dir: &Path,
    connector: impl Fn(&str) -> Option<std::sync::Arc<Connector>>,
) -> std::io::Result<Vec<Replayed>> {
    let mut out = Vec::new();
    for (file, rec) in igdm_spec::record::read_dir(dir)? {
        let replayed = match rec {
            Err(e) => Replayed {
                file,
                connector: None,
                action: None,
                ok: false,
                problems: vec![format!("unreadable recording: {e}")],
                items: 0,
            },
            Ok(rec) => {
                let (problems, items) = match connector(&rec.connector) {
                    None => (vec![format!("no connector {:?}", rec.connector)], 0),
                    Some(c) => replay(&c, &rec),
                };
                Replayed {
                    file,
                    connector: Some(rec.connector),
                    action: rec.action,
                    ok: problems.is_empty(),
                    problems,
                    items,
                }
            }
        };
        out.push(replayed);
    }
    Ok(out)
}

/// Replays one recording through `connector`: the problems found and how
/// many model items its response decoded into.
#[must_use]
pub fn replay(connector: &Connector, rec: &Recording) -> (Vec<String>, usize) {
    let body = rec.body_bytes();
    if rec.response.status >= 400 {
        let resp = HttpResponse {
            status: rec.response.status,
            headers: content_type_header(rec.response.content_type.as_deref()),
            body: body.into(),
        };
        return match connector.classify(&resp) {
            Some(_) => (Vec::new(), 0),
            None => {
                (vec![format!("status {} is not classified as an error", rec.response.status)], 0)
            }
        };
    }
    let Some(action) = rec.action.as_deref() else {
        // A raw request has no mapping to check.
        return (Vec::new(), 0);
    };
    if action.contains('.') {
        // The auth probes are checked by their own classifiers, not mapped.
        return (Vec::new(), 0);
    }
    let params = match &rec.params {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let out = match connector.map_body(action, &params, &body) {
        Ok(out) => out,
        Err(e) => return (vec![format!("{action}: {e}")], 0),
    };
    let mut problems: Vec<String> = out
        .warnings
        .iter()
        .filter(|w| is_mapping_problem(w))
        .map(|w| format!("{action}: {w}"))
        .collect();
    let decoded = match model_of(action) {
        Some(Model::Conversation) => {
            page_of::<Conversation>(action, out).map(|(p, _)| p.items.len())
        }
        Some(Model::Message) => page_of::<Message>(action, out).map(|(p, _)| p.items.len()),
        Some(Model::User) => page_of::<User>(action, out).map(|(p, _)| p.items.len()),
        None => Ok(0),
    };
    match decoded {
        Ok(n) => (problems, n),
        Err(e) => {
            problems.push(e.to_string());
            (problems, 0)
        }
    }
}

/// The model type front ends decode an action's output into.
enum Model {
    Conversation,
    Message,
    User,
}

fn model_of(action: &str) -> Option<Model> {
    match action {
        "list_conversations" | "list_pending" | "get_conversation" | "find_conversation" => {
            Some(Model::Conversation)
        }
        "list" | "get" | "search" | "get_unread" => Some(Model::Message),
        "get_profile" => Some(Model::User),
        _ => None,
    }
}

/// Mapping warnings name where evaluation failed (a field path, `context.…`,
/// `root`, …); the warnings a connector declares for a response are prose
/// meant for the user and are not problems of the mapping.
fn is_mapping_problem(w: &str) -> bool {
    w.starts_with(['.', '['])
        || ["context.", "root:", "response.warnings.", "the response root is empty"]
            .iter()
            .any(|p| w.starts_with(p))
}

fn content_type_header(ct: Option<&str>) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    if let Some(v) = ct.and_then(|c| http::HeaderValue::from_str(c).ok()) {
        h.insert(http::header::CONTENT_TYPE, v);
    }
    h
}
