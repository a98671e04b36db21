//! igdm's search syntax, parsed into a [`Query`] that each backend compiles
//! to its own full-text query with bound parameters.
//!
//! Syntax (whitespace separates items; all items must hold):
//! - `word` — the message text contains the word (case and accents ignored);
//! - `"several words"` — the words in this order;
//! - `-word`, `-"several words"` — the text does not contain it;
//! - `a OR b` — either (binds tighter than the implicit AND: `x a OR b` is `x AND (a OR b)`);
//! - `from:USER` — sent by this username (a leading `@` is ignored) or user id;
//!   several `from:` mean any of them;
//! - `in:CONVERSATION` — in this conversation id or conversation title;
//!   several `in:` mean any of them; `in:"Team chat"` quotes a title with spaces;
//! - `before:YYYY-MM-DD` — sent before that day starts (UTC);
//! - `after:YYYY-MM-DD` — sent on or after that day starts (UTC);
//! - `has:attachment` — the message has media;
//! - `is:unread` — the conversation is unread;
//! - `sort:relevance` — best matches first (BM25 / `ts_rank`) among the
//!   [`RELEVANCE_WINDOW`] newest matches that pass the filters, these taken
//!   from the [`RELEVANCE_CANDIDATES`] newest messages whose text matches,
//!   instead of newest first; `sort:newest` is the default.
//!
//! [`parse`] never fails: anything it cannot read as an operator (an unknown
//! `key:value`, a bad date, an unclosed quote, a dangling `OR`, a negated
//! filter) is kept as literal words. Control characters count as spaces.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::fold;

/// A text term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Term {
    /// A single word as typed (it may still fold into several tokens, as in `don't`).
    Word(String),
    /// A quoted phrase as typed.
    Phrase(String),
}

impl Term {
    /// The raw text of the term.
    #[must_use]
    pub fn text(&self) -> &str {
        match self {
            Term::Word(s) | Term::Phrase(s) => s,
        }
    }

    /// The folded tokens the term matches, in order (empty for punctuation only).
    #[must_use]
    pub fn tokens(&self) -> Vec<String> {
        fold::tokens(self.text())
    }
}

/// How many of the newest matches `sort:relevance` ranks at most: relevance
/// costs time in proportion to the matches it scores, so it scores a bounded
/// window rather than every match of a common word.
///
/// The window holds the newest matches that pass the query's filters
/// (`from:`, `in:`, `has:`, `is:`), found among the newest
/// [`RELEVANCE_CANDIDATES`] messages whose text matches; without such a
/// filter it is simply the newest `RELEVANCE_WINDOW` matches.
pub const RELEVANCE_WINDOW: u32 = 1000;

/// How many messages `sort:relevance` examines at most: the newest messages
/// of the account (not deleted, sent within the query's `before:` / `after:`
/// days) whose text matches the query's words. The filters are applied to
/// these candidates only, so a selective filter (`from:` a rare sender)
/// ranks fewer than [`RELEVANCE_WINDOW`] matches, possibly none, rather
/// than searching further back: the cost of relevance stays bounded
/// whatever the filter. Newest-first search has no such bound.
pub const RELEVANCE_CANDIDATES: u32 = 5000;

/// The order of search results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchOrder {
    /// Newest first (by time sent), the default: what chat apps show.
    #[default]
    Newest,
    /// Best match first among the [`RELEVANCE_WINDOW`] newest matches (taken
    /// from the [`RELEVANCE_CANDIDATES`] newest text matches); ties newest first.
    Relevance,
}

/// A parsed search query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// Every group must match; a group matches when any of its terms does.
    pub all: Vec<Vec<Term>>,
    /// No term here may match.
    pub none: Vec<Term>,
    /// Sender usernames or ids (any of them).
    pub from: Vec<String>,
    /// Conversation ids or titles (any of them).
    pub in_conversation: Vec<String>,
    /// Sent before this day (UTC).
    pub before: Option<NaiveDate>,
    /// Sent on or after this day (UTC).
    pub after: Option<NaiveDate>,
    /// Only messages with attachments.
    pub has_attachment: bool,
    /// Only messages of unread conversations.
    pub is_unread: bool,
    /// The order of the results (it restricts nothing).
    #[serde(default)]
    pub order: SearchOrder,
}

impl Query {
    /// The positive text groups as folded token lists, with terms that fold to
    /// nothing dropped and groups left empty removed.
    #[must_use]
    pub fn token_groups(&self) -> Vec<Vec<Vec<String>>> {
        self.all
            .iter()
            .map(|group| {
                group.iter().map(Term::tokens).filter(|t| !t.is_empty()).collect::<Vec<_>>()
            })
            .filter(|g: &Vec<Vec<String>>| !g.is_empty())
            .collect()
    }

