//! Tidy: the project's invariants, checked by ordinary tests over the source tree (as
//! rust-analyzer's `xtask/src/tidy.rs` does), so `cargo test` and `cargo xtask test` fail
//! when one is broken:
//!
//! - every module opens with a `//!` doc saying what it is;
//! - only `goodgo-stack`'s docker module opens the engine socket;
//! - product code does not spawn `kill`, `curl`, `which` or `psql`;
//! - product code does not print outside the CLI's printer and error renderer;
//! - no product source file is over 700 lines;
//! - no hand-written HTTP request strings: HTTP goes through reqwest.
//!
//! Today's offenders are listed in allowlists marked "to be emptied": a new offender fails,
//! and so does an entry that is no longer needed, so the lists only shrink.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::root;

/// Product source: what ships in the `goodgo` and `goodgo-api` binaries.
const PRODUCT: &[&str] = &["cli/src", "crates", "service/src"];

/// Where modules must have their `//!` doc.
const MODULES: &[&str] = &["cli/src", "crates", "service/src", "xtask/src"];

/// Rust code searched for engine sockets and HTTP request strings: all of it.
const ALL_RUST: &[&str] = &["cli", "crates", "service", "xtask", "templates"];

/// The most lines a product source file may have.
const MAX_LINES: usize = 700;

/// Product files over [`MAX_LINES`] lines. To be emptied (issue 10, section 5).
const LONG_FILES_ALLOWED: &[&str] = &[];

/// Files other than `crates/goodgo-stack/src/docker*` that open the Docker engine's
/// socket. To be emptied (`doctor` asks the engine through bollard, issue 10, section 4).
const ENGINE_SOCKET_ALLOWED: &[&str] = &[];

/// Product files that spawn one of [`SPAWN_FORBIDDEN`], and which one.
const SPAWN_ALLOWED: &[(&str, &str)] = &[
    // Lasting exceptions: `goodgo db psql` exists to start psql, and `doctor` reports the
    // version of the psql users will run (`psql --version`), never to reach a database.
    ("cli/src/commands/db.rs", "psql"),
    ("cli/src/commands/doctor.rs", "psql"),
];

/// Programs product code must not run: rustix sends signals, reqwest speaks HTTP, the
/// `which` crate searches PATH, `goodgo_db` talks to PostgreSQL.
const SPAWN_FORBIDDEN: &[&str] = &["kill", "curl", "which", "psql"];

/// The only product files that may print.
const PRINT_ALLOWED: &[&str] = &["cli/src/printer.rs", "cli/src/error.rs"];

/// Rust files with a hand-written HTTP message. To be emptied: requests go through
/// reqwest (issue 10, section 4).
const HTTP_ALLOWED: &[&str] = &[];

/// A Rust file, its path relative to the repository root (with `/`) and its text.
struct Source {
    path: String,
    text: String,
}

impl Source {
    /// The lines that are code, not comments.
    fn code_lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .filter(|(_, l)| !l.trim_start().starts_with("//"))
    }

    fn is_under(&self, dirs: &[&str]) -> bool {
        dirs.iter().any(|d| self.path.starts_with(&format!("{d}/")))
    }

    /// Whether the file is under a `src` folder (not tests, benches or examples).
    fn is_src(&self) -> bool {
        self.path.split('/').any(|part| part == "src")
    }

    /// This file: its own lists and patterns are not offences.
    fn is_tidy(&self) -> bool {
        self.path == "xtask/src/tidy.rs"
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The Rust files under `dirs` (relative to the repository root), sorted.
fn sources(dirs: &[&str]) -> Vec<Source> {
    let root = root();
    let mut paths = Vec::new();
    for dir in dirs {
        walk(&root.join(dir), &mut paths);
    }
    paths.sort();
    let sources: Vec<Source> = paths
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(&root).ok()?;
            let rel: Vec<_> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect();
            Some(Source {
                path: rel.join("/"),
                text: std::fs::read_to_string(&path).ok()?,
            })
        })
        .collect();
    assert!(!sources.is_empty(), "no Rust files under {dirs:?}");
    sources
}

/// Product source: under `src` of the CLI, the library crates and the service.
fn product() -> Vec<Source> {
    sources(PRODUCT)
        .into_iter()
        .filter(|s| s.is_under(PRODUCT) && s.is_src())
        .collect()
}

