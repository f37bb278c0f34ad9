//! Rendering: the `deploy/` documents with the options applied (images, trust domain,
//! replicas, injection mode, failure policy, tracing) and the certificates added as a
//! ConfigMap (trust anchors) and Secrets (issuer, webhook), the webhook's caBundle filled in.

use super::{InstallError, Options, certs::Certs, manifests};
use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Secret},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use serde::Deserialize;
use serde_yaml_ng::Value as Yaml;
use std::collections::BTreeMap;

/// The namespace everything goes in.
pub const NAMESPACE: &str = "weft-system";
/// The ConfigMap of trust anchors (`ca.crt`) the controller and the injector mount.
pub const TRUST_ANCHORS: &str = "weft-identity-trust-anchors";
/// The Secret of the controller's issuer (`tls.crt`, `tls.key`).
pub const ISSUER: &str = "weft-identity-issuer";
/// The Secret of the injector's serving certificate (`tls.crt`, `tls.key`).
pub const WEBHOOK_TLS: &str = "weft-injector-tls";

/// One rendered document and the file of `deploy/` it came from (or what made it).
pub struct Doc {
    /// Where it came from, for messages and the output's comments.
    pub source: String,
    /// The document.
    pub value: Yaml,
}

/// The CRDs alone.
pub fn crds() -> Result<Vec<Doc>, InstallError> {
    let mut docs = Vec::new();
    for file in manifests::CRDS {
        docs.extend(parse(file)?);
    }
    Ok(docs)
}

/// Everything: namespace, CRDs, RBAC, identity material, workloads, webhook, and Jaeger if
/// asked for.
pub fn everything(options: &Options, certs: &Certs) -> Result<Vec<Doc>, InstallError> {
    let mut docs = parse(manifests::NAMESPACE)?;
    docs.extend(crds()?);
    for file in manifests::RBAC {
        docs.extend(parse(file)?);
    }
    docs.extend(secrets(certs)?);
    for file in manifests::WORKLOADS {
        docs.extend(parse(file)?);
    }
    if options.tracing {
        docs.extend(parse(manifests::JAEGER)?);
    }
    docs.extend(parse(manifests::WEBHOOK)?);
    for doc in &mut docs {
        customize(doc, options, certs)
            .map_err(|why| InstallError::Manifest(format!("deploy/{}: {why}", doc.source)))?;
    }
    Ok(docs)
}

/// The YAML stream, each document headed by the file it came from.
pub fn to_yaml(docs: &[Doc]) -> Result<String, InstallError> {
    let mut out = String::new();
    for doc in docs {
        let text = serde_yaml_ng::to_string(&doc.value)
            .map_err(|e| InstallError::Manifest(format!("{}: {e}", doc.source)))?;
        out.push_str(&format!("---\n# {}\n{text}", doc.source));
    }
    Ok(out)
}

fn parse((file, text): (&str, &str)) -> Result<Vec<Doc>, InstallError> {
    let mut docs = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Yaml::deserialize(document)
            .map_err(|e| InstallError::Manifest(format!("deploy/{file}: {e}")))?;
        if !value.is_null() {
            docs.push(Doc {
                source: file.to_string(),
                value,
            });
        }
    }
    Ok(docs)
}

fn secrets(certs: &Certs) -> Result<Vec<Doc>, InstallError> {
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(NAMESPACE.to_string()),
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/part-of".to_string(),
            "weft".to_string(),
        )])),
        ..ObjectMeta::default()
    };
    let tls = |name: &str, cert: &str, key: &str| Secret {
        metadata: meta(name),
        type_: Some("kubernetes.io/tls".to_string()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_string(), ByteString(cert.as_bytes().to_vec())),
            ("tls.key".to_string(), ByteString(key.as_bytes().to_vec())),
        ])),
        ..Secret::default()
    };
    let anchors = ConfigMap {
        metadata: meta(TRUST_ANCHORS),
        data: Some(BTreeMap::from([(
            "ca.crt".to_string(),
            certs.anchors.clone(),
        )])),
        ..ConfigMap::default()
    };
    let made = |what: &str, value: Result<Yaml, serde_yaml_ng::Error>| {
        value
            .map(|value| Doc {
                source: format!("made by weft install: {what}"),
                value,
            })
            .map_err(|e| InstallError::Manifest(format!("{what}: {e}")))
    };
    Ok(vec![
        made("the trust anchors", serde_yaml_ng::to_value(&anchors))?,
        made(
            "the controller's issuer (private key)",
            serde_yaml_ng::to_value(tls(ISSUER, &certs.issuer.cert_pem, &certs.issuer.key_pem)),
        )?,
        made(
            "the injector's serving certificate (private key)",
            serde_yaml_ng::to_value(tls(
                WEBHOOK_TLS,
                &certs.webhook.cert_pem,
                &certs.webhook.key_pem,
            )),
        )?,
    ])
}

