//! The broken-file corpus (`tests/broken/*.yaml`): each file's first line says the error
//! it must give (`# expect: FILE:LINE:COL: message start`), located in the file that holds
//! the mistake — an included or extended one (`tests/broken/parts/`) included — and never
//! a panic or an error without a position.
#![allow(clippy::unwrap_used)] // test helpers: a failed setup step is a failed test

use std::path::{Path, PathBuf};

use goodgo_compose::{ComposeError, load};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken")
}

/// No variable is set.
fn bare_env(_: &str) -> Option<String> {
    None
}

#[test]
fn every_broken_file_is_refused_at_its_mistake() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the corpus has {} files", files.len());
    let mut wrong = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: no `# expect:` line", path.display()));
        let shown = PathBuf::from(path.file_name().unwrap());
        match load(&path, &shown, &bare_env) {
            Ok(_) => panic!("{} loads, expected: {expect}", shown.display()),
            Err(e) => {
                let text = e.to_string();
                assert!(
                    matches!(
                        e,
                        ComposeError::Invalid(_) | ComposeError::UnreadableAt { .. }
                    ),
                    "{}: not located: {text}",
                    shown.display()
                );
                if !text.starts_with(expect) {
                    wrong.push(format!(
                        "{}:\n  expected: {expect}\n  got:      {text}",
                        shown.display()
                    ));
                }
                assert_eq!(
                    goodgo_diag::Diagnostic::class(&e),
                    Some(goodgo_diag::Class::Input),
                    "bad input is exit 2"
                );
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
