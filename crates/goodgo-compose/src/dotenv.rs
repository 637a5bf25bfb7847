//! The `.env` / `env_file` format: `KEY=value` lines.
//!
//! Why its own module: both the `.env` file next to the Compose file (variables for
//! interpolation) and each service's `env_file` (variables for the container) use it, and
//! its details matter to users: `#` comments, an optional `export `, single quotes
//! (literal), double quotes (escapes, may span lines), unquoted values (trimmed, a ` #`
//! starts a comment), and `KEY` alone (take the value from the environment). Parsing is
//! separate from interpolation: the caller expands `${VAR}` in every value that is not
//! single-quoted, with the lookup that fits the file.
//!
//! This is goodgo's one `.env` reader: [`read_env_file`] gives any caller (the CLI's
//! workspace `.env` of secrets, for one) the same strict reading, with located errors.

use std::collections::BTreeMap;
use std::path::Path;

use goodgo_yaml::Pos;

use crate::error::ComposeError;
use crate::interp;

/// Reads a `.env`-format file: its variables in the order written, values resolved.
///
/// - A missing file is empty (`Ok(vec![])`); any other read failure is
///   [`ComposeError::Read`] naming `shown`.
/// - A malformed line is a located [`ComposeError::Invalid`] (`shown:line:col: message`).
/// - Values are interpolated as in the `.env` beside a Compose file: `${VAR}` from `env`
///   first, then from the lines above; single-quoted values are taken as written; an unset
///   variable without a default is the empty string. A bare `KEY` line takes its value from
///   `env` and is left out when `env` has none.
/// - A key written twice appears twice; the later one is meant to win (collect into a map).
///
/// `path` is where the file is read; `shown` is how messages name it.
pub fn read_env_file(
    path: &Path,
    shown: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, ComposeError> {
    let Some(text) = read_text(path, shown)? else {
        return Ok(Vec::new());
    };
    let lines = parse(&text).map_err(|(pos, m)| ComposeError::at(shown, pos, m))?;
    let mut so_far: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let value = match line.value {
            None => env(&line.key),
            Some(raw) if raw.literal => Some(raw.text),
            Some(raw) => {
                let lookup = |n: &str| env(n).or_else(|| so_far.get(n).cloned());
                let text = interp::interpolate(&raw.text, &lookup, &mut |_| {})
                    .map_err(|m| ComposeError::at(shown, raw.pos, m))?;
                Some(text)
            }
        };
        if let Some(value) = value {
            so_far.insert(line.key.clone(), value.clone());
            out.push((line.key, value));
        }
    }
    Ok(out)
}

/// The text of a `.env`-format file; `None` when there is no such file.
pub(crate) fn read_text(path: &Path, shown: &Path) -> Result<Option<String>, ComposeError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ComposeError::Read {
            path: shown.to_path_buf(),
            source,
        }),
    }
}

/// One `KEY=value` (or bare `KEY`) line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvLine {
    pub key: String,
    pub key_pos: Pos,
    pub value: Option<RawValue>,
}

/// A value as written, before interpolation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawValue {
    pub text: String,
    pub pos: Pos,
    /// Single-quoted: taken as is, no interpolation.
    pub literal: bool,
}

struct Cursor {
    chars: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
}

impl Cursor {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn pos(&self) -> Pos {
        Pos::new(self.line, self.col)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }

