//! Records the newest migration version at build time, so `/readyz` can tell whether the
//! database it talks to is at the schema this build expects.
fn main() {
    // The package's folder as cargo says when it runs the script (not as it was when the
    // script was compiled: a target folder copied from another checkout keeps the script).
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = std::path::Path::new(&manifest).join("../migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let head = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let rest = name.strip_prefix('V')?;
                    rest.split("__").next()?.parse::<i32>().ok()
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    println!("cargo:rustc-env=GOODGO_MIGRATIONS_HEAD={head}");
}
