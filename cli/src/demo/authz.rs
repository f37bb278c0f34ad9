//! The demo's identity and authorization steps: who each sidecar is, proof that the web pods
//! see the client's identity over mTLS, then a policy that lets only the client in, and a call
//! from another identity refused with 403.

use anyhow::{Context, bail};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use weft_cli_local::{
    LocalIdentity, Sidecar, metric_sum,
    shop::{self, CLIENT_ID, NAMESPACE, Shop},
    traffic::{self, Request, Tally},
};

/// Lets only the `client` ServiceAccount call web pods on 8080; everyone else is denied.
const POLICY: &str = "\
apiVersion: policy.weft.dev/v1alpha1
kind: Server
metadata: {name: web-http, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  port: 8080
  accessPolicy: deny
---
apiVersion: policy.weft.dev/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: client, namespace: shop}
spec:
  identityRefs: [{kind: ServiceAccount, name: client}]
---
apiVersion: policy.weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-from-client, namespace: shop}
spec:
  targetRef: {group: policy.weft.dev, kind: Server, name: web-http}
  requiredAuthenticationRefs:
    - {group: policy.weft.dev, kind: MeshTLSAuthentication, name: client}
";

/// Prints each sidecar's identity and certificate expiry.
pub fn show_identities(shop: &Shop) -> anyhow::Result<()> {
    println!(
        "Identity: each sidecar made its key in memory and got a certificate from the controller"
    );
    for (sidecar, sa) in [
        (&shop.client, "client"),
        (&shop.v1, "web"),
        (&shop.v2, "web"),
    ] {
        let name = LocalIdentity::identity(NAMESPACE, sa)?;
        let expiry = metric_sum(
            &sidecar.metrics(),
            "identity_cert_expiration_timestamp_seconds",
            &[],
        );
        if expiry <= 0.0 {
            bail!("{} has no certificate", sidecar.pod.name);
        }
        let left = expiry - unix_now();
        println!(
            "  {:<8} {name}  (certificate valid for another {:.1} h)",
            sidecar.pod.name,
            left / 3600.0
        );
    }
    Ok(())
}

/// Shows the web pods seeing the client's identity, then applies [`POLICY`] and calls web from
/// the client (allowed) and from an `intruder` pod with its own identity (403).
pub fn run(shop: &Shop) -> anyhow::Result<()> {
    let seen = identities_seen(&shop.client, 20);
    let client_id = LocalIdentity::identity(NAMESPACE, "client")?;
    println!(
        "  mTLS (TLS 1.3): the web sidecars saw every request come from {:?}\n",
        seen.by_value.keys().collect::<Vec<_>>()
    );
    if seen.failures > 0 || seen.by_value.keys().ne([&client_id]) {
        bail!("the web pods did not see the client's identity: {seen:?}");
    }

    let identity = shop
        .identity
        .as_ref()
        .context("the demo runs with mTLS on")?;
    let pod = shop.net.pod("intruder")?;
    let mut env = shop::identity_env(
        identity,
        &shop.controller,
        NAMESPACE,
        "intruder",
        "intruder",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    env.push((
        "WEFT_PROXY_CONTROLLER_ADDR".into(),
        shop.controller.addr().to_string(),
    ));
    env.push((
        "WEFT_PROXY_WORKLOAD".into(),
        format!("{NAMESPACE}/intruder"),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (&**k, &**v)).collect();
    let intruder = Sidecar::inject(&pod, &[], &env)?;
    let intruder_id = LocalIdentity::identity(NAMESPACE, "intruder")?;

    println!(
        "Authorization: a Server for app=web:8080 (accessPolicy deny) and an AuthorizationPolicy"
    );
    println!(
        "  that admits only the client's ServiceAccount (MeshTLSAuthentication), written to the files source"
    );
    shop.write_manifest("authz.yaml", POLICY)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let denied = loop {
        let t = identities_seen(&intruder, 1);
        if t.failures > 0 || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let allowed = identities_seen(&shop.client, 20);
    println!(
        "  client   ({client_id}) GET / -> {} of {} allowed",
        allowed.ok(),
        allowed.ok() + allowed.failures
    );
    println!(
        "  intruder ({intruder_id}) GET / -> {}",
        denied
            .errors
            .first()
            .map(String::as_str)
            .unwrap_or("allowed (!)")
    );
    if allowed.failures > 0 || denied.failures == 0 || !denied.errors[0].contains("403") {
        bail!("the policy was not enforced as written: client {allowed:?}, intruder {denied:?}");
    }
    let web = [shop.v1.metrics(), shop.v2.metrics()];
    let denies: f64 = web
        .iter()
        .map(|m| metric_sum(m, "inbound_http_authz_deny_total", &[]))
        .sum();
    println!(
        "  the web sidecars counted {denies} denied request(s) (inbound_http_authz_deny_total)\n"
    );
    Ok(())
}

/// `requests` GETs of web from `from`'s pod, tallied by the caller identity the app saw.
fn identities_seen(from: &Sidecar, requests: usize) -> Tally {
    let req = Request::get(Shop::web_request("/").url, CLIENT_ID)
        .header("host", &format!("{}:{}", shop::WEB_HOST, shop::PORT));
    traffic::tally(&from.pod, &req, requests, 1)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