    fn at_line_end(&self) -> bool {
        matches!(self.peek(), None | Some('\n' | '\r'))
    }
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Parses the text of a `.env` or `env_file` file.
pub(crate) fn parse(text: &str) -> Result<Vec<EnvLine>, (Pos, String)> {
    let mut cur = Cursor {
        chars: text.trim_start_matches('\u{feff}').chars().collect(),
        i: 0,
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    loop {
        while matches!(cur.peek(), Some(' ' | '\t' | '\r' | '\n')) {
            cur.bump();
        }
        let Some(first) = cur.peek() else { break };
        if first == '#' {
            cur.skip_line();
            continue;
        }
        let key_pos = cur.pos();
        let mut key = String::new();
        while let Some(c) = cur.peek() {
            if matches!(c, '=' | ' ' | '\t' | '\n' | '\r') {
                break;
            }
            key.push(c);
            cur.bump();
        }
        if key == "export" && matches!(cur.peek(), Some(' ' | '\t')) {
            cur.skip_blanks();
            return_if_blank(&cur, key_pos)?;
            key.clear();
            while let Some(c) = cur.peek() {
                if matches!(c, '=' | ' ' | '\t' | '\n' | '\r') {
                    break;
                }
                key.push(c);
                cur.bump();
            }
        }
        if !valid_key(&key) {
            return Err((
                key_pos,
                format!(
                    "invalid variable name `{key}`: expected `NAME=value` with letters, digits, `_`, `.` or `-`"
                ),
            ));
        }
        cur.skip_blanks();
        let value = match cur.peek() {
            Some('=') => {
                cur.bump();
                cur.skip_blanks();
                Some(value(&mut cur)?)
            }
            Some('#') | Some('\r') | Some('\n') | None => {
                cur.skip_line();
                None
            }
            Some(_) => {
                return Err((cur.pos(), format!("expected `=` after `{key}`")));
            }
        };
        out.push(EnvLine {
            key,
            key_pos,
            value,
        });
    }
    Ok(out)
}

fn return_if_blank(cur: &Cursor, pos: Pos) -> Result<(), (Pos, String)> {
    if cur.at_line_end() {
        return Err((pos, "expected `NAME=value` after `export`".into()));
    }
    Ok(())
}

/// Reads a value after `=`, up to the end of its line (or of its closing quote).
fn value(cur: &mut Cursor) -> Result<RawValue, (Pos, String)> {
    let pos = cur.pos();
    match cur.peek() {
        Some(q @ ('\'' | '"')) => {
            cur.bump();
            let mut text = String::new();
            loop {
                let Some(c) = cur.bump() else {
                    return Err((pos, format!("unclosed {q} quote")));
                };
                if c == q {
                    break;
                }
                if q == '"' && c == '\\' {
                    match cur.bump() {
                        Some('n') => text.push('\n'),
                        Some('t') => text.push('\t'),
                        Some('r') => text.push('\r'),
                        Some('\\') => text.push('\\'),
                        Some('"') => text.push('"'),
                        Some(other) => {
                            text.push('\\');
                            text.push(other);
                        }
                        None => return Err((pos, format!("unclosed {q} quote"))),
                    }
                    continue;
                }
                text.push(c);
            }
            cur.skip_blanks();
            match cur.peek() {
                Some('#') => cur.skip_line(),
                _ if cur.at_line_end() => cur.skip_line(),
                _ => {
                    return Err((cur.pos(), "unexpected text after the closing quote".into()));
                }
            }
            Ok(RawValue {
                text,
                pos,
                literal: q == '\'',
            })
        }
        _ => {
            let mut text = String::new();
            while let Some(c) = cur.peek() {
                if c == '\n' {
                    break;
                }
                // ` #` starts a comment; `a#b` is a value.
                if c == '#' && (text.is_empty() || text.ends_with([' ', '\t'])) {
                    break;
                }
                text.push(c);
                cur.bump();
            }
            cur.skip_line();
            Ok(RawValue {
                text: text.trim().to_string(),
                pos,
                literal: false,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pairs(text: &str) -> Vec<(String, Option<String>)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|l| (l.key, l.value.map(|v| v.text)))
            .collect()
    }

    fn kv(k: &str, v: &str) -> (String, Option<String>) {
        (k.into(), Some(v.into()))
    }

    #[test]
    fn lines_comments_and_blanks() {
        let text =
            "# header\n\nA=1\n  B = two words  \nC=\nexport D=4\nE\nF=x#y\nG=x # comment\r\n";
        assert_eq!(
            pairs(text),
            vec![
                kv("A", "1"),
                kv("B", "two words"),
                kv("C", ""),
                kv("D", "4"),
                ("E".into(), None),
                kv("F", "x#y"),
                kv("G", "x"),
            ]
        );
    }

    #[test]
    fn quotes() {
        let text = "A='${X} # not a comment'\nB=\"a\\nb \\\"q\\\"\" # c\nC=\"multi\nline\"\nD=''\n";
        let lines = parse(text).unwrap();
        assert!(lines[0].value.as_ref().unwrap().literal);
        assert!(!lines[1].value.as_ref().unwrap().literal);
        assert_eq!(
            pairs(text),
            vec![
                kv("A", "${X} # not a comment"),
                kv("B", "a\nb \"q\""),
                kv("C", "multi\nline"),
                kv("D", ""),
            ]
        );
    }

    #[test]
    fn positions() {
        let lines = parse("\n  A=1\nB= 'x'\n").unwrap();
        assert_eq!(lines[0].key_pos, Pos::new(2, 3));
        assert_eq!(lines[1].value.as_ref().unwrap().pos, Pos::new(3, 4));
    }

    #[test]
    fn errors() {
        assert_eq!(parse("A=1\nB='open\n").unwrap_err().0, Pos::new(2, 3));
        assert!(parse("A B\n").unwrap_err().1.contains("expected `=`"));
        assert!(
            parse("=1\n")
                .unwrap_err()
                .1
                .contains("invalid variable name")
        );
        assert!(
            parse("A=\"x\" y\n")
                .unwrap_err()
                .1
                .contains("after the closing quote")
        );
        assert!(parse("export \n").is_err());
    }
}
