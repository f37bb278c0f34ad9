//! The `workload` a proxy names itself by in policy requests.
//!
//! Proxies send it either as `namespace/pod` or as JSON, `{"ns":"shop","pod":"web-1"}` (what
//! linkerd2-proxy sends). Linkerd's older `namespace:pod` form is accepted too, so any proxy that
//! speaks the API can be served.

use std::{fmt, str::FromStr};

/// A pod, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
}

/// A `workload` string that names no pod.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidWorkload {
    /// Neither form.
    #[error(
        "invalid workload {0:?}: expected \"<namespace>/<pod>\" or {{\"ns\":\"<namespace>\",\"pod\":\"<pod>\"}}"
    )]
    Syntax(String),
    /// JSON that does not name a pod.
    #[error(
        "invalid workload {workload:?}: {reason}; expected {{\"ns\":\"<namespace>\",\"pod\":\"<pod>\"}}"
    )]
    Json {
        /// What was sent.
        workload: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl FromStr for Workload {
    type Err = InvalidWorkload;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim_start().starts_with('{') {
            return parse_json(s);
        }
        let (namespace, pod) = s
            .split_once('/')
            .or_else(|| s.split_once(':'))
            .ok_or_else(|| InvalidWorkload::Syntax(s.to_string()))?;
        let valid = |part: &str| !part.is_empty() && !part.contains(['/', ':', ' ']);
        if !valid(namespace) || !valid(pod) {
            return Err(InvalidWorkload::Syntax(s.to_string()));
        }
        Ok(Self {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
        })
    }
}

fn parse_json(s: &str) -> Result<Workload, InvalidWorkload> {
    let invalid = |reason: &str| InvalidWorkload::Json {
        workload: s.to_string(),
        reason: reason.to_string(),
    };
    let value: serde_json::Value =
        serde_json::from_str(s).map_err(|e| invalid(&format!("not JSON ({e})")))?;
    let object = value.as_object().ok_or_else(|| invalid("not an object"))?;
    let field = |name: &str| match object.get(name) {
        None => Err(invalid(&format!("no \"{name}\""))),
        Some(serde_json::Value::String(v)) if !v.is_empty() => Ok(v.clone()),
        Some(_) => Err(invalid(&format!("\"{name}\" is not a non-empty string"))),
    };
    if object.contains_key("external_workload") {
        return Err(invalid("external workloads are not supported, only pods"));
    }
    Ok(Workload {
        namespace: field("ns")?,
        pod: field("pod")?,
    })
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.pod)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> Workload {
        Workload {
            namespace: "shop".to_string(),
            pod: "web-1".to_string(),
        }
    }

    #[test]
    fn parses_both_forms() {
        for ok in [
            "shop/web-1",
            "shop:web-1",
            r#"{"ns":"shop","pod":"web-1"}"#,
            r#" { "pod": "web-1", "ns": "shop" } "#,
        ] {
            assert_eq!(ok.parse::<Workload>(), Ok(web()), "{ok}");
        }
        assert_eq!(web().to_string(), "shop/web-1");
    }

    #[test]
    fn rejects_garbage_with_what_is_expected() {
        for bad in ["", "web-1", "/web-1", "shop/", "shop/web/1", "a b/c"] {
            let err = bad.parse::<Workload>().expect_err(bad);
            assert!(matches!(err, InvalidWorkload::Syntax(_)), "{bad}: {err:?}");
            assert!(err.to_string().contains("<namespace>/<pod>"), "{err}");
        }
        for (bad, reason) in [
            ("{", "not JSON"),
            (r#"{"ns":"shop"}"#, "no \"pod\""),
            (r#"{"pod":"web-1"}"#, "no \"ns\""),
            (
                r#"{"ns":"shop","pod":7}"#,
                "\"pod\" is not a non-empty string",
            ),
            (
                r#"{"ns":"","pod":"web-1"}"#,
                "\"ns\" is not a non-empty string",
            ),
            (
                r#"{"ns":"shop","external_workload":"vm"}"#,
                "external workloads",
            ),
        ] {
            let err = bad.parse::<Workload>().expect_err(bad);
            assert!(err.to_string().contains(reason), "{bad}: {err}");
            assert!(err.to_string().contains(r#"{"ns":"#), "{err}");
        }
        let not_object = "[1]".parse::<Workload>();
        assert!(not_object.is_err(), "a JSON array is not a workload");
    }
}