/// Fails with every offence, and with every allowlist entry nothing needs any more.
fn verdict(
    what: &str,
    offences: Vec<String>,
    allowed: &[String],
    used: &BTreeSet<String>,
) -> Result<(), String> {
    let stale: Vec<&String> = allowed.iter().filter(|a| !used.contains(*a)).collect();
    if offences.is_empty() && stale.is_empty() {
        return Ok(());
    }
    let mut message = format!("tidy: {what}\n");
    for offence in &offences {
        message.push_str(&format!("  {offence}\n"));
    }
    for entry in stale {
        message.push_str(&format!(
            "  {entry} is allowed but no longer needs to be: remove it from the allowlist in xtask/src/tidy.rs\n"
        ));
    }
    Err(message)
}

/// Runs `check`, panicking with its message.
fn assert_tidy(result: Result<(), String>) {
    if let Err(message) = result {
        panic!("{message}");
    }
}

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Files whose code lines contain any of `patterns`, with the first such line.
fn files_matching(sources: &[Source], patterns: &[&str]) -> Vec<(String, usize)> {
    sources
        .iter()
        .filter(|s| !s.is_tidy())
        .filter_map(|s| {
            s.code_lines()
                .find(|(_, l)| patterns.iter().any(|p| l.contains(p)))
                .map(|(n, _)| (s.path.clone(), n))
        })
        .collect()
}

/// Files of `sources` breaking a by-file rule, judged against the allowlist `allowed`.
fn by_file(
    what: &str,
    found: Vec<(String, usize)>,
    allowed: &[&str],
    why: &str,
) -> Result<(), String> {
    let mut used = BTreeSet::new();
    let mut offences = Vec::new();
    for (path, line) in found {
        if allowed.contains(&path.as_str()) {
            used.insert(path);
        } else {
            offences.push(format!("{path}:{line}: {why}"));
        }
    }
    verdict(what, offences, &owned(allowed), &used)
}

fn check_module_docs(sources: &[Source]) -> Result<(), String> {
    let offences = sources
        .iter()
        .filter(|s| {
            let first = s.text.lines().find(|l| !l.trim().is_empty());
            !first.is_some_and(|l| l.starts_with("//!"))
        })
        .map(|s| {
            format!(
                "{}:1: the module does not open with a `//!` doc saying what it is and why it exists",
                s.path
            )
        })
        .collect();
    verdict("modules without their doc", offences, &[], &BTreeSet::new())
}

fn check_engine_socket(sources: &[Source]) -> Result<(), String> {
    let patterns = [
        "UnixStream::connect",
        "Docker::connect_with",
        "\"/var/run/docker.sock\"",
    ];
    let found = files_matching(sources, &patterns)
        .into_iter()
        .filter(|(path, _)| !path.starts_with("crates/goodgo-stack/src/docker"))
        .collect();
    by_file(
        "the engine socket opened outside goodgo-stack's docker module",
        found,
        ENGINE_SOCKET_ALLOWED,
        "opens the Docker engine's socket: go through goodgo_stack::docker",
    )
}

fn check_spawns(sources: &[Source]) -> Result<(), String> {
    let mut used = BTreeSet::new();
    let mut offences = Vec::new();
    for program in SPAWN_FORBIDDEN {
        let literal = format!("\"{program}\"");
        for (path, line) in files_matching(sources, &[literal.as_str()]) {
            let key = format!("{path} runs {program}");
            if SPAWN_ALLOWED.contains(&(path.as_str(), program)) {
                used.insert(key);
            } else {
                offences.push(format!(
                    "{path}:{line}: runs `{program}`: use rustix (signals), reqwest (HTTP), the which crate (PATH) or goodgo_db (SQL)"
                ));
            }
        }
    }
    let allowed: Vec<String> = SPAWN_ALLOWED
        .iter()
        .map(|(path, program)| format!("{path} runs {program}"))
        .collect();
    verdict(
        "product code running kill, curl, which or psql",
        offences,
        &allowed,
        &used,
    )
}

fn check_prints(sources: &[Source]) -> Result<(), String> {
    let found = files_matching(sources, &["println!(", "print!(", "eprintln!(", "eprint!("])
        .into_iter()
        .filter(|(path, _)| !PRINT_ALLOWED.contains(&path.as_str()))
        .collect();
    by_file(
        "product code printing outside cli/src/printer.rs and cli/src/error.rs",
        found,
        &[],
        "prints: return the value or an error, and let the CLI's printer show it",
    )
}

