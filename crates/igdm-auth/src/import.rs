//! Importing cookies a user copied from a browser.
//!
//! Accepted formats (detected automatically):
//! - **JSON**: an object `{"sessionid": "…", …}` (values may also be
//!   `{"value": "…"}`), or a list of `{name, value, domain}` objects as
//!   browser extensions export them (optionally under a `"cookies"` key);
//! - **Netscape `cookies.txt`**: tab-separated `domain, flag, path, secure,
//!   expiry, name, value` lines (`#HttpOnly_` prefixes are understood);
//! - **a `Cookie:` header** line (`Cookie: a=1; b=2`, the prefix optional);
//! - **a copied cURL command**: `-H 'cookie: …'` / `--header` and `-b '…'` / `--cookie`.
//!
//! Cookies whose domain is known and does not belong to the connector's
//! domain are dropped, so an export of a whole browser profile works.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde_json::Value;

use crate::credential::CookieCredential;
use crate::error::AuthError;

/// The detected input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieFormat {
    /// A JSON object or list.
    Json,
    /// A Netscape `cookies.txt`.
    Netscape,
    /// A `Cookie:` header.
    Header,
    /// A cURL command line.
    Curl,
}

struct Raw {
    name: String,
    value: String,
    domain: Option<String>,
}

/// Parses cookies from any supported format, keeping those that belong to
/// `domain` (suffix match; cookies without a domain are kept).
///
/// # Errors
/// [`AuthError::CookieFormat`] when nothing can be read (the message names
/// the format tried, never a value).
pub fn parse_cookies(
    input: &str,
    domain: &str,
) -> Result<(CookieFormat, BTreeMap<String, SecretString>), AuthError> {
    let text = input.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(AuthError::CookieFormat("the input is empty".into()));
    }
    let (format, raw) = if text.starts_with('{') || text.starts_with('[') {
        (CookieFormat::Json, parse_json(text)?)
    } else if text.starts_with("curl ") || text.starts_with("curl\t") {
        (CookieFormat::Curl, parse_curl(text)?)
    } else if looks_netscape(text) {
        (CookieFormat::Netscape, parse_netscape(text)?)
    } else {
        (CookieFormat::Header, parse_header(text)?)
    };
    let domain = domain.trim_start_matches('.').to_ascii_lowercase();
    let mut out = BTreeMap::new();
    for c in raw {
        let keep = c.domain.as_deref().is_none_or(|d| {
            let d = d.trim_start_matches('.').to_ascii_lowercase();
            d.is_empty() || domain.is_empty() || d == domain || d.ends_with(&format!(".{domain}"))
        });
        if keep && !c.name.is_empty() {
            out.insert(c.name, SecretString::from(c.value));
        }
    }
    if out.is_empty() {
        return Err(AuthError::CookieFormat(format!(
            "no cookies for {domain} found in the {format:?} input"
        )));
    }
    tracing::debug!(?format, count = out.len(), "cookies parsed");
    Ok((format, out))
}

/// Parses cookies and builds a credential, failing when a `required` cookie is missing.
///
/// # Errors
/// [`AuthError::MissingCookies`] naming every missing cookie, or a format error.
pub fn import_cookies(
    input: &str,
    domain: &str,
    required: &[String],
    label: Option<String>,
) -> Result<CookieCredential, AuthError> {
    let (_, cookies) = parse_cookies(input, domain)?;
    let cred = CookieCredential::new(cookies, domain, label);
    let missing = cred.missing(required.iter().map(String::as_str));
    if !missing.is_empty() {
        return Err(AuthError::MissingCookies(missing));
    }
    Ok(cred)
}

fn parse_json(text: &str) -> Result<Vec<Raw>, AuthError> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        AuthError::CookieFormat(format!("invalid JSON at line {}, column {}", e.line(), e.column()))
    })?;
    let v = match v {
        Value::Object(mut m) if m.get("cookies").is_some_and(|c| c.is_array() || c.is_object()) => {
            m.remove("cookies").unwrap_or(Value::Null)
        }
        other => other,
    };
    match v {
        Value::Object(m) => Ok(m
            .into_iter()
            .filter_map(|(name, val)| {
                let value = match val {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Object(o) => o.get("value").and_then(Value::as_str)?.to_owned(),
                    _ => return None,
                };
                Some(Raw { name, value, domain: None })
            })
            .collect()),
        Value::Array(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let name = item.get("name").and_then(Value::as_str);
                let value = item.get("value").map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                });
                let (Some(name), Some(Some(value))) = (name, value) else {
                    return Err(AuthError::CookieFormat(format!(
                        "item {i} of the JSON list has no string name and value"
                    )));
                };
                out.push(Raw {
                    name: name.to_owned(),
                    value,
                    domain: item.get("domain").and_then(Value::as_str).map(str::to_owned),
                });
            }
            Ok(out)
        }
        _ => Err(AuthError::CookieFormat("JSON cookies must be an object or a list".into())),
    }
}

