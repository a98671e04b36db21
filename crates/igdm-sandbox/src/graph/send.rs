//! Send API request parsing and validation (`POST /{ig-id}/messages`).
//!
//! [`parse_send`] turns a request body (JSON, or a form whose `recipient` /
//! `message` / `payload` fields hold JSON, as Graph accepts) into a typed
//! [`SendRequest`], or into the exact Graph error the real API answers with.
//! Nothing here touches sandbox state: windows, recipients and ownership of
//! shared posts are checked by the caller.

use serde_json::{Map, Value};

use super::error::GraphError;

/// Maximum UTF-8 bytes of `message.text`.
pub const MAX_TEXT_BYTES: usize = 1000;
/// Maximum number of quick replies.
pub const MAX_QUICK_REPLIES: usize = 13;
/// Maximum characters of a quick-reply title.
pub const MAX_QUICK_REPLY_TITLE: usize = 20;
/// Maximum elements of a generic template.
pub const MAX_GENERIC_ELEMENTS: usize = 10;
/// Maximum characters of a generic-template title or subtitle.
pub const MAX_ELEMENT_TEXT: usize = 80;
/// Maximum buttons of a template (or of one generic element).
pub const MAX_BUTTONS: usize = 3;

/// Who the message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// An Instagram-scoped user id.
    Id(String),
    /// A comment, for a private reply.
    CommentId(String),
}

/// `messaging_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagingType {
    /// A reply inside the standard window (the default).
    Response,
    /// A proactive message inside the standard window.
    Update,
    /// A tagged message (`tag` says which; only `HUMAN_AGENT` on Instagram).
    MessageTag,
}

/// The media kinds that can be sent by URL or attachment id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// `image` (png, jpeg, gif).
    Image,
    /// `video`.
    Video,
    /// `audio`.
    Audio,
    /// `file` (pdf).
    File,
}

impl MediaKind {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::File => "file",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "image" => Some(Self::Image),
            "video" => Some(Self::Video),
            "audio" => Some(Self::Audio),
            "file" => Some(Self::File),
            _ => None,
        }
    }
}

/// Where the bytes of a media attachment come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// `payload.url`.
    Url(String),
    /// `payload.attachment_id` from `message_attachments`.
    AttachmentId(String),
}

/// One outgoing attachment.
#[derive(Debug, Clone, PartialEq)]
pub enum OutAttachment {
    /// Image, video, audio or file.
    Media {
        /// The kind.
        kind: MediaKind,
        /// URL or reusable attachment id.
        source: MediaSource,
    },
    /// The heart sticker.
    LikeHeart,
    /// A share of one of the account's own posts.
    MediaShare {
        /// The post id.
        post_id: String,
    },
    /// A validated button or generic template; the payload is kept as sent.
    Template {
        /// `button` or `generic`.
        template_type: String,
        /// The whole `payload` object.
        payload: Value,
    },
}

/// A quick reply offered with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickReply {
    /// `text`, `user_phone_number` or `user_email`.
    pub content_type: String,
    /// Button title (text replies).
    pub title: Option<String>,
    /// Payload returned on tap.
    pub payload: Option<String>,
}

/// The `message` object of a send.
#[derive(Debug, Clone, PartialEq)]
pub struct OutMessage {
    /// Text, if any.
    pub text: Option<String>,
    /// Attachment, if any.
    pub attachment: Option<OutAttachment>,
    /// Quick replies.
    pub quick_replies: Vec<QuickReply>,
}

/// What a send does.
#[derive(Debug, Clone, PartialEq)]
pub enum SendKind {
    /// Sends a message.
    Message(OutMessage),
    /// Reacts to a message.
    React {
        /// The message reacted to.
        message_id: String,
        /// The reaction name (`love`).
        reaction: String,
    },
    /// Removes the account's reaction.
    Unreact {
        /// The message.
        message_id: String,
    },
    /// Shows the typing indicator.
    TypingOn,
    /// Hides the typing indicator.
    TypingOff,
    /// Marks the latest message as seen.
    MarkSeen,
}

/// The rate-limit bucket a send counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendBucket {
    /// Text, links, reactions, stickers and other light sends: 300/s.
    Text,
    /// Audio or video: 10/s.
    AudioVideo,
}

/// A fully validated Send API request.
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    /// The recipient.
    pub recipient: Recipient,
    /// `messaging_type`.
    pub messaging_type: MessagingType,
    /// `tag` (only with `MESSAGE_TAG`).
    pub tag: Option<String>,
    /// What to do.
    pub kind: SendKind,
}

