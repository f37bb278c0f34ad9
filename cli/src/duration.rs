//! Durations on the command line: `24h`, `90m`, `3600s`, `365d`.

use std::time::Duration;

/// Parses `24h`, `90m`, `3600s` or `365d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration like 24h, 90m, 3600s or 365d");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 24 * 3600,
        _ => return Err(bad()),
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("3600s"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_duration("365d"), Ok(Duration::from_secs(31_536_000)));
        for bad in ["", "24", "h", "1.5h", "-1h", "10x", "5 h"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("24h, 90m, 3600s or 365d"), "{bad:?}: {err}");
        }
        assert!(parse_duration("99999999999999999d").is_err());
    }
}
