//! Media uploads (`rupload.facebook.com/messenger_{image,video,audio}/…`)
//! and the CDN that serves what was uploaded.
//!
//! The upload endpoints follow the flow Instagram's Android app uses for
//! Direct attachments (instagrapi `mixins/direct.py`, PRs #2450 and #2765):
//! an optional `GET` that reports the resumable `offset`, then a `POST` of the
//! bytes from that offset, answered with `{"media_id": N}`. The media id is
//! then sent with `direct_v2/threads/broadcast/{photo,raven,voice}_attachment/`.
//!
//! What the sandbox checks, in order (each refusal named in [`Refusal`]):
//! 1. no `X-IG-*`, `X-Bloks-*`, `X-Pigeon-*` header, and no `Host` naming an
//!    Instagram host (Facebook's upload edge answers a generic 404 to those);
//! 2. `Authorization: Bearer IGT:2:<base64 JSON>` naming a live session, and
//!    `ig-intended-user-id` equal to its user;
//! 3. the kind header (`image_type`/`video_type`/`audio_type:
//!    FILE_ATTACHMENT`), and for video `segment-type` and
//!    `x_fb_video_waterfall_id`;
//! 4. on `POST`: `content-type: application/octet-stream`, `x-entity-name`
//!    equal to the path's last segment, `x-entity-type` of the kind
//!    (`image/jpeg`, `video/mp4`, `audio/mp4`), `offset` equal to the bytes
//!    already received for that name, `x-entity-length` equal to `offset` plus
//!    the body, within the kind's size limit (8 MB images, 25 MB video and
//!    audio: mautrix `capabilities.go`), and content of that type (JPEG
//!    magic, an MP4 `ftyp` box).
//!
//! The refusal bodies use the `debug_info` envelope of Facebook's upload
//! service; their exact wording is the sandbox's own.
//!
//! Uploaded media are served from `/cdn/v/t51.2885-15/<media_id>_n.<ext>`
//! with `oh` (a token) and `oe` (hex expiry, Unix seconds) query parameters,
//! like Instagram's CDN links. `POST /_sandbox/media/expire` expires every
//! link at once; re-reading a message then yields a fresh one. A link past
//! its expiry or revoked answers 403 `URL signature expired`.
//! `POST /_sandbox/media/seed` makes a user send an account media items
//! (the bytes given in base64), as if that user had uploaded and sent them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::state::{ItemAttachment, ItemKind, Micros, NewItem, Sandbox, SandboxError, World};

/// How long a CDN link lives (Instagram's last a few days).
const CDN_TTL_SECS: i64 = 3 * 24 * 3600;

/// Routes of the upload edge, the CDN and their control endpoints.
pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/messenger_image/{name}", any(upload_image))
        .route("/messenger_video/{name}", any(upload_video))
        .route("/messenger_audio/{name}", any(upload_audio))
        .route("/cdn/v/{dir}/{file}", get(cdn))
        .route("/_sandbox/media", get(list_media))
        .route("/_sandbox/media/expire", post(expire_all))
        .route("/_sandbox/media/seed", post(seed_incoming))
        .route("/_sandbox/media/interrupt", post(interrupt))
        // Bodies up to the largest kind's limit reach the checks above (and
        // seeded media, in base64, too): axum's default 2 MB would refuse a
        // 5 MB video with a 413 Instagram's edge does not give.
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// The largest body the upload edge and the seed endpoint read: 25 MB of
/// media in base64, and then some.
const BODY_LIMIT: usize = 36 * 1024 * 1024;

/// What was uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaKind {
    /// A JPEG photo.
    Image,
    /// An MP4 video.
    Video,
    /// AAC audio in MP4 (a voice note).
    Audio,
    /// A PDF document: only the official API's attachment upload takes
    /// files; the upload edge has no route for them.
    File,
}

impl MediaKind {
    fn header(self) -> &'static str {
        match self {
            Self::Image => "image_type",
            Self::Video => "video_type",
            Self::Audio => "audio_type",
            Self::File => "file_type",
        }
    }
    fn mime(self) -> &'static str {
        match self {
            Self::Image => "image/jpeg",
            Self::Video => "video/mp4",
            Self::Audio => "audio/mp4",
            Self::File => "application/pdf",
        }
    }
    fn ext(self) -> &'static str {
        match self {
            Self::Image => "jpg",
            Self::Video => "mp4",
            Self::Audio => "m4a",
            Self::File => "pdf",
        }
    }
    pub(crate) fn max_bytes(self) -> u64 {
        match self {
            Self::Image => 8 * 1024 * 1024,
            Self::Video | Self::Audio | Self::File => 25 * 1024 * 1024,
        }
    }
    /// The official-API attachment type of an item carrying it.
    pub(crate) fn attachment_type(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::File => "file",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::File => "file",
        }
    }
    pub(crate) fn looks_right(self, head: &[u8]) -> bool {
        match self {
            Self::Image => head.starts_with(&[0xFF, 0xD8, 0xFF]),
            Self::Video | Self::Audio => head.get(4..8) == Some(b"ftyp"),
            Self::File => head.starts_with(b"%PDF-"),
        }
    }
}