/// Applies the options to a document of `deploy/`.
fn customize(doc: &mut Doc, options: &Options, certs: &Certs) -> Result<(), String> {
    let kind = doc.value["kind"].as_str().unwrap_or_default().to_string();
    let name = doc.value["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let registry = options.image_registry.trim_end_matches('/');
    match (kind.as_str(), name.as_str()) {
        ("Deployment", binary @ ("weft-controller" | "weft-injector")) => {
            set(
                &mut doc.value,
                &["spec", "replicas"],
                Yaml::from(options.replicas),
            )?;
            let container = container(&mut doc.value)?;
            let image = format!("{registry}/{binary}:{}", options.version);
            set(container, &["image"], image.into())?;
            set_arg(container, "--trust-domain", &options.trust_domain)?;
            if binary == "weft-injector" {
                injector_args(container, options, registry)?;
            }
        }
        ("MutatingWebhookConfiguration", _) => {
            let webhooks = doc.value["webhooks"]
                .as_sequence_mut()
                .ok_or("no webhooks")?;
            for webhook in webhooks {
                let policy = options.webhook_failure_policy.clone().into();
                set(webhook, &["failurePolicy"], policy)?;
                let bundle = ByteString(certs.webhook_ca.as_bytes().to_vec());
                let bundle = serde_yaml_ng::to_value(bundle).map_err(|e| e.to_string())?;
                set(webhook, &["clientConfig", "caBundle"], bundle)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// How the injector meshes pods, as the options say.
fn injector_args(container: &mut Yaml, options: &Options, registry: &str) -> Result<(), String> {
    set_arg(container, "--image-registry", registry)?;
    set_arg(container, "--proxy-version", &options.version)?;
    let native = options.native_sidecars.to_string();
    set_arg(container, "--native-sidecars", &native)?;
    if options.cni {
        set_arg(container, "--cni", "true")?;
    }
    if let Some(otlp) = options.otlp() {
        set_arg(container, "--otlp-addr", &otlp)?;
    }
    Ok(())
}

/// The one container of a Deployment's pod template.
fn container(deployment: &mut Yaml) -> Result<&mut Yaml, String> {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence_mut()
        .and_then(|c| c.first_mut())
        .ok_or_else(|| "no container in spec.template.spec.containers".to_string())
}

/// Sets `--flag=value` among the container's args, replacing the flag if it is there.
fn set_arg(container: &mut Yaml, flag: &str, value: &str) -> Result<(), String> {
    let args = container["args"]
        .as_sequence_mut()
        .ok_or("the container has no args")?;
    let arg = Yaml::from(format!("{flag}={value}"));
    let prefix = format!("{flag}=");
    match args.iter_mut().find(|a| {
        a.as_str()
            .is_some_and(|a| a == flag || a.starts_with(&prefix))
    }) {
        Some(existing) => *existing = arg,
        None => args.push(arg),
    }
    Ok(())
}

/// Sets the value at `path`, creating maps on the way.
fn set(root: &mut Yaml, path: &[&str], value: Yaml) -> Result<(), String> {
    let mut node = root;
    for key in path {
        if node.is_null() {
            *node = Yaml::Mapping(serde_yaml_ng::Mapping::new());
        }
        let map = node
            .as_mapping_mut()
            .ok_or_else(|| format!("{} is not a map", path.join(".")))?;
        node = map.entry(Yaml::from(*key)).or_insert(Yaml::Null);
    }
    *node = value;
    Ok(())
}
