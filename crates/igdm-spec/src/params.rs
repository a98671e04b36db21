//! Action parameter declarations and their validation (before any request).

use igdm_model::ApiError;
use indexmap::IndexMap;
use regex::Regex;
use serde_json::{Map, Value};

use crate::expr::stringify;

/// The type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamType {
    /// Text; a number given for it is kept as its text (ids).
    String,
    /// A number; a numeric string is accepted.
    Number,
    /// `true`/`false`; the strings `"true"`/`"false"` are accepted.
    Boolean,
    /// A JSON array; `items` declares its elements.
    Array,
    /// A JSON object.
    Object,
    /// One of `values`.
    Enum,
    /// A local file, given by its path: it must exist and be a regular
    /// file, and `max_bytes` bounds its size. A `binary` body sends it.
    File,
}

impl ParamType {
    /// The type called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<ParamType> {
        Some(match name {
            "string" => ParamType::String,
            "number" | "integer" => ParamType::Number,
            "boolean" | "bool" => ParamType::Boolean,
            "array" => ParamType::Array,
            "object" => ParamType::Object,
            "enum" => ParamType::Enum,
            "file" => ParamType::File,
            _ => return None,
        })
    }

    /// The name of the type.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
            ParamType::Array => "array",
            ParamType::Object => "object",
            ParamType::Enum => "enum",
            ParamType::File => "file",
        }
    }
}

/// A regular expression a string parameter must match as a whole.
///
/// Compiled once when the connector loads; compared by its source text.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    anchored: Regex,
}

impl Pattern {
    /// Compiles `source`; the whole value must match it (it is anchored at
    /// both ends).
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let anchored = Regex::new(&format!("^(?:{source})$"))?;
        Ok(Self { source: source.to_owned(), anchored })
    }

    /// The expression as written in the connector file.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether all of `text` matches.
    #[must_use]
    pub fn is_match(&self, text: &str) -> bool {
        self.anchored.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// One declared parameter of an action.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// The type.
    pub kind: ParamType,
    /// Whether it must be given (and has no default).
    pub required: bool,
    /// The value used when it is not given.
    pub default: Option<Value>,
    /// Smallest allowed number.
    pub min: Option<f64>,
    /// Largest allowed number.
    pub max: Option<f64>,
    /// Most characters of a string, or elements of an array.
    pub max_length: Option<usize>,
    /// Fewest characters of a string, or elements of an array.
    pub min_length: Option<usize>,
    /// Fewest elements of an array.
    pub min_items: Option<usize>,
    /// Most elements of an array.
    pub max_items: Option<usize>,
    /// A regular expression the whole string must match.
    pub pattern: Option<Pattern>,
    /// Most UTF-8 bytes of a string.
    pub max_bytes: Option<usize>,
    /// Allowed values of an enum (compared by text).
    pub values: Vec<Value>,
    /// The declaration of an array's elements.
    pub items: Option<Box<ParamSpec>>,
    /// The declared fields of an object, checked like parameters (fields
    /// not declared here pass through unchecked).
    pub properties: IndexMap<String, ParamSpec>,
    /// What it is for.
    pub description: Option<String>,
}

impl ParamSpec {
    /// A parameter of `kind` with no constraint.
    #[must_use]
    pub fn new(kind: ParamType) -> Self {
        Self {
            kind,
            required: false,
            default: None,
            min: None,
            max: None,
            max_length: None,
            min_length: None,
            min_items: None,
            max_items: None,
            pattern: None,
            max_bytes: None,
            values: Vec::new(),
            items: None,
            properties: IndexMap::new(),
            description: None,
        }
    }

