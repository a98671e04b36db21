//! The connector file: raw YAML shapes, and their compiled, checked form.

use std::collections::BTreeSet;
use std::time::Duration;

use igdm_model::{ApiError, ErrorClass};
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::{Location, Spanned};
use url::Url;

use crate::classify::{Classifier, ErrorDetection, ErrorRule, StatusMatch, class_from_name};
use crate::error::SpecError;
use crate::expr::{Bare, Expr, ParseError, Scope, Template};
use crate::extensions::{AppliesTo, Capabilities, Limits, Pacing, RateLimit, de_duration};
use crate::mapping::MapNode;
use crate::params::{ParamSpec, ParamType, Pattern};
use crate::shape::Shape;
use crate::transport::HttpResponse;
use crate::yaml::{KeyString, Node, file_position, split_front_matter};

// ---------------------------------------------------------------------------
// Raw YAML shapes
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct RawConnector {
    id: Spanned<String>,
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    auth: Option<RawAuth>,
    #[serde(default)]
    session: Option<RawSession>,
    #[serde(default)]
    api: Option<RawApi>,
    instructions: Option<String>,
    #[serde(default)]
    actions: IndexMap<String, RawAction>,
    #[serde(default)]
    errors: Vec<RawErrorRule>,
    #[serde(default)]
    capabilities: Option<Spanned<Capabilities>>,
    #[serde(default)]
    pacing: Option<Pacing>,
    #[serde(default)]
    rate_limits: IndexMap<String, Spanned<RateLimit>>,
    #[serde(default)]
    limits: Option<Limits>,
}

