//! Kubernetes resource quantities (`100m`, `1.5`, `250Mi`, `1e3`): checked before they go into
//! a pod, so a typo in an annotation costs a warning rather than a refused pod.

/// Checks `text` is a non-negative quantity; returns it as given.
pub fn check(text: &str) -> Result<String, String> {
    parse(text).map(|_| text.to_string()).ok_or_else(|| {
        "not a Kubernetes quantity; expected e.g. 100m, 0.5, 64Mi or 1Gi".to_string()
    })
}

/// The value of a quantity checked by [`check`], for comparisons; 0 for anything else.
pub fn value(text: &str) -> f64 {
    parse(text).unwrap_or(0.0)
}

/// `<number><suffix>`: a decimal number, then a binary (`Ki`…`Ei`) or decimal (`m`, `k`…`E`)
/// suffix or a decimal exponent (`e3`, `E-2`).
fn parse(text: &str) -> Option<f64> {
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits_end);
    let number = number.strip_prefix('+').unwrap_or(number);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp => {
            let exp = exp.strip_prefix(['e', 'E'])?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            10f64.powi(exp.parse().ok()?)
        }
    };
    Some(n * scale)
}

#[cfg(test)]
mod tests {
    use super::{check, value};

    #[test]
    fn quantities() {
        for good in [
            "100m", "1", "0.5", "1.5", "250Mi", "1Gi", "2k", "1e3", "5E-1", ".5", "0",
        ] {
            assert_eq!(check(good), Ok(good.to_string()), "{good}");
        }
        for bad in [
            "", "m", "1.2.3", "-1", "100 m", "1mi", "1Gb", "1e", "1e+", "banana", "1Mi2",
        ] {
            assert!(check(bad).is_err(), "{bad:?} passed");
        }
        assert_eq!(value("100m"), 0.1);
        assert_eq!(value("1Ki"), 1024.0);
        assert_eq!(value("2e2"), 200.0);
        assert!(value("250Mi") > value("200M"));
    }
}
