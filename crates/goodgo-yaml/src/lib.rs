//! The one YAML loader goodgo uses for every file it reads (`goodgo.yaml`, `plan.yaml`,
//! Compose files, …).
//!
//! Why a crate of its own: every command promises the same thing about bad input — an error
//! of the form `path:line:col: what is wrong` naming the offending key — and that promise is
//! easiest to keep when there is exactly one way to turn YAML text into typed data.
//!
//! The loader is strict: target types use `#[serde(deny_unknown_fields)]`, duplicate keys
//! are errors, and unknown keys or values get a did-you-mean suggestion when one is close.
//! Positions are 1-based, columns counted in characters.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use serde_saphyr::Spanned;

/// A 1-based position in a YAML file.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(from = "(u32, u32)", into = "(u32, u32)")]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub const fn new(line: u32, col: u32) -> Self {
        Self { line, col }
    }

    /// The position where a [`Spanned`] value was written.
    pub fn of<T>(spanned: &Spanned<T>) -> Self {
        Self::new(
            clamp(spanned.referenced.line()),
            clamp(spanned.referenced.column()),
        )
    }
}

impl From<(u32, u32)> for Pos {
    fn from((line, col): (u32, u32)) -> Self {
        Self { line, col }
    }
}

impl From<Pos> for (u32, u32) {
    fn from(pos: Pos) -> Self {
        (pos.line, pos.col)
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

fn clamp(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A problem in a file goodgo read, located to the character.
///
/// Displays as `path:line:col: message`, the form editors and CI annotations understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}: {}", path.display(), pos, message)]
pub struct YamlError {
    pub path: PathBuf,
    pub pos: Pos,
    pub message: String,
}

/// Why a file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] YamlError),
}

/// Reads and parses `path` into `T`.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(from_str(path, &text)?)
}

/// Parses `text` (read from `path`, used only in messages) into `T`.
///
/// A message names the key path of the offending value (`tasks[3].estimate: expected a
/// number`); an unknown or duplicate key is named with the path of the mapping it sits in.
///
/// An empty document (no content, or only comments) deserializes like an empty mapping,
/// so a type whose fields are all optional gets its defaults.
pub fn from_str<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, YamlError> {
    let text = if is_blank_document(text) { "{}" } else { text };
    serde_saphyr::from_str_with_options::<T>(text, options()).map_err(|err| {
        let pos = err
            .location()
            .map(|loc| Pos::new(clamp(loc.line()).max(1), clamp(loc.column()).max(1)))
            .unwrap_or(Pos::new(1, 1));
        let message = humanize(&err.to_string());
        let mut keys = key_path::<T>(text);
        // An unknown or duplicate key is named by the message: the path is where it sits.
        if let Some(Key::Name(last)) = keys.last()
            && (message.starts_with(&format!("unknown key `{last}`"))
                || message.starts_with(&format!("duplicate key `{last}`")))
        {
            keys.pop();
        }
        let message = if keys.is_empty() {
            message
        } else {
            format!("{}: {}", show_keys(&keys), message.replacen(" here", "", 1))
        };
        YamlError {
            path: path.to_path_buf(),
            pos,
            message,
        }
    })
}

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! { with_snippet: false }
}

/// One step of a key path: a mapping key or a list index.
enum Key {
    Name(String),
    Index(usize),
}

/// `tasks[3].estimate`
fn show_keys(keys: &[Key]) -> String {
    let mut out = String::new();
    for key in keys {
        match key {
            Key::Index(i) => out.push_str(&format!("[{i}]")),
            Key::Name(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
        }
    }
    out
}

/// The key path of the value a failed parse stopped at, found by parsing again with path
/// tracking: errors are rare, so a file that parses pays nothing for it. Empty at the top
/// level.
fn key_path<T: DeserializeOwned>(text: &str) -> Vec<Key> {
    use serde_path_to_error::Segment;
    let mut track = serde_path_to_error::Track::new();
    let again = serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        T::deserialize(serde_path_to_error::Deserializer::new(de, &mut track))
    });
    if again.is_ok() {
        return Vec::new();
    }
    track
        .path()
        .iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(Key::Index(*index)),
            // A [`Spanned`] value is read as a synthesized `{value, referenced, defined}`
            // mapping: those are not the user's keys (no goodgo file has a key so named).
            Segment::Map { key } if matches!(key.as_str(), "value" | "referenced" | "defined") => {
                None
            }
            Segment::Map { key } | Segment::Enum { variant: key } => Some(Key::Name(key.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

/// True for a document with nothing but white space and comments.
fn is_blank_document(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---"
    })
}