const KNOWN_TOP_LEVEL: &[&str] = &[
    "id",
    "name",
    "description",
    "auth",
    "session",
    "api",
    "instructions",
    "actions",
    "errors",
    "capabilities",
    "pacing",
    "rate_limits",
    "limits",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    domain: Option<String>,
    #[serde(default)]
    cookies: Vec<String>,
    connect: Option<Value>,
    validate: Option<RawProbe>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    rest: RawRest,
    #[serde(default)]
    on_error: IndexMap<KeyString, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeepAlive {
    #[serde(default, deserialize_with = "de_duration")]
    interval: Option<Duration>,
    rest: RawRest,
    #[serde(default)]
    on_error: IndexMap<KeyString, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    keep_alive: Option<RawKeepAlive>,
    error_detection: Option<RawErrorDetection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawErrorDetection {
    #[serde(default)]
    status_codes: IndexMap<KeyString, Spanned<String>>,
    #[serde(default)]
    response_patterns: Vec<RawPattern>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPattern {
    pattern: String,
    error: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    base_url: Option<Spanned<String>>,
    #[serde(default)]
    headers: IndexMap<String, Spanned<Node>>,
    #[serde(default)]
    response_hooks: Vec<RawHook>,
    body_format: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    header: String,
    store_as: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    label: Option<String>,
    description: Option<String>,
    #[serde(default)]
    readonly: bool,
    #[serde(default)]
    params: IndexMap<String, RawParam>,
    rest: RawRest,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    #[serde(default)]
    required: bool,
    default: Option<Value>,
    min: Option<f64>,
    max: Option<f64>,
    max_length: Option<usize>,
    min_length: Option<usize>,
    min_items: Option<usize>,
    max_items: Option<usize>,
    pattern: Option<Spanned<String>>,
    max_bytes: Option<usize>,
    #[serde(default)]
    values: Vec<Value>,
    items: Option<Box<RawParam>>,
    #[serde(default)]
    properties: IndexMap<String, RawParam>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRest {
    method: Spanned<String>,
    url: Spanned<String>,
    #[serde(default)]
    params: IndexMap<String, Spanned<Node>>,
    body: Option<Spanned<Node>>,
    #[serde(default)]
    headers: IndexMap<String, Spanned<Node>>,
    body_format: Option<Spanned<String>>,
    response: Option<RawResponse>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponse {
    root: Option<Spanned<String>>,
    #[serde(default)]
    context: IndexMap<String, Spanned<String>>,
    mapping: Option<Spanned<Node>>,
    page: Option<RawPage>,
    not_found: Option<Spanned<String>>,
    #[serde(default)]
    warnings: Vec<RawWarning>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWarning {
    when: Option<Spanned<String>>,
    message: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPage {
    next_cursor: Option<Spanned<String>>,
    has_more: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawErrorRule {
    status: Option<Spanned<Node>>,
    #[serde(default)]
    json: IndexMap<String, Value>,
    body_contains: Option<Value>,
    content_type: Option<String>,
    class: Spanned<String>,
    message: Option<String>,
    url: Option<String>,
    retry_after_header: Option<String>,
    retry_after: Option<u64>,
}

// ---------------------------------------------------------------------------
// Compiled form
// ---------------------------------------------------------------------------

/// How the connector authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthType {
    /// Browser cookies: a `Cookie` header from the session's cookie set.
    Cookies,
    /// `Authorization: Bearer <access token>`.
    Bearer,
    /// No credentials.
    None,
}

/// The `auth:` block.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The kind.
    pub kind: AuthType,
    /// The cookie domain (`instagram.com`).
    pub domain: Option<String>,
    /// Cookies the session must hold.
    pub cookies: Vec<String>,
    /// The browser login steps, kept raw for the crate that runs them.
    pub connect: Option<Value>,
    /// The probe that checks the credentials.
    pub validate: Option<Probe>,
}

/// A request that is not an action: `auth.validate` or `session.keep_alive`.
#[derive(Debug, Clone)]
pub struct Probe {
    pub(crate) op: Operation,
    /// Status → outcome name (`reconnect_required`, `mark_disconnected`).
    pub on_error: IndexMap<u16, String>,
}

impl Probe {
    pub(crate) fn error_for(&self, resp: &HttpResponse) -> Option<ApiError> {
        let name = self.on_error.get(&resp.status)?;
        let class = class_from_name(name).unwrap_or(ErrorClass::AuthExpired);
        let mut e = ApiError::new(class, format!("HTTP {}: {name}", resp.status));
        e.provider = Some(igdm_model::ProviderError {
            status: Some(resp.status),
            code: Some(name.clone()),
            ..Default::default()
        });
        Some(e)
    }
}

/// The `session:` block.
#[derive(Debug, Clone, Default)]
pub struct SessionSpec {
    /// The keep-alive probe and its interval.
    pub keep_alive: Option<KeepAlive>,
}

/// `session.keep_alive`.
#[derive(Debug, Clone)]
pub struct KeepAlive {
    /// How often to touch the session.
    pub interval: Option<Duration>,
    /// The request.
    pub probe: Probe,
}

/// Where request bodies go as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded` (the private API).
    #[default]
    Form,
    /// `application/json` (Graph).
    Json,
    /// Raw bytes (`application/octet-stream` unless a header says
    /// otherwise): the body template is `{file, offset}`, and the bytes of
    /// `file` from `offset` (default 0) to its end are sent. Resumable
    /// uploads send the rest of a file from the offset the server reports.
    Binary,
    /// `multipart/form-data`: each field of the body mapping is a part. A
    /// field whose value is a mapping with `file` is a file part: the bytes
    /// of that local file, with `type` as its content type (default
    /// `application/octet-stream`) and `filename` as its name (default the
    /// file's own name). Other mappings and lists go as JSON text, the rest
    /// as text. Meta's attachment upload takes local files this way.
    Multipart,
}

/// Where a response hook stores a header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// `auth.cookies.<name>`.
    Cookie(String),
    /// `auth.access_token`.
    AccessToken,
    /// `auth.<name>`.
    Extra(String),
}

/// `api.response_hooks[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHook {
    /// Response header name (case-insensitive).
    pub header: String,
    /// Where its value goes.
    pub store_as: StoreTarget,
}

/// The `api:` block.
#[derive(Debug, Clone, Default)]
pub struct Api {
    /// `api.base_url`.
    pub base_url: Option<Url>,
    pub(crate) headers: Vec<(String, Template)>,
    /// Hooks run on every response.
    pub response_hooks: Vec<ResponseHook>,
    /// Default body format.
    pub body_format: BodyFormat,
}

/// A body, query or header value template (nested for JSON bodies).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ValueTemplate {
    Template(Template),
    Const(Value),
    Object(Vec<(String, ValueTemplate)>),
    List(Vec<ValueTemplate>),
}

/// `rest.response.page`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PageSpec {
    pub(crate) next_cursor: Option<Expr>,
    pub(crate) has_more: Option<Expr>,
}

/// `rest.response`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ResponseSpec {
    pub(crate) root: Option<Expr>,
    pub(crate) context: Vec<(String, Expr)>,
    pub(crate) mapping: Option<MapNode>,
    pub(crate) page: Option<PageSpec>,
    /// When the root is empty: the message of a `not_found` error.
    pub(crate) not_found: Option<Template>,
    /// Warnings added to the output when their condition holds.
    pub(crate) warnings: Vec<CondWarning>,
    /// What of a body the block can observe: the rest is not parsed.
    pub(crate) shape: Shape,
}

