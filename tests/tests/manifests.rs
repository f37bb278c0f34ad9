//! `deploy/` is what users apply to a cluster, so it is checked like code: every manifest
//! parses and names itself, uses no field its type does not have, the CRDs are ones the API
//! server accepts (structural, consistently named, one storage version), the controller's
//! RBAC stays list/watch-only, and the examples pass the schemas of the CRDs they use.
//! With kubectl on PATH (required when CI=true), kubectl must read every file the same way;
//! it does so offline (`kubectl label --local`), with no cluster.
//!
//! Each check is a function returning the problems it found, so the negative tests below
//! can show that it rejects what it should.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[path = "support/files.rs"]
mod files;
#[path = "support/kinds.rs"]
mod kinds;
#[path = "support/kubectl.rs"]
mod kubectl;

use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Every file `deploy/` must have (it may have more; those are checked too).
const EXPECTED_FILES: &[&str] = &[
    "controller/deployment.yaml",
    "controller/namespace.yaml",
    "controller/rbac.yaml",
    "crds/gateway-api/gateway.networking.k8s.io_grpcroutes.yaml",
    "crds/gateway-api/gateway.networking.k8s.io_httproutes.yaml",
    "crds/policy.weft.dev_authorizationpolicies.yaml",
    "crds/policy.weft.dev_meshtlsauthentications.yaml",
    "crds/policy.weft.dev_networkauthentications.yaml",
    "crds/policy.weft.dev_servers.yaml",
    "crds/split.smi-spec.io_trafficsplits.yaml",
    "examples/authz.yaml",
    "examples/canary-httproute.yaml",
    "examples/canary-trafficsplit.yaml",
    "examples/shop.yaml",
    "injector/deployment.yaml",
    "injector/rbac.yaml",
    "injector/webhook.yaml",
    "jaeger/jaeger.yaml",
];

/// The CRDs `deploy/crds` defines: the ones Weft reads that no cluster has by default.
const EXPECTED_CRDS: &[&str] = &[
    "authorizationpolicies.policy.weft.dev",
    "grpcroutes.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
    "meshtlsauthentications.policy.weft.dev",
    "networkauthentications.policy.weft.dev",
    "servers.policy.weft.dev",
    "trafficsplits.split.smi-spec.io",
];

/// What weft-controller lists and watches, by API group. Nothing else, and no other verb
/// but `create` on tokenreviews.
const WATCHED: &[(&str, &[&str])] = &[
    ("", &["namespaces", "pods", "serviceaccounts", "services"]),
    ("discovery.k8s.io", &["endpointslices"]),
    ("gateway.networking.k8s.io", &["grpcroutes", "httproutes"]),
    (
        "policy.weft.dev",
        &[
            "authorizationpolicies",
            "meshtlsauthentications",
            "networkauthentications",
            "servers",
        ],
    ),
    ("split.smi-spec.io", &["trafficsplits"]),
];

/// The identity service checks a proxy's ServiceAccount token with a TokenReview.
const TOKEN_REVIEW: (&str, &str, &str) = ("authentication.k8s.io", "tokenreviews", "create");

// === Loading ===

/// One YAML document of a file under `deploy/`.
#[derive(Clone, Debug)]
struct Doc {
    /// The file, relative to `deploy/`, with `/` separators.
    file: String,
    /// The document's position in its file, from 0, not counting empty documents.
    index: usize,
    value: Value,
}

impl Doc {
    fn at(&self) -> String {
        format!("deploy/{} (document {})", self.file, self.index)
    }

    fn str_at(&self, pointer: &str) -> &str {
        self.value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    fn api_version(&self) -> &str {
        self.str_at("/apiVersion")
    }

    fn kind(&self) -> &str {
        self.str_at("/kind")
    }

    fn name(&self) -> &str {
        self.str_at("/metadata/name")
    }

    fn namespace(&self) -> &str {
        self.str_at("/metadata/namespace")
    }

    fn typed<T: DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.value.clone()).unwrap_or_else(|e| {
            panic!(
                "{}: not a valid {}: {e}",
                self.at(),
                std::any::type_name::<T>()
            )
        })
    }
}

fn deploy_dir() -> PathBuf {
    files::repo().join("deploy")
}

/// The YAML files under `dir`, recursively, sorted, relative to `deploy/`.
fn yaml_files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
    }
    let root = deploy_dir();
    let mut paths = Vec::new();
    walk(dir, &mut paths);
    let mut files: Vec<String> = paths
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).expect("under deploy/");
            rel.to_string_lossy().replace('\\', "/")
        })
        .collect();
    files.sort();
    files
}

/// Every document of every YAML file under `deploy/<sub>`.
fn load(sub: &str) -> Vec<Doc> {
    let dir = deploy_dir().join(sub);
    let mut docs = Vec::new();
    for file in yaml_files(&dir) {
        let text = std::fs::read_to_string(deploy_dir().join(&file))
            .unwrap_or_else(|e| panic!("cannot read deploy/{file}: {e}"));
        let values = files::yaml_docs(&text).unwrap_or_else(|e| panic!("deploy/{file}: {e}"));
        assert!(!values.is_empty(), "deploy/{file} has no documents");
        docs.extend(values.into_iter().enumerate().map(|(index, value)| Doc {
            file: file.clone(),
            index,
            value,
        }));
    }
    docs
}

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

