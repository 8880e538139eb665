//! The JSON Schema patterns of the desired state's values: each one says in a regular
//! expression what a check of `validate` says in code, so that an editor or
//! check-jsonschema refuses what `validate` refuses (a test holds each pair to the same
//! verdicts). Where the code knows more than a pattern can say (a duration's limit, a
//! time zone in the bundled database), the pattern is the shape and `validate` the rest.

/// A 12-digit AWS account id (`is_account_id`).
pub(super) const ACCOUNT_ID: &str = r"^[0-9]{12}$";

/// An AWS region name like `us-east-1` (`looks_like_region`): three or more parts of
/// lowercase letters and digits, the last all digits.
pub(super) const REGION: &str = r"^[a-z0-9]+(-[a-z0-9]+)+-[0-9]+$";

/// An IAM role ARN (`looks_like_role_arn`): `arn:<partition>:iam::<12 digits>:role/...`.
pub(super) const ROLE_ARN: &str = r"^arn:[^:]*:iam:[^:]*:[0-9]{12}:role/";

/// An IAM role name, an optional path before it (`bad_role_name`): 1 to 64 of letters,
/// digits and `+=,.@_-` after the last `/`, no leading `/`.
pub(super) const ROLE_NAME: &str =
    r"^([A-Za-z0-9+=,.@_-][A-Za-z0-9+=,.@_/-]*/)?[A-Za-z0-9+=,.@_-]{1,64}$";

/// A cluster name or ARN in a rule: not blank, no whitespace.
pub(super) const CLUSTER_NAME: &str = r"^\S+$";

/// A time of day `HH:MM` (`parse_hhmm`), `24:00` the end of the day.
pub(super) const HHMM: &str = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$";

/// The shape of an IANA time zone name (`Europe/Berlin`, `Etc/GMT+5`, `UTC`); whether the
/// bundled database has it is `validate`'s to say.
pub(super) const TIME_ZONE: &str = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$";

/// A duration in jiff's friendly format (`DurationSpec::parse`): numbers with units from
/// weeks down to nanoseconds, or `HH:MM:SS`; no sign but `+`, no `ago`, no months or
/// years. Whether the units are in order and the total within its limit is `validate`'s
/// to say.
pub(super) const DURATION: &str = concat!(
    r"^\+?(",
    r"[0-9]+:[0-9]+:[0-9]+([.,][0-9]{1,9})?",
    r"|",
    // One number and unit, then more, each after an optional comma and spaces.
    r"[0-9]+[ \t\n\f\r]*([.,][0-9]{1,9})?[ \t\n\f\r]*",
    r"(weeks?|wks?|w|days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s|milliseconds?|millis?|msecs?|ms|microseconds?|micros?|usecs?|µsecs?|µs|us|nanoseconds?|nanos?|nsecs?|ns)",
    r"(,?[ \t\n\f\r]*[0-9]+[ \t\n\f\r]*([.,][0-9]{1,9})?[ \t\n\f\r]*",
    r"(weeks?|wks?|w|days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s|milliseconds?|millis?|msecs?|ms|microseconds?|micros?|usecs?|µsecs?|µs|us|nanoseconds?|nanos?|nsecs?|ns)",
    r")*",
    r"(,?[ \t\n\f\r]*[0-9]+:[0-9]+:[0-9]+([.,][0-9]{1,9})?)?",
    r")$"
);

#[cfg(test)]
mod tests {
    use super::super::targets::{bad_role_name, is_account_id};
    use super::super::validate::{looks_like_region, looks_like_role_arn, parse_hhmm};
    use super::super::{time_zone, DurationSpec};
    use super::*;