/// A `response.warnings` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CondWarning {
    /// Evaluated against the body like `page`; absent means always.
    pub(crate) when: Option<Expr>,
    /// The warning text.
    pub(crate) message: Template,
}

/// A compiled `rest:` block.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub(crate) method: http::Method,
    pub(crate) url: Template,
    pub(crate) query: Vec<(String, ValueTemplate)>,
    pub(crate) body: Option<ValueTemplate>,
    pub(crate) headers: Vec<(String, Template)>,
    pub(crate) body_format: Option<BodyFormat>,
    pub(crate) response: ResponseSpec,
}

/// One action of a connector.
#[derive(Debug, Clone)]
pub struct Action {
    name: String,
    label: Option<String>,
    description: Option<String>,
    readonly: bool,
    params: IndexMap<String, ParamSpec>,
    warnings: Vec<String>,
    pub(crate) op: Operation,
}

impl Action {
    /// The action's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
    /// A short label.
    #[must_use]
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }
    /// What it does.
    #[must_use]
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// Whether it only reads.
    #[must_use]
    pub fn readonly(&self) -> bool {
        self.readonly
    }
    /// Its parameters, in declaration order.
    #[must_use]
    pub fn params(&self) -> &IndexMap<String, ParamSpec> {
        &self.params
    }
    /// Static warnings attached to every result of the action.
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// The HTTP method.
    #[must_use]
    pub fn method(&self) -> &http::Method {
        &self.op.method
    }
    /// Whether the response declares a `page:` (cursor) block.
    #[must_use]
    pub fn has_page(&self) -> bool {
        self.op.response.page.is_some()
    }
}

/// A loaded, checked connector.
#[derive(Debug, Clone)]
pub struct Connector {
    /// `id`.
    pub id: String,
    /// `name`.
    pub name: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `auth`.
    pub auth: Auth,
    /// `session`.
    pub session: SessionSpec,
    /// `api`.
    pub api: Api,
    /// `instructions` for agents.
    pub instructions: Option<String>,
    /// The Markdown after the front matter.
    pub readme: String,
    /// `capabilities` (igdm extension).
    pub capabilities: Option<Capabilities>,
    /// `pacing` (igdm extension).
    pub pacing: Option<Pacing>,
    /// `rate_limits` (igdm extension), by bucket name.
    pub rate_limits: IndexMap<String, RateLimit>,
    /// `limits` (igdm extension).
    pub limits: Option<Limits>,
    /// Top-level keys the engine does not interpret (`icon`, `color`, …), kept.
    pub extra: IndexMap<String, Value>,
    actions: IndexMap<String, Action>,
    pub(crate) classifier: Classifier,
    /// Origins (`scheme://host:port`) the connector talks to.
    pub(crate) origins: BTreeSet<String>,
}

impl Connector {
    /// Loads a connector file (YAML front matter + Markdown readme).
    /// `source_name` names the file in errors (`FILE:line:column: message`).
    pub fn load(text: &str, source_name: &str) -> Result<Connector, SpecError> {
        let fm = split_front_matter(text, source_name)?;
        let ctx = Ctx { source: source_name, yaml: fm.yaml, line_offset: fm.line_offset };
        let opts = serde_saphyr::options! { strict_booleans: true };
        let raw: RawConnector =
            serde_saphyr::from_str_with_options(fm.yaml, opts).map_err(|e| ctx.yaml_error(&e))?;
        let opts = serde_saphyr::options! { strict_booleans: true };
        let all: IndexMap<KeyString, Value> =
            serde_saphyr::from_str_with_options(fm.yaml, opts).map_err(|e| ctx.yaml_error(&e))?;
        let extra = all
            .into_iter()
            .filter(|(k, _)| !KNOWN_TOP_LEVEL.contains(&k.0.as_str()))
            .map(|(k, v)| (k.0, v))
            .collect();
        ctx.compile(raw, extra, fm.readme.to_owned())
    }

