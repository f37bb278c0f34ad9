//! Tests of the index through its edge: Kubernetes objects in through [`IndexResource`], results
//! out through the `Discover*` traits. Objects are built from JSON, so the shapes the sources
//! receive are the shapes tested.

mod counts;
mod endpoint_pods;
mod endpoints;
mod grpc_routes;
mod http_routes;
mod inbound;
mod inbound_routes;
mod outbound;
mod pod_ips;
mod policy_authz;
mod resilience;
mod servers;

use crate::{
    Config, Index, IndexResource, ObjectKey, SharedIndex,
    crds::{
        AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, Server, TrafficSplit,
    },
};
use gateway_api::apis::{experimental::httproutes::HttpRoute, standard::grpcroutes::GrpcRoute};
use k8s_openapi::api::{
    core::v1::{Namespace, Pod, Service},
    discovery::v1::EndpointSlice,
};
use serde_json::{Value, json};
use std::{collections::BTreeMap, num::NonZeroU16};
use weft_controller_core::{
    DiscoverEndpoints, DiscoverInboundServer, DiscoverOutboundPolicy, OutboundTarget, ServicePort,
    ServiceRef,
};

/// The namespace every test object lives in.
const NS: &str = "shop";

fn new_index() -> SharedIndex {
    SharedIndex::new(Config::default())
}

fn obj<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("the JSON is a valid object of its kind")
}

fn apply<T>(index: &SharedIndex, resource: T)
where
    Index: IndexResource<T>,
{
    IndexResource::<T>::apply(&mut *index.write(), resource);
}

fn delete<T>(index: &SharedIndex, namespace: &str, name: &str)
where
    Index: IndexResource<T>,
{
    IndexResource::<T>::delete(&mut *index.write(), ObjectKey::new(namespace, name));
}

fn reset<T>(index: &SharedIndex, resources: Vec<T>)
where
    Index: IndexResource<T>,
{
    IndexResource::<T>::reset(&mut *index.write(), resources);
}

fn counts(index: &SharedIndex) -> BTreeMap<&'static str, usize> {
    index.write().counts()
}

fn labels<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn service_port(name: &str, port: u16) -> ServicePort {
    ServicePort::new(
        ServiceRef::new(NS, name),
        NonZeroU16::new(port).expect("test ports are not 0"),
    )
}

fn addr(a: &str) -> OutboundTarget {
    OutboundTarget::Addr(a.parse().expect("test addresses parse"))
}

fn authority(a: &str) -> OutboundTarget {
    OutboundTarget::Authority(a.to_string())
}

fn meta(name: &str, annotations: Value) -> Value {
    json!({ "name": name, "namespace": NS, "annotations": annotations })
}

fn namespace(name: &str, annotations: Value) -> Namespace {
    obj(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": name, "annotations": annotations },
    }))
}

/// A Service with one port, `http` 8080 → 80.
fn service(name: &str, cluster_ip: &str) -> Service {
    service_with(
        name,
        cluster_ip,
        json!({}),
        json!([{ "name": "http", "port": 8080, "targetPort": 80 }]),
    )
}

fn service_with(name: &str, cluster_ip: &str, annotations: Value, ports: Value) -> Service {
    obj(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta(name, annotations),
        "spec": { "type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "ports": ports },
    }))
}

/// An EndpointSlice of `service` with one port, `http` 80.
fn slice(name: &str, service: &str, endpoints: Value) -> EndpointSlice {
    slice_with(
        name,
        service,
        json!([{ "name": "http", "port": 80 }]),
        endpoints,
    )
}

fn slice_with(name: &str, service: &str, ports: Value, endpoints: Value) -> EndpointSlice {
    obj(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": name, "namespace": NS,
            "labels": { "kubernetes.io/service-name": service },
        },
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }))
}

/// A ready endpoint backed by `pod`.
fn ep(ip: &str, pod: &str) -> Value {
    ep_when(ip, pod, true, true, false)
}

fn ep_when(ip: &str, pod: &str, ready: bool, serving: bool, terminating: bool) -> Value {
    json!({
        "addresses": [ip],
        "conditions": { "ready": ready, "serving": serving, "terminating": terminating },
        "targetRef": { "kind": "Pod", "namespace": NS, "name": pod },
    })
}

