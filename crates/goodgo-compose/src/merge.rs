//! Merging Compose trees: a later file over an earlier one, and a service over the one
//! it `extends`, by the Compose specification's merge rules.
//!
//! Why its own module: the rules are exact and easy to get subtly wrong, and they work on
//! the positioned tree before any key is read, so every value keeps the file and the
//! `line:col` it came from. The rules:
//! - Mappings are merged key by key; anything else is replaced by the later value.
//! - Sequences are appended, except where Compose makes entries unique by a key: `ports`
//!   (the whole entry), `volumes` (target), `secrets` and `configs` (target), `devices`
//!   (container path), and lists of plain values (`dns`, `cap_add`, `profiles`, …); a
//!   later entry with the key of an earlier one takes its place.
//! - `command`, `entrypoint` and `healthcheck.test` are replaced, never appended.
//! - `environment`, `labels`, `build.args`, `sysctls`… merge by variable name whether
//!   written as a mapping or as `KEY=value` items; `networks` and `depends_on` written as
//!   lists count as mappings; `build: path` counts as `build: {context: path}`; `logging`
//!   with another `driver` replaces the whole section.
//! - `!override` replaces the earlier value as is; `!reset` removes it.

use crate::syntax;
use crate::yaml::{Entry, Node, Tag, Value};

/// `over` merged over `base`, both whole files (or, below, values at a key path).
pub(crate) fn merge(base: Node, over: Node) -> Node {
    merge_at(base, over, &mut Vec::new())
}

/// `over` (a service) merged over `base` (the service it extends).
pub(crate) fn merge_service(base: Node, over: Node) -> Node {
    let mut path = vec!["services".to_string(), "*".to_string()];
    merge_at(base, over, &mut path)
}

/// How the values at a key path merge.
#[derive(Clone, Copy)]
enum Rule {
    /// Mappings by key, sequences appended, anything else replaced.
    Default,
    /// The later value, whatever the earlier.
    Replace,
    /// `KEY=value` items or a mapping, merged by key.
    KeyValues,
    /// Sequence items unique by the key `fn` gives.
    Unique(fn(&Node) -> String),
    /// A list of names counts as a mapping of names to nothing.
    NamesToMap,
    /// `build: path` counts as `build: {context: path}`.
    Build,
    /// Another `driver` replaces the whole section.
    Logging,
}

fn rule(path: &[String]) -> Rule {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["services", _, "command" | "entrypoint"] | ["services", _, "healthcheck", "test"] => {
            Rule::Replace
        }
        [
            "services",
            _,
            "environment" | "labels" | "sysctls" | "annotations",
        ]
        | ["services", _, "build", "args" | "labels"]
        | ["services", _, "deploy", "labels"]
        | ["volumes" | "networks" | "secrets" | "configs", _, "labels"] => Rule::KeyValues,
        ["services", _, "ports"] => Rule::Unique(port_key),
        ["services", _, "volumes"] => Rule::Unique(volume_key),
        ["services", _, "secrets"] => Rule::Unique(secret_key),
        ["services", _, "configs"] => Rule::Unique(config_key),
        ["services", _, "devices"] => Rule::Unique(device_key),
        ["services", _, "env_file"] => Rule::Unique(env_file_key),
        [
            "services",
            _,
            "dns" | "dns_search" | "dns_opt" | "cap_add" | "cap_drop" | "profiles" | "tmpfs"
            | "expose" | "links" | "external_links" | "group_add" | "security_opt" | "extra_hosts",
        ]
        | ["services", _, "networks", _, "aliases"] => Rule::Unique(text_key),
        ["services", _, "networks" | "depends_on"] => Rule::NamesToMap,
        ["services", _, "build"] => Rule::Build,
        ["services", _, "logging"] => Rule::Logging,
        _ => Rule::Default,
    }
}

fn merge_at(base: Node, over: Node, path: &mut Vec<String>) -> Node {
    if over.tag == Tag::Override {
        return Node {
            tag: Tag::None,
            ..over
        };
    }
    match rule(path) {
        Rule::Replace => over,
        Rule::KeyValues => merge_key_values(base, over),
        Rule::Unique(key) => unique(append(as_list(base), as_list(over)), key),
        Rule::NamesToMap => merge_maps(names_to_map(base), names_to_map(over), path, true),
        Rule::Build => merge_maps(build_map(base), build_map(over), path, false),
        Rule::Logging if driver(&base).is_some_and(|d| Some(d) != driver(&over)) => {
            if driver(&over).is_some() {
                over
            } else {
                merge_maps(base, over, path, false)
            }
        }
        Rule::Logging | Rule::Default => match (&base.value, &over.value) {
            (Value::Map(_), Value::Map(_)) => merge_maps(base, over, path, false),
            (Value::Seq(_), Value::Seq(_)) => append(base, over),
            _ => over,
        },
    }
}

