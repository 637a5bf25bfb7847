//! The little string languages inside Compose values: durations (`1m30s`), shell-style
//! command splitting, port specs (`127.0.0.1:8080:80/udp`), volume specs
//! (`./src:/app:ro`) and `host:ip` entries.
//!
//! Why its own module: each is a pure function from text to a value or a message, easy to
//! test exhaustively on its own; the loader adds the key path and the position. It uses
//! nothing of the model (the model uses it: [`Port`] is defined here, with its parser).

use std::time::Duration;

use serde::Serialize;

/// Parses a Go-style duration: `10s`, `1m30s`, `500ms`, `1.5h`, `2us`, `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration `{text}`: expected a number with a unit, like `10s`, `1m30s` or `500ms`"
        )
    };
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        // Digits past nanosecond precision are dropped, as Go does.
        let frac = &frac[..frac.len().min(18)];
        let frac_value: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        let frac_scale = 10u128.pow(u32::try_from(frac.len()).map_err(|_| bad())?);
        let nanos = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(frac_value * scale / frac_scale))
            .ok_or_else(bad)?;
        total = total.checked_add(nanos).ok_or_else(bad)?;
        rest = next;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad())?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration the way Compose files write them: `1m30s`, `500ms`, `0s`.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let mut out = String::new();
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    let nanos = d.subsec_nanos();
    if nanos > 0 {
        if nanos.is_multiple_of(1_000_000) {
            out.push_str(&format!("{}ms", nanos / 1_000_000));
        } else if nanos.is_multiple_of(1_000) {
            out.push_str(&format!("{}us", nanos / 1_000));
        } else {
            out.push_str(&format!("{nanos}ns"));
        }
    }
    out
}

/// Splits a command line the way a POSIX shell splits words, without expanding anything:
/// blanks separate words, `'…'` is literal, `"…"` allows `\"`, `\\`, `\$` and `` \` ``,
/// and a backslash outside quotes takes the next character literally.
pub fn shlex_split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed ' quote in `{text}`")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => word.push(e),
                            Some('\n') => {}
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err(format!("unclosed \" quote in `{text}`")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unclosed \" quote in `{text}`")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err(format!("a trailing `\\` escapes nothing in `{text}`")),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn port_number(text: &str, what: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "invalid {what} `{text}`: expected a port number from 1 to 65535"
        )),
    }
}

/// A port or an inclusive range `a-b`.
fn port_range(text: &str, what: &str) -> Result<(u16, u16), String> {
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port_number(a, what)?, port_number(b, what)?);
            if a > b {
                return Err(format!(
                    "invalid {what} range `{text}`: the first port is larger"
                ));
            }
            Ok((a, b))
        }
        None => {
            let p = port_number(text, what)?;
            Ok((p, p))
        }
    }
}

/// Checks a protocol name.
pub fn protocol(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "tcp" | "udp" | "sctp" => Ok(lower),
        _ => Err(format!(
            "unknown protocol `{text}`: expected `tcp`, `udp` or `sctp`"
        )),
    }
}

/// A published or container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    pub host_ip: Option<String>,
    /// `None`: published on a free host port the engine picks (`- "80"`, `127.0.0.1::80`).
    pub published: Option<u16>,
    pub target: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
}

/// Parses the short port syntax: `[[host_ip:][published]:]target[/protocol]`, where
/// `published` and `target` may be equal-length ranges (`3000-3005:3000-3005`, expanded
/// to one [`Port`] each) and an IPv6 host address is written in brackets.
pub fn parse_ports(spec: &str) -> Result<Vec<Port>, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((rest, p)) => (rest, protocol(p)?),
        None => (spec, "tcp".to_string()),
    };
    let (host_ip, rest) = if let Some(after) = rest.strip_prefix('[') {
        let Some((ip, after)) = after.split_once(']') else {
            return Err(format!(
                "invalid port `{spec}`: unclosed `[` around the host address"
            ));
        };
        let Some(after) = after.strip_prefix(':') else {
            return Err(format!(
                "invalid port `{spec}`: expected `:` after the host address"
            ));
        };
        (Some(ip.to_string()), after)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, published, target) = match (host_ip, parts.as_slice()) {
        (None, [t]) => (None, None, *t),
        (Some(_), [_]) => {
            return Err(format!(
                "invalid port `{spec}`: a host address needs `host:published:target`"
            ));
        }
        (ip, [p, t]) => (ip, Some(*p), *t),
        (None, [ip, p, t]) => (Some((*ip).to_string()), Some(*p), *t),
        _ => {
            return Err(format!(
                "invalid port `{spec}`: expected `[host_ip:][published:]target[/protocol]` (write an IPv6 host address in brackets)"
            ));
        }
    };
    let host_ip = host_ip.filter(|ip| !ip.is_empty());
    let (t0, t1) = port_range(target, "container port")?;
    let published = published.filter(|p| !p.is_empty());
    let count = usize::from(t1 - t0) + 1;
    let published: Vec<Option<u16>> = match published {
        None => vec![None; count],
        Some(p) => {
            let (p0, p1) = port_range(p, "published port")?;
            let pcount = usize::from(p1 - p0) + 1;
            if pcount != count {
                return Err(format!(
                    "port range `{spec}` is not supported: goodgo maps each container port to one published port, so both ranges must have the same length"
                ));
            }
            (p0..=p1).map(Some).collect()
        }
    };
    Ok((t0..=t1)
        .zip(published)
        .map(|(target, published)| Port {
            host_ip: host_ip.clone(),
            published,
            target,
            protocol: proto.clone(),
        })
        .collect())
}

