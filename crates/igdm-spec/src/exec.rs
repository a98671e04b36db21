//! Building requests from actions and running them over a [`Transport`].

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue};
use igdm_model::{ApiError, ErrorClass};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Map, Value, json};
use url::Url;

use crate::error::ExecError;
use crate::expr::{Env, stringify, truthy};
use crate::mapping::{self, Warnings};
use crate::params::validate_params;
use crate::session::Session;
use crate::spec::{
    AuthType, BodyFormat, Connector, Operation, Probe, StoreTarget, ValueTemplate, origin_of,
};
use crate::transport::{HttpRequest, HttpResponse, Transport};

/// Characters percent-encoded when a value is substituted into a URL path:
/// everything that could change the URL's structure.
const PATH_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']')
    .add(b'&')
    .add(b'=')
    .add(b'+')
    .add(b';');

/// Cursor information read by an action's `response.page`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PageInfo {
    /// Pass back to get the next page; `None` at the end.
    pub next_cursor: Option<String>,
    /// Whether more exists.
    pub has_more: bool,
}

/// The result of an action.
#[derive(Debug, Clone)]
pub struct ActionOutput {
    /// The mapped result (the whole body when the action has no mapping).
    pub data: Value,
    /// Cursor information, when the action declares `response.page`.
    pub page: Option<PageInfo>,
    /// HTTP status.
    pub status: u16,
    /// Problems met while mapping (a field that failed evaluates to null) and
    /// the action's static warnings.
    pub warnings: Vec<String>,
    raw: Bytes,
}

impl ActionOutput {
    /// The raw response body.
    #[must_use]
    pub fn raw_body(&self) -> &[u8] {
        &self.raw
    }

    /// The raw response body parsed as JSON.
    ///
    /// Integers beyond 64 bits come back as strings of their digits.
    pub fn raw_json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&crate::bigint::quote_big_integers(&self.raw))
    }
}

/// Runs a connector's actions. It builds requests, sends them through the
/// transport, applies session hooks and classifies errors; it does not retry
/// or rate-limit (wrap the transport for that).
#[derive(Clone)]
pub struct Executor {
    connector: Arc<Connector>,
    transport: Arc<dyn Transport>,
    base_url: Option<Url>,
    recorder: Option<Arc<crate::record::Recorder>>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("connector", &self.connector.id)
            .field("base_url", &self.base_url.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

pub(crate) struct Vars {
    params: Value,
    auth: Value,
    device: Value,
    api: Value,
    request: Value,
}

/// The request-side variables of expressions.
pub(crate) fn vars(connector: &Connector, params: Value, session: &Session) -> Vars {
    let api = json!({ "base_url": connector.api.base_url.as_ref().map(|u| u.as_str().trim_end_matches('/')) });
    Vars {
        params,
        auth: session.auth_value(),
        device: session.device_value(),
        api,
        request: Value::Null,
    }
}

impl Vars {
    fn env(&self) -> Env<'_> {
        Env {
            params: &self.params,
            auth: &self.auth,
            device: &self.device,
            api: &self.api,
            request: &self.request,
            ..Env::empty()
        }
    }
}

impl Executor {
    /// An executor for `connector` over `transport`.
    #[must_use]
    pub fn new(connector: Arc<Connector>, transport: Arc<dyn Transport>) -> Self {
        Self { connector, transport, base_url: None, recorder: None }
    }

    /// Writes every exchange, redacted, into `recorder`'s directory
    /// ([`crate::record`]), for contributing fixtures.
    #[must_use]
    pub fn with_recorder(mut self, recorder: Option<Arc<crate::record::Recorder>>) -> Self {
        self.recorder = recorder;
        self
    }

    /// The recorder exchanges are written to, if any.
    #[must_use]
    pub fn recorder(&self) -> Option<&Arc<crate::record::Recorder>> {
        self.recorder.as_ref()
    }

    /// Sends every request to `base_url` instead of the connector's hosts:
    /// the override's scheme, host and port replace those of URLs on the
    /// connector's origins, and its path (if any) is prefixed to theirs.
    #[must_use]
    pub fn with_base_url(mut self, base_url: Option<Url>) -> Self {
        self.base_url = base_url;
        self
    }

