mod policy;

use super::*;
use std::collections::HashMap;
use weft_controller_core::{DiscoverOutboundPolicy, OutboundTarget};
use weft_controller_index::Config;

fn parse(text: &str) -> Objects {
    let mut objects = Objects::default();
    parse::parse_file(Path::new("x.yaml"), text, &mut objects, &mut HashMap::new());
    objects
}

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 8080}]}
";

#[test]
fn parses_every_kind_and_defaults_the_namespace() {
    let text = format!(
        "{SERVICE}---
apiVersion: v1
kind: Namespace
metadata: {{name: shop}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web-1}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: web-abc, namespace: shop, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
endpoints: [{{addresses: [10.42.0.3]}}]
ports: [{{name: http, port: 8080}}]
---
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {{name: web, namespace: shop}}
spec: {{service: web, backends: [{{service: web-v1, weight: 90}}, {{service: web-v2, weight: 10}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: shop}}
spec: {{parentRefs: [{{kind: Service, group: '', name: web, port: 8080}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: rpc, namespace: shop}}
spec: {{parentRefs: [{{kind: Service, group: '', name: rpc}}]}}
---
"
    );
    let o = parse(&text);
    assert_eq!(o.errors, vec![]);
    assert_eq!(o.documents, 7);
    assert_eq!(
        (
            o.namespaces.len(),
            o.services.len(),
            o.pods.len(),
            o.endpoint_slices.len()
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(
        (
            o.traffic_splits.len(),
            o.http_routes.len(),
            o.grpc_routes.len()
        ),
        (1, 1, 1)
    );
    assert_eq!(o.pods[0].metadata.namespace.as_deref(), Some("default"));
    assert_eq!(o.traffic_splits[0].spec.backends[1].weight, 10);
}

#[test]
fn reports_each_bad_document_with_its_index_and_keeps_the_good_ones() {
    let text = format!(
        "{SERVICE}---
apiVersion: v1
kind: Service
metadata: {{name: bad, namespace: shop}}
spec: {{ports: [{{port: eighty}}]}}
---
kind: Service
metadata: {{name: nover}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cm}}
---
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {{name: neg, namespace: shop}}
spec: {{service: web, backends: [{{service: web-v1, weight: -5}}]}}
---
apiVersion: v1
kind: Service
metadata: {{namespace: shop}}
---
{SERVICE}"
    );
    let o = parse(&text);
    let reasons: Vec<(Option<usize>, &str)> = o
        .errors
        .iter()
        .map(|e| (e.document, e.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 6, "{reasons:#?}");
    assert_eq!(reasons[0].0, Some(1));
    assert!(
        reasons[0].1.contains("spec.ports[0].port"),
        "{}",
        reasons[0].1
    );
    assert_eq!(reasons[1], (Some(2), "missing apiVersion"));
    assert!(
        reasons[2]
            .1
            .starts_with("unsupported kind ConfigMap (apiVersion v1)"),
        "{}",
        reasons[2].1
    );
    assert!(
        reasons[3]
            .1
            .contains("spec.backends[0].weight: -5 is negative"),
        "{}",
        reasons[3].1
    );
    assert_eq!(reasons[4], (Some(5), "Service has no metadata.name"));
    assert!(
        reasons[5]
            .1
            .contains("already defined in x.yaml document 0"),
        "{}",
        reasons[5].1
    );
    assert_eq!(
        o.services.len(),
        2,
        "the good web Service (twice) still applies"
    );
    assert!(o.traffic_splits.is_empty());
}

#[test]
fn a_syntax_error_is_reported_and_ends_the_file() {
    let o = parse(&format!("{SERVICE}---\nkind: [unclosed\n---\n{SERVICE}"));
    assert_eq!(o.services.len(), 1);
    assert_eq!(o.errors.len(), 1);
    assert_eq!(o.errors[0].document, Some(1));
    assert!(
        o.errors[0].reason.starts_with("invalid YAML"),
        "{}",
        o.errors[0].reason
    );
    assert!(
        o.errors[0]
            .to_string()
            .starts_with("x.yaml document 1: invalid YAML")
    );
}

#[test]
fn only_visible_manifests_are_read() {
    for (path, yes) in [
        ("a.yaml", true),
        ("b.yml", true),
        ("c.json", true),
        (".a.yaml.swp", false),
        (".hidden.yaml", false),
        ("notes.txt", false),
        ("a.yaml~", false),
    ] {
        assert_eq!(is_manifest(Path::new(path)), yes, "{path}");
    }
}

#[tokio::test]
async fn follows_adds_edits_and_deletes() {
    let dir = std::env::temp_dir().join(format!("weft-files-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let index = SharedIndex::new(Config::default());
    let (reports, mut rx) = watch::channel(Arc::new(Report::default()));
    let task = tokio::spawn(run(dir.clone(), index.clone(), reports));
    let target = OutboundTarget::Addr("10.96.0.10:8080".parse().unwrap());
    let wait_generation = |rx: &mut watch::Receiver<Arc<Report>>, n: u64| {
        let mut rx = rx.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|r| r.generation >= n))
                .await
                .expect("reload in time")
                .expect("source running")
                .clone()
        }
    };
    wait_generation(&mut rx, 1).await;
    assert!(index.outbound_policy(&target).is_none());

    std::fs::write(dir.join("svc.yaml"), SERVICE).unwrap();
    let r = wait_generation(&mut rx, 2).await;
    assert_eq!((r.documents, r.errors.len()), (1, 0));
    assert!(index.outbound_policy(&target).is_some());

    std::fs::write(
        dir.join("svc.yaml"),
        SERVICE.replace("10.96.0.10", "10.96.0.11"),
    )
    .unwrap();
    let _ = wait_generation(&mut rx, 3).await;
    assert!(index.outbound_policy(&target).is_none());

    std::fs::remove_file(dir.join("svc.yaml")).unwrap();
    let r = wait_generation(&mut rx, 4).await;
    assert_eq!(r.documents, 0);
    assert_eq!(index.write().counts()["services"], 0);

    task.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_cache_follows_edits_and_reports_objects_defined_in_two_files() {
    let dir = std::env::temp_dir().join(format!("weft-files-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), SERVICE).unwrap();
    std::fs::write(dir.join("b.yaml"), SERVICE).unwrap();
    let mut cache = Cache::default();
    let o = cache.read_dir(&dir).unwrap();
    assert_eq!(o.services.len(), 2);
    assert_eq!(o.errors.len(), 1, "{:?}", o.errors);
    assert_eq!(o.errors[0].file, dir.join("b.yaml"));
    assert!(
        o.errors[0].reason.contains("already defined in"),
        "{}",
        o.errors[0].reason
    );

    // An edit is seen; the unchanged file's parse is reused and still counted.
    std::fs::write(
        dir.join("a.yaml"),
        SERVICE.replace("name: web,", "name: api,"),
    )
    .unwrap();
    let o = cache.read_dir(&dir).unwrap();
    let names: Vec<_> = o
        .services
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(names, ["api", "web"]);
    assert!(o.errors.is_empty(), "{:?}", o.errors);

    // A removed file's objects go with it.
    std::fs::remove_file(dir.join("b.yaml")).unwrap();
    let o = cache.read_dir(&dir).unwrap();
    assert_eq!(o.services.len(), 1);
    assert_eq!(o.documents, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn changes_parse_only_changed_files_and_fall_back_to_a_full_read_on_overlaps() {
    let dir = std::env::temp_dir().join(format!("weft-files-changes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let api = SERVICE.replace("name: web,", "name: api,");
    std::fs::write(dir.join("a.yaml"), SERVICE).unwrap();
    std::fs::write(dir.join("b.yaml"), &api).unwrap();
    let mut cache = Cache::default();
    let Changes::Full(first) = cache.read_changes(&dir).unwrap() else {
        panic!("the first read is full")
    };
    assert_eq!(first.services.len(), 2);

    // Nothing changed: nothing to apply or delete.
    let Changes::Partial {
        apply,
        delete,
        documents,
        ..
    } = cache.read_changes(&dir).unwrap()
    else {
        panic!("partial expected")
    };
    assert_eq!((apply.documents, delete.len(), documents), (0, 0, 2));

    // b.yaml now defines `cart` instead of `api`: only b is parsed, `api` is deleted.
    std::fs::write(
        dir.join("b.yaml"),
        SERVICE.replace("name: web,", "name: cart,"),
    )
    .unwrap();
    let Changes::Partial {
        apply,
        delete,
        errors,
        documents,
    } = cache.read_changes(&dir).unwrap()
    else {
        panic!("partial expected")
    };
    let names: Vec<_> = apply
        .services
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(names, ["cart"]);
    assert_eq!(
        delete,
        [("Service".to_string(), "shop".to_string(), "api".to_string())]
    );
    assert!(errors.is_empty());
    assert_eq!(documents, 2);

    // An invalid document in b is reported with the directory's totals.
    std::fs::write(
        dir.join("b.yaml"),
        "apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n",
    )
    .unwrap();
    let Changes::Partial { delete, errors, .. } = cache.read_changes(&dir).unwrap() else {
        panic!("partial expected")
    };
    assert_eq!(delete.len(), 1, "cart is gone");
    assert_eq!(errors.len(), 1);

    // b now defines the same Service as the unchanged a: a full read decides.
    std::fs::write(dir.join("b.yaml"), SERVICE).unwrap();
    let Changes::Full(all) = cache.read_changes(&dir).unwrap() else {
        panic!("an overlap with an unchanged file needs a full read")
    };
    assert_eq!(all.services.len(), 2);
    assert!(
        all.errors[0].reason.contains("already defined"),
        "{:?}",
        all.errors
    );
    let _ = std::fs::remove_dir_all(&dir);
}
