//! Sending media from local files: upload, then send what was uploaded.
//!
//! The steps are connector actions named by convention, so this module holds
//! no endpoint knowledge:
//! - `upload_<kind>_offset` (optional): how many bytes of the upload the
//!   server already has (`offset`);
//! - `upload_<kind>`: sends the file from that offset (a `file` parameter and a
//!   `binary` body) and returns `media_id`;
//! - `send_<kind>`: sends a message carrying `attachment_id` = that id.
//!
//! Connectors without those, whose provider takes reusable attachments
//! (Meta's attachment upload on the Facebook Login flavour), use
//! `upload_attachment_file` (a multipart upload of the file, returning
//! `attachment_id`) and `send_attachment` (through the send ledger).
//!
//! An upload step that fails in a way that may have delivered part of the
//! bytes (a transport failure, a transient refusal) is resumed: the offset is
//! read again and only the rest is sent. The message send goes through every
//! layer of [`Client::call`] (pacing, no blind resend).

use std::path::{Path, PathBuf};

use igdm_model::{ApiError, ErrorClass};
use serde_json::{Map, Value};
use tracing::{debug, info};

use crate::client::{CallError, Client};
use crate::error::Error;

/// How many times an interrupted upload is resumed before giving up.
const MAX_RESUMES: u32 = 4;

/// What a media message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaKind {
    /// A photo (JPEG).
    Photo,
    /// A video (H.264 in MP4).
    Video,
    /// A voice note (AAC in MP4, `.m4a`).
    Voice,
    /// A document (PDF), where the provider carries files.
    File,
}

impl MediaKind {
    /// The action-name suffix (`photo`, `video`, `voice`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Photo => "photo",
            Self::Video => "video",
            Self::Voice => "voice",
            Self::File => "file",
        }
    }

    /// The official API's attachment type for it.
    fn attachment_type(self) -> &'static str {
        match self {
            Self::Photo => "image",
            Self::Video => "video",
            Self::Voice => "audio",
            Self::File => "file",
        }
    }

    /// The largest file the connector takes for it, from its `limits`.
    fn max_bytes(self, c: &Client) -> Option<u64> {
        let l = c.connector().limits.as_ref()?;
        match self {
            Self::Photo => l.image_max_bytes,
            Self::Video => l.video_max_bytes,
            Self::Voice => l.audio_max_bytes,
            Self::File => l.file_max_bytes,
        }
    }

    /// The content type of a file of this kind that starts with `head`
    /// (already checked by [`MediaKind::check_content`]).
    fn mime(self, head: &[u8]) -> &'static str {
        match self {
            Self::Photo if head.starts_with(b"\x89PNG") => "image/png",
            Self::Photo => "image/jpeg",
            Self::Video if head.get(8..12) == Some(b"qt  ") => "video/quicktime",
            Self::Video => "video/mp4",
            Self::Voice => "audio/mp4",
            Self::File => "application/pdf",
        }
    }

    /// Checks the file's leading bytes against what the kind must be, so a
    /// wrong file fails before any request.
    fn check_content(self, path: &Path, head: &[u8]) -> Result<(), Error> {
        let ok = match self {
            Self::Photo => head.starts_with(&[0xFF, 0xD8, 0xFF]) || head.starts_with(b"\x89PNG"),
            Self::Video | Self::Voice => head.get(4..8) == Some(b"ftyp"),
            Self::File => head.starts_with(b"%PDF-"),
        };
        if ok {
            return Ok(());
        }
        let want = match self {
            Self::Photo => "a JPEG or PNG image",
            Self::Video => "an MP4 video",
            Self::Voice => "AAC audio in an MP4 container (.m4a)",
            Self::File => "a PDF document",
        };
        Err(Error::Api(ApiError::invalid("file", format!("{} is not {want}", path.display()))))
    }
}

