//! The local token registry: parsing, refusals that name the file and field, and reloads.

use crate::support::{Scratch, registry_yaml};
use weft_controller_identity::{
    AuthError, Authenticator, ServiceAccount, TokenRegistry, auth::RegistryError,
};

fn sa(ns: &str, name: &str) -> ServiceAccount {
    ServiceAccount {
        namespace: ns.to_string(),
        name: name.to_string(),
    }
}

#[tokio::test]
async fn tokens_name_their_service_accounts() {
    let dir = Scratch::new();
    let path = dir.write(
        "tokens.yaml",
        &registry_yaml(&[("t-web", "shop", "web"), ("t-api", "shop", "api")]),
    );
    let registry = TokenRegistry::load(&path).unwrap();
    assert_eq!(registry.len(), 2);
    assert_eq!(
        registry.authenticate("t-web").await.unwrap(),
        sa("shop", "web")
    );
    assert_eq!(
        registry.authenticate("t-api").await.unwrap(),
        sa("shop", "api")
    );
    // A prefix, an extension and a case change of a real token are all unknown.
    for forged in ["t-we", "t-webb", "T-WEB", "t-web\n"] {
        match registry.authenticate(forged).await {
            Err(AuthError::Unknown { path: p }) => assert_eq!(p, path),
            other => panic!("{forged:?}: {other:?}"),
        }
    }
    assert!(matches!(
        registry.authenticate("").await,
        Err(AuthError::Empty)
    ));
}

#[test]
fn malformed_files_name_the_file_and_the_field() {
    let dir = Scratch::new();
    let cases = [
        (
            "tokens:\n  - token: a\n    namespace: shop\n",
            "tokens[0]",
            "serviceAccount",
        ),
        (
            "tokens:\n  - token: a\n    namespace: shop\n    serviceAccount: web\n    sa: x\n",
            "tokens[0]",
            "unknown field `sa`",
        ),
        (
            "tokens:\n  - token: a\n    namespace: shop\n    serviceAccount: [web]\n",
            "tokens[0].serviceAccount",
            "",
        ),
        (
            &registry_yaml(&[("a", "shop", "web"), ("b", "Shop", "api")]),
            "tokens[1].namespace",
            "\"Shop\"",
        ),
        (
            &registry_yaml(&[("a", "shop", "web"), ("b", "shop", "api_v2")]),
            "tokens[1].serviceAccount",
            "\"api_v2\"",
        ),
        (
            &registry_yaml(&[("", "shop", "web")]),
            "tokens[0].token",
            "empty",
        ),
        (
            &registry_yaml(&[("a", "shop", "web"), ("a", "shop", "api")]),
            "tokens[1].token",
            "repeats tokens[0].token",
        ),
        ("tokenz: []\n", "tokenz", "unknown field"),
        ("\n", "(file)", "is empty"),
    ];
    for (yaml, field, message) in cases {
        let path = dir.write("tokens.yaml", yaml);
        match TokenRegistry::load(&path) {
            Err(e @ RegistryError::Invalid { .. }) => {
                let RegistryError::Invalid {
                    path: p,
                    field: f,
                    message: m,
                } = &e
                else {
                    unreachable!()
                };
                assert_eq!(p, &path);
                assert!(f.starts_with(field), "{yaml}: field {f:?}, want {field:?}");
                let text = e.to_string();
                assert!(text.contains(path.to_str().unwrap()), "{text}");
                assert!(m.contains(message) || f.contains(message), "{yaml}: {text}");
            }
            other => panic!("{yaml}: {other:?}"),
        }
    }
    assert!(matches!(
        TokenRegistry::load(dir.path("missing.yaml")),
        Err(RegistryError::Read { .. })
    ));
}

#[tokio::test]
async fn a_registry_may_hold_no_tokens() {
    let dir = Scratch::new();
    for yaml in ["tokens:\n", "tokens: []\n"] {
        let registry = TokenRegistry::load(dir.write("tokens.yaml", yaml)).unwrap();
        assert!(registry.is_empty(), "{yaml}");
        assert!(matches!(
            registry.authenticate("anything").await,
            Err(AuthError::Unknown { .. })
        ));
    }
}

#[tokio::test]
async fn edits_apply_to_the_next_request_and_bad_edits_keep_the_last_good_tokens() {
    let dir = Scratch::new();
    let path = dir.write("tokens.yaml", &registry_yaml(&[("one", "shop", "web")]));
    let registry = TokenRegistry::load(&path).unwrap();
    assert_eq!(
        registry.authenticate("one").await.unwrap(),
        sa("shop", "web")
    );

    // Rewritten: the old token is gone, the new one works, with no call in between.
    dir.write("tokens.yaml", &registry_yaml(&[("two", "shop", "api")]));
    assert_eq!(
        registry.authenticate("two").await.unwrap(),
        sa("shop", "api")
    );
    assert!(matches!(
        registry.authenticate("one").await,
        Err(AuthError::Unknown { .. })
    ));

    // Broken: the last good tokens still answer, and refresh says what is wrong.
    dir.write("tokens.yaml", "tokens:\n  - token: three\n");
    assert_eq!(
        registry.authenticate("two").await.unwrap(),
        sa("shop", "api")
    );
    assert!(matches!(
        registry.authenticate("three").await,
        Err(AuthError::Unknown { .. })
    ));
    assert!(
        matches!(registry.refresh(), Ok(())),
        "an unchanged bad file is not re-reported"
    );

    // Removed: still the last good tokens.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        registry.authenticate("two").await.unwrap(),
        sa("shop", "api")
    );
    assert!(matches!(
        registry.refresh(),
        Err(RegistryError::Read { .. })
    ));

    // Fixed: applies again.
    dir.write("tokens.yaml", &registry_yaml(&[("four", "shop", "db")]));
    assert_eq!(
        registry.authenticate("four").await.unwrap(),
        sa("shop", "db")
    );
    assert_eq!(registry.len(), 1);
}

#[tokio::test]
async fn an_in_place_rewrite_of_the_same_length_is_seen() {
    // No rename, same size, likely the same mtime tick: only the bytes differ.
    let dir = Scratch::new();
    let path = dir.write("tokens.yaml", &registry_yaml(&[("aaaa", "shop", "web")]));
    let registry = TokenRegistry::load(&path).unwrap();
    std::fs::write(&path, registry_yaml(&[("bbbb", "shop", "web")])).unwrap();
    assert_eq!(
        registry.authenticate("bbbb").await.unwrap(),
        sa("shop", "web")
    );
}
