//! The checks, against any `kube::Client` (a cluster, or a test's mock API server).

use crate::install::{
    WEBHOOK_NAMES,
    render::{ISSUER, NAMESPACE, TRUST_ANCHORS, WEBHOOK_TLS},
};
use k8s_openapi::{
    api::{
        admissionregistration::v1::MutatingWebhookConfiguration,
        apps::v1::Deployment,
        core::v1::{ConfigMap, Namespace, Secret},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{Api, Client};
use std::{
    fmt,
    time::{Duration, SystemTime},
};
use weft_certs::TrustAnchors;
use weft_injector::INJECT_PATH;

/// The CRDs Weft reads.
pub const CRDS: [&str; 7] = [
    "trafficsplits.split.smi-spec.io",
    "httproutes.gateway.networking.k8s.io",
    "grpcroutes.gateway.networking.k8s.io",
    "servers.policy.weft.dev",
    "authorizationpolicies.policy.weft.dev",
    "meshtlsauthentications.policy.weft.dev",
    "networkauthentications.policy.weft.dev",
];

/// What the checks compare against.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// A certificate that expires sooner than this fails.
    pub min_validity: Duration,
    /// Now.
    pub now: SystemTime,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Passed.
    pub ok: bool,
    /// What was checked.
    pub what: String,
    /// What was found.
    pub detail: String,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.ok { "√" } else { "×" };
        write!(f, "{mark} {}: {}", self.what, self.detail)
    }
}

/// Runs every check, in order; when the API cannot be reached, that is the only line.
pub async fn run_checks(client: &Client, options: &CheckOptions) -> Vec<Line> {
    let mut out = Vec::new();
    let mut add = |what: &str, result: Result<String, String>| {
        let (ok, detail) = match result {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        out.push(Line {
            ok,
            what: what.to_string(),
            detail,
        });
    };
    let version = match client.apiserver_version().await {
        Ok(info) => info,
        Err(e) => {
            add("the Kubernetes API is reachable", Err(e.to_string()));
            return out;
        }
    };
    add(
        "the Kubernetes API is reachable",
        Ok(version.git_version.clone()),
    );
    add("the CRDs are installed", crds(client).await);
    add(
        &format!("namespace {NAMESPACE} exists"),
        namespace(client).await,
    );
    add(
        "weft-controller is ready",
        ready(client, "weft-controller").await.map(|(d, _)| d),
    );
    let injector = ready(client, "weft-injector").await;
    let native = native_sidecars(&version, injector.as_ref().ok().map(|(_, d)| d));
    add("weft-injector is ready", injector.map(|(d, _)| d));
    add("the cluster runs the proxy as configured", native);
    let bundle = webhook(client).await;
    add(
        "the webhook is configured",
        bundle
            .as_ref()
            .map(|_| format!("inject.weft.dev calls {NAMESPACE}/weft-injector {INJECT_PATH}"))
            .map_err(Clone::clone),
    );
    add(
        "the webhook's certificate is valid",
        webhook_cert(client, bundle.ok(), options).await,
    );
    add("the webhook is reachable", reachable(client).await);
    let (anchors, line) = anchors(client, options).await;
    add("the trust anchors are valid", line);
    add(
        "the issuer is valid",
        issuer(client, anchors, options).await,
    );
    out
}

fn api_error(what: &str, e: kube::Error) -> String {
    format!("cannot read {what}: {e}")
}

/// The object `name` of `api`, described as `what` (`Deployment weft-system/x`) in errors.
async fn get<K>(api: Api<K>, what: &str, name: &str) -> Result<K, String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await {
        Ok(Some(object)) => Ok(object),
        Ok(None) => Err(format!("{what} not found")),
        Err(e) => Err(api_error(what, e)),
    }
}

async fn crds(client: &Client) -> Result<String, String> {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let mut problems = Vec::new();
    for name in CRDS {
        match api.get_opt(name).await {
            Ok(Some(crd)) => {
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .into_iter()
                    .flatten()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if !established {
                    problems.push(format!("{name} is not established"));
                }
            }
            Ok(None) => problems.push(format!("{name} is missing")),
            Err(e) => problems.push(api_error(name, e)),
        }
    }
    if problems.is_empty() {
        Ok(format!("{} CRDs established", CRDS.len()))
    } else {
        Err(format!(
            "{} (`weft install --crds | kubectl apply -f -`)",
            problems.join("; ")
        ))
    }
}