/// What [`SendMedia::send`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MediaOutcome {
    /// The mapped result of the `send_<kind>` action (the message).
    pub result: Value,
    /// The id the upload returned (for a file served through `igdm serve
    /// --public-url`: the URL it was sent by).
    pub media_id: String,
    /// Bytes of the file sent.
    pub bytes: u64,
    /// Offsets an interrupted upload resumed from, in order.
    pub resumed_from: Vec<u64>,
    /// The result of the text message sent after the media, if any.
    pub text: Option<Value>,
}

/// A media send being prepared; see [`Client::send_media`].
#[derive(Debug)]
#[must_use = "call .send().await"]
pub struct SendMedia<'a> {
    client: &'a Client,
    conversation_id: String,
    kind: MediaKind,
    path: PathBuf,
    text: Option<String>,
    idempotency_key: Option<String>,
    public: Option<crate::public::PublicFiles>,
}

impl Client {
    /// Sends the file at `path` as a `kind` message to `conversation_id`.
    pub fn send_media(
        &self,
        conversation_id: impl Into<String>,
        kind: MediaKind,
        path: impl Into<PathBuf>,
    ) -> SendMedia<'_> {
        SendMedia {
            client: self,
            conversation_id: conversation_id.into(),
            kind,
            path: path.into(),
            text: None,
            idempotency_key: None,
            public: None,
        }
    }
}