// === Every manifest ===

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// apiVersion, kind and metadata.name: what `kubectl apply` needs to know what a document is.
fn identity_problems(v: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    match v.get("apiVersion").and_then(Value::as_str) {
        Some(av) if !av.is_empty() && av.split('/').count() <= 2 => {}
        other => problems.push(format!("apiVersion {other:?} is not group/version or v1")),
    }
    match v.get("kind").and_then(Value::as_str) {
        Some(k) if k.starts_with(|c: char| c.is_ascii_uppercase()) => {}
        other => problems.push(format!("kind {other:?} is not a CamelCase kind")),
    }
    match v.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if is_dns_subdomain(n) => {}
        other => problems.push(format!(
            "metadata.name {other:?} is not a DNS subdomain name"
        )),
    }
    if let Some(ns) = v.pointer("/metadata/namespace") {
        match ns.as_str() {
            Some(ns) if is_dns_subdomain(ns) && !ns.contains('.') && ns.len() <= 63 => {}
            _ => problems.push(format!("metadata.namespace {ns} is not a DNS label")),
        }
    }
    problems
}

#[test]
fn every_manifest_parses_and_names_itself() {
    let files = yaml_files(&deploy_dir());
    for expected in EXPECTED_FILES {
        assert!(
            files.iter().any(|f| f == expected),
            "deploy/{expected} is missing; found {files:?}"
        );
    }
    let docs = load("");
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for doc in &docs {
        problems.extend(
            identity_problems(&doc.value)
                .into_iter()
                .map(|p| format!("{}: {p}", doc.at())),
        );
        let key = (
            doc.api_version().to_string(),
            doc.kind().to_string(),
            doc.namespace().to_string(),
            doc.name().to_string(),
        );
        if !seen.insert((doc.file.clone(), key)) {
            problems.push(format!("{}: the same object twice in one file", doc.at()));
        }
    }
    assert_no_problems("manifests that do not name themselves", &problems);
    assert!(docs.len() >= EXPECTED_FILES.len());
}

#[test]
fn identity_check_rejects_nameless_and_kindless_documents() {
    let ok = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}});
    assert_eq!(identity_problems(&ok), Vec::<String>::new());
    for bad in [
        json!({"kind": "Service", "metadata": {"name": "web"}}),
        json!({"apiVersion": "v1", "metadata": {"name": "web"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "Web_1"}}),
        json!({"apiVersion": "a/b/c", "kind": "Service", "metadata": {"name": "web"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "a.b"}}),
    ] {
        assert!(!identity_problems(&bad).is_empty(), "accepted {bad}");
    }
}

// === Known kinds: no unknown fields ===

/// The problems of a document of a built-in kind; `None` for kinds k8s-openapi lacks.
fn typed_problems(doc: &Doc) -> Option<Vec<String>> {
    kinds::typed_problems(&doc.value)
}

#[test]
fn every_manifest_is_a_known_kind_with_only_known_fields() {
    let validators = crd_validators();
    let mut problems = Vec::new();
    for doc in load("") {
        match typed_problems(&doc) {
            Some(found) => problems.extend(found.into_iter().map(|p| format!("{}: {p}", doc.at()))),
            // Custom resources: the examples test checks them against their CRD's schema.
            None if validators.contains_key(&(doc.api_version().into(), doc.kind().into())) => {}
            None => problems.push(format!(
                "{}: {} {} is neither a kind this test knows nor one deploy/crds defines, so \
                 nothing checks it",
                doc.at(),
                doc.api_version(),
                doc.kind()
            )),
        }
    }
    assert_no_problems("manifests with unknown fields", &problems);
}

#[test]
fn round_trip_catches_a_misspelt_field() {
    let service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080, "targetPort": 8080}]}
    });
    assert_eq!(
        kinds::round_trip_problems::<Service>(&service),
        Vec::<String>::new()
    );
    let mut misspelt = service.clone();
    misspelt["spec"]["selecter"] = json!({"app": "web"});
    let problems = kinds::round_trip_problems::<Service>(&misspelt);
    assert!(
        problems.iter().any(|p| p.contains("/spec/selecter")),
        "{problems:?}"
    );
    let mut mistyped = service;
    mistyped["spec"]["ports"] = json!(8080);
    assert!(!kinds::round_trip_problems::<Service>(&mistyped).is_empty());
}

// === CRDs ===

fn crds() -> Vec<(Doc, CustomResourceDefinition)> {
    load("crds")
        .into_iter()
        .map(|doc| {
            assert_eq!(
                doc.kind(),
                "CustomResourceDefinition",
                "{}: deploy/crds holds only CRDs",
                doc.at()
            );
            let crd = doc.typed();
            (doc, crd)
        })
        .collect()
}

/// Groups whose CRDs the API server refuses without an API-review approval annotation.
fn is_protected_group(group: &str) -> bool {
    ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|g| group == *g || group.ends_with(&format!(".{g}")))
}

