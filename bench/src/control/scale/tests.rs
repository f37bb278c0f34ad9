use super::*;
use serde::Deserialize;
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Every document of every file, parsed.
fn documents(files: &[ManifestFile]) -> Vec<Value> {
    files
        .iter()
        .flat_map(|f| {
            serde_yaml_ng::Deserializer::from_str(&f.text)
                .enumerate()
                .map(|(i, doc)| {
                    Value::deserialize(doc)
                        .unwrap_or_else(|e| panic!("{} document {i} is not YAML: {e}", f.name))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {path:?} in {v:?}"))
}

fn seq<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no list {key} in {v:?}"))
}

const KINDS: [(&str, &str); 5] = [
    ("v1", "Namespace"),
    ("v1", "Service"),
    ("v1", "Pod"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
    ("split.smi-spec.io/v1alpha2", "TrafficSplit"),
];

#[test]
fn makes_the_counts_it_promises_and_every_document_is_a_known_kind() {
    let scale = Scale {
        services: 25,
        endpoints: 3,
        services_per_namespace: 10,
    };
    let counts = scale.validate().expect("a valid scale");
    assert_eq!(
        counts,
        Counts {
            namespaces: 3,
            services: 25,
            endpointslices: 25,
            pods: 75,
            trafficsplits: 2,
        }
    );
    let files = scale.files().expect("a valid scale");
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["bench-0000.yaml", "bench-0001.yaml", "bench-0002.yaml"]
    );

    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let docs = documents(&files);
    for doc in &docs {
        let kind = (str_at(doc, &["apiVersion"]), str_at(doc, &["kind"]));
        assert!(KINDS.contains(&kind), "unexpected kind {kind:?}");
        *kinds.entry(kind.1).or_default() += 1;
        str_at(doc, &["metadata", "name"]);
    }
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("Namespace", 3),
            ("Service", 25),
            ("Pod", 75),
            ("EndpointSlice", 25),
            ("TrafficSplit", 2),
        ])
    );
    // Each file's documents are in its own namespace.
    for file in &files {
        let ns = file.name.trim_end_matches(".yaml");
        for doc in documents(std::slice::from_ref(file)) {
            if str_at(&doc, &["kind"]) != "Namespace" {
                assert_eq!(str_at(&doc, &["metadata", "namespace"]), ns);
            }
        }
    }
}

#[test]
fn addresses_are_unique_and_in_their_ranges() {
    let scale = Scale {
        services: 300,
        endpoints: 7,
        services_per_namespace: 100,
    };
    let docs = documents(&scale.files().expect("a valid scale"));
    let in_range = |ip: &str, (net, bits): (Ipv4Addr, u8)| {
        let ip: Ipv4Addr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
        let mask = u32::MAX << (32 - bits);
        u32::from(ip) & mask == u32::from(net) && ip != net && !ip.is_broadcast()
    };
    let (mut cluster_ips, mut pod_ips) = (HashSet::new(), HashSet::new());
    for doc in &docs {
        match str_at(doc, &["kind"]) {
            "Service" => {
                let ip = str_at(doc, &["spec", "clusterIP"]);
                assert!(in_range(ip, SERVICE_CIDR), "{ip}");
                assert!(
                    cluster_ips.insert(ip.to_string()),
                    "duplicate ClusterIP {ip}"
                );
            }
            "Pod" => {
                let ip = str_at(doc, &["status", "podIP"]);
                assert!(in_range(ip, POD_CIDR), "{ip}");
                assert!(pod_ips.insert(ip.to_string()), "duplicate pod IP {ip}");
            }
            _ => {}
        }
    }
    assert_eq!((cluster_ips.len(), pod_ips.len()), (300, 2100));
}

