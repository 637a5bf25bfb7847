//! This machine's apt sources, read (one-line `sources.list` and deb822 `.sources`),
//! narrowed to the Debian suite the images are built from, and written back as the one
//! deb822 file mmdebstrap puts into the image.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::SUITE;

/// One apt source (deb822 fields), as found in this machine's apt configuration.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Source {
    pub(super) types: Vec<String>,
    pub(super) uris: Vec<String>,
    pub(super) suites: Vec<String>,
    pub(super) components: Vec<String>,
    /// Other fields kept as written (Signed-By, Architectures, …), continuation lines included.
    pub(super) fields: Vec<(String, String)>,
    pub(super) enabled: bool,
}

/// The sources of this machine that serve the bookworm suites (`bookworm`,
/// `bookworm-updates`, `bookworm-security`), other suites dropped.
pub(super) fn debian_sources() -> Result<Vec<Source>> {
    let mut found = Vec::new();
    let mut read = Vec::new();
    let list = Path::new("/etc/apt/sources.list");
    if let Ok(text) = std::fs::read_to_string(list) {
        found.extend(parse_one_line(&text));
        read.push(list.to_path_buf());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for file in files {
        let parse: fn(&str) -> Vec<Source> = match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => parse_deb822,
            Some("list") => parse_one_line,
            _ => continue,
        };
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        found.extend(parse(&text));
        read.push(file);
    }
    let sources = select_suite(found, SUITE);
    if !sources.iter().any(|s| s.suites.iter().any(|x| x == SUITE)) {
        let read: Vec<String> = read.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "no apt source of this machine serves Debian `{SUITE}` (read: {}); the images are \
             built from it with mmdebstrap, which needs a Debian mirror",
            if read.is_empty() {
                "nothing".into()
            } else {
                read.join(", ")
            }
        );
    }
    Ok(sources)
}

/// The enabled `deb` sources narrowed to `suite` and its `-updates`/`-security` suites.
fn select_suite(sources: Vec<Source>, suite: &str) -> Vec<Source> {
    let wanted = [
        suite.to_string(),
        format!("{suite}-updates"),
        format!("{suite}-security"),
    ];
    sources
        .into_iter()
        .filter(|s| s.enabled && s.types.iter().any(|t| t == "deb"))
        .filter_map(|mut s| {
            s.types = vec!["deb".into()];
            s.suites.retain(|x| wanted.contains(x));
            (!s.suites.is_empty() && !s.uris.is_empty()).then_some(s)
        })
        .collect()
}

/// deb822 `.sources` files: stanzas separated by blank lines.
fn parse_deb822(text: &str) -> Vec<Source> {
    let mut sources = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut flush = |fields: &mut Vec<(String, String)>| {
        if fields.is_empty() {
            return;
        }
        let mut s = Source {
            enabled: true,
            ..Source::default()
        };
        for (key, value) in fields.drain(..) {
            let words = || value.split_whitespace().map(String::from).collect();
            match key.to_ascii_lowercase().as_str() {
                "types" => s.types = words(),
                "uris" => s.uris = words(),
                "suites" => s.suites = words(),
                "components" => s.components = words(),
                "enabled" => s.enabled = value.trim() != "no",
                _ => s.fields.push((key, value)),
            }
        }
        sources.push(s);
    };
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut fields);
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line);
            }
        } else if let Some((key, value)) = line.split_once(':') {
            fields.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    flush(&mut fields);
    sources
}

/// One-line `sources.list` entries: `deb [opt=value …] URI SUITE COMPONENT…`.
fn parse_one_line(text: &str) -> Vec<Source> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some((kind, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let mut rest = rest.trim_start();
        let mut fields = Vec::new();
        if let Some(options) = rest.strip_prefix('[') {
            let Some((options, after)) = options.split_once(']') else {
                continue;
            };
            for option in options.split_whitespace() {
                let Some((key, value)) = option.split_once('=') else {
                    continue;
                };
                let key = match key {
                    "signed-by" => "Signed-By",
                    "arch" => "Architectures",
                    "trusted" => "Trusted",
                    _ => continue,
                };
                fields.push((key.to_string(), value.replace(',', " ")));
            }
            rest = after.trim_start();
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        let [uri, suite, components @ ..] = words.as_slice() else {
            continue;
        };
        sources.push(Source {
            types: vec![kind.to_string()],
            uris: vec![uri.to_string()],
            suites: vec![suite.to_string()],
            components: components.iter().map(|c| c.to_string()).collect(),
            fields,
            enabled: true,
        });
    }
    sources
}

/// The sources as one deb822 file (what mmdebstrap puts in the image's apt sources).
pub(super) fn render_sources(sources: &[Source]) -> String {
    let mut out = String::new();
    for s in sources {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("Types: {}\n", s.types.join(" ")));
        out.push_str(&format!("URIs: {}\n", s.uris.join(" ")));
        out.push_str(&format!("Suites: {}\n", s.suites.join(" ")));
        let components = if s.components.is_empty() {
            "main".to_string()
        } else {
            s.components.join(" ")
        };
        out.push_str(&format!("Components: {components}\n"));
        for (key, value) in &s.fields {
            out.push_str(&format!("{key}: {value}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_stanzas_narrowed_to_the_suite() {
        let text = "Types: deb\n# a comment\nURIs: http://mirror.invalid/debian\n\
                    Suites: bookworm bookworm-updates\nComponents: main\n\
                    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                    Types: deb\nURIs: http://mirror.invalid/debian-security\n\
                    Suites: bookworm-security\nComponents: main\n\n\
                    Types: deb\nURIs: https://other.invalid/node\nSuites: nodistro\n\
                    Components: main\n\n\
                    Types: deb-src\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n\n\
                    Enabled: no\nTypes: deb\nURIs: http://off.invalid/debian\nSuites: bookworm\n";
        let sources = select_suite(parse_deb822(text), "bookworm");
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            sources[0].fields,
            [(
                "Signed-By".to_string(),
                "/usr/share/keyrings/debian-archive-keyring.gpg".to_string()
            )]
        );
        assert_eq!(sources[1].uris, ["http://mirror.invalid/debian-security"]);
        let rendered = render_sources(&sources);
        assert!(rendered.starts_with("Types: deb\nURIs: http://mirror.invalid/debian\n"));
        assert!(rendered.contains("\n\nTypes: deb\nURIs: http://mirror.invalid/debian-security\n"));
    }

    #[test]
    fn deb822_keeps_multi_line_fields() {
        let text = "Types: deb\nURIs: http://m.invalid/debian\nSuites: bookworm\n\
                    Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n";
        let sources = parse_deb822(text);
        assert_eq!(
            sources[0].fields[0].1,
            "\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc"
        );
        assert!(render_sources(&sources).contains("Signed-By: \n -----BEGIN"));
    }

    #[test]
    fn one_line_entries_with_options() {
        let text = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.invalid/debian bookworm main contrib\n\
                    deb-src http://m.invalid/debian bookworm main\n\
                    deb http://m.invalid/debian bullseye main\n\
                    deb https://x.invalid/apt cloud-sdk-bookworm main\n";
        let sources = select_suite(parse_one_line(text), "bookworm");
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].uris, ["http://m.invalid/debian"]);
        assert_eq!(sources[0].components, ["main", "contrib"]);
        assert_eq!(
            sources[0].fields,
            [
                ("Architectures".to_string(), "amd64".to_string()),
                ("Signed-By".to_string(), "/k.gpg".to_string())
            ]
        );
    }
}