    /// Checks and normalizes one value (`field` names it in errors).
    pub fn check(&self, field: &str, v: Value) -> Result<Value, ApiError> {
        let v = match self.kind {
            ParamType::String => match v {
                Value::String(_) => v,
                Value::Number(n) => Value::String(n.to_string()),
                Value::Bool(b) => Value::String(b.to_string()),
                other => {
                    return Err(ApiError::invalid(
                        field,
                        format!("expected a string, got {other}"),
                    ));
                }
            },
            ParamType::Number => match v {
                Value::Number(_) => v,
                Value::String(ref s) => {
                    let t = s.trim();
                    t.parse::<i64>()
                        .map(Value::from)
                        .or_else(|_| t.parse::<u64>().map(Value::from))
                        .ok()
                        .or_else(|| {
                            t.parse::<f64>()
                                .ok()
                                .and_then(serde_json::Number::from_f64)
                                .map(Value::Number)
                        })
                        .ok_or_else(|| {
                            ApiError::invalid(field, format!("expected a number, got {s:?}"))
                        })?
                }
                other => {
                    return Err(ApiError::invalid(
                        field,
                        format!("expected a number, got {other}"),
                    ));
                }
            },
            ParamType::Boolean => match v {
                Value::Bool(_) => v,
                Value::String(ref s) if s == "true" || s == "false" => Value::Bool(s == "true"),
                other => {
                    return Err(ApiError::invalid(
                        field,
                        format!("expected true or false, got {other}"),
                    ));
                }
            },
            ParamType::Array => match v {
                Value::Array(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (i, item) in items.into_iter().enumerate() {
                        out.push(match &self.items {
                            Some(spec) => spec.check(&format!("{field}[{i}]"), item)?,
                            None => item,
                        });
                    }
                    Value::Array(out)
                }
                // A single value where a list is expected: a list of one.
                other @ (Value::String(_) | Value::Number(_)) => {
                    return self.check(field, Value::Array(vec![other]));
                }
                other => {
                    return Err(ApiError::invalid(
                        field,
                        format!("expected an array, got {other}"),
                    ));
                }
            },
            ParamType::Object => match v {
                Value::Object(fields) if self.properties.is_empty() => Value::Object(fields),
                Value::Object(mut fields) => {
                    let mut out = fill(&self.properties, &mut fields, &format!("{field}."))?;
                    // Undeclared fields pass through after the declared ones.
                    out.extend(fields);
                    Value::Object(out)
                }
                other => {
                    return Err(ApiError::invalid(
                        field,
                        format!("expected an object, got {other}"),
                    ));
                }
            },
            ParamType::Enum => v,
            ParamType::File => return self.check_file(field, v),
        };
        if !self.values.is_empty() {
            let text = stringify(&v);
            if !self.values.iter().any(|allowed| stringify(allowed) == text) {
                let allowed: Vec<String> =
                    self.values.iter().map(|a| format!("{:?}", stringify(a))).collect();
                return Err(ApiError::invalid(
                    field,
                    format!("{text:?} is not one of {}", allowed.join(", ")),
                ));
            }
        }
        if let Some(n) = v.as_f64().filter(|_| v.is_number()) {
            if let Some(max) = self.max
                && n > max
            {
                return Err(ApiError::invalid(
                    field,
                    format!("{v} is more than the maximum {max}"),
                ));
            }
            if let Some(min) = self.min
                && n < min
            {
                return Err(ApiError::invalid(
                    field,
                    format!("{v} is less than the minimum {min}"),
                ));
            }
        }
        if let Value::String(s) = &v {
            let chars = s.chars().count();
            if let Some(max) = self.max_length
                && chars > max
            {
                return Err(ApiError::invalid(field, format!("longer than {max} characters")));
            }
            if let Some(min) = self.min_length
                && chars < min
            {
                return Err(ApiError::invalid(field, format!("shorter than {min} characters")));
            }
            if let Some(max) = self.max_bytes
                && s.len() > max
            {
                return Err(ApiError::invalid(
                    field,
                    format!("longer than {max} bytes ({} bytes)", s.len()),
                ));
            }
            if let Some(p) = &self.pattern
                && !p.is_match(s)
            {
                return Err(ApiError::invalid(
                    field,
                    format!("does not match the pattern `{}`", p.as_str()),
                ));
            }
        }
        if let Value::Array(a) = &v {
            let n = a.len();
            if let Some(max) = self.max_items.into_iter().chain(self.max_length).min()
                && n > max
            {
                return Err(ApiError::invalid(field, format!("more than {max} elements ({n})")));
            }
            if let Some(min) = self.min_items.into_iter().chain(self.min_length).max()
                && n < min
            {
                return Err(ApiError::invalid(field, format!("fewer than {min} elements ({n})")));
            }
        }
        Ok(v)
    }
}

impl ParamSpec {
    /// A `file` parameter: the path of a readable regular file no larger
    /// than `max_bytes`. Checked before anything is sent, so a missing or
    /// oversized file fails without a request.
    fn check_file(&self, field: &str, v: Value) -> Result<Value, ApiError> {
        let Value::String(path) = &v else {
            return Err(ApiError::invalid(field, format!("expected a file path, got {v}")));
        };
        let meta = std::fs::metadata(path)
            .map_err(|e| ApiError::invalid(field, format!("cannot read the file {path}: {e}")))?;
        if !meta.is_file() {
            return Err(ApiError::invalid(field, format!("{path} is not a regular file")));
        }
        if let Some(max) = self.max_bytes
            && meta.len() > max as u64
        {
            return Err(ApiError::invalid(
                field,
                format!("{path} has {} bytes, more than the maximum {max}", meta.len()),
            ));
        }
        if meta.len() == 0 {
            return Err(ApiError::invalid(field, format!("{path} is empty")));
        }
        Ok(v)
    }
}

/// Whether `v` counts as absent for a required parameter: the empty string
/// (an empty id or text must never reach the provider).
fn is_blank(v: &Value) -> bool {
    v.as_str().is_some_and(str::is_empty)
}

