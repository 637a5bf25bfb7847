//! Filters that make output stable between runs: temp paths, ports, durations and the
//! binary's version become placeholders before a snapshot compares them.

use std::path::Path;

/// Regex → replacement pairs, applied in order (insta's filter syntax).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pairs: Vec<(String, String)>,
}

impl Filters {
    /// No filters at all.
    pub fn none() -> Filters {
        Filters::default()
    }

    /// The filters every goodgo snapshot wants: durations (`123 ms`, `1.2 s`) and the
    /// version after `goodgo `.
    pub fn standard() -> Filters {
        Filters::none()
            .regex(r"\b\d+(\.\d+)? ?(ms|s)\b", "[TIME]")
            .regex(
                &format!(r"\bgoodgo {}\b", regex_escape(env!("CARGO_PKG_VERSION"))),
                "goodgo [VERSION]",
            )
    }

    /// Replaces matches of `regex` with `with`.
    pub fn regex(mut self, regex: &str, with: &str) -> Filters {
        self.pairs.push((regex.to_string(), with.to_string()));
        self
    }

    /// Replaces the literal text `text` with `with`.
    pub fn literal(self, text: &str, with: &str) -> Filters {
        self.regex(&regex_escape(text), with)
    }

    /// Replaces `path` (as given and canonicalised) with `with`, e.g. `[TMP]`.
    pub fn path(mut self, path: &Path, with: &str) -> Filters {
        // The longer spelling first, so one never leaves part of the other behind.
        let mut spellings = vec![path.display().to_string()];
        if let Ok(canonical) = path.canonicalize() {
            spellings.push(canonical.display().to_string());
        }
        spellings.sort_by_key(|s| std::cmp::Reverse(s.len()));
        spellings.dedup();
        for s in spellings {
            self = self.literal(&s, with);
        }
        self
    }

    /// Replaces the port number `port` (not as part of a longer number) with `with`.
    pub fn port(self, port: u16, with: &str) -> Filters {
        self.regex(&format!(r"\b{port}\b"), with)
    }

    /// These filters, then `other`'s.
    pub fn and(mut self, other: Filters) -> Filters {
        self.pairs.extend(other.pairs);
        self
    }

    /// The pairs, for `insta::Settings::add_filter`.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// `text` with every regex metacharacter escaped.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
