//! The manifests of `deploy/`, compiled in: `weft install` renders exactly these files (plus
//! the certificates it makes), so what the repository tests is what users apply.

/// `(path under deploy/, text)` of a file of `deploy/`.
macro_rules! deploy {
    ($path:literal) => {
        ($path, include_str!(concat!("../../../deploy/", $path)))
    };
}

/// The namespace.
pub const NAMESPACE: (&str, &str) = deploy!("controller/namespace.yaml");

/// The CRDs.
pub const CRDS: [(&str, &str); 7] = [
    deploy!("crds/split.smi-spec.io_trafficsplits.yaml"),
    deploy!("crds/gateway-api/gateway.networking.k8s.io_httproutes.yaml"),
    deploy!("crds/gateway-api/gateway.networking.k8s.io_grpcroutes.yaml"),
    deploy!("crds/policy.weft.dev_servers.yaml"),
    deploy!("crds/policy.weft.dev_authorizationpolicies.yaml"),
    deploy!("crds/policy.weft.dev_meshtlsauthentications.yaml"),
    deploy!("crds/policy.weft.dev_networkauthentications.yaml"),
];

/// The control plane's identities and RBAC.
pub const RBAC: [(&str, &str); 2] = [
    deploy!("controller/rbac.yaml"),
    deploy!("injector/rbac.yaml"),
];

/// The control plane's workloads.
pub const WORKLOADS: [(&str, &str); 2] = [
    deploy!("controller/deployment.yaml"),
    deploy!("injector/deployment.yaml"),
];

/// The webhook that sends pods to the injector, applied last.
pub const WEBHOOK: (&str, &str) = deploy!("injector/webhook.yaml");

/// Jaeger all-in-one, with `--tracing`.
pub const JAEGER: (&str, &str) = deploy!("jaeger/jaeger.yaml");