impl SendMedia<'_> {
    /// A text message to send after the media (Instagram drops captions on
    /// Direct media, so the text is a message of its own).
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Where a running `igdm serve --public-url` serves offered files: a
    /// connector that takes media only by URL then sends the file by an
    /// expiring URL of its own.
    pub fn public(mut self, public: crate::public::PublicFiles) -> Self {
        self.public = Some(public);
        self
    }

    /// The idempotency key of the media message.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Uploads the file, resuming an interrupted upload, then sends it.
    ///
    /// # Errors
    /// A connector without media sends ([`Error::Unsupported`]), a file of
    /// the wrong type or size (before any request), provider refusals, or an
    /// upload that kept failing.
    pub async fn send(self) -> Result<MediaOutcome, Error> {
        let c = self.client;
        let kind = self.kind.name();
        let (upload, send) = (format!("upload_{kind}"), format!("send_{kind}"));
        let rupload = c.supports(&upload) && c.supports(&send);
        let attachment = c.supports(ATTACHMENT_UPLOAD) && c.supports("send_attachment");
        let by_url = by_url_action(self.kind);
        let served = !(rupload || attachment)
            && c.supports(by_url)
            && self.public.as_ref().is_some_and(|p| p.base_url().is_some());
        if !(rupload || attachment || served) {
            return Err(no_upload(c, self.kind));
        }
        let file = self
            .path
            .to_str()
            .ok_or_else(|| Error::Api(ApiError::invalid("file", "the path is not valid UTF-8")))?;
        let head = read_head(&self.path)?;
        self.kind.check_content(&self.path, &head)?;
        if served {
            return self.send_served(file, &head, by_url).await;
        }
        if !rupload {
            return self.send_attachment(file, &head).await;
        }
        // Instagram takes JPEGs up to a longest side: others are converted.
        let normalized = match self.kind {
            MediaKind::Photo => normalize_image(
                &self.path,
                c.connector().limits.as_ref().and_then(|l| l.image_max_side),
            )?,
            _ => None,
        };
        let file = match &normalized {
            Some(t) => t.0.to_str().unwrap_or(file),
            None => file,
        };
        let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or_default();
        let offset_action = format!("upload_{kind}_offset");
        let resumable = c.supports(&offset_action);
        let names = UploadNames::new();
        let mut resumed_from = Vec::new();
        let mut attempt = 0u32;
        let media_id = loop {
            attempt += 1;
            let mut offset = 0u64;
            if resumable {
                let out = c
                    .call_once(&offset_action, &step_params(c, &offset_action, file, &names, None))
                    .await
                    .map_err(Error::from)?;
                offset = out.data.get("offset").and_then(Value::as_u64).unwrap_or(0);
                if offset > 0 {
                    info!(offset, bytes, "resuming an interrupted upload");
                    resumed_from.push(offset);
                }
            }
            let params = step_params(c, &upload, file, &names, Some(offset));
            match c.call_once(&upload, &params).await {
                Ok(out) => {
                    let id = out.data.get("media_id").map(value_text).unwrap_or_default();
                    if id.is_empty() {
                        return Err(Error::Shape(format!("{upload} returned no media_id")));
                    }
                    break id;
                }
                Err(e) if resumable && attempt <= MAX_RESUMES && may_resume(&e) => {
                    debug!(attempt, error = %e, "upload interrupted; reading the offset");
                }
                Err(e) => return Err(e.into()),
            }
        };
        let mut params = Map::new();
        params.insert("conversation_id".into(), Value::from(self.conversation_id.clone()));
        params.insert("attachment_id".into(), Value::from(media_id.clone()));
        if let Some(k) = &self.idempotency_key {
            params.insert("client_context".into(), Value::from(k.clone()));
        }
        if declares(c, &send, "upload_id") {
            params.insert("upload_id".into(), Value::from(names.id.clone()));
        }
        let result = c.call(&send, &params).await.map_err(Error::from)?.data;
        let text = self.send_text().await?;
        Ok(MediaOutcome { result, media_id, bytes, resumed_from, text })
    }

    /// The text sent after the media, if any.
    async fn send_text(&self) -> Result<Option<Value>, Error> {
        Ok(match &self.text {
            Some(t) => {
                Some(self.client.send(self.conversation_id.as_str(), t.as_str()).await?.result)
            }
            None => None,
        })
    }

    /// The file's size, refused before any request when it is over the
    /// connector's limit for the kind.
    fn checked_size(&self, file: &str) -> Result<u64, Error> {
        let c = self.client;
        let bytes = std::fs::metadata(file).map(|m| m.len()).map_err(|e| {
            Error::Api(ApiError::invalid("file", format!("cannot read {file}: {e}")))
        })?;
        if let Some(max) = self.kind.max_bytes(c)
            && bytes > max
        {
            return Err(Error::Api(ApiError::invalid(
                "file",
                format!(
                    "{file} is {bytes} bytes; the {} connector takes a {} of at most {max} bytes",
                    c.connector().id,
                    self.kind.name()
                ),
            )));
        }
        Ok(bytes)
    }

    /// Uploads the file as a reusable attachment, then sends its
    /// `attachment_id` through the send ledger.
    async fn send_attachment(&self, file: &str, head: &[u8]) -> Result<MediaOutcome, Error> {
        let c = self.client;
        let bytes = self.checked_size(file)?;
        let kind = self.kind.attachment_type();
        let mime = self.kind.mime(head);
        let mut up = Map::new();
        up.insert("type".into(), Value::from(kind));
        up.insert("file".into(), Value::from(file));
        up.insert("mime".into(), Value::from(mime));
        up.insert("filename".into(), Value::from(part_name(&self.path, mime)));
        let out = c.call(ATTACHMENT_UPLOAD, &up).await.map_err(Error::from)?;
        let media_id = out.data.get("attachment_id").map(value_text).unwrap_or_default();
        if media_id.is_empty() {
            return Err(Error::Shape(format!("{ATTACHMENT_UPLOAD} returned no attachment_id")));
        }
        info!(attachment_id = %media_id, bytes, "file uploaded as a reusable attachment");
        let mut params = Map::new();
        params.insert("conversation_id".into(), Value::from(self.conversation_id.clone()));
        params.insert("type".into(), Value::from(kind));
        params.insert("attachment_id".into(), Value::from(media_id.clone()));
        let mut req = c.send_action("send_attachment", params);
        if let Some(k) = &self.idempotency_key {
            req = req.idempotency_key(k.clone());
        }
        let result = req.await?.result;
        let text = self.send_text().await?;
        Ok(MediaOutcome { result, media_id, bytes, resumed_from: Vec::new(), text })
    }
}

