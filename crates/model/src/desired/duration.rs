//! Durations written as `30s`, `5m`, `1h` or combined (`1h30m`).

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A duration as written in the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurationSpec(Duration);

impl DurationSpec {
    /// The longest duration accepted anywhere: 30 days (`720h`), the most any setting
    /// allows (`redeploy.settleTime`, `redeploy.retryAfter`; `reconcile.interval` allows
    /// 24h). Far below where adding it to a clock could overflow, so no input can.
    pub const MAX: DurationSpec = DurationSpec::from_secs(30 * 24 * 3600);

    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        DurationSpec(Duration::from_secs(secs))
    }

    /// The duration itself.
    pub fn get(self) -> Duration {
        self.0
    }

    /// Parses `30s`, `5m`, `1h`, `1h30m`, up to [`DurationSpec::MAX`].
    ///
    /// # Errors
    /// A message saying what is wrong with the text, or that it is longer than the limit.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid duration {text:?}: use a number and a unit s, m or h, like 30s, 5m, 1h"
            )
        };
        if text.is_empty() {
            return Err(bad());
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        for c in text.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => return Err(bad()),
            };
            let n: u64 = digits.parse().map_err(|_| bad())?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
            digits.clear();
        }
        if !digits.is_empty() {
            return Err(bad());
        }
        let parsed = DurationSpec(Duration::from_secs(total));
        if parsed > Self::MAX {
            return Err(format!(
                "duration {text:?} is longer than the limit of {}",
                Self::MAX
            ));
        }
        Ok(parsed)
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        match s {
            0 => f.write_str("0s"),
            s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        DurationSpec::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for DurationSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "a duration like 30s, 5m, 1h or 1h30m; at most 720h (30 days)",
            "type": "string",
            "pattern": "^([0-9]+[smh])+$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_documented() {
        for (text, secs) in [
            ("30s", 30),
            ("5m", 300),
            ("1h", 3600),
            ("1h30m", 5400),
            ("0s", 0),
        ] {
            assert_eq!(
                DurationSpec::parse(text).unwrap().get().as_secs(),
                secs,
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for text in [
            "",
            "5",
            "m",
            "5x",
            "1.5h",
            "-1s",
            "99999999999999999999h",
            // Fits in a u64 of seconds, but not in a deadline.
            "999999999999h",
            "721h",
            "720h1s",
            "18446744073709551615s",
        ] {
            assert!(
                DurationSpec::parse(text).is_err(),
                "{text} should be rejected"
            );
        }
    }

    #[test]
    fn the_longest_duration_accepted_is_thirty_days() {
        assert_eq!(DurationSpec::parse("720h"), Ok(DurationSpec::MAX));
        assert_eq!(DurationSpec::parse("719h59m60s"), Ok(DurationSpec::MAX));
        let e = DurationSpec::parse("999999999999h").unwrap_err();
        assert!(e.contains("longer than the limit of 720h"), "{e}");
    }

    #[test]
    fn durations_print_in_their_largest_whole_unit() {
        for text in ["30s", "5m", "1h", "90s"] {
            assert_eq!(DurationSpec::parse(text).unwrap().to_string(), text);
        }
    }
}