/// A finished upload.
#[derive(Debug, Clone)]
pub(crate) struct Blob {
    /// The uploading account's pk.
    pub(crate) owner: String,
    pub(crate) kind: MediaKind,
    /// The content type it is served with.
    mime: &'static str,
    bytes: Bytes,
    sha256: String,
}

/// One upload `POST` as received, for tests that check resumption.
#[derive(Debug, Clone)]
struct PostLog {
    name: String,
    offset: u64,
    bytes: usize,
    status: u16,
}

#[derive(Debug, Default)]
struct Inner {
    /// (owner pk, entity name) → bytes received so far.
    partial: HashMap<(String, String), Vec<u8>>,
    /// (owner pk, entity name) → media id of a finished upload.
    finished: HashMap<(String, String), String>,
    media: HashMap<String, Blob>,
    /// Link token → (media id, expiry in Unix seconds).
    tokens: HashMap<String, (String, i64)>,
    /// Stop the next upload after this many bytes (a broken connection).
    interrupt_after: Option<usize>,
    posts: Vec<PostLog>,
    next: u64,
}

/// The sandbox's uploaded media (a [`Sandbox::extension`]).
#[derive(Debug, Default)]
pub(crate) struct MediaStore(Mutex<Inner>);

impl MediaStore {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Keeps bytes uploaded some other way (the official API's attachment
    /// upload) under a fresh media id, served by the CDN as `mime`.
    pub(crate) fn keep(
        &self,
        owner: &str,
        kind: MediaKind,
        mime: &'static str,
        bytes: Bytes,
    ) -> String {
        let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
        self.with(|i| {
            i.next += 1;
            let id = format!("{}", 17_000_000_000_000_000u64 + i.next * 7919);
            i.media.insert(id.clone(), Blob { owner: owner.to_owned(), kind, mime, bytes, sha256 });
            id
        })
    }

    /// The upload `media_id` names, if `owner` uploaded it.
    pub(crate) fn blob(&self, media_id: &str) -> Option<Blob> {
        self.with(|i| i.media.get(media_id).cloned())
    }

    /// A fresh CDN link to `media_id`, valid for [`CDN_TTL_SECS`] from `now_us`.
    pub(crate) fn link(&self, base: &str, media_id: &str, now_us: Micros) -> Option<String> {
        self.with(|i| {
            let blob = i.media.get(media_id)?;
            let ext = blob.kind.ext();
            i.next += 1;
            let token = hex::encode(
                &sha2::Sha256::digest(format!("{media_id}:{}:{now_us}", i.next).as_bytes())[..16],
            );
            let expires = now_us / 1_000_000 + CDN_TTL_SECS;
            i.tokens.insert(token.clone(), (media_id.to_owned(), expires));
            Some(format!(
                "{base}/cdn/v/t51.2885-15/{media_id}_n.{ext}?_nc_ht=scontent.cdninstagram.com&oh={token}&oe={expires:X}"
            ))
        })
    }
}

/// The media id a sandbox CDN link points at.
pub(crate) fn media_id_of_link(url: &str) -> Option<&str> {
    let file = url.split("/cdn/v/t51.2885-15/").nth(1)?;
    file.split('_').next().filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
}

/// A refusal of the upload edge.
#[derive(Debug)]
enum Refusal {
    /// The generic 404 Facebook's edge gives requests carrying Instagram app headers.
    NotFound,
    /// A `debug_info` error envelope.
    Failed(StatusCode, &'static str, String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<!DOCTYPE html><html><body>Sorry, something went wrong.</body></html>",
            )
                .into_response(),
            Self::Failed(status, kind, message) => (
                status,
                Json(json!({"debug_info": {"retriable": false, "type": kind, "message": message}})),
            )
                .into_response(),
        }
    }
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal::Failed(StatusCode::BAD_REQUEST, "ProcessingFailedError", message.into())
}

