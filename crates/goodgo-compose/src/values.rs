//! Values the engine would refuse, checked while loading: image references and byte
//! sizes (durations, ports and restart policies are in `syntax` and the loader).
//!
//! Why its own module: a bad value that reaches the engine comes back as its raw
//! "400 … invalid reference format", after goodgo has started doing things; checked here,
//! it is a located error (`compose.yaml:8:12: …`) before anything runs. Each check is a
//! pure function from text to a value or a message saying which part is wrong; the loader
//! adds the key path and the position (the unset variable's, when one emptied a part).

/// The longest repository name the engine accepts.
const MAX_NAME: usize = 255;

/// Checks an image reference the way the engine parses one:
/// `[host[:port]/]path[:tag][@algorithm:hex]`, where `path` is lowercase components
/// (`a-z0-9`, separated inside by `.`, `_`, `__` or dashes) joined by `/`, a tag is up to
/// 128 of `\w.-` not starting with `.` or `-`, and a digest's hex is at least 32 digits.
pub fn check_image(reference: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid image reference `{reference}`: {why}"));
    if reference.is_empty() {
        return Err("the image reference is empty".into());
    }
    if reference.chars().any(char::is_whitespace) {
        return bad("it contains a blank");
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest {
        check_digest(digest).or_else(|m| bad(&m))?;
    }
    // A `:` after the last `/` starts the tag; one before it is a registry's port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        check_tag(tag).or_else(|m| bad(&m))?;
    }
    if name.is_empty() {
        return bad("the name before the tag or digest is empty");
    }
    if name.len() > MAX_NAME {
        return bad(&format!("the name is longer than {MAX_NAME} characters"));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    let has_domain = parts.len() > 1
        && (first.contains(['.', ':'])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase()));
    if has_domain {
        check_domain(first).or_else(|m| bad(&m))?;
        parts.remove(0);
    }
    for part in parts {
        check_component(part).or_else(|m| bad(&m))?;
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("the tag after `:` is empty".into());
    }
    let ok = tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the tag `{tag}` may hold only letters, digits, `_`, `.` and `-` (at most 128, not starting with `.` or `-`)"
        ))
    }
}

fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!(
            "the digest `{digest}` needs the form `algorithm:hex` (`sha256:…`)"
        ));
    };
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.split(['+', '.', '-', '_']).all(|c| {
            c.starts_with(|ch: char| ch.is_ascii_alphabetic())
                && c.chars().all(|ch| ch.is_ascii_alphanumeric())
        });
    if !algorithm_ok {
        return Err(format!("the digest algorithm `{algorithm}` is not valid"));
    }
    if hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "the digest `{digest}` needs at least 32 hexadecimal digits after `:`"
        ));
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), String> {
    let (host, port) = if domain.starts_with('[') {
        match domain.find(']') {
            Some(i) if i + 1 == domain.len() => (domain, None),
            Some(i) if domain[i + 1..].starts_with(':') => (&domain[..=i], Some(&domain[i + 2..])),
            _ => return Err(format!("the registry `{domain}` is not a valid address")),
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!("the registry port `{port}` is not a number"));
    }
    let ipv6 = host.starts_with('[') && host.ends_with(']');
    let ok = ipv6
        || (!host.is_empty()
            && host.split('.').all(|c| {
                !c.is_empty()
                    && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                    && !c.starts_with('-')
                    && !c.ends_with('-')
            }));
    if ok {
        Ok(())
    } else {
        Err(format!("the registry `{host}` is not a valid host name"))
    }
}

/// One `/`-separated part of a repository path.
fn check_component(part: &str) -> Result<(), String> {
    if part.is_empty() {
        return Err("a part of the name between `/` is empty".into());
    }
    if part.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("the repository name `{part}` must be lowercase"));
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let chars: Vec<char> = part.chars().collect();
    let mut ok =
        chars.first().is_some_and(|&c| alnum(c)) && chars.last().is_some_and(|&c| alnum(c));
    let mut i = 0;
    while ok && i < chars.len() {
        if alnum(chars[i]) {
            i += 1;
            continue;
        }
        // A separator: `.`, `_`, `__` or a run of `-`.
        let start = i;
        while i < chars.len() && !alnum(chars[i]) {
            i += 1;
        }
        let sep: String = chars[start..i].iter().collect();
        ok = matches!(sep.as_str(), "." | "_" | "__") || sep.chars().all(|c| c == '-');
    }
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the repository name `{part}` may hold only lowercase letters and digits, separated by `.`, `_`, `__` or `-`"
        ))
    }
}

/// Parses a byte size as Compose does: a number (fractions allowed) with an optional unit
/// `b`, `k`, `m`, `g`, `t`, `p` (powers of 1024; `kb`, `kib`, `KB` alike).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid size `{text}`: expected a number of bytes with an optional unit, like `512m`, `1g` or `1024`"
        )
    };
    let s = text.trim();
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(bad()),
    };
    let bytes = value * 1024f64.powi(power);
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    // Truncated to whole bytes, as Compose does.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn good_image_references() {
        for r in [
            "postgres",
            "postgres:15",
            "goodgo/postgres:15",
            "library/redis:7-alpine",
            "ghcr.io/owner/app:v1.2.3",
            "localhost:5000/app",
            "localhost/app:latest",
            "registry.example.com:5000/team/app_x__y.z-w:1",
            "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "app:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "[::1]:5000/app",
            "[::1]/app",
            "a--b/c",
            "Registry.Example/app",
        ] {
            assert_eq!(check_image(r), Ok(()), "{r}");
        }
    }

    #[test]
    fn bad_image_references_say_which_part() {
        let e = |r: &str| check_image(r).unwrap_err();
        assert_eq!(
            e("postgres:"),
            "invalid image reference `postgres:`: the tag after `:` is empty"
        );
        assert_eq!(e(""), "the image reference is empty");
        assert!(e(":15").contains("name before the tag"), "{}", e(":15"));
        assert!(e("Postgres").contains("must be lowercase"));
        assert!(e("app:-x").contains("the tag `-x`"));
        assert!(e("app:a/b").contains("port"), "{}", e("app:a/b"));
        assert!(e("[::1/app").contains("registry"), "{}", e("[::1/app"));
        assert!(e("a//b").contains("empty"));
        assert!(e("app-").contains("may hold only"));
        assert!(e("a_-b").contains("may hold only"));
        assert!(e("app@sha256:abc").contains("32 hexadecimal"));
        assert!(e("app@abc").contains("algorithm:hex"));
        assert!(e("my app").contains("blank"));
        assert!(e("host:x5/app").contains("port"));
        assert!(e(&format!("a:{}", "t".repeat(129))).contains("at most 128"));
        assert!(e(&"a".repeat(256)).contains("255"));
    }

    #[test]
    fn byte_sizes() {
        let b = |t: &str| parse_bytes(t).unwrap();
        assert_eq!(b("1024"), 1024);
        assert_eq!(b("1k"), 1024);
        assert_eq!(b("64m"), 64 << 20);
        assert_eq!(b("64M"), 64 << 20);
        assert_eq!(b("1gb"), 1 << 30);
        assert_eq!(b("2GiB"), 2 << 30);
        assert_eq!(b("1.5g"), 3 << 29);
        assert_eq!(b("100b"), 100);
        assert_eq!(b("1 kb"), 1024);
        for bad in [
            "",
            "m",
            "-1m",
            "1x",
            "1.m",
            ".5g",
            "1e3",
            "1mm",
            "99999999999p",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
