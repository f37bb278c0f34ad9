//! Durations on the command line: a whole number and a unit, `60s`, `90m`, `24h`, `7d`.

use std::time::Duration;

/// A duration flag that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid duration {0:?}: expected a positive whole number and a unit s, m, h or d (60s, 90m, 24h)"
)]
pub struct InvalidDuration(pub String);

/// Parses `60s`, `90m`, `24h` or `7d`; zero and anything else are refused.
pub fn parse_duration(s: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration(s.to_string());
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
    let (n, unit) = s.split_at(unit_at);
    let n: u64 = n.parse().map_err(|_| invalid())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(60 * 60),
        "d" => n.checked_mul(24 * 60 * 60),
        _ => None,
    }
    .filter(|secs| *secs > 0)
    .ok_or_else(invalid)?;
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(90 * 60)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(24 * 3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
    }

    #[test]
    fn refusals_name_the_value() {
        for bad in [
            "",
            "24",
            "h",
            "0h",
            "1.5h",
            "-1h",
            "24 h",
            "24hours",
            "99999999999999999999d",
        ] {
            assert_eq!(
                parse_duration(bad),
                Err(InvalidDuration(bad.to_string())),
                "{bad}"
            );
        }
        assert!(
            parse_duration("5x")
                .unwrap_err()
                .to_string()
                .contains("60s, 90m, 24h")
        );
    }
}
