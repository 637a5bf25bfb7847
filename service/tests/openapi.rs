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
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
}