impl SendMedia<'_> {
    /// Offers the file through `igdm serve --public-url` and sends its URL.
    async fn send_served(
        &self,
        file: &str,
        head: &[u8],
        action: &str,
    ) -> Result<MediaOutcome, Error> {
        let c = self.client;
        let bytes = self.checked_size(file)?;
        let Some(public) = &self.public else { return Err(no_upload(c, self.kind)) };
        let url = public.offer(Path::new(file), self.kind.mime(head))?;
        info!(bytes, ttl_secs = public.ttl().as_secs(), "file offered at a public URL");
        let mut params = Map::new();
        params.insert("conversation_id".into(), Value::from(self.conversation_id.clone()));
        params.insert("url".into(), Value::from(url.clone()));
        let mut req = c.send_action(action, params);
        if let Some(k) = &self.idempotency_key {
            req = req.idempotency_key(k.clone());
        }
        let result = req.await?.result;
        let text = self.send_text().await?;
        Ok(MediaOutcome { result, media_id: url, bytes, resumed_from: Vec::new(), text })
    }
}

/// The official API's send-by-URL action for `kind`.
fn by_url_action(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Photo => "send_image",
        MediaKind::Video => "send_video",
        MediaKind::Voice => "send_audio",
        MediaKind::File => "send_file",
    }
}

/// The action that uploads a local file as a reusable attachment.
const ATTACHMENT_UPLOAD: &str = "upload_attachment_file";

/// The name the uploaded file part carries: the file's own when it is plain
/// ASCII (Meta refuses other names), else `attachment.<ext>`.
fn part_name(path: &Path, mime: &str) -> String {
    let own = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let plain = !own.is_empty()
        && own.len() <= 64
        && own.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if plain {
        return own.to_owned();
    }
    let ext = match mime {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "video/quicktime" => "mov",
        "video/mp4" => "mp4",
        "audio/mp4" => "m4a",
        _ => "pdf",
    };
    format!("attachment.{ext}")
}

/// The refusal for a connector that cannot send `kind` from a local file,
/// naming what can.
fn no_upload(c: &Client, kind: MediaKind) -> Error {
    let id = &c.connector().id;
    let what = kind.name();
    let by_url = by_url_action(kind);
    let how = if c.supports(by_url) {
        // The Instagram Login flavour: Meta's attachment upload needs a Page
        // (developers.facebook.com/documentation/business-messaging/
        // instagram-messaging/features/attachment-upload); its own Send API
        // takes media by URL only (developers.facebook.com/documentation/
        // instagram-platform/instagram-api-with-instagram-login/messaging-api).
        format!(
            "Its API takes media only by a public HTTPS URL that Meta fetches: put the file at such a URL and send that (the `{by_url}` action, or `igdm send CONVERSATION --image URL` for a photo), run `igdm serve --public-url URL` (reachable by Meta) to have igdm serve the file under an unguessable, expiring path, or send from an account on instagram-page (Facebook Login), whose API uploads files."
        )
    } else if kind == MediaKind::File {
        "Instagram Direct on the private API carries photos, videos and voice notes, not files; send the file from an account on instagram-page (Facebook Login).".to_owned()
    } else {
        String::new()
    };
    Error::Api(ApiError::new(
        ErrorClass::InvalidRequest,
        format!(
            "the {id} connector cannot send a {what} from a local file; nothing was sent. {how}"
        )
        .trim_end()
        .to_owned(),
    ))
}

/// A converted image, removed when dropped.
#[derive(Debug)]
struct TempImage(PathBuf);

impl Drop for TempImage {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            debug!(path = %self.0.display(), error = %e, "converted image not removed");
        }
    }
}