fn check_lengths(sources: &[Source]) -> Result<(), String> {
    let found = sources
        .iter()
        .map(|s| (s.path.clone(), s.text.lines().count()))
        .filter(|(_, lines)| *lines > MAX_LINES)
        .collect();
    by_file(
        "product source files over 700 lines",
        found,
        LONG_FILES_ALLOWED,
        "lines: split the file by concern",
    )
}

/// The request-line version a hand-written HTTP message carries; spelled in two pieces so
/// that this file, which searches for it, does not contain it.
const HTTP_VERSION: &str = concat!("HTTP", "/1.1");

fn check_http_strings(sources: &[Source]) -> Result<(), String> {
    let found = files_matching(sources, &[HTTP_VERSION]);
    by_file(
        "hand-written HTTP messages",
        found,
        HTTP_ALLOWED,
        "writes HTTP by hand: use reqwest (cli/src/http.rs, or goodgo_testkit::http in tests and xtask)",
    )
}

#[test]
fn every_module_has_its_doc() {
    assert_tidy(check_module_docs(
        &sources(MODULES)
            .into_iter()
            .filter(|s| s.is_src())
            .collect::<Vec<_>>(),
    ));
}

#[test]
fn only_the_docker_module_opens_the_engine_socket() {
    assert_tidy(check_engine_socket(&sources(ALL_RUST)));
}

#[test]
fn product_code_spawns_no_kill_curl_which_or_psql() {
    assert_tidy(check_spawns(&product()));
}

#[test]
fn product_code_prints_only_through_the_printer() {
    assert_tidy(check_prints(&product()));
}

#[test]
fn product_files_are_at_most_700_lines() {
    assert_tidy(check_lengths(&product()));
}

#[test]
fn no_hand_written_http_requests() {
    assert_tidy(check_http_strings(&sources(ALL_RUST)));
}

/// The checks find what they look for (so a green tidy is not a blind one).
#[test]
fn the_checks_catch_offenders() {
    let file = |path: &str, text: &str| Source {
        path: path.into(),
        text: text.into(),
    };
    let bad = [
        file("cli/src/a.rs", "fn main() {\n    println!(\"hi\");\n}\n"),
        file(
            "crates/x/src/b.rs",
            "//! B.\nfn f() { Command::new(\"curl\"); }\n",
        ),
        file(
            "crates/x/src/c.rs",
            &format!(
                "//! C.\nconst R: &str = \"GET / {HTTP_VERSION}\\r\\n\";\nfn g() {{ UnixStream::connect(p); }}\n"
            ),
        ),
        file(
            "cli/src/printer.rs",
            "//! P.\nfn p() { println!(\"ok\"); }\n",
        ),
        file(
            "cli/src/d.rs",
            "//! D.\n// println!(\"only in a comment\")\n",
        ),
    ];
    let doc = check_module_docs(&bad).expect_err("a.rs has no doc");
    assert!(
        doc.contains("cli/src/a.rs:1:") && !doc.contains("b.rs"),
        "{doc}"
    );
    let prints = check_prints(&bad).expect_err("a.rs prints");
    assert!(prints.contains("cli/src/a.rs:2:"), "{prints}");
    assert!(
        !prints.contains("cli/src/printer.rs:") && !prints.contains("cli/src/d.rs"),
        "{prints}"
    );
    let spawns = check_spawns(&bad).expect_err("b.rs runs curl");
    assert!(
        spawns.contains("crates/x/src/b.rs:2: runs `curl`"),
        "{spawns}"
    );
    let http = check_http_strings(&bad).expect_err("c.rs writes HTTP");
    assert!(http.contains("crates/x/src/c.rs:2:"), "{http}");
    let socket = check_engine_socket(&bad).expect_err("c.rs opens a socket");
    assert!(socket.contains("crates/x/src/c.rs:3:"), "{socket}");
    let long = file("crates/x/src/e.rs", &"x\n".repeat(MAX_LINES + 1));
    assert!(check_lengths(&[long]).is_err());
    // An allowlist entry nothing needs fails too.
    let stale = by_file("t", Vec::new(), &["gone.rs"], "").expect_err("stale entry");
    assert!(
        stale.contains("gone.rs is allowed but no longer needs to be"),
        "{stale}"
    );
}
