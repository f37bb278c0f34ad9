//! Random input through the AdmissionReview handler: arbitrary bytes, and real reviews with
//! random parts replaced by random JSON. Every answer must be a well-formed review allowing
//! the pod, and any patch must apply to the pod it was made for.

#![allow(clippy::unwrap_used)]

#[path = "support/golden.rs"]
mod support;

use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use support::{answer, config, golden_dir, read_json, review_of};
use weft_injector::StaticNamespaces;
use weft_injector_patch::Injector;

fn namespaces() -> StaticNamespaces {
    StaticNamespaces(BTreeMap::from([(
        "shop".to_string(),
        BTreeMap::from([("weft.dev/inject".to_string(), "enabled".to_string())]),
    )]))
}

fn run(body: &[u8]) -> support::Answer {
    let injector = Injector::new(config());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let out = runtime.block_on(weft_injector::review::review(
        body,
        &namespaces(),
        &injector,
    ));
    answer(&out)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z/~.:-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z/~.-]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer in `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                pointers(
                    child,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_are_allowed(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let answer = run(&body);
        prop_assert!(answer.allowed);
        prop_assert!(answer.patch.is_none());
    }

    #[test]
    fn mutated_reviews_are_allowed_and_patches_apply(
        picks in prop::collection::vec((any::<prop::sample::Index>(), json_value()), 1..4),
        case in prop::sample::select(vec!["deployment", "job", "statefulset", "overrides", "host-network"]),
    ) {
        let pod = read_json(&golden_dir().join(case).join("pod.yaml"));
        let mut review = review_of("fuzz", "shop", &pod);
        for (index, value) in picks {
            let mut all = Vec::new();
            pointers(&review, String::new(), &mut all);
            let at = &all[index.index(all.len())];
            match review.pointer_mut(at) {
                Some(slot) if !at.is_empty() => *slot = value,
                _ => review = json!(value),
            }
        }
        let answer = run(&serde_json::to_vec(&review).unwrap());
        prop_assert!(answer.allowed);
        if let Some(patch) = answer.patch {
            let mut object = review["request"]["object"].clone();
            let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
            prop_assert!(json_patch::patch(&mut object, &patch).is_ok(), "the patch does not apply");
        }
    }
}
