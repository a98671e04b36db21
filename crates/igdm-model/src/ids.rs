//! String ids. Private-API thread ids have ~39 digits and do not fit in a
//! `u64`, and Instagram sends the same id as a JSON number or a string, so
//! every id is a string that also accepts an integer on input.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// Wraps a string id.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }
            /// The id as a string slice.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_string_id(d).map(Self)
            }
        }
    };
}

string_id!(
    /// An igdm account name or provider account id.
    AccountId
);
string_id!(
    /// A conversation (thread) id: a private-API `thread_id` or a Graph conversation id.
    ConversationId
);
string_id!(
    /// A message id: a private-API `item_id` or a Graph `mid`.
    MessageId
);
string_id!(
    /// A user id: a private-API `pk` or a Graph IGSID.
    UserId
);

/// Deserializes an id given as a JSON string or integer into its textual form.
///
/// Floats are refused: a float id has already lost digits.
///
/// # Errors
/// When the value is neither a string nor an integer.
pub fn deserialize_string_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an id as a string or an integer")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(V)
}

/// Renders a JSON scalar used as an id into its textual form, if it is one.
///
/// Strings are returned as they are, integers in decimal. Other values give `None`.
#[must_use]
pub fn id_from_json(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_strings_and_integers() {
        let a: UserId = serde_json::from_str("1234567890").unwrap();
        assert_eq!(a.as_str(), "1234567890");
        let b: ConversationId =
            serde_json::from_str("\"340282366841710300949128137443944319108\"").unwrap();
        assert_eq!(b.as_str(), "340282366841710300949128137443944319108");
        assert!(serde_json::from_str::<MessageId>("1.5").is_err());
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"1234567890\"");
    }
}
