//! A minimal HTTP/1.0 client for the proxies' admin endpoints, and a metrics reader.

use crate::pod::Pod;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` on `addr` from inside `pod`: the status and the body.
pub fn get(pod: &Pod, addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    pod.run(move || async move {
        let mut tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw).to_string();
        let bad = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP response: {text:?}"),
            )
        };
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(bad)?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    })
}

/// The sum of the samples of metric `name` whose label text contains every one of `labels`
/// (e.g. `direction="inbound"`).
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            if !(rest.is_empty() || rest.starts_with('{')) {
                return None;
            }
            labels
                .iter()
                .all(|want| rest.contains(want))
                .then(|| value.parse::<f64>().ok())?
        })
        // `f64::sum` of nothing is -0.0; add 0.0 so an absent metric prints as 0.
        .sum::<f64>()
        + 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_matching_series_only() {
        let text = "# HELP x\nrequest_total{direction=\"inbound\",a=\"1\"} 2\nrequest_total{direction=\"outbound\"} 5\nrequest_total_other 9\nrequest_total{direction=\"inbound\",a=\"2\"} 3\n";
        assert_eq!(
            metric_sum(text, "request_total", &["direction=\"inbound\""]),
            5.0
        );
        assert_eq!(metric_sum(text, "request_total", &[]), 10.0);
        assert_eq!(metric_sum(text, "response_total", &[]), 0.0);
    }
}