fn looks_netscape(text: &str) -> bool {
    text.starts_with("# Netscape HTTP Cookie File")
        || text.starts_with("# HTTP Cookie File")
        || text.lines().any(|l| !l.starts_with("# ") && l.split('\t').count() == 7)
}

fn parse_netscape(text: &str) -> Result<Vec<Raw>, AuthError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let line = line.strip_prefix("#HttpOnly_").unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 7 {
            continue;
        }
        out.push(Raw {
            name: f[5].to_owned(),
            value: f[6].to_owned(),
            domain: Some(f[0].to_owned()),
        });
    }
    if out.is_empty() {
        return Err(AuthError::CookieFormat("no cookie lines in the cookies.txt input".into()));
    }
    Ok(out)
}

fn split_pairs(header: &str) -> Vec<Raw> {
    header
        .split(';')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| Raw {
                name: k.to_owned(),
                value: v.trim().trim_matches('"').to_owned(),
                domain: None,
            })
        })
        .collect()
}

fn parse_header(text: &str) -> Result<Vec<Raw>, AuthError> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    let body = match line.split_once(':') {
        Some((k, rest)) if k.trim().eq_ignore_ascii_case("cookie") => rest,
        _ => line,
    };
    let pairs = split_pairs(body);
    if pairs.is_empty() {
        return Err(AuthError::CookieFormat(
            "not JSON, cookies.txt, a cURL command or a `name=value; …` Cookie header".into(),
        ));
    }
    Ok(pairs)
}

