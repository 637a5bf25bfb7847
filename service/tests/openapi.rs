//! docs/openapi.json is what the code generates now (`cargo xtask codegen` refreshes it).
#![allow(clippy::unwrap_used)]

#[test]
fn committed_openapi_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let mut now = serde_json::to_string_pretty(&goodgo_api::openapi_json()).unwrap();
    now.push('\n');
    assert!(
        committed == now,
        "docs/openapi.json is stale: run `cargo xtask codegen`"
    );
    let doc: serde_json::Value = serde_json::from_str(&now).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/auth/register",
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/me",
        "/v1/listings",
        "/v1/listings/{id}",
        "/v1/listings/{id}/publish",
        "/v1/listings/{id}/archive",
        "/v1/listings/mine",
        "/v1/listings/search",
        "/healthz",
        "/readyz",
        "/v1/admin/users",
        "/v1/admin/users/{id}/suspend",
        "/v1/admin/users/{id}/reinstate",
        "/v1/admin/listings/{id}/unpublish",
        "/v1/admin/payments",
        "/v1/admin/subscriptions",
        "/v1/admin/audit",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    // The agent's own subscription and the admin's records are different schemas.
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["Subscription"]["properties"]["listing_quota"].is_object());
    assert!(schemas["SubscriptionRecord"]["properties"]["user_id"].is_object());
}

/// utoipa names a schema after its type and keeps one per name: two types of one name in
/// different modules would silently document one with the other's shape.
#[test]
fn schema_type_names_are_unique() {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let mut derives = false;
                for line in text.lines().map(str::trim) {
                    if line.starts_with("#[derive(") {
                        derives = line.contains("ToSchema");
                    } else if let Some(rest) = line.strip_prefix("pub struct ") {
                        if derives {
                            let name: String = rest
                                .chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_')
                                .collect();
                            out.push(name);
                        }
                        derives = false;
                    }
                }
            }
        }
    }
    let mut names = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut names,
    );
    assert!(names.len() > 20, "{names:?}");
    let mut seen = std::collections::BTreeSet::new();
    let twice: Vec<&String> = names.iter().filter(|n| !seen.insert(*n)).collect();
    assert!(twice.is_empty(), "schemas named twice: {twice:?}");
}
