//! The filters of the expression language (`value | name: args`).

use std::borrow::Cow;

use igdm_model::Timestamp;
use serde_json::{Map, Value, json};

use super::eval::{stringify, text_is, text_of};

/// A filter, resolved at parse time (an unknown name is a load error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Filter {
    /// `default: x`: `x` when the value is null or an empty string.
    Default,
    /// `divide: n`: numeric division (numeric strings accepted).
    Divide,
    /// `multiply: n`: numeric multiplication.
    Multiply,
    /// `to_datetime[: unit]`: Unix time (seconds unless unit `ms`/`us`) or an
    /// ISO 8601 string → RFC 3339 UTC.
    ToDatetime,
    /// `to_json`: the value as compact JSON text.
    ToJson,
    /// `to_attachment`: Instagram/Graph media → `[{type, url, mime}]`.
    ToAttachment,
    /// `to_string`: the value's text.
    ToString,
    /// `to_number`: a numeric string → number.
    ToNumber,
    /// `length`: characters of a string, elements of an array, keys of an object.
    Length,
    /// `lower`: lowercase.
    Lower,
    /// `upper`: uppercase.
    Upper,
    /// `trim`: strip surrounding whitespace.
    Trim,
    /// `join[: sep]`: join an array's texts (default separator `,`).
    Join,
    /// `first`: the first element.
    First,
    /// `last`: the last element.
    Last,
    /// `entries`: an object → `[{key, value}]` (map over objects keyed by id).
    Entries,
    /// `keys`: an object's keys.
    Keys,
    /// `values`: an object's values.
    Values,
    /// `lookup: array, key[, field]`: the element of `array` whose `key`
    /// equals the value (compared by text), or its `field`.
    Lookup,
    /// `map_value: from, to, …[, default]`: a lookup table; the `to` of the
    /// first `from` equal to the value (by text), else `default` (else null).
    MapValue,
    /// `base64`: the value's text in standard base64 (Instagram's Android
    /// bearer token is the base64 of a small JSON document).
    Base64,
    /// `file_size`: the size in bytes of the local file the value names
    /// (null when it cannot be read), for upload length headers.
    FileSize,
}

impl Filter {
    /// All filter names, for error messages.
    pub const NAMES: &'static str = "default, divide, multiply, to_datetime, to_json, to_attachment, to_string, to_number, length, lower, upper, trim, join, first, last, entries, keys, values, lookup, map_value, base64, file_size";