    fn matches(pattern: &str, value: &str) -> bool {
        regex::Regex::new(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .is_match(value)
    }

    /// The pattern and the check agree on every sample.
    fn agree(name: &str, pattern: &str, check: impl Fn(&str) -> bool, samples: &[&str]) {
        for sample in samples {
            assert_eq!(
                matches(pattern, sample),
                check(sample),
                "{name}: the pattern and validate disagree on {sample:?}"
            );
        }
    }

    #[test]
    fn each_pattern_accepts_what_its_check_accepts_and_refuses_what_it_refuses() {
        agree(
            "account id",
            ACCOUNT_ID,
            is_account_id,
            &[
                "111111111111",
                "011111111111",
                "11111111111",
                "1111111111111",
                "11111111111a",
                "",
                " 111111111111",
            ],
        );
        agree(
            "region",
            REGION,
            looks_like_region,
            &[
                "us-east-1",
                "eu-central-2",
                "us-gov-west-1",
                "cn-north-1",
                "ap-southeast-10",
                "useast1",
                "us-east",
                "US-EAST-1",
                "us--east-1",
                "us-east-1a",
                "-us-east-1",
                "us-east-1-",
                "us_east-1",
                "a-b-1",
                "",
            ],
        );
        agree(
            "role ARN",
            ROLE_ARN,
            looks_like_role_arn,
            &[
                "arn:aws:iam::111111111111:role/x",
                "arn:aws-cn:iam::111111111111:role/a/b:c",
                "arn::iam::111111111111:role/",
                "arn:aws:iam::11111111111:role/x",
                "arn:aws:iam::111111111111:user/x",
                "arn:aws:sts::111111111111:role/x",
                "aws:iam::111111111111:role/x",
                "arn:aws:iam:x:y:111111111111:role/x",
                "x",
            ],
        );
        agree(
            "role name",
            ROLE_NAME,
            |n| bad_role_name(n).is_none(),
            &[
                "gec",
                "path/to/gec",
                "a+=,.@_-",
                "a//b",
                &"r".repeat(64),
                &"r".repeat(65),
                &format!("p/{}", "r".repeat(64)),
                "",
                "/gec",
                "gec/",
                "arn:aws:iam::1:role/x",
                "with space",
                "ünï",
            ],
        );
        agree(
            "cluster name",
            CLUSTER_NAME,
            |n| !(n.trim().is_empty() || n.contains(char::is_whitespace)),
            &[
                "prod",
                "arn:aws:ecs:us-east-1:111111111111:cluster/prod",
                "",
                " ",
                "a b",
                "a\tb",
                "x ",
            ],
        );
        agree(
            "time of day",
            HHMM,
            |t| parse_hhmm(t).is_some(),
            &[
                "00:00", "09:30", "23:59", "24:00", "24:01", "25:00", "9:30", "09:60", "+1:30",
                "0930", "09:30:00", "",
            ],
        );
    }

    #[test]
    fn every_bundled_time_zone_has_the_shape_of_the_pattern() {
        let db = jiff::tz::TimeZoneDatabase::bundled();
        let names: Vec<String> = db.available().map(|n| n.to_string()).collect();
        assert!(names.len() > 300, "{} zones", names.len());
        for name in names
            .iter()
            .map(String::as_str)
            .chain(["utc", "europe/berlin"])
        {
            assert!(time_zone(Some(name)).is_some(), "{name}");
            assert!(matches(TIME_ZONE, name), "{name}");
        }
        for bad in [
            "",
            "/UTC",
            "Europe/",
            "Europe//Berlin",
            "Europe/Berlin ",
            "1Zone",
        ] {
            assert!(!matches(TIME_ZONE, bad), "{bad:?}");
        }
    }

    #[test]
    fn the_duration_pattern_accepts_every_duration_validate_accepts() {
        let good = [
            "30s",
            "5m",
            "1h",
            "1h30m",
            "1h 30m",
            "1.5h",
            "1,5h",
            "90m",
            "5 minutes",
            "0s",
            "1d",
            "1d12h",
            "1w",
            "500ms",
            "1s500ms",
            "0.25s",
            "1us",
            "7ns",
            "2 hours, 30 minutes",
            "1 day 02:00:00",
            "01:30:00",
            "+5m",
            "5µs",
            "3 secs",
            "720h",
            "30d",
        ];
        for text in good {
            assert!(
                DurationSpec::parse(text).is_ok(),
                "validate should accept {text:?}"
            );
            assert!(
                matches(DURATION, text),
                "the pattern should accept {text:?}"
            );
        }
        let bad = [
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
            "1 year",
            "5M",
            "s5",
            "1h-",
            "ten minutes",
            "30s ",
            " 30s",
            "30s\t",
            "5m\n",
            "1h 30m ",
        ];
        for text in bad {
            assert!(
                DurationSpec::parse(text).is_err(),
                "validate should refuse {text:?}"
            );
            assert!(
                !matches(DURATION, text),
                "the pattern should refuse {text:?}"
            );
        }
    }
}
