//! The transport trait the executor sends through, and its reqwest implementation.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, Method};
use url::Url;

/// A request ready to send.
#[derive(Clone)]
pub struct HttpRequest {
    /// HTTP method.
    pub method: Method,
    /// Absolute URL, query included.
    pub url: Url,
    /// Headers, auth included.
    pub headers: HeaderMap,
    /// The body (empty for none).
    pub body: Bytes,
}

impl HttpRequest {
    /// The headers as `(name, value)` text with `Cookie` and `Authorization`
    /// values replaced by `<redacted>`.
    #[must_use]
    pub fn redacted_headers(&self) -> Vec<(String, String)> {
        redact(&self.headers)
    }

    /// The form fields of an `application/x-www-form-urlencoded` body.
    #[must_use]
    pub fn form_fields(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

/// Headers whose values are credentials.
pub(crate) fn is_secret_header(name: &str) -> bool {
    [
        "cookie",
        "authorization",
        "x-csrftoken",
        "set-cookie",
        "ig-set-authorization",
        "proxy-authorization",
    ]
    .iter()
    .any(|s| name.eq_ignore_ascii_case(s))
}

/// Headers as text, credential values replaced by `<redacted>`.
fn redact(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            let value = if is_secret_header(k.as_str()) {
                "<redacted>".to_owned()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (k.as_str().to_owned(), value)
        })
        .collect()
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &redact(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("headers", &self.redacted_headers())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A response as received. `Debug` redacts credential-bearing headers
/// (`Set-Cookie`, `ig-set-authorization`) and shows only the body's length.
#[derive(Clone)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers (multi-valued, `Set-Cookie` included).
    pub headers: HeaderMap,
    /// The decoded body (gzip already undone).
    pub body: Bytes,
}

impl HttpResponse {
    /// A header value as text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A transport failure. The two variants matter to callers reconciling writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The request never left (bad URL, DNS, connection refused, TLS failure).
    /// Retrying cannot duplicate anything.
    #[error("request not sent: {message}")]
    NotSent {
        /// What went wrong.
        message: String,
    },
    /// The request may have reached the server but no complete answer came
    /// back (timeout after sending, connection reset mid-response). A write
    /// must be reconciled before it is retried.
    #[error("outcome unknown: {message}")]
    OutcomeUnknown {
        /// What went wrong.
        message: String,
    },
}

/// Sends requests. Implementations may add cross-cutting behaviour (rate
/// limits, retries, recording) by wrapping another transport.
pub trait Transport: Send + Sync {
    /// Sends one request and returns the response, whatever its status.
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>>;
}

/// A [`Transport`] over reqwest: gzip decoding on, redirects never followed
/// (a login redirect on a JSON endpoint must stay visible), a request timeout.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// A transport with a 30-second timeout.
    pub fn new() -> Result<Self, TransportError> {
        Self::with_timeout(Duration::from_secs(30))
    }

    /// A transport with the given request timeout.
    pub fn with_timeout(timeout: Duration) -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            .gzip(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| TransportError::NotSent {
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self { client })
    }

    /// Wraps an existing client (it should not follow redirects).
    #[must_use]
    pub fn from_client(client: reqwest::Client) -> Self {
        Self { client }
    }
}

fn classify_reqwest(e: &reqwest::Error) -> TransportError {
    let message = e.to_string();
    if e.is_builder() || e.is_connect() {
        TransportError::NotSent { message }
    } else {
        TransportError::OutcomeUnknown { message }
    }
}

impl Transport for ReqwestTransport {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let mut headers = req.headers;
            // The client decodes only what it advertises; let it set Accept-Encoding.
            headers.remove(http::header::ACCEPT_ENCODING);
            let mut builder = self.client.request(req.method, req.url.as_str()).headers(headers);
            if !req.body.is_empty() {
                builder = builder.body(req.body);
            }
            let resp = builder.send().await.map_err(|e| classify_reqwest(&e))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp
                .bytes()
                .await
                .map_err(|e| TransportError::OutcomeUnknown { message: e.to_string() })?;
            Ok(HttpResponse { status, headers, body })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_credentials() {
        let mut headers = HeaderMap::new();
        headers.insert("set-cookie", http::HeaderValue::from_static("sessionid=SECRET1; Path=/"));
        headers
            .insert("ig-set-authorization", http::HeaderValue::from_static("Bearer IGT:2:SECRET2"));
        headers.insert("x-ig-set-www-claim", http::HeaderValue::from_static("hmac.claim"));
        let resp = HttpResponse {
            status: 200,
            headers: headers.clone(),
            body: Bytes::from_static(b"{\"token\":\"SECRET3\"}"),
        };
        let shown = format!("{resp:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("hmac.claim"));
        let mut req_headers = HeaderMap::new();
        req_headers.insert("cookie", http::HeaderValue::from_static("sessionid=SECRET4"));
        req_headers.insert("authorization", http::HeaderValue::from_static("Bearer SECRET5"));
        let req = HttpRequest {
            method: Method::POST,
            url: Url::parse("https://i.instagram.com/api/v1/x/").unwrap(),
            headers: req_headers,
            body: Bytes::from_static(b"text=hello"),
        };
        let shown = format!("{req:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}