/// Parses an `expose` entry: `3000`, `3000/udp`, `3000-3005`. Returns it normalized.
pub fn parse_expose(spec: &str) -> Result<String, String> {
    let (port, proto) = match spec.rsplit_once('/') {
        Some((port, p)) => (port, Some(protocol(p)?)),
        None => (spec, None),
    };
    port_range(port, "exposed port")?;
    Ok(match proto {
        Some(p) => format!("{port}/{p}"),
        None => port.to_string(),
    })
}

/// A short volume spec split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortVolume {
    /// `None` for an anonymous volume (`- /data`).
    pub source: Option<String>,
    pub target: String,
    /// The comma-separated options after the second `:`, e.g. `ro`, `z`.
    pub options: Vec<String>,
}

/// Splits `[source:]target[:options]`.
pub fn parse_volume(spec: &str) -> Result<ShortVolume, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [t] => (None, *t, ""),
        [s, t] => (Some(*s), *t, ""),
        [s, t, o] => (Some(*s), *t, *o),
        _ => {
            return Err(format!(
                "invalid volume `{spec}`: expected `[source:]target[:options]`"
            ));
        }
    };
    if source == Some("") {
        return Err(format!(
            "invalid volume `{spec}`: the source before `:` is empty"
        ));
    }
    if !target.starts_with('/') {
        return Err(format!(
            "invalid volume `{spec}`: the target `{target}` must be an absolute path in the container"
        ));
    }
    let options = if options.is_empty() {
        Vec::new()
    } else {
        options.split(',').map(str::to_string).collect()
    };
    Ok(ShortVolume {
        source: source.map(str::to_string),
        target: target.to_string(),
        options,
    })
}

/// Whether a volume source names a host path (a bind) rather than a named volume.
pub fn is_host_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}