/// Mappings merged key by key: a key only in one is kept, a key in both is merged, a key
/// `!reset` in `over` is removed. With `keep_on_null`, a null in `over` keeps the earlier
/// value (a name listed without settings).
fn merge_maps(base: Node, over: Node, path: &mut Vec<String>, keep_on_null: bool) -> Node {
    let (Value::Map(mut entries), Value::Map(more)) = (base.value.clone(), over.value.clone())
    else {
        return over;
    };
    for entry in more {
        let found = entries.iter().position(|e| e.key == entry.key);
        match (found, entry.value.tag) {
            (Some(i), Tag::Reset) => {
                entries.remove(i);
            }
            (None, Tag::Reset) => {}
            (Some(_), _) if keep_on_null && matches!(entry.value.value, Value::Null) => {}
            (Some(i), _) => {
                path.push(entry.key.clone());
                let earlier = entries[i].value.clone();
                entries[i].value = merge_at(earlier, entry.value, path);
                path.pop();
            }
            (None, _) => entries.push(entry),
        }
    }
    Node {
        pos: base.pos,
        value: Value::Map(entries),
        tag: Tag::None,
    }
}

/// A sequence appended to a sequence (items `!reset` in `over` left out).
fn append(base: Node, over: Node) -> Node {
    let (Value::Seq(mut items), Value::Seq(more)) = (base.value.clone(), over.value.clone()) else {
        return over;
    };
    items.extend(more.into_iter().filter(|n| n.tag != Tag::Reset));
    Node {
        pos: base.pos,
        value: Value::Seq(items),
        tag: Tag::None,
    }
}

/// The items of a sequence with one item per key: a later item takes the place of an
/// earlier one with the same key.
fn unique(node: Node, key: fn(&Node) -> String) -> Node {
    let Value::Seq(items) = node.value else {
        return node;
    };
    let mut out: Vec<Node> = Vec::with_capacity(items.len());
    let mut keys: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let k = key(&item);
        match keys.iter().position(|seen| *seen == k) {
            Some(i) => out[i] = item,
            None => {
                keys.push(k);
                out.push(item);
            }
        }
    }
    Node {
        value: Value::Seq(out),
        ..node
    }
}

/// A single value stands for a list of one (`tmpfs: /run`, `dns: 8.8.8.8`).
fn as_list(node: Node) -> Node {
    match node.value {
        Value::Str(_) => Node {
            pos: node.pos,
            tag: Tag::None,
            value: Value::Seq(vec![node]),
        },
        Value::Null => Node {
            value: Value::Seq(Vec::new()),
            ..node
        },
        _ => node,
    }
}

fn text(node: &Node) -> Option<&str> {
    match &node.value {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

fn field<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.value {
        Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
        _ => None,
    }
}

fn field_text(node: &Node, key: &str) -> String {
    field(node, key)
        .and_then(text)
        .unwrap_or_default()
        .to_string()
}

/// A value as a key: its text, or its shape for anything else.
fn text_key(node: &Node) -> String {
    text(node).map_or_else(|| format!("{:?}", node.value), str::to_string)
}

fn port_key(node: &Node) -> String {
    match &node.value {
        Value::Map(_) => {
            let protocol = Some(field_text(node, "protocol"))
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "tcp".into());
            format!(
                "{}:{}:{}/{protocol}",
                field_text(node, "host_ip"),
                field_text(node, "published"),
                field_text(node, "target"),
            )
        }
        _ => text_key(node),
    }
}

fn volume_key(node: &Node) -> String {
    match &node.value {
        Value::Str(spec) => syntax::parse_volume(spec).map_or_else(|_| spec.clone(), |v| v.target),
        _ => field_text(node, "target"),
    }
}

/// Where a secret or config is mounted: `target` (under `dir` when relative), else
/// `dir/source`.
fn mount_target(node: &Node, dir: &str) -> String {
    let (source, target) = match &node.value {
        Value::Str(s) => (s.clone(), String::new()),
        _ => (field_text(node, "source"), field_text(node, "target")),
    };
    match target.as_str() {
        "" => format!("{dir}/{source}"),
        t if t.starts_with('/') => t.to_string(),
        t => format!("{dir}/{t}"),
    }
}

fn secret_key(node: &Node) -> String {
    mount_target(node, "/run/secrets")
}

fn config_key(node: &Node) -> String {
    mount_target(node, "")
}

fn device_key(node: &Node) -> String {
    match &node.value {
        Value::Str(spec) => {
            let mut parts = spec.split(':');
            let host = parts.next().unwrap_or_default();
            parts.next().unwrap_or(host).to_string()
        }
        _ => field_text(node, "target"),
    }
}