/// Splits a shell command line into words: single quotes, double quotes
/// with backslash escapes, `$'…'` ANSI-C quotes, and `\`-newline continuations.
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\n') => {}
                Some('\r') if chars.peek() == Some(&'\n') => {
                    chars.next();
                }
                Some('\r') => {}
                Some(n) => {
                    cur.push(n);
                    in_word = true;
                }
                None => {}
            },
            '\'' => {
                in_word = true;
                for n in chars.by_ref() {
                    if n == '\'' {
                        break;
                    }
                    cur.push(n);
                }
            }
            '$' if chars.peek() == Some(&'\'') => {
                chars.next();
                in_word = true;
                while let Some(n) = chars.next() {
                    match n {
                        '\'' => break,
                        '\\' => match chars.next() {
                            Some('n') => cur.push('\n'),
                            Some('t') => cur.push('\t'),
                            Some(o) => cur.push(o),
                            None => {}
                        },
                        o => cur.push(o),
                    }
                }
            }
            '"' => {
                in_word = true;
                while let Some(n) = chars.next() {
                    match n {
                        '"' => break,
                        '\\' => {
                            if let Some(o) = chars.next() {
                                if !matches!(o, '"' | '\\' | '$' | '`') {
                                    cur.push('\\');
                                }
                                cur.push(o);
                            }
                        }
                        o => cur.push(o),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

fn parse_curl(text: &str) -> Result<Vec<Raw>, AuthError> {
    let words = shell_words(text);
    let mut out = Vec::new();
    let mut it = words.iter().peekable();
    while let Some(w) = it.next() {
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (w.as_str(), None),
        };
        match flag {
            "-H" | "--header" => {
                let Some(v) = inline.or_else(|| it.next().cloned()) else { continue };
                if let Some((k, rest)) = v.split_once(':')
                    && k.trim().eq_ignore_ascii_case("cookie")
                {
                    out.extend(split_pairs(rest));
                }
            }
            "-b" | "--cookie" => {
                let Some(v) = inline.or_else(|| it.next().cloned()) else { continue };
                if v.contains('=') {
                    out.extend(split_pairs(&v));
                }
            }
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(AuthError::CookieFormat(
            "the cURL command has no -H 'cookie: …' or -b '…' argument".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn required() -> Vec<String> {
        ["sessionid", "csrftoken", "ds_user_id", "mid", "ig_did"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    fn check(input: &str, format: CookieFormat) {
        let (f, c) = parse_cookies(input, "instagram.com").unwrap();
        assert_eq!(f, format);
        assert_eq!(c["sessionid"].expose_secret(), "123%3AabC%3A9");
        assert_eq!(c["csrftoken"].expose_secret(), "tok");
        assert!(!c.contains_key("other"), "foreign domain kept");
        let cred = import_cookies(input, "instagram.com", &required(), Some("joe".into())).unwrap();
        assert_eq!(cred.user_id().as_deref(), Some("123"));
    }

    #[test]
    fn json_object_and_list() {
        check(
            r#"{"sessionid":"123%3AabC%3A9","csrftoken":"tok","ds_user_id":123,"mid":"m","ig_did":{"value":"d"}}"#,
            CookieFormat::Json,
        );
        check(
            r#"[{"name":"sessionid","value":"123%3AabC%3A9","domain":".instagram.com"},
                {"name":"csrftoken","value":"tok","domain":".instagram.com"},
                {"name":"ds_user_id","value":"123","domain":".instagram.com"},
                {"name":"mid","value":"m","domain":"www.instagram.com"},
                {"name":"ig_did","value":"d","domain":".instagram.com"},
                {"name":"other","value":"x","domain":".facebook.com"}]"#,
            CookieFormat::Json,
        );
    }

    #[test]
    fn netscape_file() {
        let txt = "# Netscape HTTP Cookie File\n\
            .instagram.com\tTRUE\t/\tTRUE\t1900000000\tcsrftoken\ttok\n\
            #HttpOnly_.instagram.com\tTRUE\t/\tTRUE\t1900000000\tsessionid\t123%3AabC%3A9\n\
            .instagram.com\tTRUE\t/\tTRUE\t1900000000\tds_user_id\t123\n\
            .instagram.com\tTRUE\t/\tTRUE\t1900000000\tmid\tm\n\
            .instagram.com\tTRUE\t/\tTRUE\t1900000000\tig_did\td\n\
            .facebook.com\tTRUE\t/\tTRUE\t1900000000\tother\tx\n";
        check(txt, CookieFormat::Netscape);
    }

    #[test]
    fn header_line() {
        check(
            "Cookie: sessionid=123%3AabC%3A9; csrftoken=tok; ds_user_id=123; mid=m; ig_did=d",
            CookieFormat::Header,
        );
        check(
            "sessionid=123%3AabC%3A9; csrftoken=tok; ds_user_id=123; mid=m; ig_did=d\n",
            CookieFormat::Header,
        );
    }

    #[test]
    fn curl_commands() {
        check(
            "curl 'https://www.instagram.com/api/v1/direct_v2/inbox/' \\\n  -H 'accept: */*' \\\n  -H 'cookie: sessionid=123%3AabC%3A9; csrftoken=tok; ds_user_id=123; mid=m; ig_did=d' \\\n  -H 'x-ig-app-id: 936619743392459'",
            CookieFormat::Curl,
        );
        check(
            "curl \"https://www.instagram.com/\" -b \"sessionid=123%3AabC%3A9; csrftoken=tok; ds_user_id=123; mid=m; ig_did=d\" --compressed",
            CookieFormat::Curl,
        );
        check(
            "curl $'https://www.instagram.com/' --cookie=$'sessionid=123%3AabC%3A9; csrftoken=tok; ds_user_id=123; mid=m; ig_did=d'",
            CookieFormat::Curl,
        );
    }

    #[test]
    fn missing_cookies_are_named_and_bad_input_explained() {
        let err =
            import_cookies("sessionid=1%3Ax; csrftoken=t", "instagram.com", &required(), None)
                .unwrap_err();
        assert_eq!(err.to_string(), "missing required cookies: ds_user_id, mid, ig_did");
        for bad in ["", "{not json", "[1,2]", "curl https://x -H 'accept: */*'", "hello world"] {
            let err = parse_cookies(bad, "instagram.com").unwrap_err();
            assert!(matches!(err, AuthError::CookieFormat(_)), "{bad}: {err}");
        }
        let e = parse_cookies("{\"sessionid\": SECRETV}", "instagram.com").unwrap_err().to_string();
        assert!(!e.contains("SECRETV"), "{e}");
    }
}
