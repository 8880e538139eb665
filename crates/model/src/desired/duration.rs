//! Durations written in jiff's "friendly" format: `500ms`, `30s`, `5m`, `1h30m`, `1d`.

use std::fmt;
use std::time::Duration;

use jiff::fmt::friendly::SpanParser;
use jiff::SpanRelativeTo;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A duration as written in the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurationSpec(Duration);

/// What every duration message ends with: how to write one.
const HOW: &str = "use a number and a unit (ms, s, m, h, d), like 30s, 5m, 1h30m, 1d or 500ms";

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

    /// Parses jiff's "friendly" duration format, up to [`DurationSpec::MAX`]: units from
    /// largest to smallest, each at most once (`1h30m`, not `30m1h` or `5m5m`); `d` and
    /// `w` are 24 and 168 hours; fractions of the smallest unit (`1.5h`) and sub-second
    /// units (`500ms`) are allowed; spelled-out units (`5 minutes`) too. No sign, no
    /// `ago`, no months or years (they have no fixed length).
    ///
    /// # Errors
    /// A message saying what is wrong with the text, or that it is longer than the limit.
    pub fn parse(text: &str) -> Result<Self, String> {
        static PARSER: SpanParser = SpanParser::new();
        // jiff skips blanks at the end; the schema's pattern (and so an editor) does not.
        if text.trim() != text {
            return Err(format!(
                "invalid duration {text:?}: no spaces before or after it; {HOW}"
            ));
        }
        // A `SignedDuration` holds any hour count an i64 of seconds can (so `99999h` is
        // "too long", not "malformed"), but no calendar unit; a `Span` holds days and
        // weeks, which are 24 and 168 hours here.
        let signed = match PARSER.parse_duration(text) {
            Ok(d) => d,
            Err(_) => {
                let span = PARSER
                    .parse_span(text)
                    .map_err(|e| format!("invalid duration {text:?}: {e}; {HOW}"))?;
                if span.get_years() != 0 || span.get_months() != 0 {
                    return Err(format!(
                        "invalid duration {text:?}: months and years have no fixed length; {HOW}"
                    ));
                }
                span.to_duration(SpanRelativeTo::days_are_24_hours())
                    .map_err(|e| format!("invalid duration {text:?}: {e}; {HOW}"))?
            }
        };
        if signed.is_negative() {
            return Err(format!(
                "invalid duration {text:?}: a duration cannot be negative; {HOW}"
            ));
        }
        // Not negative, so it fits; `MAX` stands in for nothing since it is refused below.
        let parsed = DurationSpec(Duration::try_from(signed).unwrap_or(Duration::MAX));
        if parsed > Self::MAX {
            return Err(format!(
                "duration {text:?} is longer than the limit of {}",
                Self::MAX
            ));
        }
        Ok(parsed)
    }
}

/// The largest unit the duration is a whole number of, so what was written as `5m`,
/// `90s` or `500ms` prints back the same (the plan JSON and `/status` show these), and
/// `1d` prints as `24h`.
impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        const UNITS: [(u128, &str); 6] = [
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
            (1, "ns"),
        ];
        if nanos == 0 {
            return f.write_str("0s");
        }
        let (size, unit) = UNITS
            .into_iter()
            .find(|(size, _)| nanos.checked_rem(*size) == Some(0))
            .unwrap_or((1, "ns"));
        write!(f, "{}{unit}", nanos / size)
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
            "description": "a duration in jiff's friendly format: a number and a unit, units from largest to smallest and each at most once, like 500ms, 30s, 5m, 1h30m, 1.5h or 1d (24h); at most 720h (30 days)",
            "type": "string",
            "pattern": super::patterns::DURATION
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Duration {
        DurationSpec::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .get()
    }

    #[test]
    fn durations_parse_as_documented() {
        for (text, secs) in [
            ("30s", 30),
            ("5m", 300),
            ("1h", 3600),
            ("1h30m", 5400),
            ("1h 30m", 5400),
            ("1.5h", 5400),
            ("90m", 5400),
            ("5 minutes", 300),
            ("0s", 0),
            ("1d", 86_400),
            ("1d12h", 129_600),
            ("1w", 604_800),
        ] {
            assert_eq!(parse(text), Duration::from_secs(secs), "{text}");
        }
    }

    #[test]
    fn sub_second_durations_are_kept() {
        assert_eq!(parse("500ms"), Duration::from_millis(500));
        assert_eq!(parse("1s500ms"), Duration::from_millis(1500));
        assert_eq!(parse("0.25s"), Duration::from_millis(250));
    }

    #[test]
    fn a_unit_written_twice_or_out_of_order_is_rejected() {
        for text in ["5m5m", "10s5m", "1h1d"] {
            let e = DurationSpec::parse(text).unwrap_err();
            assert!(e.contains("can't be repeated"), "{text}: {e}");
            assert!(e.contains(&format!("invalid duration {text:?}")), "{e}");
            assert!(e.contains("like 30s, 5m, 1h30m"), "{e}");
        }
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for text in [
            "",
            " ",
            "5",
            "m",
            "5x",
            "-1s",
            "1s ago",
            "PT1H",
            "1mo",
            "1y",
            "99999999999999999999h",
            // Fits in a u64 of seconds, but not in a deadline.
            "999999999999h",
            "721h",
            "720h1s",
            "720h1ms",
            "31d",
            "18446744073709551615s",
        ] {
            assert!(
                DurationSpec::parse(text).is_err(),
                "{text} should be rejected"
            );
        }
        let e = DurationSpec::parse("-1s").unwrap_err();
        assert!(e.contains("cannot be negative"), "{e}");
        let e = DurationSpec::parse("1mo").unwrap_err();
        assert!(e.contains("no fixed length"), "{e}");
    }

    #[test]
    fn the_longest_duration_accepted_is_thirty_days() {
        assert_eq!(DurationSpec::parse("720h"), Ok(DurationSpec::MAX));
        assert_eq!(DurationSpec::parse("30d"), Ok(DurationSpec::MAX));
        assert_eq!(DurationSpec::parse("719h59m60s"), Ok(DurationSpec::MAX));
        for text in ["999999999999h", "721h", "31d", "5w"] {
            let e = DurationSpec::parse(text).unwrap_err();
            assert!(e.contains("longer than the limit of 720h"), "{text}: {e}");
        }
    }

    #[test]
    fn durations_print_in_their_largest_whole_unit() {
        for text in ["30s", "5m", "1h", "90s", "90m", "0s", "500ms", "1500ms"] {
            assert_eq!(DurationSpec::parse(text).unwrap().to_string(), text);
        }
        for (text, shown) in [("1d", "24h"), ("1h30m", "90m"), ("1.5s", "1500ms")] {
            assert_eq!(DurationSpec::parse(text).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn what_is_printed_parses_back_to_the_same_duration() {
        for text in ["1us", "7ns", "2h", "1d", "0.5s", "720h"] {
            let d = DurationSpec::parse(text).unwrap();
            assert_eq!(DurationSpec::parse(&d.to_string()), Ok(d), "{text}");
        }
    }
}
