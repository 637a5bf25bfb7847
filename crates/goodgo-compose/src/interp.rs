//! Variable interpolation in scalar values, as Compose does it.
//!
//! Why its own module: the rules are small but exact (`$$`, `$VAR`, `${VAR}`, the six
//! operators, nesting in defaults, what counts as an error), they apply to the Compose file,
//! to `.env` and to `env_file` values alike, and they deserve tests of their own. The
//! function is pure: the variables come from a lookup, and unset plain references are
//! reported through a callback so the caller can turn them into located warnings.

/// Replaces variable references in `text`.
///
/// `lookup` gives a variable's value; `unset` is called with the name of each variable
/// referenced without a default (`$VAR`, `${VAR}`) that has no value: it expands to the
/// empty string, as in Compose. The error is a message without position.
pub(crate) fn interpolate(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let close = matching_brace(&chars, i + 2).ok_or_else(|| {
                    format!(
                        "unclosed `${{` in `{}`: every `${{` needs its `}}` (write `$$` for a literal `$`)",
                        excerpt(&chars, i)
                    )
                })?;
                let body: String = chars[i + 2..close].iter().collect();
                out.push_str(&braced(&body, lookup, unset)?);
                i = close + 1;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                match lookup(&name) {
                    Some(v) => out.push_str(&v),
                    None => unset(&name),
                }
                i = j;
            }
            _ => {
                return Err(format!(
                    "invalid interpolation `{}`: a `$` starts a variable (`$VAR`, `${{VAR}}`); write `$$` for a literal `$`",
                    excerpt(&chars, i)
                ));
            }
        }
    }
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A few characters from `at`, to show where the problem is.
fn excerpt(chars: &[char], at: usize) -> String {
    chars[at..].iter().take(20).collect()
}

