//! Keeps integers too large for 64 bits exact when a response body is parsed:
//! serde_json would read them as floats, so they are turned into strings
//! (their digits) before parsing. Bodies without such numbers are untouched.

use std::borrow::Cow;

/// Integers with more digits than this may not fit in `u64`/`i64`.
const SAFE_DIGITS: usize = 18;

/// Returns the body with every JSON integer literal of more than 18 digits
/// outside strings wrapped in quotes (unless it still fits in 64 bits).
pub(crate) fn quote_big_integers(body: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    let mut in_string = false;
    while i < body.len() {
        let b = body[i];
        if in_string {
            // Jump to the next quote or escape: string text is most of a body.
            match memchr::memchr2(b'"', b'\\', &body[i..]) {
                Some(k) if body[i + k] == b'\\' => i += k + 2,
                Some(k) => {
                    in_string = false;
                    i += k + 1;
                }
                None => i = body.len(),
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                let mut j = i + usize::from(b == b'-');
                while j < body.len() && body[j].is_ascii_digit() {
                    j += 1;
                }
                let is_integer = !matches!(body.get(j), Some(b'.' | b'e' | b'E'));
                let digits = j - start - usize::from(b == b'-');
                if is_integer && digits > SAFE_DIGITS && !fits_64(&body[start..j]) {
                    let buf = out.get_or_insert_with(|| Vec::with_capacity(body.len() + 16));
                    buf.extend_from_slice(&body[copied..start]);
                    buf.push(b'"');
                    buf.extend_from_slice(&body[start..j]);
                    buf.push(b'"');
                    copied = j;
                }
                // Skip the rest of a float literal.
                while j < body.len()
                    && matches!(body[j], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    j += 1;
                }
                i = j.max(i + 1);
            }
            _ => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(body),
        Some(mut buf) => {
            buf.extend_from_slice(&body[copied..]);
            Cow::Owned(buf)
        }
    }
}

fn fits_64(digits: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(digits) else { return false };
    s.parse::<i64>().is_ok() || s.parse::<u64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(s: &str) -> Value {
        serde_json::from_slice(&quote_big_integers(s.as_bytes())).unwrap()
    }

    #[test]
    fn big_integers_become_strings() {
        let v = parse(
            r#"{"thread_id": 340282366841710300949128137443944319108, "pk": 178612345, "t": 1.5e300, "s": "340282366841710300949128137443944319108 \" 1234567890123456789012", "neg": -99999999999999999999999, "max": 18446744073709551615}"#,
        );
        assert_eq!(
            v,
            json!({"thread_id": "340282366841710300949128137443944319108", "pk": 178612345, "t": 1.5e300,
                   "s": "340282366841710300949128137443944319108 \" 1234567890123456789012",
                   "neg": "-99999999999999999999999", "max": 18446744073709551615u64})
        );
        assert!(matches!(quote_big_integers(br#"{"a": 1, "b": "x"}"#), Cow::Borrowed(_)));
    }
}