    /// The connector.
    #[must_use]
    pub fn connector(&self) -> &Arc<Connector> {
        &self.connector
    }

    /// Builds the request of `action` without sending anything.
    pub fn build_request(
        &self,
        action: &str,
        params: &Map<String, Value>,
        session: &Session,
    ) -> Result<HttpRequest, ExecError> {
        let a = self
            .connector
            .action(action)
            .ok_or_else(|| ExecError::UnknownAction(action.to_owned()))?;
        let params = validate_params(a.params(), params).map_err(ExecError::InvalidParams)?;
        self.build(&a.op, params, session)
    }

    /// Builds the `auth.validate` probe request.
    pub fn build_validate_request(&self, session: &Session) -> Result<HttpRequest, ExecError> {
        let p = self.validate_probe()?;
        self.build(&p.op, json!({}), session)
    }

    /// Builds the `session.keep_alive` probe request.
    pub fn build_keep_alive_request(&self, session: &Session) -> Result<HttpRequest, ExecError> {
        let p = self.keep_alive_probe()?;
        self.build(&p.op, json!({}), session)
    }

    /// Runs `action`: validates `params` (nothing is sent when they are
    /// invalid), sends, updates `session` from the response, classifies
    /// errors and maps the body.
    pub async fn execute(
        &self,
        action: &str,
        params: &Map<String, Value>,
        session: &mut Session,
    ) -> Result<ActionOutput, ExecError> {
        let a = self
            .connector
            .action(action)
            .ok_or_else(|| ExecError::UnknownAction(action.to_owned()))?;
        let params = validate_params(a.params(), params).map_err(ExecError::InvalidParams)?;
        self.check_credentials(session)?;
        let req = self.build(&a.op, params.clone(), session)?;
        let mut out = self.run(action, &a.op, req, params, session, None).await?;
        out.warnings.extend(a.warnings().iter().cloned());
        Ok(out)
    }

    /// Sends a request made by [`Executor::build_request`] for the same
    /// `action` and `params`, then handles the response exactly like
    /// [`Executor::execute`]. Building first lets a caller record what the
    /// request carries (the `client_context` of a send) before it leaves, to
    /// reconcile it after an unknown outcome.
    pub async fn send_built(
        &self,
        action: &str,
        params: &Map<String, Value>,
        req: HttpRequest,
        session: &mut Session,
    ) -> Result<ActionOutput, ExecError> {
        let a = self
            .connector
            .action(action)
            .ok_or_else(|| ExecError::UnknownAction(action.to_owned()))?;
        let params = validate_params(a.params(), params).map_err(ExecError::InvalidParams)?;
        self.check_credentials(session)?;
        let mut out = self.run(action, &a.op, req, params, session, None).await?;
        out.warnings.extend(a.warnings().iter().cloned());
        Ok(out)
    }

    /// Runs the `auth.validate` probe.
    pub async fn validate(&self, session: &mut Session) -> Result<ActionOutput, ExecError> {
        let p = self.validate_probe()?;
        self.check_credentials(session)?;
        let req = self.build(&p.op, json!({}), session)?;
        self.run("auth.validate", &p.op, req, json!({}), session, Some(p)).await
    }

    /// Runs the `session.keep_alive` probe.
    pub async fn keep_alive(&self, session: &mut Session) -> Result<ActionOutput, ExecError> {
        let p = self.keep_alive_probe()?;
        self.check_credentials(session)?;
        let req = self.build(&p.op, json!({}), session)?;
        self.run("session.keep_alive", &p.op, req, json!({}), session, Some(p)).await
    }

    fn validate_probe(&self) -> Result<&Probe, ExecError> {
        self.connector
            .auth
            .validate
            .as_ref()
            .ok_or_else(|| ExecError::UnknownAction("auth.validate".to_owned()))
    }

    fn keep_alive_probe(&self) -> Result<&Probe, ExecError> {
        self.connector
            .session
            .keep_alive
            .as_ref()
            .map(|k| &k.probe)
            .ok_or_else(|| ExecError::UnknownAction("session.keep_alive".to_owned()))
    }

