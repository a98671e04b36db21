//! HTML built in Rust with escaping enforced by the type: text from
//! anywhere goes through [`Html::text`] (escaped), markup only from
//! `&'static str` ([`Html::raw`]), so no message, name or id can reach the
//! page as markup.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// What a path segment or query value keeps unencoded.
const KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes `s` for a URL path segment or query value.
#[must_use]
pub fn url_part(s: &str) -> String {
    utf8_percent_encode(s, KEEP).to_string()
}

/// A page or fragment under construction.
#[derive(Debug, Default)]
pub struct Html(String);

impl Html {
    /// An empty document.
    #[must_use]
    pub fn new() -> Self {
        Self(String::with_capacity(8 * 1024))
    }

    /// Appends markup written into the program.
    pub fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    /// Appends `s` as text (escaped for element content and quoted attributes).
    pub fn text(&mut self, s: &str) -> &mut Self {
        for c in s.chars() {
            match c {
                '&' => self.0.push_str("&amp;"),
                '<' => self.0.push_str("&lt;"),
                '>' => self.0.push_str("&gt;"),
                '"' => self.0.push_str("&quot;"),
                '\'' => self.0.push_str("&#39;"),
                c => self.0.push(c),
            }
        }
        self
    }

    /// Appends another fragment built the same way.
    pub fn append(&mut self, other: &Html) -> &mut Self {
        self.0.push_str(&other.0);
        self
    }

    /// The markup.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_urls_encoded() {
        let mut h = Html::new();
        h.raw("<p title=\"").text("\"><script>'&").raw("\">").text("<b>").raw("</p>");
        assert_eq!(
            h.into_string(),
            "<p title=\"&quot;&gt;&lt;script&gt;&#39;&amp;\">&lt;b&gt;</p>"
        );
        assert_eq!(url_part("a/b?c=d&e f"), "a%2Fb%3Fc%3Dd%26e%20f");
        assert_eq!(url_part("aWdf-_1.~"), "aWdf-_1.~");
    }
}