fn text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The account pk the bearer token names, after the header checks.
async fn authenticate(
    sb: &Sandbox,
    headers: &HeaderMap,
    kind: MediaKind,
) -> Result<String, Refusal> {
    let forbidden = headers.keys().any(|k| {
        let k = k.as_str();
        k.starts_with("x-ig-") || k.starts_with("x-bloks-") || k.starts_with("x-pigeon-")
    });
    let instagram_host = text(headers, "host").is_some_and(|h| h.contains("instagram.com"));
    if forbidden || instagram_host {
        return Err(Refusal::NotFound);
    }
    let unauthorized =
        |m: &str| Refusal::Failed(StatusCode::UNAUTHORIZED, "AuthenticationError", m.to_owned());
    let token = text(headers, "authorization")
        .and_then(|a| a.strip_prefix("Bearer IGT:2:"))
        .ok_or_else(|| unauthorized("an IGT:2 bearer token is required"))?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()
        .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok())
        .ok_or_else(|| unauthorized("the bearer token is not base64 JSON"))?;
    let field = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (user, session) = (field("ds_user_id"), field("sessionid"));
    let pk = sb
        .read(|w| w.account_by_session(&session).map(|a| a.pk.clone()))
        .await
        .filter(|pk| !session.is_empty() && *pk == user)
        .ok_or_else(|| unauthorized("the session is not valid"))?;
    if text(headers, "ig-intended-user-id") != Some(pk.as_str()) {
        return Err(unauthorized("ig-intended-user-id does not match the token"));
    }
    if text(headers, kind.header()) != Some("FILE_ATTACHMENT") {
        return Err(bad(format!("{} must be FILE_ATTACHMENT", kind.header())));
    }
    if kind == MediaKind::Video
        && (text(headers, "segment-type") != Some("3")
            || text(headers, "x_fb_video_waterfall_id").is_none_or(str::is_empty))
    {
        return Err(bad("video uploads need segment-type 3 and x_fb_video_waterfall_id"));
    }
    Ok(pk)
}

async fn upload_image(
    State(sb): State<Arc<Sandbox>>,
    method: Method,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    upload(&sb, MediaKind::Image, method, &name, &headers, body).await
}

async fn upload_video(
    State(sb): State<Arc<Sandbox>>,
    method: Method,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    upload(&sb, MediaKind::Video, method, &name, &headers, body).await
}

async fn upload_audio(
    State(sb): State<Arc<Sandbox>>,
    method: Method,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    upload(&sb, MediaKind::Audio, method, &name, &headers, body).await
}

