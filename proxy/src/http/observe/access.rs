//! Access log lines on stdout, as JSON or in Apache's combined format (plus the duration in
//! microseconds). Lines are written by a thread of their own through a bounded queue, so a
//! slow stdout never blocks a request; lines that do not fit are dropped and counted.

use super::ConnInfo;
use crate::{
    config::AccessLog,
    http::{ProxyBody, notes::Notes},
    metrics::Direction,
};
use http::{Request, Response};
use prometheus_client::metrics::counter::Counter;
use std::{
    fmt::Write as _,
    io::Write as _,
    sync::mpsc,
    time::{Duration, SystemTime},
};

/// Lines waiting for the writer at most.
const QUEUE: usize = 16 * 1024;

/// Sends finished lines to the writer thread.
#[derive(Clone, Debug)]
pub struct AccessLogger {
    format: AccessLog,
    tx: mpsc::SyncSender<String>,
    dropped: Counter,
}

impl AccessLogger {
    /// Starts the writer for `format`; `None` when access logs are off. Lines that find the
    /// queue full count in `dropped`.
    pub fn start(format: AccessLog, dropped: Counter) -> Option<Self> {
        if format == AccessLog::Off {
            return None;
        }
        let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("weft-access-log".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                while let Ok(line) = rx.recv() {
                    let _ = out.write_all(line.as_bytes());
                    // Flush when the queue is empty: batches under load, prompt when quiet.
                    let mut more = rx.try_iter();
                    for line in more.by_ref() {
                        let _ = out.write_all(line.as_bytes());
                    }
                    let _ = out.flush();
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the access log writer; access logs are off");
            return None;
        }
        Some(Self {
            format,
            tx,
            dropped,
        })
    }

    /// Queues a finished line.
    pub fn write(&self, line: Line) {
        let text = match self.format {
            AccessLog::Json => line.json(),
            AccessLog::Apache | AccessLog::Off => line.apache(),
        };
        if self.tx.try_send(text).is_err() {
            self.dropped.inc();
        }
    }
}

/// What one line says.
#[derive(Debug)]
pub struct Line {
    at: SystemTime,
    direction: Direction,
    client: std::net::SocketAddr,
    target: std::net::SocketAddr,
    method: String,
    uri: String,
    version: &'static str,
    host: String,
    user_agent: String,
    referer: String,
    trace_id: String,
    client_id: Option<std::sync::Arc<str>>,
    status: u16,
    bytes: Option<u64>,
    took: Duration,
    notes: Notes,
}

impl Line {
    /// The request's part of the line, as it is sent on (after the span's context is set).
    pub fn of<B>(req: &Request<B>, conn: &ConnInfo, at: SystemTime) -> Self {
        let header = |name: http::header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let traceparent = header(http::HeaderName::from_static("traceparent"));
        Self {
            at,
            direction: conn.direction,
            client: conn.peer,
            target: conn.target,
            method: req.method().to_string(),
            uri: req.uri().to_string(),
            version: match req.version() {
                http::Version::HTTP_2 => "HTTP/2.0",
                http::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            host: header(http::header::HOST),
            user_agent: header(http::header::USER_AGENT),
            referer: header(http::header::REFERER),
            trace_id: traceparent.get(3..35).unwrap_or("").to_string(),
            client_id: conn.client_id.clone(),
            status: 0,
            bytes: None,
            took: Duration::ZERO,
            notes: Notes::default(),
        }
    }

    /// The line once the response (`None`: none) is back.
    pub fn finish(
        mut self,
        rsp: Option<&Response<ProxyBody>>,
        notes: &Notes,
        took: Duration,
    ) -> Self {
        if let Some(rsp) = rsp {
            self.status = rsp.status().as_u16();
            self.bytes = rsp
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok());
        }
        self.notes = notes.clone();
        self.took = took;
        self
    }

    /// One JSON object and a newline.
    pub fn json(&self) -> String {
        let opt = |v: &Option<std::sync::Arc<str>>| v.as_deref().map(str::to_string);
        let value = serde_json::json!({
            "timestamp": rfc3339(self.at),
            "direction": self.direction.as_str(),
            "client": self.client.to_string(),
            "target": self.target.to_string(),
            "method": self.method,
            "uri": self.uri,
            "protocol": self.version,
            "host": self.host,
            "user_agent": self.user_agent,
            "status": self.status,
            "bytes": self.bytes,
            "duration_us": self.took.as_micros() as u64,
            "route": opt(&self.notes.route),
            "backend": opt(&self.notes.backend),
            "endpoint": self.notes.endpoint.map(|e| e.to_string()),
            "retries": self.notes.retries,
            "client_id": opt(&self.client_id),
            "server_id": opt(&self.notes.server_id),
            "trace_id": (!self.trace_id.is_empty()).then_some(&self.trace_id),
        });
        let mut line = value.to_string();
        line.push('\n');
        line
    }

    /// Apache's combined format, then the duration in microseconds (`%D`).
    pub fn apache(&self) -> String {
        let mut line = String::with_capacity(160);
        let _ = write!(
            line,
            "{} - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\" {}",
            self.client.ip(),
            apache_time(self.at),
            self.method,
            self.uri,
            self.version,
            self.status,
            self.bytes.map_or("-".to_string(), |b| b.to_string()),
            dash(&self.referer),
            dash(&self.user_agent),
            self.took.as_micros()
        );
        line.push('\n');
        line
    }
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn rfc3339(at: SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `10/Oct/2000:13:55:36 +0000`.
fn apache_time(at: SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        t.day(),
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests;
