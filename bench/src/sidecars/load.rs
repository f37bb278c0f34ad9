//! One `weft-load` run inside a client pod, and what it printed.

use crate::control::Error;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use weft_cli_local::{Pod, bin_path};

/// How one run loads its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSpec {
    /// Requests per second, or `None` for closed loop (`--rate max`).
    pub rate: Option<u32>,
    /// How long to measure.
    pub duration: Duration,
    /// How long to send first without measuring.
    pub warmup: Duration,
    /// Connections (or one-request connections open at once).
    pub connections: usize,
    /// A new connection for every request (`--new-connection-per-request`).
    pub new_connection_per_request: bool,
}

/// What `weft-load --json` printed: the fields the benchmark reads, and the rest as it was.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct LoadRun {
    /// Requests in the measured part.
    pub sent: u64,
    /// Of those, 2xx responses.
    pub ok: u64,
    /// Of those, other responses.
    pub non_2xx: u64,
    /// Of those, requests without a response.
    pub errors: u64,
    /// Seconds of warm-up before the measured part.
    pub warmup_s: f64,
    /// Seconds from the end of the warmup to the last response.
    pub elapsed_s: f64,
    /// Responses per second (connections per second with one request each).
    pub achieved_rate: f64,
    /// Latency percentiles in milliseconds.
    pub latency_ms: LatencyMs,
    /// Every other field, kept for the JSON report.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// `weft-load`'s latency percentiles, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct LatencyMs {
    /// The median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// The slowest.
    pub max: f64,
}

// === impl LoadSpec ===

impl LoadSpec {
    /// `rate` requests per second over `connections` keep-alive connections.
    pub fn open_loop(rate: u32, duration: Duration, warmup: Duration, connections: usize) -> Self {
        Self {
            rate: Some(rate),
            duration,
            warmup,
            connections,
            new_connection_per_request: false,
        }
    }

    /// As fast as `connections` keep-alive connections allow.
    pub fn closed_loop(duration: Duration, warmup: Duration, connections: usize) -> Self {
        Self {
            rate: None,
            duration,
            warmup,
            connections,
            new_connection_per_request: false,
        }
    }

    /// The same with a new connection for every request.
    pub fn one_request_connections(self) -> Self {
        Self {
            new_connection_per_request: true,
            ..self
        }
    }

    /// `weft-load`'s arguments for a run against `url`.
    pub fn args(&self, url: &str) -> Vec<String> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut args = vec![
            "--url".to_string(),
            url.to_string(),
            "--rate".to_string(),
            self.rate
                .map_or_else(|| "max".to_string(), |r| r.to_string()),
            "--duration".to_string(),
            ms(self.duration),
            "--warmup".to_string(),
            ms(self.warmup),
            "--connections".to_string(),
            self.connections.to_string(),
            "--json".to_string(),
        ];
        if self.new_connection_per_request {
            args.push("--new-connection-per-request".to_string());
        }
        args
    }
}

/// Runs `weft-load` in `pod` against `url`. A run with any failed request is an error: a
/// benchmark that loses requests measures the wrong thing.
pub fn run(pod: &Pod, url: &str, spec: &LoadSpec) -> Result<LoadRun, Error> {
    let bin = bin_path("weft-load").map_err(Error::setup("find weft-load"))?;
    let args = spec.args(url);
    let out = pod
        .command(&bin.to_string_lossy())
        .args(&args)
        .output()
        .map_err(Error::setup(format!("run weft-load in pod {}", pod.name)))?;
    let failed = |what: String| Error::Failed {
        what: format!("weft-load {} in pod {}: {what}", args.join(" "), pod.name),
        log: String::new(),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(failed(format!("{}: {}", out.status, stderr.trim())));
    }
    let run: LoadRun = serde_json::from_slice(&out.stdout).map_err(|e| {
        let stdout = String::from_utf8_lossy(&out.stdout);
        failed(format!("printed no report ({e}): {}", stdout.trim()))
    })?;
    if run.errors > 0 || run.non_2xx > 0 {
        let first = run.rest.get("first_error").cloned().unwrap_or_default();
        return Err(failed(format!(
            "{} of {} requests failed ({} errors, {} non-2xx); first error: {first}",
            run.errors + run.non_2xx,
            run.sent,
            run.errors,
            run.non_2xx
        )));
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_of_each_kind_of_run() {
        let open = LoadSpec::open_loop(1000, Duration::from_secs(10), Duration::from_secs(2), 16);
        assert_eq!(
            open.args("http://10.43.0.50:8080/").join(" "),
            "--url http://10.43.0.50:8080/ --rate 1000 --duration 10000ms --warmup 2000ms \
             --connections 16 --json"
        );
        let connect = LoadSpec::closed_loop(Duration::from_secs(3), Duration::ZERO, 8)
            .one_request_connections();
        assert_eq!(
            connect.args("http://a:1/").join(" "),
            "--url http://a:1/ --rate max --duration 3000ms --warmup 0ms --connections 8 --json \
             --new-connection-per-request"
        );
    }

    #[test]
    fn reads_what_weft_load_prints() {
        let printed = r#"{"url":"http://10.0.0.2:8080/","mode":"closed-loop","target_rate":null,
            "connections":16,"new_connection_per_request":true,"duration_s":3.0,"warmup_s":1.0,
            "sent":9000,"ok":9000,"non_2xx":0,"errors":0,
            "error_kinds":{"connect":0,"http":0,"timeout":0},"first_error":null,
            "elapsed_s":3.001,"achieved_rate":2999.0,
            "latency_ms":{"p50":1.5,"p90":2.0,"p99":3.25,"p99_9":4.0,"max":9.5}}"#;
        let run: LoadRun = serde_json::from_str(printed).expect("weft-load's report parses");
        assert_eq!((run.sent, run.ok, run.errors), (9000, 9000, 0));
        assert_eq!(run.achieved_rate, 2999.0);
        assert_eq!(run.latency_ms.p99, 3.25);
        // Nothing is lost on the way to the benchmark's own JSON.
        let again = serde_json::to_value(&run).expect("serializes");
        let original: serde_json::Value = serde_json::from_str(printed).expect("valid JSON");
        assert_eq!(again, original);
    }
}