async fn upload(
    sb: &Sandbox,
    kind: MediaKind,
    method: Method,
    name: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    match upload_inner(sb, kind, &method, name, headers, body).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn upload_inner(
    sb: &Sandbox,
    kind: MediaKind,
    method: &Method,
    name: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Value, Refusal> {
    let pk = authenticate(sb, headers, kind).await?;
    let store = sb.extension::<MediaStore>();
    let key = (pk.clone(), name.to_owned());
    if *method == Method::GET {
        let offset = store.with(|i| i.partial.get(&key).map_or(0, Vec::len));
        return Ok(json!({"offset": offset}));
    }
    if *method != Method::POST {
        return Err(Refusal::NotFound);
    }
    let ct = text(headers, "content-type").unwrap_or_default();
    if !ct.eq_ignore_ascii_case("application/octet-stream") {
        return Err(bad("content-type must be application/octet-stream"));
    }
    if text(headers, "x-entity-name") != Some(name) {
        return Err(bad("x-entity-name must name the upload"));
    }
    if text(headers, "x-entity-type") != Some(kind.mime()) {
        return Err(bad(format!("x-entity-type must be {}", kind.mime())));
    }
    let number = |h: &str| {
        text(headers, h)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| bad(format!("{h} must be a byte count")))
    };
    let (offset, length) = (number("offset")?, number("x-entity-length")?);
    if length > kind.max_bytes() {
        return Err(Refusal::Failed(
            StatusCode::PAYLOAD_TOO_LARGE,
            "FileTooLargeError",
            format!("the {} is larger than {} bytes", kind.name(), kind.max_bytes()),
        ));
    }
    let outcome = store.with(|i| {
        if let Some(id) = i.finished.get(&key) {
            return Ok(Some(id.clone()));
        }
        let have = i.partial.get(&key).map_or(0, Vec::len) as u64;
        let log = |i: &mut Inner, status: u16| {
            i.posts.push(PostLog { name: name.to_owned(), offset, bytes: body.len(), status });
        };
        if offset != have {
            log(i, 400);
            return Err(bad(format!("offset {offset} does not match the {have} bytes received")));
        }
        if offset + body.len() as u64 != length {
            log(i, 400);
            return Err(bad("offset plus the body must equal x-entity-length"));
        }
        let cut = i.interrupt_after.take();
        let part = i.partial.entry(key.clone()).or_default();
        if let Some(n) = cut.filter(|n| *n < body.len()) {
            // The connection broke after n bytes: they are kept for a resume.
            part.extend_from_slice(&body[..n]);
            log(i, 503);
            return Err(Refusal::Failed(
                StatusCode::SERVICE_UNAVAILABLE,
                "TransientError",
                "the upload was interrupted".to_owned(),
            ));
        }
        part.extend_from_slice(&body);
        log(i, 200);
        Ok(None)
    })?;
    if let Some(id) = outcome {
        return Ok(media_answer(kind, &id));
    }
    let data = store.with(|i| i.partial.remove(&key)).unwrap_or_default();
    if !kind.looks_right(&data) {
        return Err(bad(format!("the bytes are not {}", kind.mime())));
    }
    let sha256 = hex::encode(sha2::Sha256::digest(&data));
    let id = store.with(|i| {
        i.next += 1;
        // Facebook ids: 17 digits.
        let id = format!("{}", 17_000_000_000_000_000u64 + i.next * 7919);
        i.media.insert(
            id.clone(),
            Blob { owner: pk.clone(), kind, mime: kind.mime(), bytes: Bytes::from(data), sha256 },
        );
        i.finished.insert(key, id.clone());
        id
    });
    Ok(media_answer(kind, &id))
}

fn media_answer(kind: MediaKind, id: &str) -> Value {
    let n: u64 = id.parse().unwrap_or_default();
    if kind == MediaKind::Video { json!({"media_id": n, "id": 0}) } else { json!({"media_id": n}) }
}

#[derive(Deserialize)]
struct CdnQuery {
    oh: Option<String>,
    oe: Option<String>,
}

async fn cdn(
    State(sb): State<Arc<Sandbox>>,
    Path((_dir, file)): Path<(String, String)>,
    Query(q): Query<CdnQuery>,
) -> Response {
    let expired = || {
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "URL signature expired",
        )
            .into_response()
    };
    let Some(media_id) = file.split('_').next() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let now = sb.now_us() / 1_000_000;
    let store = sb.extension::<MediaStore>();
    let found = store.with(|i| {
        let token = q.oh.as_deref()?;
        let (mid, until) = i.tokens.get(token)?;
        let oe = i64::from_str_radix(q.oe.as_deref()?, 16).ok()?;
        (mid == media_id && oe == *until).then(|| (i.media.get(mid).cloned(), *until))
    });
    match found {
        None => expired(),
        Some((_, until)) if until < now => expired(),
        Some((None, _)) => StatusCode::NOT_FOUND.into_response(),
        Some((Some(blob), _)) => {
            let mut r = Response::new(Body::from(blob.bytes));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(blob.mime));
            r
        }
    }
}

async fn list_media(State(sb): State<Arc<Sandbox>>) -> Json<Value> {
    let store = sb.extension::<MediaStore>();
    Json(store.with(|i| {
        let mut media: Vec<Value> = i
            .media
            .iter()
            .map(|(id, b)| {
                json!({"media_id": id, "owner": b.owner, "kind": b.kind.name(),
                       "mime": b.mime, "size": b.bytes.len(), "sha256": b.sha256})
            })
            .collect();
        media.sort_by(|a, b| a["media_id"].as_str().cmp(&b["media_id"].as_str()));
        let posts: Vec<Value> = i
            .posts
            .iter()
            .map(|p| json!({"name": p.name, "offset": p.offset, "bytes": p.bytes, "status": p.status}))
            .collect();
        json!({"media": media, "posts": posts})
    }))
}

/// Expires every CDN link handed out so far and gives every item that
/// carries one a fresh link (what re-reading a message returns).
async fn expire_all(State(sb): State<Arc<Sandbox>>) -> Json<Value> {
    let store = sb.extension::<MediaStore>();
    let revoked = store.with(|i| {
        let n = i.tokens.len();
        i.tokens.clear();
        n
    });
    let base = sb.base_url().unwrap_or_default();
    let now = sb.now_us();
    let relinked = sb.write(|w| relink(w, &store, &base, now)).await;
    Json(json!({"revoked": revoked, "relinked": relinked}))
}

fn relink(w: &mut World, store: &MediaStore, base: &str, now: Micros) -> usize {
    let mut n = 0;
    for t in w.threads.values_mut() {
        for it in &mut t.items {
            for a in &mut it.attachments {
                if let Some(id) = media_id_of_link(&a.url).map(str::to_owned)
                    && let Some(fresh) = store.link(base, &id, now)
                {
                    a.url = fresh;
                    n += 1;
                }
            }
        }
    }
    n
}

