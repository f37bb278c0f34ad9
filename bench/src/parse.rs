//! Parsing of the command-line values that are not plain numbers: durations and rates.

use std::{fmt, num::NonZeroU64, str::FromStr, time::Duration};

/// What `--duration`, `--warmup` and `--timeout` accept, for error messages.
const DURATION_FORMS: &str =
    "a whole number followed by `ms`, `s`, `m` or `h`, e.g. `500ms`, `10s`, `2m`";

/// A duration that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{input}`: {reason}; expected {DURATION_FORMS}")]
pub struct InvalidDuration {
    /// The text as given.
    pub input: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

/// A rate that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid rate `{input}`: {reason}; expected `max` or a whole number of requests per second \
     of at least 1, e.g. `1000`"
)]
pub struct InvalidRate {
    /// The text as given.
    pub input: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

/// Parses a duration such as `10s`, `500ms`, `2m` or `1h`.
///
/// Whole numbers only, and the unit is required: a bare `10` is ambiguous between the units
/// people commonly mean, so it is refused rather than guessed.
pub fn parse_duration(input: &str) -> Result<Duration, InvalidDuration> {
    let invalid = |reason| InvalidDuration {
        input: input.to_owned(),
        reason,
    };
    let text = input.trim();
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| {
        invalid(if text.is_empty() {
            "it is empty"
        } else {
            "the unit is missing"
        })
    })?;
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(invalid("it does not start with a number"));
    }
    let number: u64 = number
        .parse()
        .map_err(|_| invalid("the number is too large"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(invalid("the unit is not one of ms, s, m, h")),
    };
    let millis = number
        .checked_mul(millis_per_unit)
        .ok_or_else(|| invalid("the number is too large"))?;
    Ok(Duration::from_millis(millis))
}

/// How fast to send requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// Open loop: this many requests per second, scheduled whether or not responses arrive.
    PerSecond(NonZeroU64),
    /// Closed loop: each connection sends its next request as soon as the previous response is
    /// read, so the rate is whatever the target sustains.
    Max,
}

// === impl Rate ===

impl FromStr for Rate {
    type Err = InvalidRate;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidRate {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        if text.eq_ignore_ascii_case("max") {
            return Ok(Self::Max);
        }
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("it is not a whole number"));
        }
        let n: u64 = text
            .parse()
            .map_err(|_| invalid("the number is too large"))?;
        NonZeroU64::new(n)
            .map(Self::PerSecond)
            .ok_or_else(|| invalid("a rate of 0 would send nothing"))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PerSecond(n) => write!(f, "{n} req/s"),
            Self::Max => f.write_str("max"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 3s "), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn bad_durations_say_what_is_wrong() {
        let reason = |s: &str| parse_duration(s).expect_err(s).reason;
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason("10"), "the unit is missing");
        assert_eq!(reason("s"), "it does not start with a number");
        assert_eq!(reason("-1s"), "it does not start with a number");
        assert_eq!(reason("1.5s"), "the unit is not one of ms, s, m, h");
        assert_eq!(reason("10sec"), "the unit is not one of ms, s, m, h");
        assert_eq!(reason("99999999999999999999s"), "the number is too large");
        assert_eq!(reason("18446744073709551615h"), "the number is too large");

        let message = parse_duration("10").expect_err("no unit").to_string();
        assert!(message.contains("`10`"), "{message}");
        assert!(message.contains("`500ms`"), "{message}");
    }

    #[test]
    fn rates() {
        assert_eq!("max".parse(), Ok(Rate::Max));
        assert_eq!("MAX".parse(), Ok(Rate::Max));
        let thousand = NonZeroU64::new(1000).expect("1000 is not zero");
        assert_eq!("1000".parse(), Ok(Rate::PerSecond(thousand)));
    }

    #[test]
    fn bad_rates_say_what_is_wrong() {
        let reason = |s: &str| s.parse::<Rate>().expect_err(s).reason;
        assert_eq!(reason("0"), "a rate of 0 would send nothing");
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason("fast"), "it is not a whole number");
        assert_eq!(reason("-5"), "it is not a whole number");
        assert_eq!(reason("1.5"), "it is not a whole number");
        assert_eq!(reason("99999999999999999999"), "the number is too large");

        let message = "0".parse::<Rate>().expect_err("zero").to_string();
        assert!(message.contains("`max`"), "{message}");
    }
}