    /// The filter called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Filter> {
        Some(match name {
            "default" => Filter::Default,
            "divide" => Filter::Divide,
            "multiply" => Filter::Multiply,
            "to_datetime" => Filter::ToDatetime,
            "to_json" => Filter::ToJson,
            "to_attachment" => Filter::ToAttachment,
            "to_string" => Filter::ToString,
            "to_number" => Filter::ToNumber,
            "length" => Filter::Length,
            "lower" => Filter::Lower,
            "upper" => Filter::Upper,
            "trim" => Filter::Trim,
            "join" => Filter::Join,
            "first" => Filter::First,
            "last" => Filter::Last,
            "entries" => Filter::Entries,
            "keys" => Filter::Keys,
            "values" => Filter::Values,
            "lookup" => Filter::Lookup,
            "map_value" => Filter::MapValue,
            "base64" => Filter::Base64,
            "file_size" => Filter::FileSize,
            _ => return None,
        })
    }

    /// Minimum and maximum number of arguments.
    #[must_use]
    pub fn arity(self) -> (usize, usize) {
        match self {
            Filter::Default | Filter::Divide | Filter::Multiply => (1, 1),
            Filter::ToDatetime | Filter::Join => (0, 1),
            Filter::Lookup => (2, 3),
            Filter::MapValue => (2, usize::MAX),
            _ => (0, 0),
        }
    }

    /// Whether the filter maps over the elements of an array.
    fn elementwise(self) -> bool {
        matches!(
            self,
            Filter::Divide
                | Filter::Multiply
                | Filter::ToDatetime
                | Filter::ToNumber
                | Filter::Lower
                | Filter::Upper
                | Filter::Trim
                | Filter::Lookup
                | Filter::MapValue
        )
    }

    /// Applies the filter. Element-wise filters (numeric, text case, dates)
    /// map over arrays; the others take the whole value.
    pub(crate) fn apply(self, v: Value, args: &[Value]) -> Result<Value, String> {
        if self.elementwise()
            && let Value::Array(items) = v
        {
            return items
                .into_iter()
                .map(|i| self.apply(i, args))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array);
        }
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
        match self {
            Filter::Default => Ok(if v.is_null() || v.as_str() == Some("") { arg(0) } else { v }),
            Filter::Divide | Filter::Multiply => {
                if v.is_null() {
                    return Ok(Value::Null);
                }
                arith(self == Filter::Divide, &v, &arg(0))
            }
            Filter::ToDatetime => to_datetime(&v, args.first()),
            Filter::ToJson => Ok(Value::String(v.to_string())),
            Filter::Base64 => Ok(if v.is_null() {
                Value::Null
            } else {
                use base64::Engine as _;
                Value::String(base64::engine::general_purpose::STANDARD.encode(stringify(&v)))
            }),
            Filter::FileSize => Ok(v
                .as_str()
                .and_then(|p| std::fs::metadata(p).ok())
                .filter(std::fs::Metadata::is_file)
                .map_or(Value::Null, |m| Value::from(m.len()))),
            Filter::ToAttachment => Ok(to_attachment(&v)),
            Filter::ToString => {
                Ok(if v.is_null() { Value::Null } else { Value::String(stringify(&v)) })
            }
            Filter::ToNumber => to_number(v),
            Filter::Length => Ok(match &v {
                Value::Null => Value::Null,
                Value::String(s) => json!(s.chars().count()),
                Value::Array(a) => json!(a.len()),
                Value::Object(o) => json!(o.len()),
                _ => return Err(format!("length of a non-collection value {v}")),
            }),
            Filter::Lower => Ok(map_str(v, |s| s.to_lowercase())),
            Filter::Upper => Ok(map_str(v, |s| s.to_uppercase())),
            Filter::Trim => Ok(map_str(v, |s| s.trim().to_owned())),
            Filter::Join => {
                let sep = args.first().map_or_else(|| ",".to_owned(), stringify);
                Ok(match v {
                    Value::Array(a) => {
                        Value::String(a.iter().map(stringify).collect::<Vec<_>>().join(&sep))
                    }
                    other => other,
                })
            }
            Filter::First => Ok(match v {
                Value::Array(a) => a.into_iter().next().unwrap_or(Value::Null),
                other => other,
            }),
            Filter::Last => Ok(match v {
                Value::Array(a) => a.into_iter().next_back().unwrap_or(Value::Null),
                other => other,
            }),
            Filter::Entries => Ok(match v {
                Value::Object(m) => Value::Array(
                    m.into_iter().map(|(k, v)| json!({"key": k, "value": v})).collect(),
                ),
                other => other,
            }),
            Filter::Keys => Ok(match v {
                Value::Object(m) => {
                    Value::Array(m.into_iter().map(|(k, _)| Value::String(k)).collect())
                }
                other => other,
            }),
            Filter::Lookup => {
                if v.is_null() {
                    return Ok(Value::Null);
                }
                let (text, key) = (stringify(&v), stringify(&arg(1)));
                let found = match &args[0] {
                    Value::Array(items) => items.iter().find(|item| {
                        item.get(&key).is_some_and(|k| !k.is_null() && stringify(k) == text)
                    }),
                    _ => None,
                };
                Ok(match (found, args.get(2)) {
                    (Some(item), Some(field)) => {
                        item.get(stringify(field)).cloned().unwrap_or(Value::Null)
                    }
                    (Some(item), None) => item.clone(),
                    (None, _) => Value::Null,
                })
            }
            Filter::MapValue => {
                let text = stringify(&v);
                let mut pairs = args.chunks_exact(2);
                let hit = pairs.by_ref().find(|p| !v.is_null() && stringify(&p[0]) == text);
                Ok(match hit {
                    Some(p) => p[1].clone(),
                    None => pairs.remainder().first().cloned().unwrap_or(Value::Null),
                })
            }
            Filter::Values => Ok(match v {
                Value::Object(m) => Value::Array(m.into_iter().map(|(_, v)| v).collect()),
                other => other,
            }),
        }
    }
}