    fn check_credentials(&self, session: &Session) -> Result<(), ExecError> {
        match self.connector.auth.kind {
            AuthType::Cookies => {
                let missing: Vec<&str> = self
                    .connector
                    .auth
                    .cookies
                    .iter()
                    .map(String::as_str)
                    .filter(|c| session.cookie(c).is_none())
                    .collect();
                if !missing.is_empty() {
                    return Err(ExecError::MissingCredentials(ApiError::new(
                        ErrorClass::AuthExpired,
                        format!("the session lacks the cookie(s) {}", missing.join(", ")),
                    )));
                }
            }
            AuthType::Bearer if session.access_token().is_none() => {
                return Err(ExecError::MissingCredentials(ApiError::new(
                    ErrorClass::AuthExpired,
                    "the session has no access token",
                )));
            }
            _ => {}
        }
        Ok(())
    }

    fn build(
        &self,
        op: &Operation,
        params: Value,
        session: &Session,
    ) -> Result<HttpRequest, ExecError> {
        let mut vars = vars(&self.connector, params, session);
        // One value per built request, so the private API's de-duplication
        // keys (client_context, mutation_token, offline_threading_id) agree.
        vars.request = json!({ "uuid": uuid::Uuid::new_v4().to_string() });
        let env = vars.env();
        let render_err = |what: &str, m: String| ExecError::Render(format!("{what}: {m}"));

        // URL: values are data, percent-encoded unless they come from `api.*`.
        let raw_url = op
            .url
            .render_with(&env, |e, text| {
                if e.is_api_path() {
                    text
                } else {
                    utf8_percent_encode(&text, PATH_VALUE).to_string()
                }
            })
            .map_err(|m| render_err("url", m))?;
        let mut url = self.absolute(&raw_url)?;
        let mut query = Vec::new();
        for (k, t) in &op.query {
            let v = render_value(t, &env).map_err(|m| render_err(&format!("params.{k}"), m))?;
            if !is_blank(&v) {
                query.push((k.clone(), stringify(&v)));
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter());
        }
        let url = self.override_url(url)?;

        // Body.
        let format = op.body_format.unwrap_or(self.connector.api.body_format);
        let mut content_type = None;
        let mut multipart_type = None;
        let body = match &op.body {
            None => Bytes::new(),
            Some(t) => {
                let v = render_value(t, &env).map_err(|m| render_err("body", m))?;
                match format {
                    BodyFormat::Json => {
                        content_type = Some("application/json");
                        Bytes::from(
                            serde_json::to_vec(&v)
                                .map_err(|e| render_err("body", e.to_string()))?,
                        )
                    }
                    BodyFormat::Form => {
                        content_type = Some("application/x-www-form-urlencoded; charset=UTF-8");
                        let mut ser = form_urlencoded::Serializer::new(String::new());
                        if let Value::Object(m) = &v {
                            for (k, val) in m {
                                ser.append_pair(k, &stringify(val));
                            }
                        } else if !is_blank(&v) {
                            return Err(render_err(
                                "body",
                                "a form body must be a mapping of fields".to_owned(),
                            ));
                        }
                        Bytes::from(ser.finish())
                    }
                    BodyFormat::Binary => {
                        content_type = Some("application/octet-stream");
                        binary_body(&v).map_err(|m| render_err("body", m))?
                    }
                    BodyFormat::Multipart => {
                        let (ct, bytes) = multipart_body(&v).map_err(|m| render_err("body", m))?;
                        multipart_type = Some(ct);
                        bytes
                    }
                }
            }
        };

        // Headers: api.headers, then the operation's, then auth.
        let mut headers = HeaderMap::new();
        for (name, t) in self.connector.api.headers.iter().chain(op.headers.iter()) {
            let v = t.render(&env).map_err(|m| render_err(&format!("headers.{name}"), m))?;
            let text = stringify(&v);
            let hname = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| render_err(&format!("headers.{name}"), e.to_string()))?;
            if text.is_empty() {
                headers.remove(&hname);
                continue;
            }
            if hname == HOST && !host_matches(&text, &url) {
                // A Host naming another server than the real target is never sent.
                continue;
            }
            let hv = HeaderValue::from_bytes(text.as_bytes()).map_err(|_| {
                render_err(
                    &format!("headers.{name}"),
                    "the value contains characters not allowed in a header".to_owned(),
                )
            })?;
            headers.insert(hname, hv);
        }
        if let Some(ct) = content_type
            && !headers.contains_key(CONTENT_TYPE)
        {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        if let Some(ct) = multipart_type {
            // The boundary is the body's own: a header cannot replace it.
            let hv = HeaderValue::from_str(&ct)
                .map_err(|e| render_err("body", format!("multipart content type: {e}")))?;
            headers.insert(CONTENT_TYPE, hv);
        }
        match self.connector.auth.kind {
            AuthType::Cookies => {
                if let Some(c) = session.cookie_header() {
                    let hv = HeaderValue::from_bytes(c.as_bytes()).map_err(|_| {
                        render_err(
                            "Cookie",
                            "a cookie value contains characters not allowed in a header".to_owned(),
                        )
                    })?;
                    headers.insert(COOKIE, hv);
                }
            }
            AuthType::Bearer => {
                if let Some(t) = session.access_token() {
                    let mut hv = HeaderValue::from_bytes(format!("Bearer {t}").as_bytes())
                        .map_err(|_| {
                            render_err(
                                "Authorization",
                                "the token contains characters not allowed in a header".to_owned(),
                            )
                        })?;
                    hv.set_sensitive(true);
                    headers.insert(AUTHORIZATION, hv);
                }
            }
            AuthType::None => {}
        }
        Ok(HttpRequest { method: op.method.clone(), url, headers, body })
    }