async fn namespace(client: &Client) -> Result<String, String> {
    match Api::<Namespace>::all(client.clone())
        .get_opt(NAMESPACE)
        .await
    {
        Ok(Some(_)) => Ok("found".to_string()),
        Ok(None) => Err(
            "not found: Weft is not installed (`weft install | kubectl apply -f -`)".to_string(),
        ),
        Err(e) => Err(api_error(&format!("namespace {NAMESPACE}"), e)),
    }
}

/// The Deployment's ready replicas against its desired ones; the Deployment for later checks.
async fn ready(client: &Client, name: &str) -> Result<(String, Deployment), String> {
    let api = Api::<Deployment>::namespaced(client.clone(), NAMESPACE);
    let deployment = get(api, &format!("Deployment {NAMESPACE}/{name}"), name).await?;
    let want = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    if want > 0 && ready >= want && updated >= want {
        Ok((format!("{ready}/{want} replicas ready"), deployment))
    } else {
        Err(format!(
            "{ready}/{want} replicas ready, {updated} up to date (kubectl -n {NAMESPACE} describe deployment {name})"
        ))
    }
}

/// Native sidecars need Kubernetes 1.29; older clusters need the injector's
/// `--native-sidecars=false`.
fn native_sidecars(
    version: &k8s_openapi::apimachinery::pkg::version::Info,
    injector: Option<&Deployment>,
) -> Result<String, String> {
    let minor: u32 = version.minor.trim_end_matches('+').parse().unwrap_or(0);
    let major: u32 = version.major.parse().unwrap_or(0);
    let args: Vec<String> = injector
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.args.clone())
        .unwrap_or_default();
    let native = !args.iter().any(|a| a == "--native-sidecars=false");
    let supported = major > 1 || (major == 1 && minor >= 29);
    match (native, supported) {
        (true, true) => Ok(format!("native sidecars (Kubernetes {major}.{minor})")),
        (false, _) => Ok("regular proxy containers with a postStart wait".to_string()),
        (true, false) => Err(format!(
            "the injector adds native sidecars, which Kubernetes {major}.{minor} does not run (1.29+); reinstall with --native-sidecars=false"
        )),
    }
}

/// The webhook's caBundle (PEM), once its configuration is checked.
async fn webhook(client: &Client) -> Result<String, String> {
    let api = Api::<MutatingWebhookConfiguration>::all(client.clone());
    let what = "MutatingWebhookConfiguration weft-injector";
    let config = get(api, what, "weft-injector").await?;
    let hook = config
        .webhooks
        .iter()
        .flatten()
        .find(|w| w.name == "inject.weft.dev")
        .ok_or("it has no webhook inject.weft.dev")?;
    let service = hook
        .client_config
        .service
        .as_ref()
        .ok_or("inject.weft.dev calls no Service")?;
    if (
        service.namespace.as_str(),
        service.name.as_str(),
        service.path.as_deref(),
    ) != (NAMESPACE, "weft-injector", Some(INJECT_PATH))
    {
        return Err(format!(
            "inject.weft.dev calls {}/{} {:?}, not {NAMESPACE}/weft-injector {INJECT_PATH}",
            service.namespace, service.name, service.path
        ));
    }
    let bundle = hook
        .client_config
        .ca_bundle
        .as_ref()
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default();
    if bundle.trim().is_empty() {
        return Err(
            "inject.weft.dev has no caBundle: the API server cannot trust the injector".to_string(),
        );
    }
    Ok(bundle)
}

