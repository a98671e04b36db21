//! The parts of a connector file this crate needs: the `auth` block (cookie
//! names and domain, the browser `connect` steps, the `validate` probe) and
//! `session.keep_alive`. The connector engine (igdm-spec) keeps `auth.connect`
//! as raw JSON; this module reads the same front matter independently so
//! `igdm login --spec FILE` works on any connector file.

use serde_json::Value;

use crate::browser::{ConnectSpec, UrlRewriter};
use crate::error::AuthError;
use crate::session::KeepAliveConfig;

/// A connector's authentication settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The connector id (`instagram-web`).
    pub id: Option<String>,
    /// `auth.type`: `cookies`, `oauth`, `token`.
    pub kind: String,
    /// `auth.domain` (cookie domain).
    pub domain: String,
    /// `auth.cookies`: the required cookie names.
    pub cookies: Vec<String>,
    /// `auth.connect`'s browser steps, when present.
    pub connect: Option<ConnectSpec>,
    /// `auth.validate`, raw (run by the spec executor).
    pub validate: Option<Value>,
    /// `session.keep_alive`, when present.
    pub keep_alive: Option<KeepAliveConfig>,
    /// The origin browser steps are written against (`website`, else `https://www.instagram.com`).
    pub website: String,
}

/// Splits `---\n<yaml>\n---` front matter from a connector file; the whole
/// text is YAML when there is no front matter.
#[must_use]
pub fn front_matter(text: &str) -> &str {
    let t = text.trim_start_matches('\u{feff}');
    let Some(rest) = t.strip_prefix("---\n").or_else(|| t.strip_prefix("---\r\n")) else {
        return t;
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return &rest[..offset];
        }
        offset += line.len();
    }
    rest
}

impl AuthConfig {
    /// Reads a connector file's text (front matter + readme, or plain YAML).
    ///
    /// # Errors
    /// [`AuthError::Spec`] with the YAML error or what is missing.
    pub fn from_connector_text(text: &str) -> Result<Self, AuthError> {
        let doc: Value = serde_saphyr::from_str(front_matter(text))
            .map_err(|e| AuthError::Spec(format!("connector YAML: {e}")))?;
        let auth = doc
            .get("auth")
            .ok_or_else(|| AuthError::Spec("the connector has no `auth` block".into()))?;
        let website = doc.get("website").and_then(Value::as_str).map(str::to_owned);
        let mut cfg = Self::from_auth_value(auth, doc.get("session"), website)?;
        cfg.id = doc.get("id").and_then(Value::as_str).map(str::to_owned);
        Ok(cfg)
    }

    /// Reads an `auth` block (and an optional `session` block).
    ///
    /// # Errors
    /// [`AuthError::Spec`] naming the problem.
    pub fn from_auth_value(
        auth: &Value,
        session: Option<&Value>,
        website: Option<String>,
    ) -> Result<Self, AuthError> {
        let kind = auth.get("type").and_then(Value::as_str).unwrap_or("cookies").to_owned();
        let domain =
            auth.get("domain").and_then(Value::as_str).unwrap_or("instagram.com").to_owned();
        let cookies = match auth.get("cookies") {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|c| {
                    c.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| AuthError::Spec("auth.cookies must list names".into()))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(AuthError::Spec("auth.cookies must be a list of cookie names".into()));
            }
        };
        let connect = auth.get("connect").map(ConnectSpec::from_connect).transpose()?;
        let keep_alive = session.map(KeepAliveConfig::from_session_block).transpose()?.flatten();
        Ok(Self {
            id: None,
            kind,
            domain,
            cookies,
            connect,
            validate: auth.get("validate").cloned(),
            keep_alive,
            website: website.unwrap_or_else(|| UrlRewriter::INSTAGRAM_WEB.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "---\nid: instagram\nwebsite: https://www.instagram.com\nauth:\n  type: cookies\n  domain: instagram.com\n  cookies:\n    - sessionid\n    - csrftoken\n  connect:\n    playwright:\n      launch:\n        headless: false\n      steps:\n        - goto: \"https://www.instagram.com/accounts/login/\"\n        - close\n  validate:\n    rest:\n      method: GET\n      url: \"https://i.instagram.com/api/v1/accounts/current_user/\"\nsession:\n  keep_alive:\n    interval: \"4h\"\n---\n\n# Instagram\n\n---\nmore\n";

    #[test]
    fn reads_front_matter_auth_and_session() {
        let c = AuthConfig::from_connector_text(SEED).unwrap();
        assert_eq!(c.id.as_deref(), Some("instagram"));
        assert_eq!(c.cookies, vec!["sessionid", "csrftoken"]);
        assert_eq!(c.connect.as_ref().unwrap().steps.len(), 2);
        assert_eq!(c.connect.as_ref().unwrap().headless, Some(false));
        assert_eq!(c.keep_alive.unwrap().interval, std::time::Duration::from_secs(14_400));
        assert!(c.validate.is_some());
        assert!(
            AuthConfig::from_connector_text("---\nid: x\n---\n")
                .unwrap_err()
                .to_string()
                .contains("no `auth`")
        );
        assert!(AuthConfig::from_connector_text("auth: [").is_err());
    }
}