    /// The negated terms as folded token lists, without empty ones.
    #[must_use]
    pub fn excluded_tokens(&self) -> Vec<Vec<String>> {
        self.none.iter().map(Term::tokens).filter(|t| !t.is_empty()).collect()
    }

    /// Whether the query restricts nothing at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.token_groups().is_empty()
            && self.excluded_tokens().is_empty()
            && self.from.is_empty()
            && self.in_conversation.is_empty()
            && self.before.is_none()
            && self.after.is_none()
            && !self.has_attachment
            && !self.is_unread
    }
}

/// One lexical item of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    negated: bool,
    quoted: bool,
    /// For `key:value`, the key (lower-cased).
    key: Option<String>,
    value: String,
    /// The item exactly as typed (without the leading `-`).
    raw: String,
}

fn lex(input: &str) -> Vec<Item> {
    let chars: Vec<char> = input.chars().collect();
    let mut items = Vec::new();
    let mut i = 0;
    let n = chars.len();
    while i < n {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let mut negated = false;
        if chars[i] == '-' && i + 1 < n && !chars[i + 1].is_whitespace() {
            negated = true;
            i += 1;
        }
        let start = i;
        // A quoted phrase, when the quote closes.
        if chars[i] == '"'
            && let Some(close) = chars[i + 1..].iter().position(|&c| c == '"')
        {
            let value: String = chars[i + 1..i + 1 + close].iter().collect();
            let raw: String = chars[start..i + 2 + close].iter().collect();
            items.push(Item { negated, quoted: true, key: None, value, raw });
            i += close + 2;
            continue;
        }
        // A bare item up to whitespace, or `key:"quoted value"`.
        let mut j = i;
        while j < n && !chars[j].is_whitespace() {
            j += 1;
        }
        let word: String = chars[i..j].iter().collect();
        if let Some((key, rest)) = word.split_once(':')
            && !key.is_empty()
            && !key.contains('"')
        {
            let key_len = key.chars().count();
            let vstart = i + key_len + 1;
            if rest.starts_with('"')
                && let Some(close) = chars[vstart + 1..].iter().position(|&c| c == '"')
            {
                let value: String = chars[vstart + 1..vstart + 1 + close].iter().collect();
                let end = vstart + 2 + close;
                let raw: String = chars[start..end].iter().collect();
                items.push(Item {
                    negated,
                    quoted: true,
                    key: Some(key.to_lowercase()),
                    value,
                    raw,
                });
                i = end;
                continue;
            }
            items.push(Item {
                negated,
                quoted: false,
                key: Some(key.to_lowercase()),
                value: rest.to_owned(),
                raw: word.clone(),
            });
        } else {
            items.push(Item { negated, quoted: false, key: None, value: word.clone(), raw: word });
        }
        i = j;
    }
    items
}

fn parse_day(raw: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()
}

/// Applies a `key:value` filter to `q`; `false` when it is not one (then the
/// caller keeps the item as literal text).
fn apply_filter(q: &mut Query, key: &str, value: &str) -> bool {
    let value = value.trim();
    if value.is_empty() {
        return false;
    }
    match key {
        "from" => {
            let user = value.strip_prefix('@').unwrap_or(value);
            if user.is_empty() {
                return false;
            }
            q.from.push(user.to_owned());
        }
        "in" => q.in_conversation.push(value.to_owned()),
        "before" => match parse_day(value) {
            Some(d) => q.before = Some(q.before.map_or(d, |b| b.min(d))),
            None => return false,
        },
        "after" => match parse_day(value) {
            Some(d) => q.after = Some(q.after.map_or(d, |a| a.max(d))),
            None => return false,
        },
        "has" if value.eq_ignore_ascii_case("attachment") => q.has_attachment = true,
        "is" if value.eq_ignore_ascii_case("unread") => q.is_unread = true,
        "sort" if value.eq_ignore_ascii_case("relevance") => q.order = SearchOrder::Relevance,
        "sort" if value.eq_ignore_ascii_case("newest") => q.order = SearchOrder::Newest,
        _ => return false,
    }
    true
}