async fn webhook_cert(
    client: &Client,
    bundle: Option<String>,
    options: &CheckOptions,
) -> Result<String, String> {
    let bundle = bundle.ok_or("not checked: the webhook is not configured")?;
    let cert = secret_cert(client, WEBHOOK_TLS).await?;
    let status = weft_certs::check_server_cert(&cert, &bundle, WEBHOOK_NAMES[0], options.now)
        .map_err(|e| format!("Secret {NAMESPACE}/{WEBHOOK_TLS} against the caBundle: {e}"))?;
    fresh(&status.subject, status.not_after, options)
}

async fn reachable(client: &Client) -> Result<String, String> {
    let path =
        format!("/api/v1/namespaces/{NAMESPACE}/services/https:weft-injector:https/proxy/ready");
    let request = http::Request::get(&path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    match client.request_text(request).await {
        Ok(body) if body.trim() == "ready" => {
            Ok("weft-injector answers /ready through its Service".to_string())
        }
        Ok(body) => Err(format!(
            "weft-injector answered /ready with {:?}",
            body.trim()
        )),
        Err(e) => Err(format!(
            "the API server cannot reach weft-injector's Service: {e}"
        )),
    }
}

/// The trust anchors, if they parse (the issuer is checked against them even when they are
/// near expiry), and their line.
async fn anchors(
    client: &Client,
    options: &CheckOptions,
) -> (Option<TrustAnchors>, Result<String, String>) {
    let anchors = match read_anchors(client).await {
        Ok(anchors) => anchors,
        Err(e) => return (None, Err(e)),
    };
    let mut details = Vec::new();
    for der in anchors.certs() {
        let checked = weft_certs::subject_of(der)
            .and_then(|subject| Ok((subject, weft_certs::not_after(der)?)))
            .map_err(|e| e.to_string())
            .and_then(|(subject, not_after)| fresh(&subject, not_after, options));
        match checked {
            Ok(detail) => details.push(detail),
            Err(e) => return (Some(anchors), Err(e)),
        }
    }
    (Some(anchors), Ok(details.join("; ")))
}

async fn read_anchors(client: &Client) -> Result<TrustAnchors, String> {
    let api = Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE);
    let what = format!("ConfigMap {NAMESPACE}/{TRUST_ANCHORS}");
    let map = get(api, &what, TRUST_ANCHORS).await?;
    let pem = map
        .data
        .and_then(|d| d.get("ca.crt").cloned())
        .ok_or(format!(
            "ConfigMap {NAMESPACE}/{TRUST_ANCHORS} has no ca.crt"
        ))?;
    TrustAnchors::from_pem(&pem).map_err(|e| format!("ConfigMap {NAMESPACE}/{TRUST_ANCHORS}: {e}"))
}

async fn issuer(
    client: &Client,
    anchors: Option<TrustAnchors>,
    options: &CheckOptions,
) -> Result<String, String> {
    let anchors = anchors.ok_or("not checked: no usable trust anchors")?;
    let cert = secret_cert(client, ISSUER).await?;
    let (subject, not_after) = weft_certs::check_issuer_cert(&cert, &anchors, options.now)
        .map_err(|e| format!("Secret {NAMESPACE}/{ISSUER}: {e}"))?;
    fresh(&subject, not_after, options)
}

/// The certificate (`tls.crt`) of a Secret; its key is never read.
async fn secret_cert(client: &Client, name: &str) -> Result<String, String> {
    let api = Api::<Secret>::namespaced(client.clone(), NAMESPACE);
    let secret = get(api, &format!("Secret {NAMESPACE}/{name}"), name).await?;
    secret
        .data
        .and_then(|d| {
            d.get("tls.crt")
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        })
        .ok_or(format!("Secret {NAMESPACE}/{name} has no tls.crt"))
}

/// Passes with the expiry if `not_after` is at least the minimum validity away.
fn fresh(subject: &str, not_after: SystemTime, options: &CheckOptions) -> Result<String, String> {
    let left = not_after.duration_since(options.now).unwrap_or_default();
    let days = left.as_secs() / 86_400;
    if left < options.min_validity {
        Err(format!(
            "{subject} expires in {days} days, sooner than the {} days asked for; rotate it",
            options.min_validity.as_secs() / 86_400
        ))
    } else {
        Ok(format!("{subject} valid for {days} more days"))
    }
}
