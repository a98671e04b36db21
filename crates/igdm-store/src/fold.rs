//! Text folding shared by indexing and querying: lower case, no diacritics,
//! only letters and digits kept as tokens.
//!
//! SQLite's FTS5 `unicode61 remove_diacritics 2` tokenizer does this inside
//! the database. PostgreSQL's `unaccent` is not immutable (it cannot feed a
//! generated column) and is an extension an operator may not be allowed to
//! install, so for PostgreSQL igdm folds in Rust, stores the result in
//! `messages.text_folded`, and folds every query term with the same function.

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

/// Splits `text` into folded tokens: lower-cased runs of letters and digits,
/// with combining marks (accents) removed after canonical decomposition.
///
/// `"Café, déjà-vu!"` gives `["cafe", "deja", "vu"]`.
#[must_use]
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The folded tokens of `text` joined by single spaces (the indexed form).
#[must_use]
pub fn folded(text: &str) -> String {
    tokens(text).join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_accents_case_and_punctuation() {
        assert_eq!(tokens("Café, déjà-vu!"), ["cafe", "deja", "vu"]);
        assert_eq!(folded("  ÉCOLE  naïve "), "ecole naive");
        assert_eq!(tokens("!!! ..."), Vec::<String>::new());
        assert_eq!(tokens("日本語 テキスト"), ["日本語", "テキスト"]);
    }
}
