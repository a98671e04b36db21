//! Origin rewriting for running a connector's browser steps against another
//! server (the sandbox).
//!
//! Connector specs are written against the real site (`from`, e.g.
//! `https://www.instagram.com`). With a base-URL override (`to`, e.g.
//! `http://127.0.0.1:8765`, optionally with a path prefix), the runner
//! rewrites consistently:
//!
//! - **`goto` URLs**: a URL whose origin equals `from` (host compared
//!   case-insensitively, followed by the end, `/`, `?` or `#`) becomes `to`
//!   followed by the rest of the URL (path, query, fragment). Other URLs are
//!   left alone.
//! - **`url_matches` patterns**: a pattern that starts (after an optional
//!   `^`) with `from`, written either literally (`https://www.instagram.com/$`)
//!   or regex-escaped (`https://www\.instagram\.com/`), gets that prefix
//!   replaced by the regex-escaped `to`. Patterns that do not start with the
//!   origin (`/direct/`, `inbox`) match the path anywhere and are left alone.
//!
//! So `https://www.instagram.com/$` becomes `http://127\.0\.0\.1:8765/$`, which
//! matches exactly the sandbox's root page as the original matched the real one.

use url::Url;

use crate::error::AuthError;

/// Rewrites spec URLs and URL patterns from one origin to a base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRewriter {
    from: String,
    to: String,
}

impl UrlRewriter {
    /// The origin connector browser steps are written against.
    pub const INSTAGRAM_WEB: &'static str = "https://www.instagram.com";

    /// A rewriter from the origin of `from` to `to` (scheme, host, port and
    /// any path prefix; a trailing `/` is dropped).
    ///
    /// # Errors
    /// [`AuthError::Spec`] when either is not an absolute http(s) URL.
    pub fn new(from: &str, to: &str) -> Result<Self, AuthError> {
        let f =
            Url::parse(from).map_err(|e| AuthError::Spec(format!("bad origin `{from}`: {e}")))?;
        let t = Url::parse(to).map_err(|e| AuthError::Spec(format!("bad base URL `{to}`: {e}")))?;
        for u in [&f, &t] {
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                return Err(AuthError::Spec(format!("`{u}` is not an http(s) URL")));
            }
        }
        let from = f.origin().ascii_serialization();
        let to = t.as_str().trim_end_matches('/').to_owned();
        Ok(Self { from, to })
    }

    /// The origin being replaced.
    #[must_use]
    pub fn from_origin(&self) -> &str {
        &self.from
    }

    /// The base URL replacing it.
    #[must_use]
    pub fn to_base(&self) -> &str {
        &self.to
    }

    /// Rewrites a URL whose origin is `from`; other URLs are returned unchanged.
    #[must_use]
    pub fn url(&self, url: &str) -> String {
        match strip_prefix_ci(url, &self.from) {
            Some(rest) if rest.is_empty() || rest.starts_with(['/', '?', '#']) => {
                format!("{}{rest}", self.to)
            }
            _ => url.to_owned(),
        }
    }

    /// Rewrites a `url_matches` regular expression that starts with `from`.
    #[must_use]
    pub fn pattern(&self, pattern: &str) -> String {
        let (anchor, body) = match pattern.strip_prefix('^') {
            Some(b) => ("^", b),
            None => ("", pattern),
        };
        let escaped = regex::escape(&self.from);
        let rest = strip_prefix_ci(body, &escaped).or_else(|| strip_prefix_ci(body, &self.from));
        match rest {
            Some(rest) => format!("{anchor}{}{rest}", regex::escape(&self.to)),
            None => pattern.to_owned(),
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_urls_and_patterns_consistently() {
        let r = UrlRewriter::new(UrlRewriter::INSTAGRAM_WEB, "http://127.0.0.1:8765/").unwrap();
        assert_eq!(
            r.url("https://www.instagram.com/accounts/login/"),
            "http://127.0.0.1:8765/accounts/login/"
        );
        assert_eq!(r.url("https://WWW.instagram.com"), "http://127.0.0.1:8765");
        assert_eq!(r.url("https://www.instagram.com?x=1"), "http://127.0.0.1:8765?x=1");
        assert_eq!(
            r.url("https://www.instagram.com.evil.test/"),
            "https://www.instagram.com.evil.test/"
        );
        assert_eq!(r.url("https://i.instagram.com/api/"), "https://i.instagram.com/api/");

        let p = r.pattern("https://www.instagram.com/$");
        assert_eq!(p, r"http://127\.0\.0\.1:8765/$");
        let re = regex::Regex::new(&p).unwrap();
        assert!(re.is_match("http://127.0.0.1:8765/"));
        assert!(!re.is_match("http://127.0.0.1:8765/direct/inbox/"));
        assert_eq!(
            r.pattern(r"^https://www\.instagram\.com/direct/"),
            r"^http://127\.0\.0\.1:8765/direct/"
        );
        assert_eq!(r.pattern("/direct/"), "/direct/");
    }

    #[test]
    fn keeps_a_path_prefix() {
        let r = UrlRewriter::new("https://www.instagram.com/", "http://localhost:9/ig").unwrap();
        assert_eq!(r.url("https://www.instagram.com/direct/"), "http://localhost:9/ig/direct/");
        assert!(
            regex::Regex::new(&r.pattern("https://www.instagram.com/direct/"))
                .unwrap()
                .is_match("http://localhost:9/ig/direct/inbox/")
        );
        assert!(UrlRewriter::new("ftp://x", "http://y").is_err());
        assert!(UrlRewriter::new("https://x", "not a url").is_err());
    }
}