/// One media item of a `POST /_sandbox/media/seed`.
#[derive(Deserialize)]
struct SeedMedia {
    /// `image`, `video` or `audio`.
    #[serde(rename = "type")]
    kind: String,
    /// The bytes, base64 (standard alphabet).
    base64: String,
}

/// `POST /_sandbox/media/seed`.
#[derive(Deserialize)]
struct SeedBody {
    /// The receiving account (id).
    to: String,
    /// The sending user (pk or IGSID); not an account.
    from: String,
    media: Vec<SeedMedia>,
}

/// Makes `from` send `to` one media item per entry, in order, in their
/// (accepted) thread: the bytes are stored as `from`'s uploads and each item
/// carries a CDN link like a sent attachment. Answers each item's ids with
/// the `media_id` and the SHA-256 of its bytes.
async fn seed_incoming(State(sb): State<Arc<Sandbox>>, body: Bytes) -> Response {
    let refuse = |status: StatusCode, message: String| {
        (status, Json(json!({"error": message}))).into_response()
    };
    let req: SeedBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("bad seed body: {e}")),
    };
    let mut blobs = Vec::with_capacity(req.media.len());
    for (n, m) in req.media.iter().enumerate() {
        let kind = match m.kind.as_str() {
            "image" => MediaKind::Image,
            "video" => MediaKind::Video,
            "audio" => MediaKind::Audio,
            other => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("media[{n}]: unknown type {other:?}: image|video|audio"),
                );
            }
        };
        let bytes = match base64::engine::general_purpose::STANDARD.decode(&m.base64) {
            Ok(b) => b,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("media[{n}]: {e}")),
        };
        if !kind.looks_right(&bytes) || bytes.len() as u64 > kind.max_bytes() {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("media[{n}]: not {} within {} bytes", kind.mime(), kind.max_bytes()),
            );
        }
        blobs.push((kind, bytes));
    }
    let store = sb.extension::<MediaStore>();
    let base = sb.base_url().unwrap_or_default();
    let result = sb
        .write(|w| -> Result<Value, SandboxError> {
            let account = w.account(&req.to)?.id.clone();
            let pk = w
                .user(&req.from)
                .filter(|u| !u.is_account)
                .map(|u| u.pk.clone())
                .ok_or_else(|| SandboxError::NotFound(format!("user {}", req.from)))?;
            let thread = w.thread_with(&account, std::slice::from_ref(&pk), false)?;
            let mut items = Vec::with_capacity(blobs.len());
            for (kind, bytes) in blobs {
                let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
                let size = bytes.len();
                let media_id = store.with(|i| {
                    i.next += 1;
                    let id = format!("{}", 17_000_000_000_000_000u64 + i.next * 7919);
                    i.media.insert(
                        id.clone(),
                        Blob {
                            owner: pk.clone(),
                            kind,
                            mime: kind.mime(),
                            bytes: Bytes::from(bytes),
                            sha256: sha256.clone(),
                        },
                    );
                    id
                });
                let url = store.link(&base, &media_id, w.now_us()).unwrap_or_default();
                let item_kind = match kind {
                    MediaKind::Image => ItemKind::Media,
                    MediaKind::Video => ItemKind::RavenMedia,
                    MediaKind::Audio => ItemKind::VoiceMedia,
                    MediaKind::File => ItemKind::GenericXma,
                };
                let item = w.append_item(
                    &thread,
                    &pk,
                    NewItem {
                        kind: Some(item_kind),
                        attachments: vec![ItemAttachment {
                            kind: kind.attachment_type().to_owned(),
                            url,
                        }],
                        ..NewItem::default()
                    },
                )?;
                items.push(json!({"item_id": item.id, "mid": item.mid, "media_id": media_id,
                                  "sha256": sha256, "size": size, "item_type": item.kind.as_str()}));
            }
            Ok(json!({"thread_id": thread, "items": items}))
        })
        .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(SandboxError::NotFound(m)) => refuse(StatusCode::NOT_FOUND, m),
        Err(e) => refuse(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

#[derive(Deserialize)]
struct Interrupt {
    after_bytes: usize,
}

/// Breaks the next upload `POST` after `after_bytes` bytes (kept for a resume).
async fn interrupt(State(sb): State<Arc<Sandbox>>, Json(req): Json<Interrupt>) -> Json<Value> {
    sb.extension::<MediaStore>().with(|i| i.interrupt_after = Some(req.after_bytes));
    Json(json!({"interrupt_after": req.after_bytes}))
}