impl SendRequest {
    /// The rate-limit bucket of this request.
    #[must_use]
    pub fn bucket(&self) -> SendBucket {
        match &self.kind {
            SendKind::Message(OutMessage {
                attachment:
                    Some(OutAttachment::Media { kind: MediaKind::Audio | MediaKind::Video, .. }),
                ..
            }) => SendBucket::AudioVideo,
            _ => SendBucket::Text,
        }
    }
}

/// Turns form fields into a JSON body: values that hold JSON objects or arrays
/// (`recipient`, `message`, `payload`, …) are decoded, the rest stay strings.
#[must_use]
pub fn form_to_json(pairs: impl IntoIterator<Item = (String, String)>) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        let trimmed = v.trim_start();
        let value = if trimmed.starts_with('{') || trimmed.starts_with('[') {
            serde_json::from_str(&v).unwrap_or(Value::String(v))
        } else {
            Value::String(v)
        };
        map.insert(k, value);
    }
    Value::Object(map)
}

fn one_of(param: &str, allowed: &[&str], got: &str) -> GraphError {
    GraphError::invalid_param(format!(
        "Param {param} must be one of {{{}}} - got \"{got}\".",
        allowed.join(", ")
    ))
}

fn too_long(param: &str, max: usize) -> GraphError {
    GraphError::invalid_param(format!(
        "Length of param {param} must be less than or equal to {max}"
    ))
}

fn too_many(param: &str, max: usize) -> GraphError {
    GraphError::invalid_param(format!("Param {param} must be an array with at most {max} elements"))
}

fn must_be_string(param: &str) -> GraphError {
    GraphError::invalid_param(format!("Param {param} must be a string"))
}

fn must_be_object(param: &str) -> GraphError {
    GraphError::invalid_param(format!("Param {param} must be an object"))
}

/// A string or number field (Graph accepts ids as either).
fn id_field(
    obj: &Map<String, Value>,
    key: &str,
    param: &str,
) -> Result<Option<String>, GraphError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(GraphError::invalid_param(format!(
            "Param {param} must be a valid ID string (e.g., \"123\")"
        ))),
    }
}

fn str_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    param: &str,
) -> Result<Option<&'a str>, GraphError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(must_be_string(param)),
    }
}

fn required_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    param: &str,
) -> Result<&'a str, GraphError> {
    match str_field(obj, key, param)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(GraphError::missing_param(param)),
    }
}

fn object<'a>(value: &'a Value, param: &str) -> Result<&'a Map<String, Value>, GraphError> {
    value.as_object().ok_or_else(|| must_be_object(param))
}

fn array<'a>(value: &'a Value, param: &str) -> Result<&'a Vec<Value>, GraphError> {
    value
        .as_array()
        .ok_or_else(|| GraphError::invalid_param(format!("Param {param} must be an array")))
}

fn valid_url(raw: &str, param: &str) -> Result<String, GraphError> {
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(raw.to_owned()),
        _ => Err(GraphError::invalid_param(format!("Param {param} must be a valid URL"))),
    }
}

fn check_chars(text: &str, param: &str, max: usize) -> Result<(), GraphError> {
    if text.chars().count() > max {
        return Err(too_long(param, max));
    }
    Ok(())
}

/// Parses and validates a Send API body.
///
/// # Errors
/// The Graph error (code 100 and its precise message) for the first problem found.
pub fn parse_send(body: &Value) -> Result<SendRequest, GraphError> {
    let root = body
        .as_object()
        .ok_or_else(|| GraphError::invalid_param("Request body must be a JSON object"))?;
    let recipient = parse_recipient(root)?;

    let messaging_type = match str_field(root, "messaging_type", "messaging_type")? {
        None => MessagingType::Response,
        Some("RESPONSE") => MessagingType::Response,
        Some("UPDATE") => MessagingType::Update,
        Some("MESSAGE_TAG") => MessagingType::MessageTag,
        Some(other) => {
            return Err(one_of("messaging_type", &["RESPONSE", "UPDATE", "MESSAGE_TAG"], other));
        }
    };
    let tag = match (messaging_type, str_field(root, "tag", "tag")?) {
        (MessagingType::MessageTag, None) => {
            return Err(GraphError::invalid_param(
                "The parameter tag is required when messaging_type is MESSAGE_TAG",
            ));
        }
        (MessagingType::MessageTag, Some("HUMAN_AGENT")) => Some("HUMAN_AGENT".to_owned()),
        (MessagingType::MessageTag, Some(other)) => {
            return Err(one_of("tag", &["HUMAN_AGENT"], other));
        }
        (_, Some(_)) => {
            return Err(GraphError::invalid_param(
                "Param tag can only be used with messaging_type MESSAGE_TAG",
            ));
        }
        (_, None) => None,
    };

    let message = root.get("message").filter(|v| !v.is_null());
    let action = str_field(root, "sender_action", "sender_action")?;
    let kind = match (message, action) {
        (Some(_), Some(_)) => {
            return Err(GraphError::invalid_param(
                "Only one of message or sender_action can be set",
            ));
        }
        (None, None) => return Err(GraphError::invalid_param("Must send either message or state")),
        (Some(m), None) => SendKind::Message(parse_message(m)?),
        (None, Some(a)) => parse_sender_action(root, a)?,
    };
    Ok(SendRequest { recipient, messaging_type, tag, kind })
}