fn env_file_key(node: &Node) -> String {
    match &node.value {
        Value::Map(_) => field_text(node, "path"),
        _ => text_key(node),
    }
}

/// The `driver` a `logging` section names.
fn driver(node: &Node) -> Option<&str> {
    field(node, "driver").and_then(text)
}

/// A list of names as a mapping of each name to nothing; a mapping as is.
fn names_to_map(node: Node) -> Node {
    let Value::Seq(items) = node.value else {
        return node;
    };
    let entries = items
        .into_iter()
        .filter_map(|item| {
            let key = text(&item)?.to_string();
            Some(Entry {
                key,
                key_pos: item.pos,
                value: Node {
                    value: Value::Null,
                    ..item
                },
            })
        })
        .collect();
    Node {
        pos: node.pos,
        value: Value::Map(entries),
        tag: node.tag,
    }
}

/// `build: path` as `build: {context: path}`.
fn build_map(node: Node) -> Node {
    match node.value {
        Value::Str(_) => Node {
            pos: node.pos,
            tag: Tag::None,
            value: Value::Map(vec![Entry {
                key: "context".into(),
                key_pos: node.pos,
                value: node,
            }]),
        },
        _ => node,
    }
}

/// One `KEY=value` item or mapping entry: its key, and the item to keep (`None`: the key
/// is `!reset`).
fn key_value_items(node: Node) -> Vec<(String, Option<Node>)> {
    match node.value {
        Value::Seq(items) => items
            .into_iter()
            .map(|item| {
                let key = text(&item)
                    .map(|t| t.split_once('=').map_or(t, |(k, _)| k).to_string())
                    .unwrap_or_default();
                let keep = (item.tag != Tag::Reset).then_some(item);
                (key, keep)
            })
            .collect(),
        Value::Map(entries) => entries
            .into_iter()
            .map(|e| {
                if e.value.tag == Tag::Reset {
                    return (e.key, None);
                }
                let item = match &e.value.value {
                    Value::Str(v) => format!("{}={v}", e.key),
                    _ => e.key.clone(),
                };
                let node = Node {
                    pos: e.value.pos,
                    value: Value::Str(item),
                    tag: Tag::None,
                };
                (e.key, Some(node))
            })
            .collect(),
        Value::Null | Value::Str(_) => Vec::new(),
    }
}