/// What the API server (and kubebuilder's file naming) require of a CRD as a whole.
fn crd_problems(file: &str, crd: &CustomResourceDefinition) -> Vec<String> {
    let mut problems = Vec::new();
    let spec = &crd.spec;
    let names = &spec.names;
    let name = crd.metadata.name.as_deref().unwrap_or("");
    if name != format!("{}.{}", names.plural, spec.group) {
        problems.push(format!(
            "metadata.name {name:?} is not <plural>.<group> ({}.{})",
            names.plural, spec.group
        ));
    }
    let file_name = file.rsplit('/').next().unwrap_or(file);
    if file_name != format!("{}_{}.yaml", spec.group, names.plural) {
        problems.push(format!(
            "file {file_name:?} is not <group>_<plural>.yaml ({}_{}.yaml)",
            spec.group, names.plural
        ));
    }
    if names.plural != names.plural.to_lowercase() || names.plural.is_empty() {
        problems.push(format!("names.plural {:?} is not lowercase", names.plural));
    }
    if names.singular.as_deref() != Some(names.kind.to_lowercase().as_str()) {
        problems.push(format!(
            "names.singular {:?} is not the lowercase kind {:?}",
            names.singular, names.kind
        ));
    }
    if names.list_kind.as_deref() != Some(format!("{}List", names.kind).as_str()) {
        problems.push(format!(
            "names.listKind {:?} is not {}List",
            names.list_kind, names.kind
        ));
    }
    if !matches!(spec.scope.as_str(), "Namespaced" | "Cluster") {
        problems.push(format!(
            "scope {:?} is not Namespaced or Cluster",
            spec.scope
        ));
    }
    let storage: Vec<&str> = spec
        .versions
        .iter()
        .filter(|v| v.storage)
        .map(|v| v.name.as_str())
        .collect();
    if storage.len() != 1 {
        problems.push(format!(
            "{} storage versions ({storage:?}); exactly one is required",
            storage.len()
        ));
    }
    let mut version_names = BTreeSet::new();
    for version in &spec.versions {
        if !version_names.insert(version.name.as_str()) {
            problems.push(format!("version {} appears twice", version.name));
        }
        if version.storage && !version.served {
            problems.push(format!("storage version {} is not served", version.name));
        }
        match version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
        {
            None => problems.push(format!("version {} has no openAPIV3Schema", version.name)),
            Some(schema) => {
                let schema = serde_json::to_value(schema).expect("a schema serializes");
                let at = format!("versions[{}].schema", version.name);
                problems.extend(structural_problems(&schema, &at));
            }
        }
    }
    if is_protected_group(&spec.group) {
        let approved = crd
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("api-approved.kubernetes.io"));
        if approved.is_none_or(|a| a.is_empty()) {
            problems.push(format!(
                "group {} is protected: the API server refuses it without the \
                 api-approved.kubernetes.io annotation",
                spec.group
            ));
        }
    }
    problems
}

/// The rules of a structural schema (what the API server requires of a v1 CRD), plus
/// that every pattern compiles as RE2-like syntax, every `required` field is declared and
/// every default passes its own schema.
fn structural_problems(node: &Value, at: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(obj) = node.as_object() else {
        return vec![format!("{at}: a schema must be an object")];
    };
    let flag = |key: &str| obj.get(key).and_then(Value::as_bool) == Some(true);
    let ty = obj.get("type").and_then(Value::as_str);
    match ty {
        Some("object" | "array" | "string" | "integer" | "number" | "boolean") => {}
        None if flag("x-kubernetes-int-or-string")
            || flag("x-kubernetes-preserve-unknown-fields") => {}
        other => problems.push(format!("{at}: type {other:?} (every node needs a type)")),
    }
    let properties = obj.get("properties").and_then(Value::as_object);
    if properties.is_some() && obj.contains_key("additionalProperties") {
        problems.push(format!(
            "{at}: properties and additionalProperties together"
        ));
    }
    if let Some(required) = obj.get("required").and_then(Value::as_array) {
        for field in required.iter().filter_map(Value::as_str) {
            if !properties.is_some_and(|p| p.contains_key(field)) {
                problems.push(format!("{at}: required field {field} is not a property"));
            }
        }
    }
    if let Some(pattern) = obj.get("pattern").and_then(Value::as_str)
        && let Err(e) = regex::Regex::new(pattern)
    {
        problems.push(format!("{at}: pattern {pattern:?} does not compile: {e}"));
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        for value in values {
            let fits = match ty {
                Some("string") => value.is_string(),
                Some("integer") => value.is_i64() || value.is_u64(),
                Some("number") => value.is_number(),
                Some("boolean") => value.is_boolean(),
                _ => true,
            };
            if !fits {
                problems.push(format!("{at}: enum value {value} is not a {ty:?}"));
            }
        }
    }
    if let Some(default) = obj.get("default") {
        problems.extend(
            schema_errors(&strict(node), default)
                .into_iter()
                .map(|e| format!("{at}: default {default} is invalid: {e}")),
        );
    }
    let items = obj.get("items");
    if ty == Some("array") && !items.is_some_and(Value::is_object) {
        problems.push(format!("{at}: an array needs one items schema"));
    }
    problems.extend(list_map_problems(obj, at));
    for (name, child) in properties.into_iter().flatten() {
        problems.extend(structural_problems(child, &format!("{at}.{name}")));
    }
    if let Some(items) = items {
        problems.extend(structural_problems(items, &format!("{at}[]")));
    }
    if let Some(extra) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        problems.extend(structural_problems(extra, &format!("{at}{{*}}")));
    }
    problems
}

/// A `map` list needs its keys declared, and each required or defaulted.
fn list_map_problems(obj: &serde_json::Map<String, Value>, at: &str) -> Vec<String> {
    let list_type = obj.get("x-kubernetes-list-type").and_then(Value::as_str);
    let keys = obj
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array);
    match (list_type, keys) {
        (Some("map"), Some(keys)) if !keys.is_empty() => {
            let item = obj.get("items").cloned().unwrap_or(Value::Null);
            let required = item["required"].as_array().cloned().unwrap_or_default();
            keys.iter()
                .filter_map(Value::as_str)
                .filter_map(|key| {
                    let declared = item["properties"].get(key);
                    let ok = declared.is_some()
                        && (required.contains(&json!(key))
                            || declared.is_some_and(|d| d.get("default").is_some()));
                    (!ok).then(|| {
                        format!("{at}: list-map key {key} must be a required or defaulted property")
                    })
                })
                .collect()
        }
        (Some("map"), _) => vec![format!(
            "{at}: list-type map needs x-kubernetes-list-map-keys"
        )],
        (_, Some(_)) => vec![format!(
            "{at}: x-kubernetes-list-map-keys needs list-type map"
        )],
        _ => Vec::new(),
    }
}