#[test]
fn slices_list_their_meshed_pods_and_splits_name_existing_services() {
    let scale = Scale {
        services: 40,
        endpoints: 4,
        services_per_namespace: 15,
    };
    let docs = documents(&scale.files().expect("a valid scale"));
    // (namespace, pod) -> IP, and (namespace, service) that exist.
    let mut pods = HashMap::new();
    let mut services = HashSet::new();
    for doc in &docs {
        let key = || {
            (
                str_at(doc, &["metadata", "namespace"]).to_string(),
                str_at(doc, &["metadata", "name"]).to_string(),
            )
        };
        match str_at(doc, &["kind"]) {
            "Pod" => {
                let version = str_at(doc, &["metadata", "annotations", "weft.dev/proxy-version"]);
                assert!(!version.is_empty());
                let sa = str_at(doc, &["spec", "serviceAccountName"]);
                assert!(key().1.starts_with(sa), "{sa} is not the pod's service");
                pods.insert(key(), str_at(doc, &["status", "podIP"]).to_string());
            }
            "Service" => {
                services.insert(key());
            }
            _ => {}
        }
    }
    let (mut slices, mut splits) = (0, 0);
    for doc in &docs {
        let ns = || str_at(doc, &["metadata", "namespace"]).to_string();
        match str_at(doc, &["kind"]) {
            "EndpointSlice" => {
                slices += 1;
                let owner = str_at(doc, &["metadata", "labels", "kubernetes.io/service-name"]);
                assert!(services.contains(&(ns(), owner.to_string())));
                let endpoints = seq(doc, "endpoints");
                assert_eq!(endpoints.len(), 4);
                for ep in endpoints {
                    assert_eq!(str_at(ep, &["targetRef", "kind"]), "Pod");
                    assert_eq!(str_at(ep, &["targetRef", "namespace"]), ns());
                    let pod = str_at(ep, &["targetRef", "name"]);
                    assert!(pod.starts_with(owner), "{pod} listed by {owner}");
                    let ip = pods.get(&(ns(), pod.to_string())).expect("the pod exists");
                    let addresses = seq(ep, "addresses");
                    assert_eq!(addresses.len(), 1);
                    assert_eq!(addresses[0].as_str(), Some(ip.as_str()));
                }
            }
            "TrafficSplit" => {
                splits += 1;
                let root = str_at(doc, &["spec", "service"]);
                assert!(services.contains(&(ns(), root.to_string())));
                let spec = doc.get("spec").expect("a spec");
                let backends = seq(spec, "backends");
                assert_eq!(backends.len(), 2);
                for b in backends {
                    let name = str_at(b, &["service"]).to_string();
                    assert!(
                        services.contains(&(ns(), name)),
                        "backend {b:?} in {}",
                        ns()
                    );
                }
            }
            _ => {}
        }
    }
    assert_eq!((pods.len(), slices, splits), (160, 40, 4));
    assert_eq!(scale.split_roots().collect::<Vec<_>>(), [9, 19, 29, 39]);
}

#[test]
fn a_split_root_first_in_its_namespace_pairs_with_the_last_one() {
    // Namespaces of three: service 9 opens bench-0003 (9, 10, 11).
    let scale = Scale {
        services: 12,
        endpoints: 1,
        services_per_namespace: 3,
    };
    let file = scale.file(3, |_| SPLIT_WEIGHTS);
    assert!(
        file.text.contains(
            "- service: svc-00009\n    weight: 90\n  - service: svc-00011\n    weight: 10\n"
        ),
        "{}",
        file.text
    );
    // A namespace of one service splits over that service alone.
    let alone = Scale {
        services: 10,
        endpoints: 1,
        services_per_namespace: 1,
    };
    let file = alone.file(9, |_| SPLIT_WEIGHTS);
    assert!(
        file.text
            .ends_with("  backends:\n  - service: svc-00009\n    weight: 90\n"),
        "{}",
        file.text
    );
}

#[test]
fn a_split_can_be_rewritten_alone() {
    let scale = Scale {
        services: 20,
        endpoints: 1,
        services_per_namespace: 20,
    };
    let changed = scale.file(0, |i| if i == 9 { (10, 90) } else { SPLIT_WEIGHTS });
    let original = scale.file(0, |_| SPLIT_WEIGHTS);
    assert_eq!(changed.name, original.name);
    assert!(
        changed
            .text
            .contains("- service: svc-00009\n    weight: 10\n")
    );
    assert!(
        changed
            .text
            .contains("- service: svc-00019\n    weight: 90\n")
    );
    let diff = changed
        .text
        .lines()
        .zip(original.text.lines())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(diff, 2, "only the two weights of one split change");
}

#[test]
fn refuses_what_cannot_be_generated() {
    let zero = Scale {
        services: 10,
        endpoints: 0,
        services_per_namespace: 100,
    };
    assert_eq!(
        zero.validate().map_err(|e| e.to_string()),
        Err("--endpoints must be at least 1".to_string())
    );
    let too_many = Scale {
        services: 1_000_000,
        endpoints: 10,
        services_per_namespace: 100,
    };
    assert_eq!(
        too_many.files().map_err(|e| e.to_string()),
        Err("10000000 Pod IPs do not fit in 10.128.0.0/9 (at most 8388606); use fewer".to_string())
    );
}