/// `environment`-like values merged by key: two mappings stay a mapping; otherwise the
/// result is a list of `KEY=value` items in first-written order.
fn merge_key_values(base: Node, over: Node) -> Node {
    if matches!((&base.value, &over.value), (Value::Map(_), Value::Map(_))) {
        return merge_maps(base, over, &mut Vec::new(), false);
    }
    if !matches!(over.value, Value::Map(_) | Value::Seq(_)) {
        return over;
    }
    let pos = base.pos;
    let mut items: Vec<(String, Node)> = Vec::new();
    for (key, item) in key_value_items(base)
        .into_iter()
        .chain(key_value_items(over))
    {
        let found = items.iter().position(|(k, _)| *k == key);
        match (found, item) {
            (Some(i), Some(item)) => items[i].1 = item,
            (Some(i), None) => {
                items.remove(i);
            }
            (None, Some(item)) => items.push((key, item)),
            (None, None) => {}
        }
    }
    Node {
        pos,
        value: Value::Seq(items.into_iter().map(|(_, n)| n).collect()),
        tag: Tag::None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::yaml::{parse, strip_resets};

    /// The merge of the files `texts`, as YAML-ish text for comparison.
    fn merged(texts: &[&str]) -> String {
        let mut trees = texts
            .iter()
            .enumerate()
            .map(|(i, t)| parse(t, u32::try_from(i).unwrap()).unwrap().unwrap());
        let first = trees.next().unwrap();
        let mut node = trees.fold(first, merge);
        strip_resets(&mut node);
        show(&node)
    }

    fn show(node: &Node) -> String {
        match &node.value {
            Value::Null => "~".into(),
            Value::Str(s) => s.clone(),
            Value::Seq(items) => format!(
                "[{}]",
                items.iter().map(show).collect::<Vec<_>>().join(", ")
            ),
            Value::Map(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|e| format!("{}: {}", e.key, show(&e.value)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn service(text: &str) -> String {
        format!(
            "services:\n  a:\n{}",
            text.lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        )
    }

    #[track_caller]
    fn merges_to(base: &str, over: &str, expected: &str) {
        assert_eq!(
            merged(&[&service(base), &service(over)]),
            format!("{{services: {{a: {expected}}}}}")
        );
    }

    #[test]
    fn mappings_merge_and_scalars_replace() {
        merges_to(
            "image: x\nuser: u",
            "image: y\ntty: true",
            "{image: y, user: u, tty: true}",
        );
        merges_to(
            "ulimits: {nofile: {soft: 1, hard: 2}, nproc: 5}",
            "ulimits: {nofile: {hard: 3}, nproc: {soft: 1, hard: 1}}",
            "{ulimits: {nofile: {soft: 1, hard: 3}, nproc: {soft: 1, hard: 1}}}",
        );
    }

    #[test]
    fn sequences_append_or_are_unique_by_key() {
        merges_to(
            "security_opt: [a]",
            "security_opt: [b, a]",
            "{security_opt: [a, b]}",
        );
        merges_to(
            "volumes: ['d:/data', './x:/x']",
            "volumes: ['e:/data', {type: tmpfs, target: /t}]",
            "{volumes: [e:/data, ./x:/x, {type: tmpfs, target: /t}]}",
        );
        merges_to(
            "ports: ['80:80']",
            "ports: ['80:80', '81:81']",
            "{ports: [80:80, 81:81]}",
        );
        merges_to(
            "secrets: [s, {source: t, target: /etc/t}]",
            "secrets: [{source: s, target: s}, {source: u, target: /etc/t}]",
            "{secrets: [{source: s, target: s}, {source: u, target: /etc/t}]}",
        );
        merges_to(
            "tmpfs: /run",
            "tmpfs: [/run, /tmp]",
            "{tmpfs: [/run, /tmp]}",
        );
        merges_to("dns: 1.1.1.1", "dns: 8.8.8.8", "{dns: [1.1.1.1, 8.8.8.8]}");
    }

    #[test]
    fn commands_are_replaced() {
        merges_to("command: [a, b]", "command: [c]", "{command: [c]}");
        merges_to("entrypoint: [a]", "entrypoint: b c", "{entrypoint: b c}");
        merges_to(
            "healthcheck: {test: [CMD, a], retries: 3}",
            "healthcheck: {test: [CMD, b]}",
            "{healthcheck: {test: [CMD, b], retries: 3}}",
        );
    }

    #[test]
    fn key_values_merge_by_name_in_either_form() {
        merges_to(
            "environment: {A: 1, B: 2}",
            "environment: {B: 3}",
            "{environment: {A: 1, B: 3}}",
        );
        merges_to(
            "environment: [A=1, B=2, C]",
            "environment: {B: 3, D: ~}",
            "{environment: [A=1, B=3, C, D]}",
        );
        merges_to(
            "labels: {a: 1}",
            "labels: [a=2, b=3]",
            "{labels: [a=2, b=3]}",
        );
    }

    #[test]
    fn lists_of_names_count_as_mappings() {
        merges_to(
            "networks: {front: {aliases: [x]}}",
            "networks: [front, back]",
            "{networks: {front: {aliases: [x]}, back: ~}}",
        );
        merges_to(
            "depends_on: [db]",
            "depends_on: {db: {condition: service_healthy}, cache: ~}",
            "{depends_on: {db: {condition: service_healthy}, cache: ~}}",
        );
        merges_to(
            "build: ./app",
            "build: {dockerfile: D}",
            "{build: {context: ./app, dockerfile: D}}",
        );
    }

    #[test]
    fn logging_with_another_driver_is_replaced() {
        merges_to(
            "logging: {driver: a, options: {x: 1}}",
            "logging: {options: {y: 2}}",
            "{logging: {driver: a, options: {x: 1, y: 2}}}",
        );
        merges_to(
            "logging: {driver: a, options: {x: 1}}",
            "logging: {driver: b}",
            "{logging: {driver: b}}",
        );
    }

    #[test]
    fn reset_and_override_tags() {
        merges_to(
            "image: x\nports: ['80:80']\nenvironment: {A: 1, B: 2}",
            "ports: !reset []\nenvironment: {A: !reset ~}",
            "{image: x, environment: {B: 2}}",
        );
        merges_to(
            "ports: ['80:80']",
            "ports: !override ['443:443']",
            "{ports: [443:443]}",
        );
        merges_to(
            "environment: [A=1, B=2]",
            "environment: {A: !reset}",
            "{environment: [B=2]}",
        );
        assert_eq!(
            merged(&[
                "services:\n  a: {image: x}\n  b: {image: y}\n",
                "services:\n  b: !reset\n"
            ]),
            "{services: {a: {image: x}}}"
        );
    }

    #[test]
    fn positions_stay_with_their_file() {
        let base = parse(&service("image: x\nuser: u"), 0).unwrap().unwrap();
        let over = parse(&service("user: v"), 1).unwrap().unwrap();
        let node = merge(base, over);
        let Value::Map(top) = &node.value else {
            panic!()
        };
        let Value::Map(services) = &top[0].value.value else {
            panic!()
        };
        let Value::Map(a) = &services[0].value.value else {
            panic!()
        };
        assert_eq!((a[0].value.pos.file, a[1].value.pos.file), (0, 1));
    }
}
