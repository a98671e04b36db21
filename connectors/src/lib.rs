//! The connector files igdm ships, embedded so the binary needs nothing on disk.
//!
//! Each is a connector spec (YAML front matter + Markdown) that `igdm-spec` loads:
//!
//! - [`INSTAGRAM_WEB`]: the private web API of personal accounts (cookie session);
//! - [`INSTAGRAM_GRAPH`]: the official API with Instagram Login (`graph.instagram.com`);
//! - [`INSTAGRAM_PAGE`]: the official API through a Facebook Page token (`graph.facebook.com`).
//!
//! The three share normalized action names (`list_conversations`, `list`, `send`, `react`, …)
//! wherever the meaning is the same, so one client can drive any of them.

#![warn(clippy::unwrap_used)]

/// Id of the private web API connector.
pub const INSTAGRAM_WEB_ID: &str = "instagram-web";
/// Id of the Instagram Login (graph.instagram.com) connector.
pub const INSTAGRAM_GRAPH_ID: &str = "instagram-graph";
/// Id of the Facebook Page (graph.facebook.com) connector.
pub const INSTAGRAM_PAGE_ID: &str = "instagram-page";

/// The private web API connector (`instagram-web`).
pub const INSTAGRAM_WEB: &str = include_str!("../instagram-web.md");
/// The official API connector with Instagram Login (`instagram-graph`).
pub const INSTAGRAM_GRAPH: &str = include_str!("../instagram-graph.md");
/// The official API connector with a Facebook Page token (`instagram-page`).
pub const INSTAGRAM_PAGE: &str = include_str!("../instagram-page.md");

const ALL: &[(&str, &str)] = &[
    (INSTAGRAM_WEB_ID, INSTAGRAM_WEB),
    (INSTAGRAM_GRAPH_ID, INSTAGRAM_GRAPH),
    (INSTAGRAM_PAGE_ID, INSTAGRAM_PAGE),
];

/// Every embedded connector as `(id, file text)`.
#[must_use]
pub fn all() -> &'static [(&'static str, &'static str)] {
    ALL
}

/// The file text of the connector with id `id`, if igdm ships one.
#[must_use]
pub fn by_id(id: &str) -> Option<&'static str> {
    ALL.iter().find(|(i, _)| *i == id).map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_declares_its_own_id() {
        for (id, text) in all() {
            assert!(text.starts_with("---\n"), "{id} must open with front matter");
            assert!(
                text.contains(&format!("\nid: {id}\n")),
                "{id} front matter must declare its id"
            );
        }
        assert_eq!(by_id("instagram-page"), Some(INSTAGRAM_PAGE));
        assert_eq!(by_id("instagram"), None);
    }
}
