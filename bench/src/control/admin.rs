//! Reading admin endpoints: a proxy's `/metrics` and the controller's `/index`, over one
//! plain HTTP/1.0 request per connection, cheap enough to poll every millisecond.

use serde::Deserialize;
use std::{collections::BTreeMap, net::SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Connecting, sending or reading failed.
    #[error("GET http://{addr}{path}: {source}")]
    Io {
        /// The admin address.
        addr: SocketAddr,
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The answer was not `200 OK` with the expected body.
    #[error("GET http://{addr}{path}: {what}")]
    Bad {
        /// The admin address.
        addr: SocketAddr,
        /// The path.
        path: String,
        /// What came back instead.
        what: String,
    },
}

/// `GET path` on `addr` on a new connection; the body of a `200 OK`.
pub async fn get(addr: SocketAddr, path: &str) -> Result<String, AdminError> {
    let io = |source| AdminError::Io {
        addr,
        path: path.to_string(),
        source,
    };
    let mut tcp = tokio::net::TcpStream::connect(addr).await.map_err(io)?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.map_err(io)?;
    let mut raw = Vec::with_capacity(16 * 1024);
    tcp.read_to_end(&mut raw).await.map_err(io)?;
    let text = String::from_utf8_lossy(&raw);
    let bad = |what: String| AdminError::Bad {
        addr,
        path: path.to_string(),
        what,
    };
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad(format!("not an HTTP response: {text:?}")))?;
    let status = head.split(' ').nth(1).unwrap_or_default();
    if status != "200" {
        return Err(bad(format!("status {status}: {body}")));
    }
    Ok(body.to_string())
}

/// The `control_plane_updates_total` samples of `kind` (`outbound_policy`, `destination`) in a
/// proxy's `/metrics`: how many messages its streams of that kind have received.
pub fn updates(metrics: &str, kind: &str) -> u64 {
    let label = format!("kind=\"{kind}\"");
    weft_cli_local::metric_sum(metrics, "control_plane_updates_total", &[&label]) as u64
}

/// What the controller's `/index` says.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Index {
    /// Objects by kind (`services`, `pods`, …) and open `watches`.
    pub counts: BTreeMap<String, u64>,
    /// The files source's state.
    pub files: Files,
}

/// The files source's part of `/index`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Files {
    /// How many times the directory has been loaded.
    pub generation: u64,
    /// Documents that were skipped, and why.
    pub invalid: Vec<String>,
}

impl Index {
    /// Reads the controller's `/index` at `addr`.
    pub async fn get(addr: SocketAddr) -> Result<Self, AdminError> {
        let body = get(addr, "/index").await?;
        serde_json::from_str(&body).map_err(|e| AdminError::Bad {
            addr,
            path: "/index".to_string(),
            what: format!("unexpected JSON ({e}): {body}"),
        })
    }

    /// The count of `kind`, 0 when absent.
    pub fn count(&self, kind: &str) -> u64 {
        self.counts.get(kind).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_index_and_update_counters() {
        let index: Index = serde_json::from_str(
            r#"{"counts": {"services": 3, "watches": 0}, "files": {"generation": 7, "invalid": []}}"#,
        )
        .expect("the controller's /index shape");
        assert_eq!((index.count("services"), index.count("pods")), (3, 0));
        assert_eq!(index.files.generation, 7);

        let metrics = "# TYPE control_plane_updates counter\n\
            control_plane_updates_total{kind=\"outbound_policy\"} 4\n\
            control_plane_updates_total{kind=\"destination\"} 9\n";
        assert_eq!(updates(metrics, "outbound_policy"), 4);
        assert_eq!(updates(metrics, "destination"), 9);
        assert_eq!(updates("", "destination"), 0);
    }

    #[tokio::test]
    async fn gets_a_body_and_refuses_other_statuses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(async move {
            for answer in [
                "HTTP/1.0 200 OK\r\n\r\nhello",
                "HTTP/1.0 404 Not Found\r\n\r\nno",
            ] {
                let (mut tcp, _) = listener.accept().await.expect("a connection");
                let mut buf = [0u8; 1024];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(answer.as_bytes()).await;
            }
        });
        assert_eq!(get(addr, "/a").await.expect("200").as_str(), "hello");
        let error = get(addr, "/b").await.expect_err("404").to_string();
        assert_eq!(error, format!("GET http://{addr}/b: status 404: no"));
    }
}