fn parse_recipient(root: &Map<String, Value>) -> Result<Recipient, GraphError> {
    let raw = root
        .get("recipient")
        .filter(|v| !v.is_null())
        .ok_or_else(|| GraphError::missing_param("recipient"))?;
    let obj = object(raw, "recipient")?;
    let id = id_field(obj, "id", "recipient[id]")?;
    let comment = id_field(obj, "comment_id", "recipient[comment_id]")?;
    match (id, comment) {
        (Some(id), None) => Ok(Recipient::Id(id)),
        (None, Some(c)) => Ok(Recipient::CommentId(c)),
        (Some(_), Some(_)) => Err(GraphError::invalid_param(
            "Only one of recipient[id] or recipient[comment_id] can be set",
        )),
        (None, None) => {
            Err(GraphError::invalid_param("Param recipient must contain id or comment_id"))
        }
    }
}

fn parse_sender_action(root: &Map<String, Value>, action: &str) -> Result<SendKind, GraphError> {
    let payload = || -> Result<&Map<String, Value>, GraphError> {
        let p = root
            .get("payload")
            .filter(|v| !v.is_null())
            .ok_or_else(|| GraphError::missing_param("payload"))?;
        object(p, "payload")
    };
    match action {
        "typing_on" => Ok(SendKind::TypingOn),
        "typing_off" => Ok(SendKind::TypingOff),
        "mark_seen" => Ok(SendKind::MarkSeen),
        "react" => {
            let p = payload()?;
            let message_id = required_str(p, "message_id", "payload[message_id]")?.to_owned();
            let reaction = match str_field(p, "reaction", "payload[reaction]")? {
                None => return Err(GraphError::missing_param("payload[reaction]")),
                Some("love") => "love".to_owned(),
                Some(other) => return Err(one_of("payload[reaction]", &["love"], other)),
            };
            Ok(SendKind::React { message_id, reaction })
        }
        "unreact" => {
            let p = payload()?;
            let message_id = required_str(p, "message_id", "payload[message_id]")?.to_owned();
            Ok(SendKind::Unreact { message_id })
        }
        other => Err(one_of(
            "sender_action",
            &["typing_on", "typing_off", "mark_seen", "react", "unreact"],
            other,
        )),
    }
}

