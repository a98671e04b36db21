//! The YAML side of a connector file: splitting the front matter from the
//! readme, a span-carrying generic node, and mapping positions inside a YAML
//! scalar back to line and column in the file.

use indexmap::IndexMap;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::error::SpecError;

/// A generic YAML value whose children carry their source location.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// `null` or `~`.
    Null,
    /// `true` / `false` (strict booleans).
    Bool(bool),
    /// A number, kept as JSON.
    Number(serde_json::Number),
    /// A string (also integers too large for 64 bits, kept as their digits).
    Str(String),
    /// A sequence.
    Seq(Vec<Spanned<Node>>),
    /// A mapping with string keys.
    Map(IndexMap<String, Spanned<Node>>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Node::Null, Node::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            out.push(item);
        }
        Ok(Node::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out = IndexMap::new();
        while let Some(key) = map.next_key::<KeyString>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            out.insert(key.0, value);
        }
        Ok(Node::Map(out))
    }
}

/// A mapping key read as a string whatever its YAML type (`401:` is a number).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct KeyString(pub(crate) String);

impl<'de> Deserialize<'de> for KeyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyString;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyString, E> {
                Ok(KeyString(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyString, E> {
                Ok(KeyString("null".to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

impl Node {
    /// The node as plain JSON.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => Value::Number(n.clone()),
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(items.iter().map(|i| i.value.to_json()).collect()),
            Node::Map(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), v.value.to_json())).collect())
            }
        }
    }
}

/// A connector file split into its YAML front matter and Markdown readme.
pub(crate) struct FrontMatter<'a> {
    /// The YAML text between the `---` lines.
    pub(crate) yaml: &'a str,
    /// Lines of the file before the YAML starts (the opening `---`).
    pub(crate) line_offset: u64,
    /// Everything after the closing `---` line.
    pub(crate) readme: &'a str,
}

/// Splits `text` at its `---` lines. A file without front matter is all YAML.
pub(crate) fn split_front_matter<'a>(
    text: &'a str,
    source: &str,
) -> Result<FrontMatter<'a>, SpecError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first_line_end = text.find('\n').map_or(text.len(), |i| i + 1);
    if text[..first_line_end].trim_end() != "---" {
        return Ok(FrontMatter { yaml: text, line_offset: 0, readme: "" });
    }
    let body = &text[first_line_end..];
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        if line.trim_end() == "---" {
            let yaml = &body[..offset];
            let readme = &body[offset + line.len()..];
            return Ok(FrontMatter { yaml, line_offset: 1, readme });
        }
        offset += line.len();
    }
    Err(SpecError::new(
        source,
        1,
        1,
        "front matter opened with `---` is never closed by a `---` line",
    ))
}

/// Converts a position inside a YAML scalar into the file's line and column.
///
/// `loc` is where the scalar starts (its opening quote, if quoted) and
/// `char_offset` counts characters into the scalar's value. For single-line
/// scalars without escapes the result points at the exact character; otherwise
/// it falls back to the start of the scalar.
pub(crate) fn file_position(
    yaml: &str,
    line_offset: u64,
    loc: &serde_saphyr::Location,
    value: &str,
    char_offset: usize,
) -> (u64, u64) {
    let line_no = loc.line();
    let col = loc.column();
    let file_line = line_no + line_offset;
    let Some(line) =
        yaml.lines().nth(usize::try_from(line_no.saturating_sub(1)).unwrap_or(usize::MAX))
    else {
        return (file_line, col);
    };
    let chars: Vec<char> = line.chars().collect();
    let mut start = usize::try_from(col.saturating_sub(1)).unwrap_or(usize::MAX);
    if matches!(chars.get(start), Some('"' | '\'')) {
        start += 1;
    }
    let prefix: Vec<char> = value.chars().take(char_offset).collect();
    let fits = chars.get(start..start + prefix.len()).is_some_and(|s| s == prefix.as_slice());
    if fits { (file_line, (start + char_offset + 1) as u64) } else { (file_line, col) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_front_matter() {
        let fm = split_front_matter("---\na: 1\n---\n# Readme\n", "x").unwrap();
        assert_eq!(fm.yaml, "a: 1\n");
        assert_eq!(fm.readme, "# Readme\n");
        assert_eq!(fm.line_offset, 1);
        assert!(split_front_matter("---\na: 1\n", "x").is_err());
    }
}