/// The index of the `}` closing a `${` whose body starts at `from`, skipping nested `${…}`
/// and `$$`.
fn matching_brace(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 1usize;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '$' if matches!(chars.get(i + 1), Some('$')) => i += 2,
            '$' if matches!(chars.get(i + 1), Some('{')) => {
                depth += 1;
                i += 2;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// The operators `${NAME<op>word}` may use, longest first so `:-` is not read as `-`.
const OPERATORS: [&str; 6] = [":-", ":?", ":+", "-", "?", "+"];

/// Expands the inside of `${…}`.
fn braced(
    body: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
) -> Result<String, String> {
    let name_len = body
        .char_indices()
        .find(|&(k, c)| {
            !(if k == 0 {
                is_name_start(c)
            } else {
                is_name_char(c)
            })
        })
        .map_or(body.len(), |(k, _)| k);
    let (name, rest) = body.split_at(name_len);
    if name.is_empty() {
        return Err(format!(
            "invalid interpolation `${{{body}}}`: expected a variable name after `${{`"
        ));
    }
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let (op, word) = if rest.is_empty() {
        ("", "")
    } else {
        OPERATORS
            .iter()
            .find_map(|op| Some((*op, rest.strip_prefix(op)?)))
            .ok_or_else(|| {
                format!(
                    "invalid interpolation `${{{body}}}`: expected `}}`, `:-`, `-`, `:?`, `?`, `:+` or `+` after `{name}`"
                )
            })?
    };
    let nested = |w: &str, unset: &mut dyn FnMut(&str)| interpolate(w, lookup, unset);
    match op {
        "" => {
            if !set {
                unset(name);
            }
            Ok(value.unwrap_or_default())
        }
        ":-" if non_empty => Ok(value.unwrap_or_default()),
        "-" if set => Ok(value.unwrap_or_default()),
        ":-" | "-" => nested(word, unset),
        ":?" | "?" if (op == ":?" && !non_empty) || (op == "?" && !set) => {
            let how = if op == ":?" && set {
                "is empty"
            } else {
                "is not set"
            };
            let detail = nested(word, unset)?;
            if detail.is_empty() {
                Err(format!("required variable `{name}` {how}"))
            } else {
                Err(format!("required variable `{name}` {how}: {detail}"))
            }
        }
        ":?" | "?" => Ok(value.unwrap_or_default()),
        ":+" if non_empty => nested(word, unset),
        "+" if set => nested(word, unset),
        _ => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            "INNER" => Some("inner".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<(String, Vec<String>), String> {
        let mut missing = Vec::new();
        let out = interpolate(text, &vars, &mut |n| missing.push(n.to_string()))?;
        Ok((out, missing))
    }

    fn ok(text: &str) -> String {
        run(text).unwrap().0
    }

    /// Each text expands to its expected value.
    #[track_caller]
    fn expands(cases: &[(&str, &str)]) {
        for (text, expected) in cases {
            assert_eq!(ok(text), *expected, "{text}");
        }
    }

    /// Each text is refused with exactly its message.
    #[track_caller]
    fn refuses(cases: &[(&str, &str)]) {
        for (text, message) in cases {
            assert_eq!(run(text).unwrap_err(), *message, "{text}");
        }
    }

    #[test]
    fn plain_references() {
        expands(&[
            ("no dollars", "no dollars"),
            ("$SET", "value"),
            ("${SET}", "value"),
            ("a-$SET-b", "a-value-b"),
            ("a${SET}b", "avalueb"),
            ("$SET.x", "value.x"),
            ("é$SETé", "évalueé"),
        ]);
    }

    #[test]
    fn dollar_dollar_is_a_dollar() {
        expands(&[
            ("$$", "$"),
            ("$$SET", "$SET"),
            ("$$(cat /run/secrets/x)", "$(cat /run/secrets/x)"),
            ("$$$SET", "$value"),
            ("${UNSET:-$$}", "$"),
        ]);
    }

    #[test]
    fn unset_plain_references_are_empty_and_reported() {
        let (out, missing) = run("a${NOPE}b$NADA").unwrap();
        assert_eq!(out, "ab");
        assert_eq!(missing, vec!["NOPE", "NADA"]);
    }

    #[test]
    fn defaults() {
        expands(&[
            ("${SET:-d}", "value"),
            ("${EMPTY:-d}", "d"),
            ("${UNSET:-d}", "d"),
            ("${SET-d}", "value"),
            ("${EMPTY-d}", ""),
            ("${UNSET-d}", "d"),
            ("${UNSET:-}", ""),
            ("${UNSET:-a b:c}", "a b:c"),
        ]);
        assert_eq!(run("${UNSET:-d}").unwrap().1, Vec::<String>::new());
    }

    #[test]
    fn nested_defaults() {
        expands(&[
            ("${UNSET:-${INNER}}", "inner"),
            ("${UNSET:-${ALSO:-x${SET}y}}", "xvaluey"),
            ("${SET:-${NOPE:?never evaluated}}", "value"),
        ]);
    }

    #[test]
    fn alternatives() {
        expands(&[
            ("${SET:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${UNSET:+alt}", ""),
            ("${SET+alt}", "alt"),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${SET:+-$SET-}", "-value-"),
        ]);
    }

    #[test]
    fn required() {
        expands(&[("${SET:?must}", "value"), ("${EMPTY?must}", "")]);
        refuses(&[
            (
                "${UNSET:?set UNSET in .env}",
                "required variable `UNSET` is not set: set UNSET in .env",
            ),
            ("${EMPTY:?no}", "required variable `EMPTY` is empty: no"),
            ("x ${UNSET?} y", "required variable `UNSET` is not set"),
            (
                "${UNSET:?needs ${SET}}",
                "required variable `UNSET` is not set: needs value",
            ),
        ]);
    }

    #[test]
    fn malformed() {
        let e = run("a ${SET").unwrap_err();
        assert!(e.starts_with("unclosed `${`"), "{e}");
        let e = run("${UNSET:-${SET}").unwrap_err();
        assert!(e.starts_with("unclosed `${`"), "{e}");
        let e = run("${}").unwrap_err();
        assert!(e.contains("expected a variable name"), "{e}");
        let e = run("${A B}").unwrap_err();
        assert!(e.contains("after `A`"), "{e}");
        let e = run("${A:x}").unwrap_err();
        assert!(e.contains("after `A`"), "{e}");
        for bad in ["$", "price $5", "$(cmd)", "a $ b", "${1}"] {
            assert!(run(bad).is_err(), "{bad}");
        }
    }
}