fn parse_message(raw: &Value) -> Result<OutMessage, GraphError> {
    let obj = object(raw, "message")?;
    let text = str_field(obj, "text", "message[text]")?.map(str::to_owned);
    if let Some(t) = &text
        && t.len() > MAX_TEXT_BYTES
    {
        return Err(too_long("message[text]", MAX_TEXT_BYTES));
    }
    let attachment = match obj.get("attachment").filter(|v| !v.is_null()) {
        None => None,
        Some(a) => Some(parse_attachment(a)?),
    };
    let text = text.filter(|t| !t.is_empty());
    match (&text, &attachment) {
        (None, None) => {
            return Err(GraphError::invalid_param(
                "Message cannot be empty, must provide valid attachment or text",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(GraphError::invalid_param(
                "Only one of message[text] or message[attachment] can be set",
            ));
        }
        _ => {}
    }
    let quick_replies = match obj.get("quick_replies").filter(|v| !v.is_null()) {
        None => Vec::new(),
        Some(q) => parse_quick_replies(q)?,
    };
    Ok(OutMessage { text, attachment, quick_replies })
}

fn parse_quick_replies(raw: &Value) -> Result<Vec<QuickReply>, GraphError> {
    let items = array(raw, "message[quick_replies]")?;
    if items.len() > MAX_QUICK_REPLIES {
        return Err(too_many("message[quick_replies]", MAX_QUICK_REPLIES));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let base = format!("message[quick_replies][{i}]");
        let obj = object(item, &base)?;
        let content_type = match str_field(obj, "content_type", &format!("{base}[content_type]"))? {
            None | Some("text") => "text",
            Some("user_phone_number") => "user_phone_number",
            Some("user_email") => "user_email",
            Some(other) => {
                return Err(one_of(
                    &format!("{base}[content_type]"),
                    &["text", "user_phone_number", "user_email"],
                    other,
                ));
            }
        };
        let (title, payload) = if content_type == "text" {
            let title_param = format!("{base}[title]");
            let title = required_str(obj, "title", &title_param)?;
            check_chars(title, &title_param, MAX_QUICK_REPLY_TITLE)?;
            let payload = match obj.get("payload") {
                Some(Value::Number(n)) => n.to_string(),
                _ => required_str(obj, "payload", &format!("{base}[payload]"))?.to_owned(),
            };
            (Some(title.to_owned()), Some(payload))
        } else {
            (None, None)
        };
        out.push(QuickReply { content_type: content_type.to_owned(), title, payload });
    }
    Ok(out)
}

fn parse_attachment(raw: &Value) -> Result<OutAttachment, GraphError> {
    let obj = object(raw, "message[attachment]")?;
    let kind = required_str(obj, "type", "message[attachment][type]")?;
    let payload = obj.get("payload").filter(|v| !v.is_null());
    let payload_obj = |required: bool| -> Result<Option<&Map<String, Value>>, GraphError> {
        match payload {
            None if required => Err(GraphError::missing_param("message[attachment][payload]")),
            None => Ok(None),
            Some(p) => object(p, "message[attachment][payload]").map(Some),
        }
    };
    if let Some(media) = MediaKind::parse(kind) {
        let p = payload_obj(true)?
            .ok_or_else(|| GraphError::missing_param("message[attachment][payload]"))?;
        let url = str_field(p, "url", "message[attachment][payload][url]")?;
        let id = id_field(p, "attachment_id", "message[attachment][payload][attachment_id]")?;
        let source = match (url, id) {
            (Some(u), None) => MediaSource::Url(valid_url(u, "message[attachment][payload][url]")?),
            (None, Some(id)) => MediaSource::AttachmentId(id),
            (Some(_), Some(_)) => {
                return Err(GraphError::invalid_param(
                    "Only one of message[attachment][payload][url] or message[attachment][payload][attachment_id] can be set",
                ));
            }
            (None, None) => {
                return Err(GraphError::invalid_param(
                    "Incomplete attachment payload: message[attachment][payload] needs url or attachment_id",
                ));
            }
        };
        return Ok(OutAttachment::Media { kind: media, source });
    }
    match kind {
        "like_heart" => Ok(OutAttachment::LikeHeart),
        "MEDIA_SHARE" => {
            let p = payload_obj(true)?
                .ok_or_else(|| GraphError::missing_param("message[attachment][payload]"))?;
            let post_id = id_field(p, "id", "message[attachment][payload][id]")?
                .ok_or_else(|| GraphError::missing_param("message[attachment][payload][id]"))?;
            Ok(OutAttachment::MediaShare { post_id })
        }
        "template" => {
            let p = payload_obj(true)?
                .ok_or_else(|| GraphError::missing_param("message[attachment][payload]"))?;
            parse_template(p)
        }
        other => Err(one_of(
            "message[attachment][type]",
            &["image", "video", "audio", "file", "template", "like_heart", "MEDIA_SHARE"],
            other,
        )),
    }
}

fn parse_template(p: &Map<String, Value>) -> Result<OutAttachment, GraphError> {
    let base = "message[attachment][payload]";
    let template_type = required_str(p, "template_type", &format!("{base}[template_type]"))?;
    match template_type {
        "button" => {
            required_str(p, "text", &format!("{base}[text]"))?;
            let buttons = p
                .get("buttons")
                .filter(|v| !v.is_null())
                .ok_or_else(|| GraphError::missing_param(&format!("{base}[buttons]")))?;
            validate_buttons(buttons, &format!("{base}[buttons]"), true)?;
        }
        "generic" => {
            let elements_param = format!("{base}[elements]");
            let elements = p
                .get("elements")
                .filter(|v| !v.is_null())
                .ok_or_else(|| GraphError::missing_param(&elements_param))?;
            let elements = array(elements, &elements_param)?;
            if elements.is_empty() {
                return Err(GraphError::missing_param(&elements_param));
            }
            if elements.len() > MAX_GENERIC_ELEMENTS {
                return Err(too_many(&elements_param, MAX_GENERIC_ELEMENTS));
            }
            for (i, el) in elements.iter().enumerate() {
                let eb = format!("{elements_param}[{i}]");
                let obj = object(el, &eb)?;
                let title_param = format!("{eb}[title]");
                let title = required_str(obj, "title", &title_param)?;
                check_chars(title, &title_param, MAX_ELEMENT_TEXT)?;
                let subtitle_param = format!("{eb}[subtitle]");
                if let Some(sub) = str_field(obj, "subtitle", &subtitle_param)? {
                    check_chars(sub, &subtitle_param, MAX_ELEMENT_TEXT)?;
                }
                let image_param = format!("{eb}[image_url]");
                if let Some(img) = str_field(obj, "image_url", &image_param)? {
                    valid_url(img, &image_param)?;
                }
                if let Some(action) = obj.get("default_action").filter(|v| !v.is_null()) {
                    let ap = format!("{eb}[default_action]");
                    let a = object(action, &ap)?;
                    match str_field(a, "type", &format!("{ap}[type]"))? {
                        Some("web_url") => {}
                        Some(other) => {
                            return Err(one_of(&format!("{ap}[type]"), &["web_url"], other));
                        }
                        None => return Err(GraphError::missing_param(&format!("{ap}[type]"))),
                    }
                    let up = format!("{ap}[url]");
                    valid_url(required_str(a, "url", &up)?, &up)?;
                }
                if let Some(buttons) = obj.get("buttons").filter(|v| !v.is_null()) {
                    validate_buttons(buttons, &format!("{eb}[buttons]"), false)?;
                }
            }
        }
        other => {
            return Err(one_of(&format!("{base}[template_type]"), &["button", "generic"], other));
        }
    }
    Ok(OutAttachment::Template {
        template_type: template_type.to_owned(),
        payload: Value::Object(p.clone()),
    })
}

fn validate_buttons(raw: &Value, param: &str, require_one: bool) -> Result<(), GraphError> {
    let buttons = array(raw, param)?;
    if require_one && buttons.is_empty() {
        return Err(GraphError::missing_param(param));
    }
    if buttons.len() > MAX_BUTTONS {
        return Err(too_many(param, MAX_BUTTONS));
    }
    for (i, b) in buttons.iter().enumerate() {
        let bp = format!("{param}[{i}]");
        let obj = object(b, &bp)?;
        required_str(obj, "title", &format!("{bp}[title]"))?;
        match required_str(obj, "type", &format!("{bp}[type]"))? {
            "web_url" => {
                let up = format!("{bp}[url]");
                valid_url(required_str(obj, "url", &up)?, &up)?;
            }
            "postback" => {
                required_str(obj, "payload", &format!("{bp}[payload]"))?;
            }
            other => return Err(one_of(&format!("{bp}[type]"), &["web_url", "postback"], other)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(message: Value) -> Value {
        json!({"recipient": {"id": "1"}, "message": message})
    }

    #[test]
    fn text_limit_is_in_bytes() {
        let ok = "é".repeat(500);
        assert!(parse_send(&msg(json!({"text": ok}))).is_ok());
        let bad = format!("{}a", "é".repeat(500));
        let err = parse_send(&msg(json!({"text": bad}))).err();
        assert_eq!(
            err.map(|e| e.message),
            Some(
                "(#100) Length of param message[text] must be less than or equal to 1000"
                    .to_owned()
            )
        );
    }

    #[test]
    fn form_fields_are_decoded() {
        let body = form_to_json(vec![
            ("recipient".to_owned(), r#"{"id":"42"}"#.to_owned()),
            ("message".to_owned(), r#"{"text":"hi"}"#.to_owned()),
            ("messaging_type".to_owned(), "UPDATE".to_owned()),
        ]);
        let req = parse_send(&body).ok();
        assert_eq!(req.as_ref().map(|r| r.messaging_type), Some(MessagingType::Update));
        assert_eq!(req.map(|r| r.recipient), Some(Recipient::Id("42".to_owned())));
    }

    #[test]
    fn audio_goes_to_the_slow_bucket() {
        let req = parse_send(&msg(
            json!({"attachment": {"type": "audio", "payload": {"url": "https://x.test/a.m4a"}}}),
        ));
        assert_eq!(req.map(|r| r.bucket()).ok(), Some(SendBucket::AudioVideo));
    }

    #[test]
    fn unknown_action_lists_the_choices() {
        let err = parse_send(&json!({"recipient": {"id": "1"}, "sender_action": "dance"})).err();
        assert_eq!(
            err.map(|e| e.message),
            Some("(#100) Param sender_action must be one of {typing_on, typing_off, mark_seen, react, unreact} - got \"dance\".".to_owned())
        );
    }
}