    /// The action called `name`.
    #[must_use]
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.get(name)
    }

    /// The surface the connector speaks: its file's `backend:` (igdm
    /// extension: `web`, `graph` or `page`); a file without one (seed 001's)
    /// is the private web API when it authenticates with cookies, else the
    /// official API.
    #[must_use]
    pub fn backend(&self) -> igdm_model::Backend {
        match self.extra.get("backend").and_then(Value::as_str) {
            Some(declared) => igdm_model::Backend::parse(declared),
            None if self.auth.kind == AuthType::Cookies => igdm_model::Backend::Web,
            None => igdm_model::Backend::Graph,
        }
    }

    /// All actions, in file order.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.actions.values()
    }

    /// Classifies a response with the connector's rules; `None` is success.
    #[must_use]
    pub fn classify(&self, resp: &HttpResponse) -> Option<ApiError> {
        self.classifier.classify(resp)
    }

    /// The error rules (`errors:` plus `session.error_detection`).
    #[must_use]
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// The origins (`scheme://host[:port]`) the connector's URLs point at;
    /// a base-URL override replaces exactly these.
    pub fn origins(&self) -> impl Iterator<Item = &str> {
        self.origins.iter().map(String::as_str)
    }
}

// ---------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------

struct Ctx<'a> {
    source: &'a str,
    yaml: &'a str,
    line_offset: u64,
}

