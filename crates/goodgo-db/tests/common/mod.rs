//! What the server tests share: the test server, when `cargo xtask test` provides one.

use goodgo_db::admin::Target;

/// The test server's maintenance database, or `None` (with a visible skip line) outside
/// `cargo xtask test`.
pub fn server(test: &str) -> Option<Target> {
    let Ok(url) = std::env::var("GOODGO_TEST_DATABASE_URL") else {
        assert!(
            std::env::var_os("GOODGO_TEST_STRICT").is_none(),
            "cargo xtask test provides GOODGO_TEST_DATABASE_URL"
        );
        use std::io::Write as _;
        let _ = std::io::stderr().write_all(
            format!("SKIPPED {test}: no GOODGO_TEST_DATABASE_URL (run `cargo xtask test`)\n")
                .as_bytes(),
        );
        return None;
    };
    Some(Target::parse(&url).unwrap())
}