#[test]
fn crds_are_the_expected_ones_and_well_formed() {
    let crds = crds();
    let names: BTreeSet<&str> = crds
        .iter()
        .map(|(_, crd)| crd.metadata.name.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        EXPECTED_CRDS.iter().copied().collect::<BTreeSet<_>>()
    );
    let mut problems = Vec::new();
    for (doc, crd) in &crds {
        problems.extend(
            crd_problems(&doc.file, crd)
                .into_iter()
                .map(|p| format!("{}: {p}", doc.at())),
        );
    }
    assert_no_problems("CRDs the API server would refuse", &problems);
}

#[test]
fn trafficsplit_crd_is_smi_v1alpha2() {
    let (_, crd) = crds()
        .into_iter()
        .find(|(_, crd)| crd.spec.names.kind == "TrafficSplit")
        .expect("a TrafficSplit CRD");
    assert_eq!(crd.spec.group, "split.smi-spec.io");
    assert_eq!(crd.spec.scope, "Namespaced");
    let [version] = crd.spec.versions.as_slice() else {
        panic!("TrafficSplit serves one version, v1alpha2");
    };
    assert_eq!(version.name, "v1alpha2");
    assert!(version.served && version.storage);
    let schema = serde_json::to_value(&version.schema).expect("schema");
    let spec = &schema["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["required"], json!(["service", "backends"]));
    assert_eq!(spec["properties"]["service"]["type"], "string");
    let backend = &spec["properties"]["backends"]["items"];
    assert_eq!(backend["required"], json!(["service", "weight"]));
    assert_eq!(backend["properties"]["weight"]["type"], "integer");
    assert_eq!(backend["properties"]["weight"]["minimum"], json!(0.0));
    assert_eq!(spec["properties"]["matches"]["type"], "array");
}

#[test]
fn gateway_api_crds_are_standard_v1() {
    for (doc, crd) in crds() {
        if crd.spec.group != "gateway.networking.k8s.io" {
            continue;
        }
        let storage: Vec<&str> = crd
            .spec
            .versions
            .iter()
            .filter(|v| v.storage)
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(storage, ["v1"], "{}", doc.at());
        let annotations = crd.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations
                .get("gateway.networking.k8s.io/channel")
                .map(String::as_str),
            Some("standard"),
            "{}",
            doc.at()
        );
        assert!(
            crd.spec.versions[0]
                .subresources
                .as_ref()
                .is_some_and(|s| s.status.is_some()),
            "{}: routes have a status subresource",
            doc.at()
        );
    }
}

#[test]
fn crd_check_rejects_broken_crds() {
    let (doc, good) = crds()
        .into_iter()
        .find(|(_, crd)| crd.spec.names.kind == "TrafficSplit")
        .expect("a TrafficSplit CRD");
    assert_eq!(crd_problems(&doc.file, &good), Vec::<String>::new());

    let mut renamed = good.clone();
    renamed.metadata.name = Some("trafficsplit.split.smi-spec.io".into());
    assert!(!crd_problems(&doc.file, &renamed).is_empty());

    let mut two_storage = good.clone();
    let mut v1alpha3 = two_storage.spec.versions[0].clone();
    v1alpha3.name = "v1alpha3".into();
    two_storage.spec.versions.push(v1alpha3);
    let problems = crd_problems(&doc.file, &two_storage);
    assert!(
        problems.iter().any(|p| p.contains("2 storage versions")),
        "{problems:?}"
    );

    let mut no_storage = good.clone();
    no_storage.spec.versions[0].storage = false;
    assert!(!crd_problems(&doc.file, &no_storage).is_empty());

    let mut unapproved = good;
    unapproved.spec.group = "split.k8s.io".into();
    unapproved.metadata.name = Some("trafficsplits.split.k8s.io".into());
    let problems = crd_problems("split.k8s.io_trafficsplits.yaml", &unapproved);
    assert!(
        problems.iter().any(|p| p.contains("protected")),
        "{problems:?}"
    );
}

#[test]
fn structural_check_rejects_non_structural_schemas() {
    let untyped = json!({"type": "object", "properties": {"spec": {"properties": {}}}});
    assert!(!structural_problems(&untyped, "s").is_empty());
    let undeclared = json!({"type": "object", "required": ["spec"], "properties": {}});
    assert!(!structural_problems(&undeclared, "s").is_empty());
    let bad_pattern = json!({"type": "string", "pattern": "^(a"});
    assert!(!structural_problems(&bad_pattern, "s").is_empty());
    let bad_default = json!({"type": "integer", "minimum": 0, "default": -1});
    assert!(!structural_problems(&bad_default, "s").is_empty());
    let loose_map_key = json!({
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "properties": {"name": {"type": "string"}}}
    });
    assert!(!structural_problems(&loose_map_key, "s").is_empty());
    let good = json!({
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    });
    assert_eq!(structural_problems(&good, "s"), Vec::<String>::new());
}

// === RBAC ===