/// Rewrites the parser's message into goodgo's words: no repeated position, "key" for
/// "field", and a did-you-mean where an unknown key or value is close to a known one.
fn humanize(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let msg = strip_position_suffix(strip_position_prefix(first));

    if let Some((name, expected)) = parse_unknown(msg, "unknown field `") {
        return describe_unknown("key", &name, &expected);
    }
    if let Some((name, expected)) = parse_unknown(msg, "unknown variant `") {
        return describe_unknown("value", &name, &expected);
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        return format!("missing required key `{name}`");
    }
    if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        let name = rest.split(',').next().unwrap_or(rest).trim();
        return format!("duplicate key `{name}`");
    }
    if msg == "invalid floating point" {
        return "expected a number here".to_string();
    }
    if let Some(kind) = msg.strip_prefix("invalid ")
        && matches!(
            kind,
            "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "usize"
        )
    {
        let sign = if kind.starts_with('u') {
            "non-negative "
        } else {
            ""
        };
        return format!("expected a {sign}whole number here (fitting {kind})");
    }
    if msg.starts_with("externally tagged enum expected scalar") {
        return "expected a single value here, not a list or mapping".to_string();
    }
    if let Some(kind) = msg
        .strip_prefix("expected ")
        .and_then(|m| m.strip_suffix(" scalar"))
    {
        return format!("expected a {kind} here");
    }
    if msg == "expected mapping start" {
        return "expected a mapping (`key: value` lines) here".to_string();
    }
    msg.to_string()
}

/// Drops a leading `line N column M:` that the parser puts in front of its message.
fn strip_position_prefix(msg: &str) -> &str {
    let Some(rest) = msg.strip_prefix("line ") else {
        return msg;
    };
    match rest.find(": ") {
        Some(i) if rest[..i].contains("column") => &rest[i + 2..],
        _ => msg,
    }
}

/// Drops a trailing ` at line N, column M` that the parser appends to its message.
fn strip_position_suffix(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(", column ") => &msg[..i],
        _ => msg,
    }
}

/// Parses "unknown field `x`, expected one of a, b" and "unknown field `x`, expected `a`".
fn parse_unknown(msg: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let rest = msg.strip_prefix(prefix)?;
    let (name, rest) = rest.split_once('`')?;
    let rest = rest.trim_start_matches(',').trim();
    let list = rest
        .strip_prefix("expected one of ")
        .or_else(|| rest.strip_prefix("expected "))
        .unwrap_or("");
    let expected = if rest.starts_with("there are no") {
        Vec::new()
    } else {
        list.split(',')
            .map(|s| s.trim().trim_matches('`').to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    Some((name.to_string(), expected))
}

fn describe_unknown(what: &str, name: &str, expected: &[String]) -> String {
    let mut out = format!("unknown {what} `{name}`");
    if let Some(best) = did_you_mean(name, expected.iter().map(String::as_str)) {
        out.push_str(&format!(" (did you mean `{best}`?)"));
    }
    if !expected.is_empty() {
        let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
        out.push_str(&format!("; expected one of {}", list.join(", ")));
    }
    out
}

/// The candidate closest to `name` by edit distance, if it is close enough to be a typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1) + 1;
    let lower = name.to_lowercase();
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    // A clear abbreviation (`prod` for `production`) is as good as a typo.
    if lower.len() >= 3 {
        let mut prefixed = candidates
            .iter()
            .filter(|c| c.to_lowercase().starts_with(&lower));
        if let (Some(only), None) = (prefixed.next(), prefixed.next()) {
            return Some(only);
        }
    }
    candidates
        .into_iter()
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(prev2[j - 2] + 1);
            }
            cur[j] = best;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

impl goodgo_diag::Diagnostic for YamlError {
    fn class(&self) -> Option<goodgo_diag::Class> {
        Some(goodgo_diag::Class::Input)
    }

    fn location(&self) -> Option<goodgo_diag::Location<'_>> {
        Some(goodgo_diag::Location {
            path: &self.path,
            line: self.pos.line,
            col: self.pos.col,
            message: &self.message,
        })
    }
}