    fn absolute(&self, raw: &str) -> Result<Url, ExecError> {
        if let Ok(u) = Url::parse(raw) {
            return Ok(u);
        }
        let base = self.connector.api.base_url.as_ref().ok_or_else(|| {
            ExecError::Render(format!(
                "url `{raw}` is relative and the connector has no api.base_url"
            ))
        })?;
        let joined =
            format!("{}/{}", base.as_str().trim_end_matches('/'), raw.trim_start_matches('/'));
        Url::parse(&joined).map_err(|e| ExecError::Render(format!("url `{joined}`: {e}")))
    }

    fn override_url(&self, url: Url) -> Result<Url, ExecError> {
        let Some(base) = &self.base_url else { return Ok(url) };
        if !self.connector.origins.contains(&origin_of(&url)) {
            return Ok(url);
        }
        let prefix = base.path().trim_end_matches('/');
        let mut s = format!("{}://{}", base.scheme(), base.host_str().unwrap_or(""));
        if let Some(p) = base.port() {
            s.push_str(&format!(":{p}"));
        }
        s.push_str(prefix);
        s.push_str(url.path());
        if let Some(q) = url.query() {
            s.push('?');
            s.push_str(q);
        }
        Url::parse(&s).map_err(|e| ExecError::Render(format!("base-url override gives `{s}`: {e}")))
    }

    async fn run(
        &self,
        action: &str,
        op: &Operation,
        req: HttpRequest,
        params: Value,
        session: &mut Session,
        probe: Option<&Probe>,
    ) -> Result<ActionOutput, ExecError> {
        // The query may carry a token (Graph's access_token): log host and path only.
        tracing::debug!(
            connector = %self.connector.id,
            method = %req.method,
            host = req.url.host_str().unwrap_or(""),
            path = req.url.path(),
            "sending"
        );
        let kept = self.recorder.as_ref().map(|r| (r, req.clone()));
        let resp = self.transport.send(req).await?;
        if let Some((recorder, req)) = kept {
            recorder.record(&self.connector.id, Some(action), &params, &req, &resp);
        }
        self.absorb(&resp, session);
        if let Some(e) =
            probe.and_then(|p| p.error_for(&resp)).or_else(|| self.connector.classify(&resp))
        {
            tracing::debug!(connector = %self.connector.id, status = resp.status, class = %e.class, "provider error");
            return Err(ExecError::Api(e));
        }
        let vars = vars(&self.connector, params, session);
        map_response(op, &vars, resp.status, resp.body)
    }

