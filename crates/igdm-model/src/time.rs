//! Timestamps. Instagram mixes units: the private API sends microseconds
//! (`timestamp`, `last_activity_at`), presence and snapshots milliseconds,
//! webhooks milliseconds, Graph ISO 8601 strings with a `+0000` offset. The
//! caller that knows the unit picks the constructor; nothing here guesses a
//! unit from a number's magnitude.

use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, serialized as RFC 3339 in UTC (`2026-11-22T10:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// The current time.
    #[must_use]
    pub fn now() -> Self {
        Self(Utc::now())
    }

    /// From Unix seconds.
    #[must_use]
    pub fn from_unix_seconds(secs: i64) -> Option<Self> {
        Utc.timestamp_opt(secs, 0).single().map(Self)
    }

    /// From Unix milliseconds.
    #[must_use]
    pub fn from_unix_millis(ms: i64) -> Option<Self> {
        Utc.timestamp_millis_opt(ms).single().map(Self)
    }

    /// From Unix microseconds.
    #[must_use]
    pub fn from_unix_micros(us: i64) -> Option<Self> {
        DateTime::<Utc>::from_timestamp_micros(us).map(Self)
    }

    /// From fractional Unix seconds (the result of dividing a wire value by its unit).
    #[must_use]
    pub fn from_unix_seconds_f64(secs: f64) -> Option<Self> {
        if !secs.is_finite() {
            return None;
        }
        let micros = (secs * 1_000_000.0).round();
        if micros.abs() > 9.0e18 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)]
        Self::from_unix_micros(micros as i64)
    }

    /// Parses RFC 3339 / ISO 8601, including Graph's `2022-07-12T19:11:07+0000`.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
            return Some(Self(t.with_timezone(&Utc)));
        }
        DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%z")
            .ok()
            .map(|t| Self(t.with_timezone(&Utc)))
    }

    /// Unix microseconds.
    #[must_use]
    pub fn unix_micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    /// Unix milliseconds.
    #[must_use]
    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// Unix seconds.
    #[must_use]
    pub fn unix_seconds(&self) -> i64 {
        self.0.timestamp()
    }

    /// RFC 3339 in UTC with a `Z`, with sub-second digits only when present.
    #[must_use]
    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Self(t)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&raw)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {raw:?}")))
    }
}

impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date-time"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_explicit() {
        let us = Timestamp::from_unix_micros(1_700_000_000_123_456).unwrap();
        assert_eq!(us.to_rfc3339(), "2023-11-14T22:13:20.123456Z");
        let ms = Timestamp::from_unix_millis(1_700_000_000_123).unwrap();
        assert_eq!(ms.to_rfc3339(), "2023-11-14T22:13:20.123Z");
        let s = Timestamp::from_unix_seconds(1_700_000_000).unwrap();
        assert_eq!(s.to_rfc3339(), "2023-11-14T22:13:20Z");
        let g = Timestamp::parse("2022-07-12T19:11:07+0000").unwrap();
        assert_eq!(g.to_rfc3339(), "2022-07-12T19:11:07Z");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"2023-11-14T22:13:20Z\"");
    }
}
