//! The containers and volumes the injection adds, built as k8s-openapi types so every field
//! is one the API server knows.

use crate::{
    Config, Overrides, Resources,
    config::{
        ADMIN_PORT, INBOUND_PORT, INIT_CONTAINER, OUTBOUND_PORT, PROXY_CONTAINER, PROXY_UID,
        TOKEN_AUDIENCE, TOKEN_DIR, TOKEN_EXPIRATION_SECONDS, TOKEN_VOLUME, XTABLES_VOLUME,
    },
};
use k8s_openapi::{
    api::core::v1::{
        Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
        ExecAction, HTTPGetAction, Lifecycle, LifecycleHandler, ObjectFieldSelector, Probe,
        ProjectedVolumeSource, ResourceRequirements, SeccompProfile, SecurityContext,
        ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
    },
    apimachinery::pkg::{api::resource::Quantity, util::intstr::IntOrString},
};
use std::collections::BTreeMap;

/// Downward-API variables the proxy's settings are built from. They do not start with
/// `WEFT_PROXY_`, which the proxy would refuse as unknown settings.
const POD_NAMESPACE: &str = "_WEFT_POD_NAMESPACE";
const POD_NAME: &str = "_WEFT_POD_NAME";
const POD_SERVICE_ACCOUNT: &str = "_WEFT_POD_SERVICE_ACCOUNT";

/// The `weft-init` container: programs the pod's redirect and exits.
pub(crate) fn init_container(config: &Config, overrides: &Overrides) -> Container {
    let mut args = vec![
        "--proxy-uid".to_string(),
        PROXY_UID.to_string(),
        "--inbound-port".to_string(),
        INBOUND_PORT.to_string(),
        "--outbound-port".to_string(),
        OUTBOUND_PORT.to_string(),
        "--admin-port".to_string(),
        ADMIN_PORT.to_string(),
    ];
    for (flag, value) in [
        ("--skip-inbound-ports", &overrides.skip_inbound_ports),
        ("--skip-outbound-ports", &overrides.skip_outbound_ports),
    ] {
        if let Some(value) = value {
            args.extend([flag.to_string(), value.clone()]);
        }
    }
    Container {
        name: INIT_CONTAINER.to_string(),
        image: Some(config.init_image.clone()),
        image_pull_policy: Some(config.image_pull_policy.clone()),
        args: Some(args),
        resources: Some(requirements(&Resources {
            cpu_request: Some("10m".to_string()),
            cpu_limit: Some("100m".to_string()),
            memory_request: Some("10Mi".to_string()),
            memory_limit: Some("50Mi".to_string()),
        })),
        // iptables needs root and NET_ADMIN/NET_RAW in the pod's network namespace, nothing
        // more; it runs before any app container and exits.
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_ADMIN".to_string(), "NET_RAW".to_string()]),
                drop: Some(vec!["ALL".to_string()]),
            }),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(false),
            run_as_user: Some(0),
            seccomp_profile: Some(runtime_default()),
            ..SecurityContext::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        volume_mounts: Some(vec![VolumeMount {
            name: XTABLES_VOLUME.to_string(),
            mount_path: "/run".to_string(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    }
}

/// The proxy container, as a native sidecar or as a regular container.
pub(crate) fn proxy_container(config: &Config, overrides: &Overrides) -> Container {
    let probe = |path: &str, period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::Int(ADMIN_PORT),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    let mut container = Container {
        name: PROXY_CONTAINER.to_string(),
        image: Some(config.proxy_image.clone()),
        image_pull_policy: Some(config.image_pull_policy.clone()),
        env: Some(proxy_env(config, overrides)),
        ports: Some(vec![
            port("weft-inbound", INBOUND_PORT),
            port("weft-admin", ADMIN_PORT),
        ]),
        resources: Some(requirements(&overrides.resources)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                add: None,
                drop: Some(vec!["ALL".to_string()]),
            }),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_group: Some(PROXY_UID),
            run_as_non_root: Some(true),
            run_as_user: Some(PROXY_UID),
            seccomp_profile: Some(runtime_default()),
            ..SecurityContext::default()
        }),
        // Not ready without a certificate: the app starts once the proxy can serve it.
        startup_probe: Some(probe("/ready", 1, 120)),
        liveness_probe: Some(probe("/live", 10, 3)),
        readiness_probe: Some(probe("/ready", 10, 3)),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        volume_mounts: config.trust_anchors.as_ref().map(|_| {
            vec![VolumeMount {
                name: TOKEN_VOLUME.to_string(),
                mount_path: TOKEN_DIR.to_string(),
                read_only: Some(true),
                ..VolumeMount::default()
            }]
        }),
        ..Container::default()
    };
    if config.native_sidecars {
        container.restart_policy = Some("Always".to_string());
    } else {
        // The kubelet starts the next container only when this hook returns.
        container.lifecycle = Some(Lifecycle {
            post_start: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec![config.await_command.clone()]),
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        });
    }
    container
}

