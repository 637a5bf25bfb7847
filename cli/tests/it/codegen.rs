//! The committed generated files (man pages, CLI reference, goodgo.yaml schema) match
//! what the code generates now. Run `cargo xtask codegen` to refresh them.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

#[test]
fn generated_files_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let mut stale = Vec::new();
    for file in goodgo::codegen::all() {
        let committed = std::fs::read_to_string(root.join(&file.path)).unwrap_or_default();
        if committed != file.content {
            stale.push(file.path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files (run `cargo xtask codegen`): {stale:?}"
    );
}