    /// Applies `Set-Cookie` rotation and the connector's response hooks.
    fn absorb(&self, resp: &HttpResponse, session: &mut Session) {
        let now = Utc::now();
        for v in resp.headers.get_all(http::header::SET_COOKIE) {
            if let Ok(s) = v.to_str() {
                session.apply_set_cookie(s, now);
            }
        }
        for hook in &self.connector.api.response_hooks {
            let Some(value) = resp.header(&hook.header).filter(|v| !v.is_empty()) else { continue };
            match &hook.store_as {
                StoreTarget::Cookie(c) => session.set_cookie(c.clone(), value),
                StoreTarget::AccessToken => session.set_access_token(value),
                StoreTarget::Extra(x) => session.set_extra(x.clone(), value),
            }
        }
    }
}

/// The bytes of a `binary` body: `{file, offset}` names a local file and
/// where in it to start (resumable uploads send the rest from the server's
/// offset).
fn binary_body(v: &Value) -> Result<Bytes, String> {
    let path = v
        .get("file")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or("a binary body needs `file`, the path of the file to send")?;
    let offset = match v.get("offset") {
        None | Some(Value::Null) => 0,
        Some(o) => stringify(o)
            .parse::<u64>()
            .map_err(|_| format!("`offset` must be a byte count, got {o}"))?,
    };
    let data = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let start = usize::try_from(offset).ok().filter(|o| *o <= data.len()).ok_or_else(|| {
        format!("offset {offset} is past the end of {path} ({} bytes)", data.len())
    })?;
    let mut bytes = Bytes::from(data);
    Ok(bytes.split_off(start))
}

/// A `multipart/form-data` body from a mapping of fields (see
/// [`BodyFormat::Multipart`]); returns the content type with its boundary.
fn multipart_body(v: &Value) -> Result<(String, Bytes), String> {
    let Value::Object(fields) = v else {
        return Err("a multipart body must be a mapping of fields".to_owned());
    };
    let boundary = format!("igdm-{}", uuid::Uuid::new_v4().simple());
    let mut out = Vec::new();
    let quoted = |s: &str| s.replace(['"', '\r', '\n'], "_");
    for (name, value) in fields {
        if value.is_null() {
            continue;
        }
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let file = value.as_object().and_then(|o| o.get("file").map(|f| (o, f)));
        if let Some((part, file)) = file {
            let path = file
                .as_str()
                .filter(|p| !p.is_empty())
                .ok_or_else(|| format!("multipart field `{name}`: `file` must be a path"))?;
            let data = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            let filename = match part.get("filename").and_then(Value::as_str) {
                Some(f) if !f.is_empty() => f.to_owned(),
                _ => std::path::Path::new(path)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "file".to_owned()),
            };
            let ctype = part
                .get("type")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .unwrap_or("application/octet-stream");
            out.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                    quoted(name),
                    quoted(&filename),
                    quoted(ctype)
                )
                .as_bytes(),
            );
            out.extend_from_slice(&data);
        } else {
            let text = match value {
                Value::Object(_) | Value::Array(_) => value.to_string(),
                other => stringify(other),
            };
            out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", quoted(name))
                    .as_bytes(),
            );
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((format!("multipart/form-data; boundary={boundary}"), Bytes::from(out)))
}