impl Ctx<'_> {
    fn at(&self, loc: &Location, message: impl Into<String>) -> SpecError {
        SpecError::new(self.source, loc.line() + self.line_offset, loc.column(), message)
    }

    fn at_opt(&self, loc: Option<Location>, message: impl Into<String>) -> SpecError {
        match loc {
            Some(l) => self.at(&l, message),
            None => SpecError::new(self.source, 0, 0, message),
        }
    }

    fn yaml_error(&self, e: &serde_saphyr::Error) -> SpecError {
        let text = e.without_snippet().to_string();
        let message = strip_location_suffix(&text);
        match e.location() {
            Some(loc) if loc.line() > 0 => self.at(&loc, message),
            _ => SpecError::new(self.source, 0, 0, message),
        }
    }

    fn parse_error(&self, s: &Spanned<String>, e: &ParseError, what: &str) -> SpecError {
        let (line, column) =
            file_position(self.yaml, self.line_offset, &s.referenced, &s.value, e.offset);
        SpecError::new(self.source, line, column, format!("{what}: {}", e.message))
    }

    fn expr(&self, s: &Spanned<String>, bare: Bare, what: &str) -> Result<Expr, SpecError> {
        Expr::parse(&s.value, Scope::Response, bare).map_err(|e| self.parse_error(s, &e, what))
    }

    fn template(
        &self,
        s: &Spanned<String>,
        scope: Scope,
        what: &str,
    ) -> Result<Template, SpecError> {
        Template::parse(&s.value, scope).map_err(|e| self.parse_error(s, &e, what))
    }

    fn value_template(&self, n: &Spanned<Node>, what: &str) -> Result<ValueTemplate, SpecError> {
        Ok(match &n.value {
            Node::Str(s) => {
                let sp = Spanned::new(s.clone(), n.referenced, n.defined);
                ValueTemplate::Template(self.template(&sp, Scope::Request, what)?)
            }
            Node::Seq(items) => ValueTemplate::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| self.value_template(it, &format!("{what}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Map(m) => ValueTemplate::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), self.value_template(v, &format!("{what}.{k}"))?)))
                    .collect::<Result<_, SpecError>>()?,
            ),
            other => ValueTemplate::Const(other.to_json()),
        })
    }

    fn header_template(
        &self,
        name: &str,
        n: &Spanned<Node>,
        what: &str,
    ) -> Result<(String, Template), SpecError> {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(self.at(&n.referenced, format!("`{name}` is not a valid header name")));
        }
        let t = match &n.value {
            Node::Str(s) => self.template(
                &Spanned::new(s.clone(), n.referenced, n.defined),
                Scope::Request,
                what,
            )?,
            Node::Map(_) | Node::Seq(_) => {
                return Err(
                    self.at(&n.referenced, format!("{what}: a header value must be a string"))
                );
            }
            other => Template::literal(&crate::expr::stringify(&other.to_json())),
        };
        Ok((name.to_owned(), t))
    }

    fn mapping(&self, n: &Spanned<Node>, what: &str) -> Result<MapNode, SpecError> {
        Ok(match &n.value {
            Node::Str(s) => {
                let sp = Spanned::new(s.clone(), n.referenced, n.defined);
                MapNode::Expr(self.expr(&sp, Bare::Variables, what)?)
            }
            Node::Seq(items) => MapNode::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| self.mapping(it, &format!("{what}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Map(m) => MapNode::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), self.mapping(v, &format!("{what}.{k}"))?)))
                    .collect::<Result<_, SpecError>>()?,
            ),
            other => MapNode::Const(other.to_json()),
        })
    }

    fn body_format(&self, s: Option<&Spanned<String>>) -> Result<Option<BodyFormat>, SpecError> {
        let Some(s) = s else { return Ok(None) };
        match s.value.as_str() {
            "form" | "form_urlencoded" => Ok(Some(BodyFormat::Form)),
            "json" => Ok(Some(BodyFormat::Json)),
            "binary" => Ok(Some(BodyFormat::Binary)),
            "multipart" => Ok(Some(BodyFormat::Multipart)),
            other => Err(self.at(
                &s.referenced,
                format!("body_format `{other}` is not `form`, `json`, `binary` or `multipart`"),
            )),
        }
    }

    fn operation(&self, rest: RawRest, what: &str) -> Result<Operation, SpecError> {
        let method = http::Method::from_bytes(rest.method.value.to_ascii_uppercase().as_bytes())
            .map_err(|_| {
                self.at(
                    &rest.method.referenced,
                    format!("{what}: `{}` is not an HTTP method", rest.method.value),
                )
            })?;
        let url = self.template(&rest.url, Scope::Request, &format!("{what}.url"))?;
        let query = rest
            .params
            .iter()
            .map(|(k, v)| Ok((k.clone(), self.value_template(v, &format!("{what}.params.{k}"))?)))
            .collect::<Result<Vec<_>, SpecError>>()?;
        let body = rest
            .body
            .as_ref()
            .map(|b| self.value_template(b, &format!("{what}.body")))
            .transpose()?;
        let headers = rest
            .headers
            .iter()
            .map(|(k, v)| self.header_template(k, v, &format!("{what}.headers.{k}")))
            .collect::<Result<Vec<_>, _>>()?;
        let body_format = self.body_format(rest.body_format.as_ref())?;
        let mut response = ResponseSpec::default();
        if let Some(r) = rest.response {
            response.root = r
                .root
                .as_ref()
                .map(|s| self.expr(s, Bare::Fields, &format!("{what}.response.root")))
                .transpose()?;
            for (k, v) in &r.context {
                response.context.push((
                    k.clone(),
                    self.expr(v, Bare::Fields, &format!("{what}.response.context.{k}"))?,
                ));
            }
            response.mapping = r
                .mapping
                .as_ref()
                .map(|m| self.mapping(m, &format!("{what}.response.mapping")))
                .transpose()?;
            response.not_found = r
                .not_found
                .as_ref()
                .map(|s| self.template(s, Scope::Response, &format!("{what}.response.not_found")))
                .transpose()?;
            for (i, w) in r.warnings.iter().enumerate() {
                let at = format!("{what}.response.warnings[{i}]");
                response.warnings.push(CondWarning {
                    when: w
                        .when
                        .as_ref()
                        .map(|s| self.expr(s, Bare::Fields, &format!("{at}.when")))
                        .transpose()?,
                    message: self.template(
                        &w.message,
                        Scope::Response,
                        &format!("{at}.message"),
                    )?,
                });
            }
            if let Some(p) = r.page {
                response.page = Some(PageSpec {
                    next_cursor: p
                        .next_cursor
                        .as_ref()
                        .map(|s| {
                            self.expr(s, Bare::Fields, &format!("{what}.response.page.next_cursor"))
                        })
                        .transpose()?,
                    has_more: p
                        .has_more
                        .as_ref()
                        .map(|s| {
                            self.expr(s, Bare::Fields, &format!("{what}.response.page.has_more"))
                        })
                        .transpose()?,
                });
            }
        }
        response.shape = Shape::of(&response);
        Ok(Operation { method, url, query, body, headers, body_format, response })
    }

    fn status_key(&self, k: &KeyString, loc: Option<&Location>) -> Result<u16, SpecError> {
        k.0.parse::<u16>().ok().filter(|s| (100..600).contains(s)).ok_or_else(|| match loc {
            Some(l) => self.at(l, format!("`{}` is not an HTTP status", k.0)),
            None => SpecError::new(self.source, 0, 0, format!("`{}` is not an HTTP status", k.0)),
        })
    }

    fn probe(
        &self,
        rest: RawRest,
        on_error: IndexMap<KeyString, String>,
        what: &str,
    ) -> Result<Probe, SpecError> {
        let loc = rest.url.referenced;
        let op = self.operation(rest, what)?;
        let on_error = on_error
            .into_iter()
            .map(|(k, v)| Ok((self.status_key(&k, Some(&loc))?, v)))
            .collect::<Result<_, SpecError>>()?;
        Ok(Probe { op, on_error })
    }

    fn class(&self, s: &Spanned<String>) -> Result<ErrorClass, SpecError> {
        class_from_name(&s.value).ok_or_else(|| {
            let known: Vec<&str> = ErrorClass::KNOWN.iter().map(ErrorClass::as_str).collect();
            self.at(
                &s.referenced,
                format!("unknown error class `{}` (known: {})", s.value, known.join(", ")),
            )
        })
    }

    fn param(&self, name: &str, p: RawParam) -> Result<ParamSpec, SpecError> {
        let kind = match &p.kind {
            None => ParamType::String,
            Some(k) => ParamType::from_name(&k.value).ok_or_else(|| {
                self.at(&k.referenced, format!("param `{name}`: unknown type `{}` (string, number, boolean, array, object, enum)", k.value))
            })?,
        };
        let loc = p.kind.as_ref().map(|k| k.referenced);
        if kind == ParamType::Enum && p.values.is_empty() {
            return Err(self.at_opt(loc, format!("param `{name}`: an enum needs `values`")));
        }
        let items =
            p.items.map(|i| self.param(&format!("{name}[]"), *i).map(Box::new)).transpose()?;
        if !p.properties.is_empty() && kind != ParamType::Object {
            return Err(
                self.at_opt(loc, format!("param `{name}`: `properties` needs `type: object`"))
            );
        }
        let mut properties = IndexMap::with_capacity(p.properties.len());
        for (field, raw) in p.properties {
            let spec = self.param(&format!("{name}.{field}"), raw)?;
            properties.insert(field, spec);
        }
        let pattern = match &p.pattern {
            None => None,
            Some(s) => Some(Pattern::new(&s.value).map_err(|e| {
                self.at(&s.referenced, format!("param `{name}`: bad `pattern`: {e}"))
            })?),
        };
        let spec = ParamSpec {
            kind,
            required: p.required,
            default: p.default,
            min: p.min,
            max: p.max,
            max_length: p.max_length,
            min_length: p.min_length,
            min_items: p.min_items,
            max_items: p.max_items,
            pattern,
            max_bytes: p.max_bytes,
            values: p.values,
            items,
            properties,
            description: p.description,
        };
        if let Some(d) = &spec.default
            && let Err(e) = spec.check(name, d.clone())
        {
            let msg = format!("param `{name}`: the default breaks the declaration ({})", e.message);
            return Err(self.at_opt(loc, msg));
        }
        Ok(spec)
    }

    fn error_rule(&self, r: RawErrorRule) -> Result<ErrorRule, SpecError> {
        let status = match &r.status {
            None => StatusMatch::AnyError,
            Some(n) => {
                let bad = || {
                    self.at(
                        &n.referenced,
                        "`status` must be a status, a list of statuses, or a class like `4xx`",
                    )
                };
                match &n.value {
                    Node::Number(num) => StatusMatch::Codes(vec![
                        num.as_u64().and_then(|s| u16::try_from(s).ok()).ok_or_else(bad)?,
                    ]),
                    Node::Seq(items) => StatusMatch::Codes(
                        items
                            .iter()
                            .map(|i| match &i.value {
                                Node::Number(num) => {
                                    num.as_u64().and_then(|s| u16::try_from(s).ok()).ok_or_else(bad)
                                }
                                _ => Err(bad()),
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    Node::Str(s) if s.len() == 3 && s.ends_with("xx") => {
                        StatusMatch::Class(s[..1].parse::<u16>().map_err(|_| bad())?)
                    }
                    Node::Str(s) => StatusMatch::Codes(vec![s.parse::<u16>().map_err(|_| bad())?]),
                    _ => return Err(bad()),
                }
            }
        };
        let json = r
            .json
            .into_iter()
            .map(|(k, v)| {
                let path = k.split('.').map(str::to_owned).collect();
                let wanted = match v {
                    Value::Array(a) => a,
                    other => vec![other],
                };
                (path, wanted)
            })
            .collect();
        let body_contains = match r.body_contains {
            None => Vec::new(),
            Some(Value::Array(a)) => a.iter().map(crate::expr::stringify).collect(),
            Some(v) => vec![crate::expr::stringify(&v)],
        };
        Ok(ErrorRule {
            status,
            json,
            body_contains,
            content_type: r.content_type,
            class: self.class(&r.class)?,
            message: r.message,
            url: r.url.map(|u| u.split('.').map(str::to_owned).collect()),
            retry_after_header: r.retry_after_header,
            retry_after: r.retry_after,
        })
    }

    fn compile(
        &self,
        raw: RawConnector,
        extra: IndexMap<String, Value>,
        readme: String,
    ) -> Result<Connector, SpecError> {
        if raw.id.value.trim().is_empty() {
            return Err(self.at(&raw.id.referenced, "`id` is empty"));
        }
        let mut origins = BTreeSet::new();

        // api
        let mut api = Api::default();
        if let Some(a) = raw.api {
            if let Some(b) = &a.base_url {
                let url = Url::parse(&b.value)
                    .map_err(|e| self.at(&b.referenced, format!("api.base_url: {e}")))?;
                origins.insert(origin_of(&url));
                api.base_url = Some(url);
            }
            api.headers = a
                .headers
                .iter()
                .map(|(k, v)| self.header_template(k, v, &format!("api.headers.{k}")))
                .collect::<Result<_, _>>()?;
            for h in a.response_hooks {
                let target = h.store_as.value.as_str();
                let store_as = if let Some(c) = target.strip_prefix("auth.cookies.") {
                    StoreTarget::Cookie(c.to_owned())
                } else if target == "auth.access_token" {
                    StoreTarget::AccessToken
                } else if let Some(x) = target
                    .strip_prefix("auth.")
                    .filter(|x| !x.is_empty() && !x.contains('.') && *x != "cookies")
                {
                    StoreTarget::Extra(x.to_owned())
                } else {
                    return Err(self.at(
                        &h.store_as.referenced,
                        format!("store_as `{target}` must be `auth.<name>`, `auth.cookies.<name>` or `auth.access_token`"),
                    ));
                };
                api.response_hooks
                    .push(ResponseHook { header: h.header.to_ascii_lowercase(), store_as });
            }
            api.body_format = self.body_format(a.body_format.as_ref())?.unwrap_or_default();
        }

        // auth
        let auth = match raw.auth {
            None => Auth {
                kind: AuthType::None,
                domain: None,
                cookies: Vec::new(),
                connect: None,
                validate: None,
            },
            Some(a) => {
                let kind = match &a.kind {
                    None => AuthType::None,
                    Some(k) => match k.value.as_str() {
                        "cookies" => AuthType::Cookies,
                        "bearer" | "oauth" | "token" => AuthType::Bearer,
                        "none" => AuthType::None,
                        other => {
                            return Err(self.at(
                                &k.referenced,
                                format!("auth.type `{other}` is not cookies, bearer or none"),
                            ));
                        }
                    },
                };
                let validate = a
                    .validate
                    .map(|v| self.probe(v.rest, v.on_error, "auth.validate"))
                    .transpose()?;
                Auth { kind, domain: a.domain, cookies: a.cookies, connect: a.connect, validate }
            }
        };

        // session
        let mut session = SessionSpec::default();
        let mut detection = ErrorDetection::default();
        if let Some(s) = raw.session {
            if let Some(k) = s.keep_alive {
                session.keep_alive = Some(KeepAlive {
                    interval: k.interval,
                    probe: self.probe(k.rest, k.on_error, "session.keep_alive")?,
                });
            }
            if let Some(d) = s.error_detection {
                for (k, v) in &d.status_codes {
                    detection
                        .status_codes
                        .push((self.status_key(k, Some(&v.referenced))?, self.class(v)?));
                }
                for p in &d.response_patterns {
                    detection.response_patterns.push((p.pattern.clone(), self.class(&p.error)?));
                }
            }
        }

        // actions
        let mut actions = IndexMap::new();
        for (name, a) in raw.actions {
            let what = format!("actions.{name}");
            let mut params = IndexMap::new();
            for (pname, p) in a.params {
                let spec = self.param(&pname, p)?;
                params.insert(pname, spec);
            }
            let op = self.operation(a.rest, &what)?;
            actions.insert(
                name.clone(),
                Action {
                    name,
                    label: a.label,
                    description: a.description,
                    readonly: a.readonly,
                    params,
                    warnings: a.warnings,
                    op,
                },
            );
        }
        let ops = auth
            .validate
            .iter()
            .map(|p| &p.op)
            .chain(session.keep_alive.iter().map(|k| &k.probe.op))
            .chain(actions.values().map(|a| &a.op));
        for op in ops {
            if let Some(crate::expr::Part::Text(t)) = op.url.parts().first()
                && let Ok(u) = Url::parse(t.split(['{']).next().unwrap_or(t))
                && u.has_host()
            {
                origins.insert(origin_of(&u));
            }
        }

        let rules =
            raw.errors.into_iter().map(|r| self.error_rule(r)).collect::<Result<Vec<_>, _>>()?;

        let capabilities = match raw.capabilities {
            None => None,
            Some(c) => {
                for (cap, c2) in &c.value.actions {
                    let target = c2.action.as_deref().unwrap_or(cap);
                    if c2.supported && !actions.contains_key(target) {
                        return Err(self.at(
                            &c.referenced,
                            format!("capability `{cap}` refers to unknown action `{target}`"),
                        ));
                    }
                }
                Some(c.value)
            }
        };
        let mut rate_limits = IndexMap::new();
        for (name, r) in raw.rate_limits {
            if let AppliesTo::Actions(list) = &r.value.applies_to
                && let Some(bad) = list.iter().find(|a| !actions.contains_key(*a))
            {
                return Err(self.at(
                    &r.referenced,
                    format!("rate limit `{name}` applies to unknown action `{bad}`"),
                ));
            }
            rate_limits.insert(name, r.value);
        }

        Ok(Connector {
            id: raw.id.value,
            name: raw.name,
            description: raw.description,
            auth,
            session,
            api,
            instructions: raw.instructions,
            readme,
            capabilities,
            pacing: raw.pacing,
            rate_limits,
            limits: raw.limits,
            extra,
            actions,
            classifier: Classifier { rules, detection },
            origins,
        })
    }
}

/// `scheme://host[:port]` with the default port made explicit.
pub(crate) fn origin_of(u: &Url) -> String {
    format!(
        "{}://{}:{}",
        u.scheme(),
        u.host_str().unwrap_or(""),
        u.port_or_known_default().unwrap_or(0)
    )
}

fn strip_location_suffix(s: &str) -> String {
    let s = s.strip_prefix("error: ").unwrap_or(s);
    let s = match s.find(": ") {
        Some(i) if s.starts_with("line ") => &s[i + 2..],
        _ => s,
    };
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}