impl goodgo_diag::Diagnostic for LoadError {
    /// A file that cannot be read at all (missing, a folder, no permission) is bad input too.
    fn class(&self) -> Option<goodgo_diag::Class> {
        Some(goodgo_diag::Class::Input)
    }

    fn location(&self) -> Option<goodgo_diag::Location<'_>> {
        match self {
            LoadError::Invalid(e) => goodgo_diag::Diagnostic::location(e),
            LoadError::Read { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        name: Option<String>,
        port: Option<u16>,
        mode: Option<Mode>,
        deps: Option<Vec<Spanned<String>>>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Native,
        Docker,
    }

    fn err(text: &str) -> YamlError {
        from_str::<Cfg>(Path::new("g.yaml"), text).unwrap_err()
    }

    #[test]
    fn unknown_key_names_line_column_and_suggestion() {
        let e = err("name: x\nprot: 1\n");
        assert_eq!(e.pos, Pos::new(2, 1));
        assert_eq!(
            e.to_string(),
            "g.yaml:2:1: unknown key `prot` (did you mean `port`?); expected one of `name`, `port`, `mode`, `deps`"
        );
    }

    #[test]
    fn wrong_type_is_located_at_the_value() {
        let e = err("name: x\nport: seventy\n");
        assert_eq!(e.pos, Pos::new(2, 7));
        assert!(e.message.contains("u16"), "{}", e.message);
        assert!(e.message.starts_with("port: "), "{}", e.message);
    }

    #[test]
    fn errors_name_the_offending_key_path() {
        let e = err("name: [a, b]\n");
        assert_eq!(e.to_string(), "g.yaml:1:7: name: expected a string");
        let e = err("mode: dokcer\n");
        assert!(
            e.message.starts_with("mode: unknown value `dokcer`"),
            "{}",
            e.message
        );
        let e = err("deps: [a, [b]]\n");
        assert!(e.message.starts_with("deps[1]: "), "{}", e.message);
        let e = err("prot: 1\n");
        assert!(
            e.message.starts_with("unknown key `prot`"),
            "top level: {}",
            e.message
        );

        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Outer {
            items: Vec<Cfg>,
        }
        let nested = |text: &str| from_str::<Outer>(Path::new("g.yaml"), text).unwrap_err();
        let e = nested("items:\n  - name: a\n  - prot: 1\n");
        assert_eq!(
            (e.pos, e.message.split(';').next().unwrap()),
            (
                Pos::new(3, 5),
                "items[1]: unknown key `prot` (did you mean `port`?)"
            )
        );
        let e = nested("items:\n  - name: a\n    name: b\n");
        assert_eq!(e.to_string(), "g.yaml:3:5: items[0]: duplicate key `name`");
        let e = nested("items:\n  - port: -1\n");
        assert!(e.message.starts_with("items[0].port: "), "{}", e.message);
    }

    #[test]
    fn unknown_enum_value_suggests() {
        let e = err("mode: dokcer\n");
        assert_eq!(e.pos, Pos::new(1, 7));
        assert!(e.message.contains("did you mean `docker`"), "{}", e.message);
    }

    #[test]
    fn not_a_mapping() {
        let e = err("- a\n- b\n");
        assert_eq!(e.pos, Pos::new(1, 1));
        assert!(e.message.contains("mapping"), "{}", e.message);
    }

    #[test]
    fn syntax_error_is_located() {
        let e = err("name: x\nport: [1, 2\n");
        assert!(e.pos.line >= 2, "{e}");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = err("name: x\nname: y\n");
        assert_eq!(e.pos, Pos::new(2, 1));
        assert_eq!(e.message, "duplicate key `name`");
    }

    #[test]
    fn empty_and_comment_only_documents_are_defaults() {
        for text in ["", "\n", "# nothing yet\n", "---\n"] {
            assert_eq!(
                from_str::<Cfg>(Path::new("g.yaml"), text).unwrap(),
                Cfg::default()
            );
        }
    }

    #[test]
    fn spans_point_at_each_list_item() {
        let cfg: Cfg = from_str(Path::new("g.yaml"), "deps: [a, bb]\n").unwrap();
        let deps = cfg.deps.unwrap();
        assert_eq!(Pos::of(&deps[1]), Pos::new(1, 11));
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("port", "prot"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(did_you_mean("zzzzzz", ["port", "name"]), None);
        assert_eq!(
            did_you_mean("prod", ["development", "production"]),
            Some("production")
        );
    }
}
