//! Every Compose file of the shared fixture corpus loads (or is refused for a named,
//! located reason), orders its services respecting every `depends_on` edge, and names the
//! key in every warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use goodgo_compose::{ComposeError, Project, config_hash, load, waves};

/// The files goodgo refuses, each with the text its error must contain. A file that starts
/// loading (or fails differently) is a regression to look at.
const REFUSED: &[(&str, &str)] = &[
    // `${PLEX_MEDIA_PATH}:/media/` with the variable unset is `:/media/`, which Compose
    // refuses too; the error is at the variable.
    (
        "plex_compose.yaml",
        "services.plex.volumes[0]: invalid volume `:/media/`: the source before `:` is empty (the variable `PLEX_MEDIA_PATH` is not set",
    ),
    (
        "wasmedge-kafka-mysql_compose.yml",
        "`services.etl.runtime` is not supported",
    ),
    (
        "wasmedge-mysql-nginx_compose.yml",
        "`services.backend.runtime` is not supported",
    ),
];

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/compose");
    assert!(
        dir.is_dir(),
        "the Compose fixture corpus is missing: expected it at {} (it lives beside the repository, in /work/shared/fixtures/compose)",
        dir.display()
    );
    dir
}

fn files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap_or_else(|e| panic!("cannot list the fixture corpus: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    files
}

/// No variable is set, as on a bare machine — except `HOME`, which every login has and
/// which `~/…` bind mounts need.
fn bare_env(name: &str) -> Option<String> {
    (name == "HOME").then(|| "/home/fixture".to_string())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn check_waves(name: &str, project: &Project) -> usize {
    let waves = waves(project, &[], &[]).unwrap_or_else(|e| panic!("{name}: waves: {e}"));
    let mut wave_of = BTreeMap::new();
    for (k, wave) in waves.iter().enumerate() {
        let mut sorted = wave.clone();
        sorted.sort();
        assert_eq!(&sorted, wave, "{name}: names are sorted within a wave");
        for s in wave {
            assert!(
                wave_of.insert(s.clone(), k).is_none(),
                "{name}: {s} is scheduled twice"
            );
        }
    }
    for (s, service) in &project.services {
        let Some(&mine) = wave_of.get(s) else {
            assert!(
                !service.profiles.is_empty(),
                "{name}: {s} has no profile but is not scheduled"
            );
            continue;
        };
        for dep in service.depends_on.keys() {
            let theirs = wave_of[dep];
            assert!(
                theirs < mine,
                "{name}: {s} (wave {mine}) depends on {dep} (wave {theirs})"
            );
        }
    }
    waves.len()
}

#[test]
fn every_fixture_loads_or_is_refused_by_name() {
    let files = files();
    assert!(
        files.len() >= 30,
        "expected the whole corpus, found {} files",
        files.len()
    );
    let mut rows = Vec::new();
    let mut warning_keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut refused_seen = Vec::new();
    for path in &files {
        let name = file_name(path);
        let shown = Path::new("fixtures").join(&name);
        let refused = REFUSED.iter().find(|(f, _)| *f == name);
        match (load(path, &shown, &bare_env), refused) {
            (Ok(project), None) => {
                let waves = check_waves(&name, &project);
                for d in &project.diagnostics {
                    let text = d.to_string();
                    assert!(text.starts_with(&format!("{}:", shown.display())), "{text}");
                    assert!(text.contains(": warning: "), "{text}");
                    let key = d
                        .message
                        .split('`')
                        .nth(1)
                        .unwrap_or_else(|| panic!("{name}: the warning names no key: {text}"));
                    assert!(!key.is_empty(), "{text}");
                    let key = if d.message.starts_with("variable") {
                        "(unset variable)".to_string()
                    } else {
                        key.split('.').skip(2).collect::<Vec<_>>().join(".")
                    };
                    *warning_keys.entry(key).or_default() += 1;
                }
                for service in project.services.values() {
                    let h = config_hash(service);
                    assert_eq!(h.len(), 64, "{name}");
                    assert!(h.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
                }
                let again = load(path, &shown, &bare_env).unwrap_or_else(|e| panic!("{e}"));
                for (s, service) in &project.services {
                    assert_eq!(
                        config_hash(service),
                        config_hash(&again.services[s]),
                        "{name}: {s}"
                    );
                }
                rows.push((
                    name,
                    "loaded".to_string(),
                    project.services.len(),
                    waves,
                    project.diagnostics.len(),
                ));
            }
            (Err(e), Some((_, expected))) => {
                let text = e.to_string();
                let ComposeError::Invalid(located) = &e else {
                    panic!("{name}: refused without a position: {text}");
                };
                assert!(
                    text.starts_with(&format!(
                        "{}:{}:{}: ",
                        shown.display(),
                        located.pos.line,
                        located.pos.col
                    )),
                    "{text}"
                );
                assert!(
                    text.contains(expected),
                    "{name}: expected `{expected}` in: {text}"
                );
                refused_seen.push(name.clone());
                rows.push((
                    name,
                    format!("refused {}:{}", located.pos.line, located.pos.col),
                    0,
                    0,
                    0,
                ));
            }
            (Ok(_), Some(_)) => panic!("{name} is listed as refused but loads: update REFUSED"),
            (Err(e), None) => panic!("{name} does not load: {e}"),
        }
    }
    assert_eq!(
        refused_seen.len(),
        REFUSED.len(),
        "every refused file is in the corpus"
    );

    println!(
        "\n{:<44} {:<16} {:>8} {:>6} {:>8}",
        "file", "status", "services", "waves", "warnings"
    );
    for (name, status, services, waves, warnings) in &rows {
        println!("{name:<44} {status:<16} {services:>8} {waves:>6} {warnings:>8}");
    }
    let loaded = rows.iter().filter(|r| r.1 == "loaded").count();
    println!(
        "\n{loaded} of {} files load, {} refused",
        rows.len(),
        REFUSED.len()
    );
    let mut common: Vec<_> = warning_keys.into_iter().collect();
    common.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!("warnings by key:");
    for (key, n) in common {
        println!("  {n:>3}  {key}");
    }
}

/// No input makes the loader panic: every prefix of every fixture, and every fixture with
/// characters swapped for YAML and interpolation syntax, loads or fails with a located error.
#[test]
fn mangled_fixtures_never_panic() {
    let specials = [
        '$', '{', '}', ':', '[', ']', '"', '\'', '&', '*', '!', '-', '\t', '\n', '#', '|', '>', '<',
    ];
    let mut runs = 0usize;
    for path in files() {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut check = |candidate: &str| {
            runs += 1;
            match goodgo_compose::load_str(candidate, dir, Path::new("f.yaml"), &bare_env) {
                Ok(project) => {
                    let _ = waves(&project, &[], &[]);
                    for s in project.services.values() {
                        let _ = config_hash(s);
                    }
                }
                Err(ComposeError::Invalid(e)) => {
                    assert!(e.pos.line >= 1 && e.pos.col >= 1, "{e}");
                    assert!(
                        e.to_string().starts_with("f.yaml:") || e.path != Path::new("f.yaml"),
                        "{e}"
                    );
                }
                Err(other) => panic!("unexpected error kind: {other}"),
            }
        };
        let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        for &i in &boundaries {
            check(&text[..i]);
        }
        for (n, &i) in boundaries.iter().enumerate().step_by(5) {
            let special = specials[n % specials.len()];
            let mut mangled = text.clone();
            let end = boundaries.get(n + 1).copied().unwrap_or(text.len());
            mangled.replace_range(i..end, &special.to_string());
            check(&mangled);
        }
    }
    println!("{runs} mangled inputs loaded or refused without a panic");
}
