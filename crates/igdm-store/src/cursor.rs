//! Opaque paging cursors: a tagged list of fields, hex-encoded so callers do
//! not build or edit them.

use crate::StoreError;

/// Encodes `fields` under `tag` (the list the cursor belongs to).
pub(crate) fn encode(tag: &str, fields: &[&str]) -> String {
    let mut raw = String::from(tag);
    for f in fields {
        raw.push('\u{1f}');
        raw.push_str(f);
    }
    hex::encode(raw)
}

/// Decodes a cursor made by [`encode`] with the same `tag` into `n` fields.
pub(crate) fn decode(tag: &str, cursor: &str, n: usize) -> Result<Vec<String>, StoreError> {
    let bytes = hex::decode(cursor).map_err(|_| StoreError::InvalidCursor)?;
    let raw = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    let mut parts = raw.split('\u{1f}');
    if parts.next() != Some(tag) {
        return Err(StoreError::InvalidCursor);
    }
    let fields: Vec<String> = parts.map(str::to_owned).collect();
    if fields.len() != n {
        return Err(StoreError::InvalidCursor);
    }
    Ok(fields)
}

/// Decodes a cursor made of `(i64, i64)`.
pub(crate) fn decode_pair(tag: &str, cursor: &str) -> Result<(i64, i64), StoreError> {
    let f = decode(tag, cursor, 2)?;
    let a = f[0].parse().map_err(|_| StoreError::InvalidCursor)?;
    let b = f[1].parse().map_err(|_| StoreError::InvalidCursor)?;
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tag_check() {
        let c = encode("conv", &["12", "a:b"]);
        assert_eq!(decode("conv", &c, 2).unwrap(), ["12", "a:b"]);
        assert!(decode("msg", &c, 2).is_err());
        assert!(decode("conv", "zz", 2).is_err());
        assert!(decode_pair("conv", &c).is_err());
    }
}