/// Parses a search string. Never fails; see the module docs for the syntax.
#[must_use]
pub fn parse(input: &str) -> Query {
    // Control characters (NUL above all, which PostgreSQL text cannot hold)
    // separate items like spaces.
    let cleaned: String = input.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let items = lex(&cleaned);
    let mut q = Query::default();
    // Whether the last thing pushed to `q.all` was a positive text term that an `OR` may extend.
    let mut last_was_term = false;
    let mut idx = 0;
    while idx < items.len() {
        let item = &items[idx];
        idx += 1;
        let is_or = !item.negated && !item.quoted && item.key.is_none() && item.value == "OR";
        if is_or && last_was_term {
            let next = items.get(idx);
            if let Some(next) =
                next.filter(|n| !n.negated && n.key.is_none() && (n.quoted || n.value != "OR"))
            {
                idx += 1;
                let term = if next.quoted {
                    Term::Phrase(next.value.clone())
                } else {
                    Term::Word(next.value.clone())
                };
                if let Some(group) = q.all.last_mut() {
                    group.push(term);
                }
                continue;
            }
        }
        if let Some(key) = &item.key
            && !item.negated
            && apply_filter(&mut q, key, &item.value)
        {
            last_was_term = false;
            continue;
        }
        // Literal text: a word, a phrase, or an item that was not a valid operator.
        let term = match (&item.key, item.quoted) {
            (None, true) => Term::Phrase(item.value.clone()),
            (None, false) => Term::Word(item.value.clone()),
            (Some(_), _) => Term::Word(item.raw.clone()),
        };
        if item.negated {
            q.none.push(term);
            last_was_term = false;
        } else {
            q.all.push(vec![term]);
            last_was_term = true;
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Term {
        Term::Word(s.to_owned())
    }

    #[test]
    fn words_phrases_negation_or() {
        let q = parse(r#"pizza "see you" -late a OR b OR "c d""#);
        assert_eq!(
            q.all,
            vec![
                vec![w("pizza")],
                vec![Term::Phrase("see you".into())],
                vec![w("a"), w("b"), Term::Phrase("c d".into())]
            ]
        );
        assert_eq!(q.none, vec![w("late")]);
    }

    #[test]
    fn filters() {
        let q = parse(
            r#"from:@alice from:42 in:"Team chat" before:2024-02-01 after:2024-01-01 has:attachment is:unread hi"#,
        );
        assert_eq!(q.from, ["alice", "42"]);
        assert_eq!(q.in_conversation, ["Team chat"]);
        assert_eq!(q.before, NaiveDate::from_ymd_opt(2024, 2, 1));
        assert_eq!(q.after, NaiveDate::from_ymd_opt(2024, 1, 1));
        assert!(q.has_attachment && q.is_unread);
        assert_eq!(q.all, vec![vec![w("hi")]]);
        assert_eq!(q.order, SearchOrder::Newest);
    }

    #[test]
    fn sort_order() {
        let q = parse("pizza sort:Relevance");
        assert_eq!(q.order, SearchOrder::Relevance);
        assert_eq!(q.all, vec![vec![w("pizza")]]);
        assert_eq!(parse("sort:relevance sort:newest x").order, SearchOrder::Newest);
        // Not an order: literal words.
        let q = parse("sort:oldest -sort:relevance");
        assert_eq!(q.order, SearchOrder::Newest);
        assert_eq!(q.all, vec![vec![w("sort:oldest")]]);
        assert_eq!(q.none, vec![w("sort:relevance")]);
        // An order alone restricts nothing.
        assert!(parse("sort:relevance").is_empty());
    }

    #[test]
    fn malformed_input_degrades_to_words() {
        let q = parse(r#"before:yesterday has:cats x:y "unclosed -from:bob OR"#);
        assert_eq!(
            q.all,
            vec![
                vec![w("before:yesterday")],
                vec![w("has:cats")],
                vec![w("x:y")],
                vec![w("\"unclosed")],
                vec![w("OR")]
            ]
        );
        assert_eq!(q.none, vec![w("from:bob")]);
        assert!(q.before.is_none() && q.from.is_empty());
        assert_eq!(parse("from:\0x\tb").all, vec![vec![w("from:")], vec![w("x")], vec![w("b")]]);
        assert_eq!(parse("OR OR").all, vec![vec![w("OR")], vec![w("OR")]]);
        assert_eq!(parse("- -- \"\"").token_groups(), Vec::<Vec<Vec<String>>>::new());
    }

    #[test]
    fn folded_tokens() {
        let q = parse("Café don't");
        assert_eq!(
            q.token_groups(),
            vec![vec![vec!["cafe".to_owned()]], vec![vec!["don".to_owned(), "t".to_owned()]]]
        );
    }
}