/// The proxy's `WEFT_PROXY_*` settings: what local mode gives its sidecars, with the pod's
/// own names from the downward API.
fn proxy_env(config: &Config, overrides: &Overrides) -> Vec<EnvVar> {
    let mut env = vec![
        field(POD_NAMESPACE, "metadata.namespace"),
        field(POD_NAME, "metadata.name"),
        field(POD_SERVICE_ACCOUNT, "spec.serviceAccountName"),
        value(
            "WEFT_PROXY_LOG",
            overrides
                .log_level
                .as_ref()
                .unwrap_or(&config.proxy_log_level),
        ),
        value(
            "WEFT_PROXY_WORKLOAD",
            &format!("$({POD_NAMESPACE})/$({POD_NAME})"),
        ),
        value("WEFT_PROXY_CONTROLLER_ADDR", &config.controller_addr),
    ];
    if let Some(policy) = &overrides.default_inbound_policy {
        env.push(value("WEFT_PROXY_INBOUND_DEFAULT_POLICY", policy));
    }
    if let Some(ports) = &overrides.opaque_ports {
        env.push(value("WEFT_PROXY_OPAQUE_PORTS", ports));
    }
    if let Some(anchors) = &config.trust_anchors {
        env.extend([
            value("WEFT_PROXY_IDENTITY_ADDR", &config.identity_addr),
            value(
                "WEFT_PROXY_IDENTITY_NAME",
                &format!(
                    "$({POD_SERVICE_ACCOUNT}).$({POD_NAMESPACE}).serviceaccount.identity.{}",
                    config.trust_domain
                ),
            ),
            value("WEFT_PROXY_TOKEN_FILE", &format!("{TOKEN_DIR}/token")),
            value("WEFT_PROXY_TRUST_ANCHORS", anchors),
        ]);
    }
    if let Some(otlp) = &config.otlp_addr {
        env.push(value("WEFT_PROXY_OTLP_ADDR", otlp));
        env.push(field("WEFT_PROXY_NODE_NAME", "spec.nodeName"));
        if let Some(ratio) = &overrides.trace_sampling {
            env.push(value("WEFT_PROXY_TRACE_SAMPLING", ratio));
        }
    }
    if let Some(log) = &overrides.access_log {
        env.push(value("WEFT_PROXY_ACCESS_LOG", log));
    }
    env
}

/// The projected ServiceAccount token the proxy proves its identity with.
pub(crate) fn token_volume() -> Volume {
    Volume {
        name: TOKEN_VOLUME.to_string(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o444),
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some(TOKEN_AUDIENCE.to_string()),
                    expiration_seconds: Some(TOKEN_EXPIRATION_SECONDS),
                    path: "token".to_string(),
                }),
                ..VolumeProjection::default()
            }]),
        }),
        ..Volume::default()
    }
}

/// The writable `/run` of `weft-init`.
pub(crate) fn xtables_volume() -> Volume {
    Volume {
        name: XTABLES_VOLUME.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_string()),
            size_limit: Some(Quantity("1Mi".to_string())),
        }),
        ..Volume::default()
    }
}

fn requirements(r: &Resources) -> ResourceRequirements {
    let map = |cpu: &Option<String>, memory: &Option<String>| {
        let map: BTreeMap<String, Quantity> = [("cpu", cpu), ("memory", memory)]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), Quantity(v.clone()?))))
            .collect();
        (!map.is_empty()).then_some(map)
    };
    ResourceRequirements {
        requests: map(&r.cpu_request, &r.memory_request),
        limits: map(&r.cpu_limit, &r.memory_limit),
        ..ResourceRequirements::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_string(),
        localhost_profile: None,
    }
}

fn port(name: &str, number: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_string()),
        container_port: number,
        protocol: Some("TCP".to_string()),
        ..ContainerPort::default()
    }
}

fn value(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    }
}

fn field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: path.to_string(),
            }),
            ..EnvVarSource::default()
        }),
    }
}
