//! Connector-spec engine: the connector file format, the expression language,
//! and the executor over a transport trait.
//!
//! A connector is one file: YAML front matter (auth, session, api, actions,
//! and igdm's extension keys) followed by a Markdown readme. [`Connector::load`]
//! parses and checks it (every expression and template is compiled once, and
//! errors carry the file's line and column); an [`Executor`] turns an action
//! and its parameters into an [`HttpRequest`], sends it through a
//! [`Transport`], updates the [`Session`] from the response, classifies
//! errors into [`igdm_model::ApiError`] and maps the body into JSON.
//!
//! The language is documented in `docs/spec-language.md`.

#![warn(clippy::unwrap_used)]

mod bigint;
mod classify;
#[cfg(test)]
mod differential;
mod error;
mod exec;
pub mod expr;
mod extensions;
mod mapping;
mod params;
pub mod record;
mod session;
mod shape;
mod spec;
mod transport;
mod yaml;

pub use classify::{
    Classifier, ErrorDetection, ErrorRule, StatusMatch, class_from_name, parse_retry_after,
};
pub use error::{ExecError, SpecError};
pub use exec::{ActionOutput, Executor, PageInfo};
pub use extensions::{
    AppliesTo, Capabilities, Capability, Limits, Pacing, RateLimit, parse_duration,
};
pub use params::{ParamSpec, ParamType, Pattern, params_schema, validate_params};
pub use session::Session;
pub use spec::{
    Action, Api, Auth, AuthType, BodyFormat, Connector, KeepAlive, Probe, ResponseHook,
    SessionSpec, StoreTarget,
};
pub use transport::{HttpRequest, HttpResponse, ReqwestTransport, Transport, TransportError};
/// The URL type of [`Executor::with_base_url`] and [`HttpRequest::url`].
pub use url::Url;