/// (group, resource, verb) for every grant of the role, and the grants no triple can
/// express (wildcards, resourceNames, nonResourceURLs) as problems.
fn grants(role: &ClusterRole) -> (BTreeSet<(String, String, String)>, Vec<String>) {
    let mut triples = BTreeSet::new();
    let mut problems = Vec::new();
    for (i, rule) in role.rules.iter().flatten().enumerate() {
        if rule
            .non_resource_urls
            .as_ref()
            .is_some_and(|u| !u.is_empty())
        {
            problems.push(format!("rule {i}: nonResourceURLs"));
        }
        if rule.resource_names.as_ref().is_some_and(|n| !n.is_empty()) {
            problems.push(format!("rule {i}: resourceNames"));
        }
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    triples.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    (triples, problems)
}

/// weft-controller may list and watch exactly [`WATCHED`] and create TokenReviews.
fn rbac_problems(role: &ClusterRole) -> Vec<String> {
    let (granted, mut problems) = grants(role);
    let mut expected = BTreeSet::new();
    for (group, resources) in WATCHED {
        for resource in *resources {
            for verb in ["list", "watch"] {
                expected.insert((group.to_string(), resource.to_string(), verb.to_string()));
            }
        }
    }
    let (g, r, v) = TOKEN_REVIEW;
    expected.insert((g.to_string(), r.to_string(), v.to_string()));
    for (group, resource, verb) in &granted {
        let what = format!("{verb} on {resource} (group {group:?})");
        if [group, resource, verb].iter().any(|s| s.contains('*')) {
            problems.push(format!("wildcard: {what}"));
        } else if !matches!(verb.as_str(), "list" | "watch")
            && (group.as_str(), resource.as_str(), verb.as_str()) != TOKEN_REVIEW
        {
            problems.push(format!(
                "grants {what}: the controller only lists and watches"
            ));
        } else if !expected.contains(&(group.clone(), resource.clone(), verb.clone())) {
            problems.push(format!("grants {what}, which the controller does not read"));
        }
    }
    for (group, resource, verb) in expected.difference(&granted) {
        problems.push(format!(
            "missing {verb} on {resource} (group {group:?}), which the controller needs"
        ));
    }
    problems
}

fn controller_docs() -> Vec<Doc> {
    load("controller")
}

fn only<T: DeserializeOwned>(docs: &[Doc], kind: &str, name: &str) -> (Doc, T) {
    let found: Vec<&Doc> = docs
        .iter()
        .filter(|d| d.kind() == kind && d.name() == name)
        .collect();
    let [doc] = found.as_slice() else {
        panic!(
            "deploy/ must have exactly one {kind} {name} here, found {}",
            found.len()
        );
    };
    ((*doc).clone(), doc.typed())
}

#[test]
fn controller_clusterrole_only_lists_and_watches() {
    let docs = controller_docs();
    let (doc, role): (_, ClusterRole) = only(&docs, "ClusterRole", "weft-controller");
    assert_no_problems(&format!("{}: RBAC", doc.at()), &rbac_problems(&role));
    let other_roles: Vec<_> = docs
        .iter()
        .filter(|d| d.kind().ends_with("Role") && d.name() != "weft-controller")
        .map(Doc::at)
        .collect();
    assert!(
        other_roles.is_empty(),
        "roles nothing checks: {other_roles:?}"
    );
}

#[test]
fn controller_identity_is_bound() {
    let docs = controller_docs();
    let (_, namespace): (_, Namespace) = only(&docs, "Namespace", "weft-system");
    assert_eq!(namespace.metadata.name.as_deref(), Some("weft-system"));
    let (sa_doc, _): (_, ServiceAccount) = only(&docs, "ServiceAccount", "weft-controller");
    assert_eq!(sa_doc.namespace(), "weft-system");
    let (_, binding): (_, ClusterRoleBinding) =
        only(&docs, "ClusterRoleBinding", "weft-controller");
    assert_eq!(
        binding.role_ref.api_group.as_deref(),
        Some("rbac.authorization.k8s.io")
    );
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(binding.role_ref.name, "weft-controller");
    let subjects: Vec<_> = binding
        .subjects
        .iter()
        .flatten()
        .map(|s| (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()))
        .collect();
    assert_eq!(
        subjects,
        [("ServiceAccount", "weft-controller", Some("weft-system"))]
    );
}

/// weft-injector reads Namespaces (list and watch for its cache, get for one it has not
/// seen yet) and nothing else, as ServiceAccount weft-system/weft-injector.
#[test]
fn injector_only_reads_namespaces() {
    let docs = load("injector");
    let (doc, role): (_, ClusterRole) = only(&docs, "ClusterRole", "weft-injector");
    let (granted, problems) = grants(&role);
    assert_no_problems(&format!("{}: RBAC", doc.at()), &problems);
    let expected: BTreeSet<(String, String, String)> = ["get", "list", "watch"]
        .iter()
        .map(|verb| (String::new(), "namespaces".to_string(), verb.to_string()))
        .collect();
    assert_eq!(granted, expected, "{}", doc.at());
    let (_, binding): (_, ClusterRoleBinding) = only(&docs, "ClusterRoleBinding", "weft-injector");
    assert_eq!(binding.role_ref.name, "weft-injector");
    let subjects: Vec<_> = binding
        .subjects
        .iter()
        .flatten()
        .map(|s| (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()))
        .collect();
    assert_eq!(
        subjects,
        [("ServiceAccount", "weft-injector", Some("weft-system"))]
    );
    let roles: Vec<String> = docs
        .iter()
        .filter(|d| d.kind().ends_with("Role") && d.name() != "weft-injector")
        .map(Doc::at)
        .collect();
    assert!(roles.is_empty(), "roles nothing checks: {roles:?}");
}

#[test]
fn every_crd_is_watched_by_the_controller() {
    let (_, role): (_, ClusterRole) = only(&controller_docs(), "ClusterRole", "weft-controller");
    let (granted, _) = grants(&role);
    for (doc, crd) in crds() {
        for verb in ["list", "watch"] {
            let grant = (
                crd.spec.group.clone(),
                crd.spec.names.plural.clone(),
                verb.into(),
            );
            assert!(
                granted.contains(&grant),
                "{}: the controller cannot {verb} {}",
                doc.at(),
                crd.spec.names.plural
            );
        }
    }
}

#[test]
fn rbac_check_rejects_more_or_less_than_list_and_watch() {
    let (_, good): (_, ClusterRole) = only(&controller_docs(), "ClusterRole", "weft-controller");
    assert_eq!(rbac_problems(&good), Vec::<String>::new());
    let with_rule = |rule: Value| {
        let mut role = serde_json::to_value(&good).expect("role");
        role["rules"].as_array_mut().expect("rules").push(rule);
        serde_json::from_value::<ClusterRole>(role).expect("role")
    };
    for extra in [
        json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}),
        json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "watch"]}),
        json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["list"]}),
        json!({"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes/status"], "verbs": ["patch"]}),
        json!({"apiGroups": [""], "resources": ["services"], "resourceNames": ["web"], "verbs": ["list"]}),
    ] {
        assert!(
            !rbac_problems(&with_rule(extra.clone())).is_empty(),
            "accepted {extra}"
        );
    }
    let mut missing = serde_json::to_value(&good).expect("role");
    missing["rules"][0]["verbs"] = json!(["list"]);
    let missing: ClusterRole = serde_json::from_value(missing).expect("role");
    let problems = rbac_problems(&missing);
    assert!(
        problems.iter().any(|p| p.starts_with("missing watch")),
        "{problems:?}"
    );
}

