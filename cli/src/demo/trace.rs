//! The demo's tracing step: every sidecar exports a span per request and hop over OTLP/gRPC to
//! the receiver in the `otel` pod. One GET of `/checkout`, on which the web app calls its
//! backend and passes the trace headers on, is shown as a tree across the four hops. With
//! `--otlp`, everything the receiver kept is relayed to a real collector at the end.

use anyhow::{Context, bail};
use std::{
    collections::HashSet,
    time::{Duration, Instant},
};
use weft_cli_local::{
    otlp::{self, CollectorAddr, Receiver, Span, SpanKind, Trace},
    shop::{PORT, Shop, WEB_HOST},
    traffic,
};

use super::app::TRACE_ID;

#[cfg(test)]
mod tests;

/// How long the four spans may take to arrive (each proxy exports within 200 ms).
const PATIENCE: Duration = Duration::from_secs(5);
/// How long each relayed export, and connecting to the collector, may take.
const RELAY_TIMEOUT: Duration = Duration::from_secs(5);
/// No export for this long means the proxies have sent what they had.
const QUIET: Duration = Duration::from_millis(700);

/// Sends one traced request through client → web → backend and prints its trace; fails if
/// the trace is not the four spans of those hops, correctly parented.
pub fn run(shop: &Shop) -> anyhow::Result<()> {
    let receiver = shop.otlp.as_ref().context("the demo's shop traces")?;
    println!(
        "Tracing: every sidecar exports a span per request and hop to the OTLP/gRPC receiver in pod otel ({})",
        receiver.addr()
    );
    println!(
        "  client -> web -> backend: GET http://{WEB_HOST}:{PORT}/checkout, on which the web app calls"
    );
    println!("  the other web version's Service by name, passing the trace headers on");
    let mut request = Shop::web_request("/checkout");
    request.tally_header = TRACE_ID.to_string();
    let tally = traffic::tally(&shop.client.pod, &request, 1, 1);
    let Some(trace_id) = tally.by_value.keys().next().cloned() else {
        bail!("GET /checkout failed: {:?}", tally.errors);
    };
    if trace_id == "-" {
        bail!("the web app was called without trace context: its sidecar started no trace");
    }
    let spans = receiver
        .wait_for(|spans| of_trace(spans, &trace_id).count() >= 4, PATIENCE)
        .map_err(|e| {
            let have: Vec<Span> = of_trace(&receiver.spans(), &trace_id).cloned().collect();
            anyhow::anyhow!("trace {trace_id} is incomplete: {e}\n{}", rendered(&have))
        })?;
    let spans: Vec<Span> = of_trace(&spans, &trace_id).cloned().collect();
    let hops = match otlp::traces(&spans).as_slice() {
        [trace] => hops(trace),
        _ => Err("its spans are not one trace".to_string()),
    };
    let hops = hops.map_err(|why| {
        anyhow::anyhow!(
            "trace {trace_id} is not client -> web -> backend: {why}\n{}",
            rendered(&spans)
        )
    })?;
    for line in rendered(&spans).lines() {
        println!("  {line}");
    }
    println!(
        "  The client's sidecar made the CLIENT span, {web}'s the SERVER span and the CLIENT span of its app's call,\n  \
         {backend}'s the last SERVER span: the app only passed the trace headers (traceparent, b3) on.\n",
        web = hops.web,
        backend = hops.backend,
    );
    Ok(())
}

/// Relays every span the receiver kept to `to`, from the demo's own network namespace (the
/// pods have no route to the host), and says how many went where. A collector that cannot
/// take them is a warning, not a failure of the demo.
pub fn relay(shop: &Shop, to: &CollectorAddr) {
    let Some(receiver) = &shop.otlp else {
        return;
    };
    settle(receiver);
    let traces: HashSet<String> = receiver.spans().into_iter().map(|s| s.trace_id).collect();
    match otlp::relay(&receiver.raw_requests(), to, RELAY_TIMEOUT) {
        Ok(relayed) => println!(
            "Relayed {} spans of {} traces in {} exports to the OTLP/gRPC collector at {to}\n",
            relayed.spans,
            traces.len(),
            relayed.exports
        ),
        Err(e) => eprintln!("warning: relaying the demo's spans failed: {e}\n"),
    }
}

/// The services of the web pod and of its backend.
struct Hops {
    web: String,
    backend: String,
}

/// Checks that `trace` is one chain of four spans, each answered 200: the client's CLIENT
/// span, web's SERVER span for `/checkout`, web's CLIENT span for its call to the backend, and
/// the backend's SERVER span.
fn hops(trace: &Trace) -> Result<Hops, String> {
    let [root] = trace.roots.as_slice() else {
        return Err(format!("{} roots", trace.roots.len()));
    };
    if root.orphan {
        return Err("the root span's parent is missing".into());
    }
    let mut chain = vec![&root.span];
    let mut node = root;
    while let Some(child) = node.children.first() {
        if node.children.len() > 1 {
            return Err(format!("a span with {} children", node.children.len()));
        }
        chain.push(&child.span);
        node = child;
    }
    let got: Vec<(&str, SpanKind, &str)> = chain
        .iter()
        .map(|s| {
            let service = s.service_name().unwrap_or("-");
            (service, s.kind, s.attribute_str("url.path").unwrap_or("-"))
        })
        .collect();
    let web = got.get(1).map_or("-", |hop| hop.0);
    let backend = match web {
        "web-v1.shop" => "web-v2.shop",
        "web-v2.shop" => "web-v1.shop",
        other => return Err(format!("the second span is {other}'s, not a web pod's")),
    };
    let expected = [
        ("client.shop", SpanKind::Client, "/checkout"),
        (web, SpanKind::Server, "/checkout"),
        (web, SpanKind::Client, "/"),
        (backend, SpanKind::Server, "/"),
    ];
    if got != expected {
        return Err(format!("the hops are {got:?}, expected {expected:?}"));
    }
    if let Some(s) = chain
        .iter()
        .find(|s| s.attribute_int("http.response.status_code") != Some(200))
    {
        return Err(format!("{} {} did not answer 200", s.kind, s.name));
    }
    Ok(Hops {
        web: web.trim_end_matches(".shop").to_string(),
        backend: backend.trim_end_matches(".shop").to_string(),
    })
}

fn of_trace<'a>(spans: &'a [Span], trace_id: &'a str) -> impl Iterator<Item = &'a Span> {
    spans.iter().filter(move |s| s.trace_id == trace_id)
}

fn rendered(spans: &[Span]) -> String {
    otlp::traces(spans).iter().map(otlp::render).collect()
}

/// Waits until no export has arrived for [`QUIET`] (at most [`PATIENCE`] in all), so the
/// spans of the last requests are in.
fn settle(receiver: &Receiver) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = receiver.requests() + 1;
        if left.is_zero() || receiver.wait_for_requests(next, QUIET.min(left)).is_err() {
            return;
        }
    }
}