impl Filter {
    /// [`Filter::apply`] over borrowed values: the filters a response mapping
    /// runs per item (`to_string`, `default`, `lookup`, `map_value`, `first`,
    /// `last`, `length`, `to_datetime`, `to_attachment`) copy nothing they
    /// do not return; the others copy and run [`Filter::apply`].
    pub(crate) fn apply_ref<'a>(
        self,
        v: Cow<'a, Value>,
        args: &[Cow<'a, Value>],
    ) -> Result<Cow<'a, Value>, String> {
        let owned = |v: Cow<'a, Value>| {
            let args: Vec<Value> = args.iter().map(|a| a.as_ref().clone()).collect();
            self.apply(v.into_owned(), &args).map(Cow::Owned)
        };
        if self.elementwise() && v.is_array() {
            return owned(v);
        }
        let null = || Cow::Owned(Value::Null);
        let arg = |i: usize| args.get(i).cloned().unwrap_or_else(null);
        match self {
            Filter::Default => Ok(if v.is_null() || v.as_str() == Some("") { arg(0) } else { v }),
            Filter::ToString => Ok(match &*v {
                Value::Null => null(),
                Value::String(_) => v,
                other => Cow::Owned(Value::String(stringify(other))),
            }),
            Filter::ToDatetime => to_datetime(&v, args.first().map(AsRef::as_ref)).map(Cow::Owned),
            Filter::ToAttachment => Ok(Cow::Owned(to_attachment(&v))),
            Filter::Length if !matches!(*v, Value::Bool(_) | Value::Number(_)) => {
                Ok(Cow::Owned(match &*v {
                    Value::String(s) => json!(s.chars().count()),
                    Value::Array(a) => json!(a.len()),
                    Value::Object(o) => json!(o.len()),
                    _ => Value::Null,
                }))
            }
            Filter::First | Filter::Last => Ok(match v {
                Cow::Borrowed(Value::Array(a)) => {
                    let e = if self == Filter::First { a.first() } else { a.last() };
                    e.map_or_else(null, Cow::Borrowed)
                }
                Cow::Borrowed(_) => v,
                Cow::Owned(v) => Cow::Owned(self.apply(v, &[])?),
            }),
            Filter::Lookup => {
                if v.is_null() {
                    return Ok(null());
                }
                let text = text_of(&v);
                let key = args.get(1).map_or(Cow::Borrowed(""), |k| text_of(k));
                let field = args.get(2).map(|f| text_of(f));
                let find = |items: &'a [Value]| -> Option<&'a Value> {
                    items.iter().find(|item| {
                        item.get(key.as_ref()).is_some_and(|k| !k.is_null() && text_is(k, &text))
                    })
                };
                let pick = |item: &'a Value| match &field {
                    Some(f) => item.get(f.as_ref()).map_or_else(null, Cow::Borrowed),
                    None => Cow::Borrowed(item),
                };
                Ok(match &args[0] {
                    Cow::Borrowed(Value::Array(items)) => find(items).map_or_else(null, pick),
                    Cow::Owned(Value::Array(items)) => {
                        let found = items.iter().find(|item| {
                            item.get(key.as_ref())
                                .is_some_and(|k| !k.is_null() && text_of(k) == text)
                        });
                        match (found, &field) {
                            (Some(item), Some(f)) => {
                                Cow::Owned(item.get(f.as_ref()).cloned().unwrap_or(Value::Null))
                            }
                            (Some(item), None) => Cow::Owned(item.clone()),
                            (None, _) => null(),
                        }
                    }
                    _ => null(),
                })
            }
            Filter::MapValue => {
                let text = text_of(&v);
                let mut pairs = args.chunks_exact(2);
                let hit = pairs.by_ref().find(|p| !v.is_null() && text_is(&p[0], &text));
                Ok(match hit {
                    Some(p) => p[1].clone(),
                    None => pairs.remainder().first().cloned().unwrap_or_else(null),
                })
            }
            _ => owned(v),
        }
    }
}