fn pod(name: &str, service_account: &str, annotations: Value) -> Pod {
    obj(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": NS, "annotations": annotations,
            "labels": { "app": "web", "pod-template-hash": "abc" },
        },
        "spec": { "serviceAccountName": service_account, "containers": [{ "name": "app" }] },
    }))
}

/// The annotation the injector puts on meshed pods.
fn meshed() -> Value {
    json!({ "weft.dev/proxy-version": "v0.1.0" })
}

/// A TrafficSplit with root `web`.
fn split(name: &str, backends: &[(&str, i64)]) -> TrafficSplit {
    let backends: Vec<Value> = backends
        .iter()
        .map(|(service, weight)| json!({ "service": service, "weight": weight }))
        .collect();
    obj(json!({
        "apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
        "metadata": meta(name, json!({})),
        "spec": { "service": "web", "backends": backends },
    }))
}

fn http_route(name: &str, spec: Value) -> HttpRoute {
    obj(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": meta(name, json!({})),
        "spec": spec,
    }))
}

fn grpc_route(name: &str, spec: Value) -> GrpcRoute {
    obj(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
        "metadata": meta(name, json!({})),
        "spec": spec,
    }))
}

/// A GAMMA parentRef: the Service `web`, port 8080.
fn web_parent() -> Value {
    json!({ "group": "", "kind": "Service", "name": "web", "port": 8080 })
}

/// A `policy.weft.dev/v1alpha1` object of `kind` in [`NS`].
fn policy_obj<T: serde::de::DeserializeOwned>(kind: &str, name: &str, spec: Value) -> T {
    obj(json!({
        "apiVersion": "policy.weft.dev/v1alpha1", "kind": kind,
        "metadata": meta(name, json!({})),
        "spec": spec,
    }))
}

/// A Server for the pods labelled `app: <app>`, on `port` (a number or a name).
fn server(name: &str, app: &str, port: Value) -> Server {
    policy_obj(
        "Server",
        name,
        json!({ "podSelector": { "matchLabels": { "app": app } }, "port": port }),
    )
}

/// An AuthorizationPolicy for `target` (`{group, kind, name}`) requiring `refs`.
fn authz_policy(name: &str, target: Value, refs: Value) -> AuthorizationPolicy {
    policy_obj(
        "AuthorizationPolicy",
        name,
        json!({ "targetRef": target, "requiredAuthenticationRefs": refs }),
    )
}

fn mesh_tls(name: &str, spec: Value) -> MeshTLSAuthentication {
    policy_obj("MeshTLSAuthentication", name, spec)
}

fn network_authn(name: &str, networks: Value) -> NetworkAuthentication {
    policy_obj(
        "NetworkAuthentication",
        name,
        json!({ "networks": networks }),
    )
}

/// A targetRef or authentication ref in the `policy.weft.dev` group.
fn weft_ref(kind: &str, name: &str) -> Value {
    json!({ "group": "policy.weft.dev", "kind": kind, "name": name })
}

/// A meshed pod `name` (labels `app: <app>`) with the container ports `ports` (`[{name, containerPort}]`).
fn app_pod(name: &str, app: &str, ports: Value) -> Pod {
    obj(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": NS, "annotations": meshed(),
            "labels": { "app": app },
        },
        "spec": { "serviceAccountName": app, "containers": [{ "name": "app", "ports": ports }] },
    }))
}

/// The current value of an inbound watch, marking it seen.
fn inbound_now(
    rx: &mut tokio::sync::watch::Receiver<std::sync::Arc<weft_controller_core::InboundServer>>,
) -> weft_controller_core::InboundServer {
    (**rx.borrow_and_update()).clone()
}

/// Whether an inbound watch has a value not seen yet.
fn inbound_changed(
    rx: &tokio::sync::watch::Receiver<std::sync::Arc<weft_controller_core::InboundServer>>,
) -> bool {
    rx.has_changed().expect("the inbound channel stays open")
}

/// The authorization an AuthorizationPolicy named `name` in [`NS`] gives.
fn policy_authorization(
    name: &str,
    networks: Vec<weft_controller_core::Network>,
    authentication: weft_controller_core::Authentication,
) -> weft_controller_core::Authorization {
    weft_controller_core::Authorization {
        resource: weft_controller_core::outbound::ResourceRef::Resource {
            group: "policy.weft.dev".to_string(),
            kind: "AuthorizationPolicy".to_string(),
            namespace: NS.to_string(),
            name: name.to_string(),
        },
        networks,
        authentication,
    }
}