// === Examples against their CRD's schema ===

/// The schema as the API server applies it with strict field validation (kubectl's
/// default): a field the schema does not declare is an error, not silently pruned.
fn strict(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out: serde_json::Map<String, Value> = map
                .iter()
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "properties" => Value::Object(
                            v.as_object()
                                .into_iter()
                                .flatten()
                                .map(|(name, s)| (name.clone(), strict(s)))
                                .collect(),
                        ),
                        "items" | "additionalProperties" | "not" => strict(v),
                        "allOf" | "anyOf" | "oneOf" => {
                            Value::Array(v.as_array().into_iter().flatten().map(strict).collect())
                        }
                        _ => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect();
            let preserves = map.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
            if map.contains_key("properties") && !preserves {
                out.insert("additionalProperties".into(), json!(false));
            }
            Value::Object(out)
        }
        _ => schema.clone(),
    }
}

/// Every violation of `schema` (an OpenAPI v3 schema, JSON Schema draft 4 in practice:
/// boolean exclusiveMinimum and all) by `instance`.
fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = match jsonschema::draft4::options().build(schema) {
        Ok(validator) => validator,
        Err(e) => return vec![format!("the schema does not compile: {e}")],
    };
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// The strict schema of every served version of every CRD, by (apiVersion, kind).
fn crd_validators() -> BTreeMap<(String, String), Value> {
    let mut schemas = BTreeMap::new();
    for (_, crd) in crds() {
        for version in crd.spec.versions.iter().filter(|v| v.served) {
            let Some(schema) = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
            else {
                continue;
            };
            let schema = serde_json::to_value(schema).expect("a schema serializes");
            schemas.insert(
                (
                    format!("{}/{}", crd.spec.group, version.name),
                    crd.spec.names.kind.clone(),
                ),
                strict(&schema),
            );
        }
    }
    schemas
}

fn example(kind: &str, file: &str) -> Value {
    load("examples")
        .into_iter()
        .find(|d| d.kind() == kind && d.file.ends_with(file))
        .unwrap_or_else(|| panic!("no {kind} in deploy/examples/{file}"))
        .value
}

fn errors_for(kind_key: (&str, &str), instance: &Value) -> Vec<String> {
    let schemas = crd_validators();
    let schema = schemas
        .get(&(kind_key.0.to_string(), kind_key.1.to_string()))
        .unwrap_or_else(|| panic!("no CRD for {kind_key:?}"));
    schema_errors(schema, instance)
}