/// A JPEG whose longest side is within `max_side` goes as it is (`None`);
/// anything else (a PNG, a larger JPEG) is decoded, scaled down to
/// `max_side` and written as a JPEG to a temporary file.
fn normalize_image(path: &Path, max_side: Option<u64>) -> Result<Option<TempImage>, Error> {
    let invalid = |e: &dyn std::fmt::Display| {
        Error::Api(ApiError::invalid(
            "file",
            format!("{}: not a readable image: {e}", path.display()),
        ))
    };
    let reader = image::ImageReader::open(path)
        .and_then(image::ImageReader::with_guessed_format)
        .map_err(|e| invalid(&e))?;
    let format = reader.format();
    let max = max_side.and_then(|m| u32::try_from(m).ok()).unwrap_or(u32::MAX);
    if format == Some(image::ImageFormat::Jpeg) {
        let (w, h) = image::ImageReader::open(path)
            .and_then(image::ImageReader::with_guessed_format)
            .map_err(|e| invalid(&e))?
            .into_dimensions()
            .map_err(|e| invalid(&e))?;
        if w.max(h) <= max {
            return Ok(None);
        }
    }
    let mut img = reader.decode().map_err(|e| invalid(&e))?;
    if img.width().max(img.height()) > max {
        img = img.resize(max, max, image::imageops::FilterType::Triangle);
    }
    let rgb = img.to_rgb8();
    let out =
        TempImage(std::env::temp_dir().join(format!("igdm-photo-{}.jpg", uuid::Uuid::new_v4())));
    let io = |source| Error::Io { path: out.0.display().to_string(), source };
    let mut w = std::io::BufWriter::new(std::fs::File::create(&out.0).map_err(io)?);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut w, 90)
        .encode_image(&rgb)
        .map_err(|e| invalid(&e))?;
    std::io::Write::flush(&mut w).map_err(io)?;
    drop(w);
    info!(from = ?format, width = rgb.width(), height = rgb.height(), "photo converted to JPEG");
    Ok(Some(out))
}

/// Whether an upload failure may have left part of the bytes on the server.
fn may_resume(e: &CallError) -> bool {
    match e {
        CallError::OutcomeUnknown(_) => true,
        CallError::Api(api) => api.retryable || api.class == ErrorClass::Transient,
        CallError::Other(_) => false,
    }
}

/// The names of one upload, the same for all its steps.
struct UploadNames {
    /// Milliseconds since the epoch when the upload began (13 digits).
    id: String,
    /// 32 random hex digits.
    key: String,
}

impl UploadNames {
    fn new() -> Self {
        let ms = chrono::Utc::now().timestamp_millis();
        Self { id: format!("{ms:013}"), key: uuid::Uuid::new_v4().simple().to_string() }
    }
}

fn declares(c: &Client, action: &str, param: &str) -> bool {
    c.connector().action(action).is_some_and(|a| a.params().contains_key(param))
}

/// The parameters of an upload step: only those the action declares.
fn step_params(
    c: &Client,
    action: &str,
    file: &str,
    names: &UploadNames,
    offset: Option<u64>,
) -> Map<String, Value> {
    let mut p = Map::new();
    let candidates = [
        ("file", Some(Value::from(file))),
        ("upload_id", Some(Value::from(names.id.clone()))),
        ("upload_key", Some(Value::from(names.key.clone()))),
        ("offset", offset.map(Value::from)),
    ];
    for (name, value) in candidates {
        if let Some(v) = value
            && declares(c, action, name)
        {
            p.insert(name.into(), v);
        }
    }
    p
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn read_head(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path).map_err(|e| {
        Error::Api(ApiError::invalid("file", format!("cannot read {}: {e}", path.display())))
    })?;
    let mut head = vec![0u8; 16];
    let n = f.read(&mut head).map_err(|e| {
        Error::Api(ApiError::invalid("file", format!("cannot read {}: {e}", path.display())))
    })?;
    head.truncate(n);
    Ok(head)
}

impl<'a> std::future::IntoFuture for SendMedia<'a> {
    type Output = Result<MediaOutcome, Error>;
    type IntoFuture = futures::future::BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