fn map_str(v: Value, f: impl Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(&s)),
        other => other,
    }
}

/// A numeric view of a value: numbers, and strings that hold a number.
pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn as_i128(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    }
}

fn int_value(i: i128) -> Option<Value> {
    i64::try_from(i)
        .ok()
        .map(|i| Value::Number(i.into()))
        .or_else(|| u64::try_from(i).ok().map(|u| Value::Number(u.into())))
}

fn float_value(f: f64) -> Result<Value, String> {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| "result is not a finite number".to_owned())
}

fn arith(divide: bool, v: &Value, by: &Value) -> Result<Value, String> {
    let name = if divide { "divide" } else { "multiply" };
    if let (Some(a), Some(b)) = (as_i128(v), as_i128(by)) {
        if divide {
            if b == 0 {
                return Err("divide by zero".to_owned());
            }
            if a % b == 0
                && let Some(r) = int_value(a / b)
            {
                return Ok(r);
            }
        } else if let Some(r) = a.checked_mul(b).and_then(int_value) {
            return Ok(r);
        }
    }
    let a = as_f64(v).ok_or_else(|| format!("{name}: {v} is not a number"))?;
    let b = as_f64(by).ok_or_else(|| format!("{name}: argument {by} is not a number"))?;
    if divide {
        if b == 0.0 {
            return Err("divide by zero".to_owned());
        }
        float_value(a / b)
    } else {
        float_value(a * b)
    }
}

fn to_datetime(v: &Value, unit: Option<&Value>) -> Result<Value, String> {
    if v.is_null() || v.as_str() == Some("") {
        return Ok(Value::Null);
    }
    let unit = unit.map(stringify);
    let scale = match unit.as_deref() {
        None | Some("s") => 1.0,
        Some("ms") => 1_000.0,
        Some("us") => 1_000_000.0,
        Some(other) => return Err(format!("to_datetime: unknown unit `{other}` (s, ms, us)")),
    };
    if let Value::String(s) = v
        && s.trim().parse::<f64>().is_err()
    {
        return Timestamp::parse(s)
            .map(|t| Value::String(t.to_rfc3339()))
            .ok_or_else(|| format!("to_datetime: `{s}` is not a time"));
    }
    if scale == 1.0
        && let Some(i) = as_i128(v)
        && let Ok(secs) = i64::try_from(i)
    {
        return Timestamp::from_unix_seconds(secs)
            .map(|t| Value::String(t.to_rfc3339()))
            .ok_or_else(|| format!("to_datetime: {secs} is out of range"));
    }
    if scale == 1_000_000.0
        && let Some(i) = as_i128(v)
        && let Ok(us) = i64::try_from(i)
    {
        return Timestamp::from_unix_micros(us)
            .map(|t| Value::String(t.to_rfc3339()))
            .ok_or_else(|| format!("to_datetime: {us} is out of range"));
    }
    let f = as_f64(v).ok_or_else(|| format!("to_datetime: {v} is not a time"))?;
    Timestamp::from_unix_seconds_f64(f / scale)
        .map(|t| Value::String(t.to_rfc3339()))
        .ok_or_else(|| format!("to_datetime: {v} is out of range"))
}

