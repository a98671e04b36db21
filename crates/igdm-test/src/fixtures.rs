//! Documented-example fixtures (`connectors/fixtures/`): loading them and
//! matching results against their expectations.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `connectors/fixtures/<kind>` of this repository (`graph`, `webhooks`, …).
#[must_use]
pub fn dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../connectors/fixtures").join(kind)
}

/// Every `*.json` file of `connectors/fixtures/<kind>`, parsed, by file name.
///
/// # Panics
/// When the directory or a file cannot be read or is not JSON.
#[must_use]
pub fn load(kind: &str) -> Vec<(String, Value)> {
    let dir = dir(kind);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("fixture");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        out.push((name, v));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no fixtures under {}", dir.display());
    out
}

/// Whether `actual` holds everything `expected` says: objects key by key
/// (extra keys allowed), arrays element by element with the same length,
/// anything else equal.
#[must_use]
pub fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            e.iter().all(|(k, ev)| a.get(k).is_some_and(|av| contains(av, ev)))
        }
        (Value::Array(a), Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(av, ev)| contains(av, ev))
        }
        _ => actual == expected,
    }
}