/// Splits an `extra_hosts` list entry: `host:ip`, `host=ip`, IPv6 addresses allowed
/// (`host:::1`, `host=[::1]`).
pub fn parse_host_entry(spec: &str) -> Result<(String, String), String> {
    let split = spec.split_once('=').or_else(|| spec.split_once(':'));
    match split {
        Some((host, ip)) if !host.is_empty() && !ip.is_empty() => {
            let ip = ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .unwrap_or(ip);
            Ok((host.to_string(), ip.to_string()))
        }
        _ => Err(format!(
            "invalid host entry `{spec}`: expected `host:ip` or `host=ip`"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn port(ip: Option<&str>, published: Option<u16>, target: u16, proto: &str) -> Port {
        Port {
            host_ip: ip.map(str::to_string),
            published,
            target,
            protocol: proto.into(),
        }
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("10s").unwrap(), ms(10_000));
        assert_eq!(parse_duration("1m30s").unwrap(), ms(90_000));
        assert_eq!(parse_duration("500ms").unwrap(), ms(500));
        assert_eq!(parse_duration("1h2m3s4ms").unwrap(), ms(3_723_004));
        assert_eq!(parse_duration("1.5s").unwrap(), ms(1500));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "10", "s", "10x", "1m30", "-1s", "1..2s", "ms10"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("10").unwrap_err().contains("`10s`"));
    }

    #[test]
    fn durations_format_back() {
        for text in ["0s", "10s", "1m30s", "500ms", "1h2m3s4ms", "250us", "7ns"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn shlex() {
        let s = |t: &str| shlex_split(t).unwrap();
        assert_eq!(s("a b  c"), ["a", "b", "c"]);
        assert_eq!(s("  "), Vec::<String>::new());
        assert_eq!(s("sh -c 'echo $HOME; ls'"), ["sh", "-c", "echo $HOME; ls"]);
        assert_eq!(s(r#"echo "a \"b\" \$c \n""#), ["echo", r#"a "b" $c \n"#]);
        assert_eq!(s(r"a\ b c\\d"), ["a b", r"c\d"]);
        assert_eq!(s("x'' \"\""), ["x", ""]);
        assert_eq!(s("a'b'\"c\"d"), ["abcd"]);
        assert_eq!(
            s("/bin/bash -c \"envsubst < /tmp/x > /etc/y && nginx -g 'daemon off;'\""),
            [
                "/bin/bash",
                "-c",
                "envsubst < /tmp/x > /etc/y && nginx -g 'daemon off;'"
            ]
        );
        assert!(shlex_split("'open").is_err());
        assert!(shlex_split("\"open").is_err());
        assert!(shlex_split("end\\").is_err());
    }

    #[test]
    fn ports_short() {
        let p = |t: &str| parse_ports(t).unwrap();
        assert_eq!(p("8080"), [port(None, None, 8080, "tcp")]);
        assert_eq!(p("8080:80"), [port(None, Some(8080), 80, "tcp")]);
        assert_eq!(
            p("127.0.0.1:8080:80"),
            [port(Some("127.0.0.1"), Some(8080), 80, "tcp")]
        );
        assert_eq!(p("8080:80/udp"), [port(None, Some(8080), 80, "udp")]);
        assert_eq!(p("5000:5000/TCP"), [port(None, Some(5000), 5000, "tcp")]);
        assert_eq!(
            p("127.0.0.1::80"),
            [port(Some("127.0.0.1"), None, 80, "tcp")]
        );
        assert_eq!(
            p("[::1]:53:53/udp"),
            [port(Some("::1"), Some(53), 53, "udp")]
        );
        let range = p("3000-3002:4000-4002");
        assert_eq!(
            range,
            [
                port(None, Some(3000), 4000, "tcp"),
                port(None, Some(3001), 4001, "tcp"),
                port(None, Some(3002), 4002, "tcp"),
            ]
        );
        assert_eq!(p("3000-3001").len(), 2);
    }

    #[test]
    fn ports_refused() {
        let e = |t: &str| parse_ports(t).unwrap_err();
        assert!(e("8000-8010:80").contains("not supported"));
        assert!(e("0").contains("1 to 65535"));
        assert!(e("70000").contains("1 to 65535"));
        assert!(e("80/icmp").contains("unknown protocol"));
        assert!(e("::1:80:80").contains("brackets"));
        assert!(e("a:b").contains("invalid"));
        assert!(e("90-80").contains("larger"));
        assert!(e("[::1]:80").contains("host_ip") || e("[::1]:80").contains("host address"));
    }

    #[test]
    fn expose() {
        assert_eq!(parse_expose("3000").unwrap(), "3000");
        assert_eq!(parse_expose("3000/UDP").unwrap(), "3000/udp");
        assert_eq!(parse_expose("3000-3005").unwrap(), "3000-3005");
        assert!(parse_expose("x").is_err());
    }

    #[test]
    fn volumes_short() {
        let v = parse_volume("db:/var/lib/db:ro,z").unwrap();
        assert_eq!(v.source.as_deref(), Some("db"));
        assert_eq!(v.target, "/var/lib/db");
        assert_eq!(v.options, ["ro", "z"]);
        let v = parse_volume("/project/node_modules").unwrap();
        assert_eq!(
            (v.source, v.target.as_str()),
            (None, "/project/node_modules")
        );
        assert!(
            parse_volume("./a:relative")
                .unwrap_err()
                .contains("absolute")
        );
        assert!(parse_volume(":/x").unwrap_err().contains("empty"));
        assert!(parse_volume("a:/b:ro:x").is_err());
        assert!(is_host_path("./x") && is_host_path("/x") && is_host_path("~/x"));
        assert!(!is_host_path("data"));
    }

    #[test]
    fn host_entries() {
        let h = |t: &str| parse_host_entry(t).unwrap();
        assert_eq!(h("db:10.0.0.2"), ("db".into(), "10.0.0.2".into()));
        assert_eq!(h("db=10.0.0.2"), ("db".into(), "10.0.0.2".into()));
        assert_eq!(h("v6:::1"), ("v6".into(), "::1".into()));
        assert_eq!(h("v6=[::1]"), ("v6".into(), "::1".into()));
        assert!(parse_host_entry("nohost").is_err());
    }
}