fn to_number(v: Value) -> Result<Value, String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Ok(Value::Number(i.into()));
            }
            if let Ok(u) = t.parse::<u64>() {
                return Ok(Value::Number(u.into()));
            }
            if t.chars().all(|c| c.is_ascii_digit()) && !t.is_empty() {
                // An integer beyond 64 bits (a thread id): a float would corrupt it.
                return Err(format!(
                    "to_number: `{t}` does not fit in 64 bits; keep it as a string"
                ));
            }
            t.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("to_number: `{s}` is not a number"))
        }
        Value::Bool(b) => Ok(json!(u8::from(b))),
        other @ (Value::Number(_) | Value::Null) => Ok(other),
        other => Err(format!("to_number: {other} is not a number")),
    }
}

/// Maps media objects to igdm attachments. Understands the private API's
/// `media` (`media_type` 1 image / 2 video, `image_versions2.candidates`,
/// `video_versions`), `audio.audio_src`, `animated_media.images`, and Graph
/// `{type, payload: {url}}` attachments. Null becomes an empty list.
fn to_attachment(v: &Value) -> Value {
    match v {
        Value::Null => Value::Array(Vec::new()),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .flat_map(|i| match to_attachment(i) {
                    Value::Array(a) => a,
                    other => vec![other],
                })
                .collect(),
        ),
        Value::Object(m) => {
            one_attachment(m).map_or_else(|| Value::Array(Vec::new()), |a| Value::Array(vec![a]))
        }
        _ => Value::Array(Vec::new()),
    }
}

/// The string at `path` below the object `m` (digits index arrays).
fn str_at<'a>(m: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (first, rest) = path.split_first()?;
    let mut cur = m.get(*first)?;
    for p in rest {
        cur = match (cur, p.parse::<usize>()) {
            (Value::Array(a), Ok(i)) => a.get(i)?,
            (Value::Object(o), _) => o.get(*p)?,
            _ => return None,
        };
    }
    cur.as_str()
}

fn one_attachment(m: &Map<String, Value>) -> Option<Value> {
    let make = |kind: &str, url: Option<&str>, mime: &str| {
        let mut o = Map::new();
        o.insert("type".into(), Value::String(kind.to_owned()));
        if let Some(u) = url {
            o.insert("url".into(), Value::String(u.to_owned()));
        }
        o.insert("mime".into(), Value::String(mime.to_owned()));
        Value::Object(o)
    };
    // Graph: {type: image|video|audio|file, payload: {url}}
    if let (Some(kind), Some(url)) =
        (m.get("type").and_then(Value::as_str), str_at(m, &["payload", "url"]))
    {
        let (t, mime) = match kind {
            "image" => ("image", "image/jpeg"),
            "video" => ("video", "video/mp4"),
            "audio" => ("audio", "audio/mp4"),
            "file" => ("file", "application/octet-stream"),
            "story_mention" => ("story", "image/jpeg"),
            "share" | "ig_reel" | "reel" => ("share", "video/mp4"),
            _ => ("link", "application/octet-stream"),
        };
        return Some(make(t, Some(url), mime));
    }
    if let Some(src) = str_at(m, &["audio", "audio_src"]) {
        return Some(make("voice", Some(src), "audio/mp4"));
    }
    let media_type =
        m.get("media_type").and_then(|t| t.as_i64().or_else(|| t.as_str()?.parse().ok()));
    let video = str_at(m, &["video_versions", "0", "url"]);
    let image = str_at(m, &["image_versions2", "candidates", "0", "url"]);
    match (media_type, video, image) {
        (Some(2), Some(u), _) | (None, Some(u), _) => Some(make("video", Some(u), "video/mp4")),
        (_, _, Some(u)) => Some(make("image", Some(u), "image/jpeg")),
        _ => {
            if let Some(u) = str_at(m, &["images", "fixed_height", "url"]) {
                return Some(make("image", Some(u), "image/gif"));
            }
            m.get("url")
                .and_then(Value::as_str)
                .map(|u| make("link", Some(u), "application/octet-stream"))
        }
    }
}
