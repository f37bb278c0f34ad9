//! The `weft-load` command line, kept in the library so its parsing can be tested.

use crate::{LoadConfig, Rate, Target, parse::parse_duration};
use std::{num::NonZeroUsize, time::Duration};

/// Open-loop HTTP/1.1 load generator: sends requests at a fixed rate over keep-alive
/// connections and reports latency measured from when each request was due.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "weft-load", version)]
pub struct LoadArgs {
    /// URL to request, plain http only, e.g. `http://10.1.2.3:8080/`.
    #[arg(long, env = "WEFT_LOAD_URL")]
    pub url: Target,

    /// Requests per second (open loop), or `max` to send each connection's next request as
    /// soon as its last response is read (closed loop).
    #[arg(long, env = "WEFT_LOAD_RATE")]
    pub rate: Rate,

    /// How long to measure, e.g. `10s`, `500ms`, `2m`.
    #[arg(long, env = "WEFT_LOAD_DURATION", default_value = "10s", value_parser = parse_nonzero_duration)]
    pub duration: Duration,

    /// How long to send before measuring; those requests are not reported.
    #[arg(long, env = "WEFT_LOAD_WARMUP", default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Keep-alive connections to spread requests over.
    #[arg(long, env = "WEFT_LOAD_CONNECTIONS", default_value = "16", value_parser = parse_count)]
    pub connections: NonZeroUsize,

    /// Open a new connection for every request and let the server close it after answering
    /// (`Connection: close`); `--connections` is then how many are open at once. Measures
    /// connection set-up: with `--rate max`, new connections per second.
    #[arg(long, env = "WEFT_LOAD_NEW_CONNECTION_PER_REQUEST")]
    pub new_connection_per_request: bool,

    /// Send `POST`s with a body of this many bytes instead of `GET`s.
    #[arg(long, env = "WEFT_LOAD_BODY_BYTES", default_value_t = 0)]
    pub body_bytes: usize,

    /// A request without a complete response this long after it was due counts as an error.
    #[arg(long, env = "WEFT_LOAD_TIMEOUT", default_value = "10s", value_parser = parse_nonzero_duration)]
    pub timeout: Duration,

    /// Runtime worker threads. One disturbs the system being measured least.
    #[arg(long, env = "WEFT_LOAD_THREADS", default_value = "1", value_parser = parse_count)]
    pub threads: NonZeroUsize,

    /// Print the report as one JSON object instead of text.
    #[arg(long, env = "WEFT_LOAD_JSON")]
    pub json: bool,
}

// === impl LoadArgs ===

impl LoadArgs {
    /// The run these arguments describe.
    pub fn config(&self) -> LoadConfig {
        LoadConfig {
            target: self.url.clone(),
            rate: self.rate,
            duration: self.duration,
            warmup: self.warmup,
            connections: self.connections,
            new_connection_per_request: self.new_connection_per_request,
            body_bytes: self.body_bytes,
            timeout: self.timeout,
        }
    }
}

fn parse_nonzero_duration(input: &str) -> Result<Duration, String> {
    match parse_duration(input) {
        Ok(Duration::ZERO) => Err(format!("`{input}` is zero; it must be longer than that")),
        Ok(duration) => Ok(duration),
        Err(error) => Err(error.to_string()),
    }
}

/// Parses a count of connections or threads.
pub fn parse_count(input: &str) -> Result<NonZeroUsize, String> {
    input
        .trim()
        .parse::<usize>()
        .ok()
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| format!("`{input}` is not a whole number of at least 1"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Parses `args`, with a valid `--url` unless they give one.
    fn parse(args: &[&str]) -> Result<LoadArgs, clap::Error> {
        let url: &[&str] = if args.contains(&"--url") {
            &[]
        } else {
            &["--url", "http://127.0.0.1:8080/"]
        };
        LoadArgs::try_parse_from(["weft-load"].iter().chain(url).chain(args))
    }

    fn error(args: &[&str]) -> String {
        parse(args).expect_err("arguments are invalid").to_string()
    }

    #[test]
    fn defaults_and_full_flags() {
        let args = parse(&["--rate", "1000"]).expect("minimal flags parse");
        let config = args.config();
        assert_eq!(config.rate.to_string(), "1000 req/s");
        assert_eq!(config.duration, Duration::from_secs(10));
        assert_eq!(config.warmup, Duration::ZERO);
        assert_eq!(config.connections.get(), 16);
        assert_eq!(args.threads.get(), 1);
        assert!(!args.json);
        assert!(!config.new_connection_per_request);

        let args = parse(&[
            "--rate",
            "max",
            "--duration",
            "2m",
            "--warmup",
            "500ms",
            "--connections",
            "4",
            "--body-bytes",
            "128",
            "--timeout",
            "1s",
            "--threads",
            "2",
            "--json",
            "--new-connection-per-request",
        ])
        .expect("all flags parse");
        assert!(args.config().new_connection_per_request);
        assert_eq!(args.rate, Rate::Max);
        assert_eq!(args.duration, Duration::from_secs(120));
        assert_eq!(args.warmup, Duration::from_millis(500));
        assert_eq!((args.connections.get(), args.body_bytes), (4, 128));
        assert_eq!(args.timeout, Duration::from_secs(1));
        assert!(args.json);
    }

    #[test]
    fn bad_values_are_explained() {
        let e = error(&["--rate", "0"]);
        assert!(e.contains("a rate of 0 would send nothing"), "{e}");
        let e = error(&["--rate", "lots"]);
        assert!(e.contains("expected `max` or a whole number"), "{e}");
        let e = error(&["--rate", "10", "--duration", "10"]);
        assert!(e.contains("the unit is missing"), "{e}");
        let e = error(&["--rate", "10", "--duration", "0s"]);
        assert!(e.contains("`0s` is zero"), "{e}");
        let e = error(&["--rate", "10", "--warmup", "2x"]);
        assert!(e.contains("the unit is not one of ms, s, m, h"), "{e}");
        let e = error(&["--rate", "10", "--connections", "0"]);
        assert!(e.contains("`0` is not a whole number of at least 1"), "{e}");
        let e = error(&["--rate", "10", "--url", "https://a/"]);
        assert!(e.contains("https is not supported"), "{e}");
        let e = error(&[]);
        assert!(e.contains("--rate"), "{e}");
    }
}