/// What a broken copy of an example has, and how to break it.
type Breakage = (&'static str, fn(&mut Value));

const TRAFFIC_SPLIT: (&str, &str) = ("split.smi-spec.io/v1alpha2", "TrafficSplit");
const HTTP_ROUTE: (&str, &str) = ("gateway.networking.k8s.io/v1", "HTTPRoute");
const SERVER: (&str, &str) = ("policy.weft.dev/v1alpha1", "Server");
const AUTHORIZATION_POLICY: (&str, &str) = ("policy.weft.dev/v1alpha1", "AuthorizationPolicy");
const MESH_TLS: (&str, &str) = ("policy.weft.dev/v1alpha1", "MeshTLSAuthentication");
const NETWORK: (&str, &str) = ("policy.weft.dev/v1alpha1", "NetworkAuthentication");

#[test]
fn examples_pass_their_crd_schema() {
    let schemas = crd_validators();
    let mut problems = Vec::new();
    let mut checked = BTreeSet::new();
    for doc in load("examples") {
        let key = (doc.api_version().to_string(), doc.kind().to_string());
        let Some(schema) = schemas.get(&key) else {
            continue;
        };
        checked.insert(doc.kind().to_string());
        problems.extend(
            schema_errors(schema, &doc.value)
                .into_iter()
                .map(|e| format!("{}: {e}", doc.at())),
        );
    }
    assert_no_problems("examples their CRD rejects", &problems);
    for kind in [
        "TrafficSplit",
        "HTTPRoute",
        "Server",
        "AuthorizationPolicy",
        "MeshTLSAuthentication",
    ] {
        assert!(checked.contains(kind), "validated only {checked:?}");
    }
}

#[test]
fn schema_rejects_broken_trafficsplits() {
    let good = example("TrafficSplit", "canary-trafficsplit.yaml");
    assert_eq!(errors_for(TRAFFIC_SPLIT, &good), Vec::<String>::new());
    let broken: [Breakage; 7] = [
        ("no service", |ts| {
            ts["spec"].as_object_mut().expect("spec").remove("service");
        }),
        ("no backends", |ts| {
            ts["spec"].as_object_mut().expect("spec").remove("backends");
        }),
        ("negative weight", |ts| {
            ts["spec"]["backends"][1]["weight"] = json!(-1)
        }),
        ("fractional weight", |ts| {
            ts["spec"]["backends"][1]["weight"] = json!(2.5)
        }),
        ("weight as a string", |ts| {
            ts["spec"]["backends"][1]["weight"] = json!("10")
        }),
        ("backend without weight", |ts| {
            ts["spec"]["backends"][0]
                .as_object_mut()
                .expect("backend")
                .remove("weight");
        }),
        ("misspelt field", |ts| {
            ts["spec"]["backends"][0]["weigth"] = json!(5)
        }),
    ];
    for (what, breaks) in broken {
        let mut ts = good.clone();
        breaks(&mut ts);
        assert!(
            !errors_for(TRAFFIC_SPLIT, &ts).is_empty(),
            "a TrafficSplit with {what} passed: {ts}"
        );
    }
}

#[test]
fn schema_rejects_broken_httproutes() {
    let good = example("HTTPRoute", "canary-httproute.yaml");
    assert_eq!(errors_for(HTTP_ROUTE, &good), Vec::<String>::new());
    let broken: [Breakage; 7] = [
        ("negative weight", |r| {
            r["spec"]["rules"][1]["backendRefs"][0]["weight"] = json!(-5)
        }),
        ("port 0", |r| r["spec"]["parentRefs"][0]["port"] = json!(0)),
        ("nameless parent", |r| {
            r["spec"]["parentRefs"][0]
                .as_object_mut()
                .expect("ref")
                .remove("name");
        }),
        ("header match without value", |r| {
            r["spec"]["rules"][0]["matches"][0]["headers"][0]
                .as_object_mut()
                .expect("header")
                .remove("value");
        }),
        ("unknown path match type", |r| {
            r["spec"]["rules"][0]["matches"][0]["path"] = json!({"type": "Glob", "value": "/*"})
        }),
        ("filter Weft does not implement", |r| {
            r["spec"]["rules"][0]["filters"] = json!([{"type": "URLRewrite"}])
        }),
        ("bad timeout", |r| {
            r["spec"]["rules"][0]["timeouts"] = json!({"request": "10 seconds"})
        }),
    ];
    for (what, breaks) in broken {
        let mut route = good.clone();
        breaks(&mut route);
        assert!(
            !errors_for(HTTP_ROUTE, &route).is_empty(),
            "an HTTPRoute with {what} passed: {route}"
        );
    }
}

/// The examples are self-contained: what they route to is a Service in the same file,
/// with the port they use (SMI: every port of the root Service on every backend), and what
/// policy routes attach to, policies target and require is defined beside them.
#[test]
fn examples_refer_to_their_own_services() {
    let docs = load("examples");
    let files: BTreeSet<&str> = docs.iter().map(|d| d.file.as_str()).collect();
    for file in files {
        let in_file: Vec<&Doc> = docs.iter().filter(|d| d.file == file).collect();
        let ports = |ns: &str, name: &str| -> Option<BTreeSet<i64>> {
            let doc = in_file
                .iter()
                .find(|d| d.kind() == "Service" && d.namespace() == ns && d.name() == name)?;
            let service: Service = doc.typed();
            Some(
                service
                    .spec
                    .and_then(|s| s.ports)
                    .into_iter()
                    .flatten()
                    .map(|p| i64::from(p.port))
                    .collect(),
            )
        };
        for doc in &in_file {
            let (ns, spec) = (doc.namespace(), &doc.value["spec"]);
            match doc.kind() {
                "TrafficSplit" => {
                    let root = spec["service"].as_str().unwrap_or("");
                    let root_ports = ports(ns, root)
                        .unwrap_or_else(|| panic!("{}: no Service {root}", doc.at()));
                    for backend in spec["backends"].as_array().into_iter().flatten() {
                        let name = backend["service"].as_str().unwrap_or("");
                        let backend_ports = ports(ns, name)
                            .unwrap_or_else(|| panic!("{}: no Service {name}", doc.at()));
                        assert!(
                            root_ports.is_subset(&backend_ports),
                            "{}: {name} lacks ports of {root}",
                            doc.at()
                        );
                    }
                }
                "HTTPRoute" => {
                    // Inbound policy routes attach to a Server of the same file.
                    let (servers, services): (Vec<&Value>, Vec<&Value>) = spec["parentRefs"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .partition(|p| p["kind"] == "Server");
                    for parent in servers {
                        assert_eq!(parent["group"], "policy.weft.dev", "{}", doc.at());
                        let name = parent["name"].as_str().unwrap_or("");
                        assert!(
                            defines(&in_file, "Server", ns, name),
                            "{}: no Server {name}",
                            doc.at()
                        );
                    }
                    for parent in &services {
                        assert_eq!(
                            parent["group"],
                            "",
                            "{}: Service parents have group \"\"",
                            doc.at()
                        );
                        assert_eq!(parent["kind"], "Service", "{}", doc.at());
                    }
                    let refs = services.into_iter().chain(
                        spec["rules"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .flat_map(|r| r["backendRefs"].as_array().into_iter().flatten()),
                    );
                    for r in refs {
                        let name = r["name"].as_str().unwrap_or("");
                        let service_ports = ports(ns, name)
                            .unwrap_or_else(|| panic!("{}: no Service {name}", doc.at()));
                        let port = r["port"].as_i64().expect("refs to Services name a port");
                        assert!(
                            service_ports.contains(&port),
                            "{}: {name} has no port {port}",
                            doc.at()
                        );
                    }
                }
                "AuthorizationPolicy" => {
                    let target = &spec["targetRef"];
                    let (kind, name) = (target["kind"].as_str(), target["name"].as_str());
                    let (kind, name) = (kind.unwrap_or(""), name.unwrap_or(""));
                    assert!(
                        kind == "Namespace" && name == ns || defines(&in_file, kind, ns, name),
                        "{}: targets {kind} {name}, which the file does not define",
                        doc.at()
                    );
                    let refs = spec["requiredAuthenticationRefs"].as_array();
                    for r in refs.into_iter().flatten() {
                        let (kind, name) = (r["kind"].as_str(), r["name"].as_str());
                        let (kind, name) = (kind.unwrap_or(""), name.unwrap_or(""));
                        // A ServiceAccount is the workload's; it need not exist to be named.
                        assert!(
                            kind == "ServiceAccount" || defines(&in_file, kind, ns, name),
                            "{}: requires {kind} {name}, which the file does not define",
                            doc.at()
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

/// Whether `docs` holds a `kind` named `name` in namespace `ns`.
fn defines(docs: &[&Doc], kind: &str, ns: &str, name: &str) -> bool {
    docs.iter()
        .any(|d| d.kind() == kind && d.namespace() == ns && d.name() == name)
}

#[test]
fn schemas_reject_broken_policies() {
    let check = |key: (&str, &str), good: &Value, broken: &[Breakage]| {
        assert_eq!(errors_for(key, good), Vec::<String>::new(), "{good}");
        for (what, breaks) in broken {
            let mut obj = good.clone();
            breaks(&mut obj);
            assert!(
                !errors_for(key, &obj).is_empty(),
                "a {} with {what} passed: {obj}",
                key.1
            );
        }
    };
    check(
        SERVER,
        &example("Server", "authz.yaml"),
        &[
            ("no port", |s| {
                s["spec"].as_object_mut().expect("spec").remove("port");
            }),
            ("no podSelector", |s| {
                s["spec"]
                    .as_object_mut()
                    .expect("spec")
                    .remove("podSelector");
            }),
            ("an unknown protocol", |s| {
                s["spec"]["proxyProtocol"] = json!("HTTP/3")
            }),
            ("an unknown access policy", |s| {
                s["spec"]["accessPolicy"] = json!("allow")
            }),
            ("an unknown operator", |s| {
                s["spec"]["podSelector"]["matchExpressions"] =
                    json!([{"key": "app", "operator": "Equals"}])
            }),
            ("a misspelt field", |s| s["spec"]["prot"] = json!(8080)),
        ],
    );
    let policy = load("examples")
        .into_iter()
        .find(|d| d.name() == "client-get")
        .expect("the client-get policy")
        .value;
    check(
        AUTHORIZATION_POLICY,
        &policy,
        &[
            ("a Service target", |p| {
                p["spec"]["targetRef"]["kind"] = json!("Service")
            }),
            ("no requiredAuthenticationRefs", |p| {
                p["spec"]
                    .as_object_mut()
                    .expect("spec")
                    .remove("requiredAuthenticationRefs");
            }),
            ("a Secret as authentication", |p| {
                p["spec"]["requiredAuthenticationRefs"][0]["kind"] = json!("Secret")
            }),
            ("a nameless target", |p| {
                p["spec"]["targetRef"]
                    .as_object_mut()
                    .expect("targetRef")
                    .remove("name");
            }),
        ],
    );
    check(
        MESH_TLS,
        &example("MeshTLSAuthentication", "authz.yaml"),
        &[
            ("neither identities nor refs", |m| m["spec"] = json!({})),
            ("an inner wildcard", |m| {
                m["spec"]["identities"] = json!(["web.*.cluster.local"])
            }),
            ("a Group ref", |m| {
                m["spec"]["identityRefs"][0]["kind"] = json!("Group")
            }),
            ("an empty identity list", |m| {
                m["spec"] = json!({"identities": []})
            }),
        ],
    );
    let network = json!({
        "apiVersion": "policy.weft.dev/v1alpha1", "kind": "NetworkAuthentication",
        "metadata": {"name": "cluster", "namespace": "shop"},
        "spec": {"networks": [
            {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "10.2.3.4"]},
            {"cidr": "fd00::/8"},
        ]},
    });
    check(
        NETWORK,
        &network,
        &[
            ("no networks", |n| n["spec"]["networks"] = json!([])),
            ("a /33", |n| {
                n["spec"]["networks"][0]["cidr"] = json!("10.0.0.0/33")
            }),
            ("a name for a network", |n| {
                n["spec"]["networks"][0]["cidr"] = json!("cluster")
            }),
            ("an octet over 255", |n| {
                n["spec"]["networks"][0]["except"] = json!(["300.1.1.1"])
            }),
            ("no cidr", |n| {
                n["spec"]["networks"][1] = json!({"except": []})
            }),
        ],
    );
}

// === kubectl ===

#[test]
fn kubectl_reads_every_manifest() {
    let Some(kubectl) = kubectl::find("deploy/") else {
        return;
    };
    let docs = load("");
    let mut problems = Vec::new();
    for file in yaml_files(&deploy_dir()) {
        let expected: Vec<String> = docs
            .iter()
            .filter(|d| d.file == file)
            .map(|d| kubectl::name(&d.value))
            .collect();
        match kubectl::names(&kubectl, Some(&deploy_dir().join(&file)), "") {
            Ok(names) if names == expected => {}
            Ok(names) => problems.push(format!(
                "deploy/{file}: kubectl read {names:?}, this test read {expected:?}"
            )),
            Err(e) => problems.push(format!("deploy/{file}: {e}")),
        }
    }
    assert_no_problems("manifests kubectl does not read", &problems);
}

#[test]
fn kubectl_check_rejects_a_broken_manifest() {
    let Some(kubectl) = kubectl::find("deploy/") else {
        return;
    };
    let good = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: weft\n";
    assert_eq!(
        kubectl::names(&kubectl, None, good),
        Ok(vec!["namespace/weft".to_string()])
    );
    for bad in [
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: [weft\n",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: weft\n  labels: [a, b]\n",
    ] {
        assert!(
            kubectl::names(&kubectl, None, bad).is_err(),
            "kubectl accepted {bad:?}"
        );
    }
}