/// Checks the declared `specs` against `given`, removing each declared
/// name from `given` and returning the checked values (defaults filled in).
/// `prefix` is put before each name in errors (`"quick_replies[3]."`).
fn fill(
    specs: &IndexMap<String, ParamSpec>,
    given: &mut Map<String, Value>,
    prefix: &str,
) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for (name, spec) in specs {
        let field = format!("{prefix}{name}");
        let value = given.remove(name).filter(|v| !v.is_null());
        match value {
            Some(v) if spec.required && spec.default.is_none() && is_blank(&v) => {
                return Err(ApiError::invalid(&field, "is required (got an empty string)"));
            }
            Some(v) => {
                out.insert(name.clone(), spec.check(&field, v)?);
            }
            None => match &spec.default {
                Some(d) => {
                    out.insert(name.clone(), d.clone());
                }
                None if spec.required => return Err(ApiError::invalid(&field, "is required")),
                None => {}
            },
        }
    }
    Ok(out)
}

/// Validates `given` against `specs`: unknown names, missing required
/// parameters (a required string given as `""` counts as missing) and
/// constraint violations are errors naming the parameter by its full path
/// (`quick_replies[3].title`); defaults fill the gaps. Returns the `params`
/// object for expressions.
pub fn validate_params(
    specs: &IndexMap<String, ParamSpec>,
    given: &Map<String, Value>,
) -> Result<Value, ApiError> {
    if let Some(unknown) = given.keys().find(|k| !specs.contains_key(*k)) {
        let known: Vec<&str> = specs.keys().map(String::as_str).collect();
        return Err(ApiError::invalid(
            unknown,
            format!("unknown parameter (known: {})", known.join(", ")),
        ));
    }
    let mut given = given.clone();
    fill(specs, &mut given, "").map(Value::Object)
}

/// A JSON Schema (draft 2020-12 vocabulary) for an action's parameters, for
/// agents and `igdm actions`: every constraint igdm checks before sending.
#[must_use]
pub fn params_schema(params: &IndexMap<String, ParamSpec>) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for (name, p) in params {
        props.insert(name.clone(), p.json_schema());
        if p.required {
            required.push(Value::String(name.clone()));
        }
    }
    serde_json::json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

impl ParamSpec {
    /// This parameter as a JSON Schema.
    #[must_use]
    pub fn json_schema(&self) -> Value {
        let mut s = Map::new();
        let ty = match self.kind {
            ParamType::String => Some("string"),
            ParamType::Number => Some("number"),
            ParamType::Boolean => Some("boolean"),
            ParamType::Array => Some("array"),
            ParamType::Object => Some("object"),
            ParamType::Enum => None,
            ParamType::File => Some("string"),
        };
        if self.kind == ParamType::File {
            s.insert("format".into(), Value::from("path"));
        }
        if let Some(t) = ty {
            s.insert("type".into(), Value::from(t));
        }
        if !self.values.is_empty() {
            s.insert("enum".into(), Value::Array(self.values.clone()));
        }
        if let Some(d) = &self.description {
            s.insert("description".into(), Value::from(d.clone()));
        }
        if let Some(d) = &self.default {
            s.insert("default".into(), d.clone());
        }
        if let Some(m) = self.min {
            s.insert("minimum".into(), Value::from(m));
        }
        if let Some(m) = self.max {
            s.insert("maximum".into(), Value::from(m));
        }
        let array = matches!(self.kind, ParamType::Array);
        let (min_key, max_key) =
            if array { ("minItems", "maxItems") } else { ("minLength", "maxLength") };
        if let Some(m) = self.min_length.or(if array { self.min_items } else { None }) {
            s.insert(min_key.into(), Value::from(m));
        }
        if let Some(m) = self.max_length.or(if array { self.max_items } else { None }) {
            s.insert(max_key.into(), Value::from(m));
        }
        if let Some(b) = self.max_bytes {
            s.insert("x-max-bytes".into(), Value::from(b));
        }
        if let Some(p) = &self.pattern {
            s.insert("pattern".into(), Value::from(format!("^(?:{})$", p.as_str())));
        }
        if let Some(items) = &self.items {
            s.insert("items".into(), items.json_schema());
        }
        if !self.properties.is_empty() {
            let mut props = Map::new();
            let mut required = Vec::new();
            for (name, p) in &self.properties {
                props.insert(name.clone(), p.json_schema());
                if p.required {
                    required.push(Value::String(name.clone()));
                }
            }
            s.insert("properties".into(), Value::Object(props));
            s.insert("required".into(), Value::Array(required));
        }
        Value::Object(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_keep_ids_and_numbers_parse() {
        let s = ParamSpec::new(ParamType::String);
        assert_eq!(s.check("id", json!(340282366)).unwrap(), json!("340282366"));
        let mut n = ParamSpec::new(ParamType::Number);
        n.max = Some(50.0);
        assert_eq!(n.check("limit", json!("20")).unwrap(), json!(20));
        let e = n.check("limit", json!(51)).unwrap_err();
        assert_eq!(e.class, igdm_model::ErrorClass::InvalidRequest);
        assert!(e.message.starts_with("limit: "), "{}", e.message);
        let mut t = ParamSpec::new(ParamType::String);
        t.max_bytes = Some(4);
        assert!(t.check("text", json!("héllo")).is_err());
    }
}
