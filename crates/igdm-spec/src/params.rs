//! Action parameter declarations and their validation (before any request).

use igdm_model::ApiError;
use indexmap::IndexMap;
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
        }
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
    /// Most UTF-8 bytes of a string.
    pub max_bytes: Option<usize>,
    /// Allowed values of an enum (compared by text).
    pub values: Vec<Value>,
    /// The declaration of an array's elements.
    pub items: Option<Box<ParamSpec>>,
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
            max_bytes: None,
            values: Vec::new(),
            items: None,
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
                Value::Object(_) => v,
                other => {
                    return Err(ApiError::invalid(
                        field,
                        format!("expected an object, got {other}"),
                    ));
                }
            },
            ParamType::Enum => v,
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
            if let Some(max) = self.max_length
                && s.chars().count() > max
            {
                return Err(ApiError::invalid(field, format!("longer than {max} characters")));
            }
            if let Some(max) = self.max_bytes
                && s.len() > max
            {
                return Err(ApiError::invalid(
                    field,
                    format!("longer than {max} bytes ({} bytes)", s.len()),
                ));
            }
        }
        if let (Value::Array(a), Some(max)) = (&v, self.max_length)
            && a.len() > max
        {
            return Err(ApiError::invalid(field, format!("more than {max} elements")));
        }
        Ok(v)
    }
}

/// Validates `given` against `specs`: unknown names, missing required
/// parameters and constraint violations are errors naming the parameter;
/// defaults fill the gaps. Returns the `params` object for expressions.
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
    let mut out = Map::new();
    for (name, spec) in specs {
        match given.get(name).filter(|v| !v.is_null()) {
            Some(v) => {
                out.insert(name.clone(), spec.check(name, v.clone())?);
            }
            None => match &spec.default {
                Some(d) => {
                    out.insert(name.clone(), d.clone());
                }
                None if spec.required => return Err(ApiError::invalid(name, "is required")),
                None => {}
            },
        }
    }
    Ok(Value::Object(out))
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