/// Maps a successful response body with the operation's `response` block.
pub(crate) fn map_response(
    op: &Operation,
    vars: &Vars,
    status: u16,
    raw: Bytes,
) -> Result<ActionOutput, ExecError> {
    let body: Value = if raw.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        crate::shape::parse_body(&raw, &op.response.shape)
            .map_err(|e| ExecError::Decode { status, message: e.to_string() })?
    };
    let mut warnings = Warnings::default();
    let base_env = Env { root: &body, current: &body, ..vars.env() };
    let mut context = Map::new();
    for (k, e) in &op.response.context {
        let v = e.eval_ref(&base_env).map(Cow::into_owned).unwrap_or_else(|m| {
            warnings.0.push(format!("context.{k}: {m}"));
            Value::Null
        });
        context.insert(k.clone(), v);
    }
    let context = Value::Object(context);
    let env = Env { context: &context, ..base_env };
    // A root borrowed from the body is not copied.
    let root: Cow<'_, Value> = match &op.response.root {
        Some(e) => e.eval_ref(&env).unwrap_or_else(|m| {
            warnings.0.push(format!("root: {m}"));
            Cow::Owned(Value::Null)
        }),
        None => Cow::Borrowed(&body),
    };
    let root = root.as_ref();
    if root.is_null()
        && let Some(t) = &op.response.not_found
    {
        let message = t.render(&env).map(|v| stringify(&v)).unwrap_or_else(|m| {
            tracing::debug!(error = %m, "response.not_found did not render");
            "not found".to_owned()
        });
        return Err(ExecError::Api(ApiError::new(ErrorClass::NotFound, message)));
    }
    let data = match &op.response.mapping {
        Some(_) if root.is_null() => {
            warnings.0.push("the response root is empty".to_owned());
            Value::Null
        }
        Some(m) => mapping::apply(m, root, &env, &mut warnings),
        None => root.clone(),
    };
    let page = op.response.page.as_ref().map(|p| {
        let next_cursor = p
            .next_cursor
            .as_ref()
            .and_then(|e| e.eval_ref(&env).ok())
            .filter(|v| !is_blank(v))
            .map(|v| stringify(&v));
        let has_more = match &p.has_more {
            Some(e) => e.eval_ref(&env).map(|v| truthy(&v)).unwrap_or(false),
            None => next_cursor.is_some(),
        };
        PageInfo { next_cursor: if has_more { next_cursor } else { None }, has_more }
    });
    for w in &op.response.warnings {
        let holds = match &w.when {
            None => true,
            Some(e) => match e.eval(&env) {
                Ok(v) => truthy(&v),
                Err(m) => {
                    warnings.0.push(format!("response.warnings.when: {m}"));
                    false
                }
            },
        };
        if holds {
            match w.message.render(&env) {
                Ok(v) => warnings.0.push(stringify(&v)),
                Err(m) => warnings.0.push(format!("response.warnings.message: {m}")),
            }
        }
    }
    Ok(ActionOutput { data, page, status, warnings: warnings.0, raw })
}

impl Connector {
    /// Maps a successful response body of `action` exactly as [`Executor::execute`]
    /// would, without network or session (replaying recorded responses,
    /// benchmarks). `params` are validated first.
    pub fn map_body(
        &self,
        action: &str,
        params: &Map<String, Value>,
        body: &[u8],
    ) -> Result<ActionOutput, ExecError> {
        let a = self.action(action).ok_or_else(|| ExecError::UnknownAction(action.to_owned()))?;
        let params = validate_params(a.params(), params).map_err(ExecError::InvalidParams)?;
        let vars = vars(self, params, &Session::new());
        map_response(&a.op, &vars, 200, Bytes::copy_from_slice(body))
    }
}

fn is_blank(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some("")
}

fn host_matches(host: &str, url: &Url) -> bool {
    let Some(h) = url.host_str() else { return false };
    match url.port() {
        Some(p) => host.eq_ignore_ascii_case(&format!("{h}:{p}")),
        None => host.eq_ignore_ascii_case(h),
    }
}

/// Renders a value template. Object fields that render to null or an empty
/// string are dropped (optional fields).
fn render_value(t: &ValueTemplate, env: &Env<'_>) -> Result<Value, String> {
    Ok(match t {
        ValueTemplate::Template(t) => t.render(env)?,
        ValueTemplate::Const(v) => v.clone(),
        ValueTemplate::List(items) => {
            Value::Array(items.iter().map(|i| render_value(i, env)).collect::<Result<_, _>>()?)
        }
        ValueTemplate::Object(fields) => {
            let mut m = Map::new();
            for (k, f) in fields {
                let v = render_value(f, env)?;
                if !is_blank(&v) {
                    m.insert(k.clone(), v);
                }
            }
            Value::Object(m)
        }
    })
}
