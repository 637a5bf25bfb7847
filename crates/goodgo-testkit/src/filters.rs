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

    /// The filters every goodgo snapshot wants: timestamps (RFC 3339, UTC), durations
    /// (`123 ms`, `1.2 s`) and the version after `goodgo `.
    pub fn standard() -> Filters {
        Filters::none()
            .regex(
                r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
                "[TIMESTAMP]",
            )
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

#[cfg(test)]
mod tests {
    use super::Filters;

    #[test]
    fn standard_filters_hide_what_changes_between_runs() {
        let filters = Filters::standard()
            .port(24817, "[PORT]")
            .path(std::path::Path::new("/nonexistent/tmp.x1"), "[TMP]");
        let text = format!(
            "goodgo {} ready after 4687 ms, took 1.2 s at 2026-12-01T22:06:43.641549656Z on 127.0.0.1:24817 (not 248170) in /nonexistent/tmp.x1/ws; 4 d of work, 2 services, 0 finding(s)",
            env!("CARGO_PKG_VERSION")
        );
        let mut settings = insta::Settings::clone_current();
        for (regex, with) in filters.pairs() {
            settings.add_filter(regex, with.as_str());
        }
        settings.bind(|| {
            insta::assert_snapshot!(text, @"goodgo [VERSION] ready after [TIME], took [TIME] at [TIMESTAMP] on 127.0.0.1:[PORT] (not 248170) in [TMP]/ws; 4 d of work, 2 services, 0 finding(s)");
        });
    }
}
