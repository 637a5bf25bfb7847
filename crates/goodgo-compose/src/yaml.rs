//! A positioned YAML tree built from `granit-parser` events.
//!
//! Why not `goodgo_yaml::from_str` into serde types: Compose fields come in many shapes (a
//! string or a list, a list of `K=V` or a mapping, short or long syntax), unknown keys must
//! be sorted into "warn", "refuse" and "typo", and every scalar must be interpolated and
//! reported at its own `line:col`. That wants one generic tree where every key and every
//! value carries its position. This module builds it, and resolves what YAML itself
//! defines so later stages never see it: anchors and aliases, merge keys (`<<`), core tags,
//! nulls. Compose's `!reset` / `!override` tags are kept on their node ([`Tag`]): they
//! matter when files are merged (`merge`), and [`strip_resets`] gives them their meaning
//! within one file (`!reset` removes the value, `!override` is the value as written).
//!
//! Every node says where it is written as an [`At`]: the file (an index into the loader's
//! table of files, so values merged from several files keep their own) and `line:col`.
//!
//! Guards keep hostile input cheap: alias expansion is capped in nodes and in depth, so a
//! "billion laughs" file is an error instead of an out-of-memory, and every later
//! recursive walk over the tree stays shallow.

use std::collections::{BTreeMap, BTreeSet};

use goodgo_yaml::Pos;
use granit_parser::{Event, Parser, ScalarStyle, Span};

/// At most this many nodes after alias expansion.
const MAX_NODES: usize = 1_000_000;
/// At most this deep after alias expansion.
const MAX_DEPTH: usize = 400;

/// Where a value is written: a file (an index into the loader's table) and a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct At {
    pub file: u32,
    pub pos: Pos,
}

impl At {
    pub fn new(file: u32, pos: Pos) -> Self {
        At { file, pos }
    }
}

/// A Compose tag on a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Tag {
    #[default]
    None,
    /// `!reset`: the value is removed (from what earlier files set, too).
    Reset,
    /// `!override`: the value replaces what earlier files set, unmerged.
    Override,
}

/// A value and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub pos: At,
    pub value: Value,
    pub tag: Tag,
}

impl Node {
    pub fn new(pos: At, value: Value) -> Self {
        Node {
            pos,
            value,
            tag: Tag::None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `~`, `null`, an empty value, or `!!null`.
    Null,
    /// Any other scalar, as text: typing (number, boolean) is up to the reader of the key.
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping. Keys are always plain text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: At,
    pub value: Node,
}

impl Value {
    /// How a message names what was found.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Str(_) => "a single value",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A problem found while building the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeError {
    pub pos: Pos,
    pub message: String,
}

fn pos_of(span: &Span) -> Pos {
    marker_pos(span.start.line(), span.start.col())
}

pub(crate) fn marker_pos(line: usize, col: usize) -> Pos {
    let line = u32::try_from(line).unwrap_or(u32::MAX).max(1);
    let col = u32::try_from(col.saturating_add(1)).unwrap_or(u32::MAX);
    Pos::new(line, col)
}

fn fail<T>(pos: Pos, message: impl Into<String>) -> Result<T, TreeError> {
    Err(TreeError {
        pos,
        message: message.into(),
    })
}

/// A collection being built: where it starts, its anchor (0: none), its tag, and its
/// content so far.
struct Frame {
    pos: Pos,
    anchor: usize,
    tag: Tag,
    body: Body,
}

enum Body {
    Seq(Vec<Node>),
    Map(Mapping),
}

#[derive(Default)]
struct Mapping {
    entries: Vec<Entry>,
    seen: BTreeSet<String>,
    /// Mappings named by `<<`, in priority order.
    merged: Vec<Node>,
    /// The key read, waiting for its value.
    key: Option<(String, Pos)>,
}

struct Anchored {
    node: Node,
    size: usize,
    depth: usize,
}

struct Builder {
    file: u32,
    stack: Vec<Frame>,
    anchors: BTreeMap<usize, Anchored>,
    nodes: usize,
    root: Option<Node>,
    documents: usize,
}

/// What a tag asks for.
enum TagUse {
    None,
    Null,
    Compose(Tag),
}

fn tag_use(tag: Option<&granit_parser::Tag>, pos: Pos) -> Result<TagUse, TreeError> {
    let Some(tag) = tag else {
        return Ok(TagUse::None);
    };
    if tag.core_suffix().is_some() || tag.handle() == "tag:yaml.org,2002:" {
        return Ok(if tag.suffix() == "null" {
            TagUse::Null
        } else {
            TagUse::None
        });
    }
    match (tag.original_handle(), tag.suffix()) {
        ("!", "reset") => Ok(TagUse::Compose(Tag::Reset)),
        ("!", "override") => Ok(TagUse::Compose(Tag::Override)),
        (handle, suffix) => fail(pos, format!("unsupported YAML tag `{handle}{suffix}`")),
    }
}

fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Node count and depth of a tree.
fn measure(node: &Node) -> (usize, usize) {
    match &node.value {
        Value::Null | Value::Str(_) => (1, 1),
        Value::Seq(items) => items.iter().fold((1, 1), |(n, d), item| {
            let (n2, d2) = measure(item);
            (n + n2, d.max(d2 + 1))
        }),
        Value::Map(entries) => entries.iter().fold((1, 1), |(n, d), e| {
            let (n2, d2) = measure(&e.value);
            (n + n2 + 1, d.max(d2 + 1))
        }),
    }
}

impl Builder {
    fn at(&self, pos: Pos) -> At {
        At::new(self.file, pos)
    }

    fn count(&mut self, n: usize, pos: Pos) -> Result<(), TreeError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return fail(
                pos,
                format!(
                    "the document is too large (more than {MAX_NODES} values once aliases are expanded)"
                ),
            );
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor == 0 {
            return;
        }
        let (size, depth) = measure(node);
        self.anchors.insert(
            anchor,
            Anchored {
                node: node.clone(),
                size,
                depth,
            },
        );
    }

    /// Hands a finished node to its parent.
    fn deliver(&mut self, node: Node) -> Result<(), TreeError> {
        match self.stack.last_mut().map(|frame| &mut frame.body) {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Body::Seq(items)) => {
                items.push(node);
                Ok(())
            }
            Some(Body::Map(Mapping {
                entries,
                seen,
                merged,
                key,
            })) => {
                let Some((k, key_pos)) = key.take() else {
                    // A key that is not a plain scalar (scalar keys are handled in `scalar`).
                    return fail(
                        node.pos.pos,
                        "a mapping key must be a single value, not a list or mapping",
                    );
                };
                if k == "<<" {
                    if node.tag == Tag::Reset {
                        return Ok(());
                    }
                    match node.value {
                        Value::Map(_) => merged.push(node),
                        Value::Seq(items) => {
                            for item in items {
                                if !matches!(item.value, Value::Map(_)) {
                                    return fail(
                                        item.pos.pos,
                                        "`<<` merges mappings: expected a mapping here",
                                    );
                                }
                                merged.push(item);
                            }
                        }
                        Value::Null => {}
                        Value::Str(_) => {
                            return fail(
                                node.pos.pos,
                                "`<<` merges mappings: expected a mapping or a list of mappings",
                            );
                        }
                    }
                    return Ok(());
                }
                if !seen.insert(k.clone()) {
                    return fail(key_pos, format!("duplicate key `{k}`"));
                }
                entries.push(Entry {
                    key: k,
                    key_pos: At::new(self.file, key_pos),
                    value: node,
                });
                Ok(())
            }
        }
    }

    /// A node complete at `pos`: remembered for its anchor, handed to its parent.
    fn finish(&mut self, pos: Pos, value: Value, tag: Tag, anchor: usize) -> Result<(), TreeError> {
        let node = Node {
            pos: self.at(pos),
            value,
            tag,
        };
        self.remember(anchor, &node);
        self.deliver(node)
    }

    fn awaiting_key(&self) -> bool {
        matches!(
            self.stack.last().map(|frame| &frame.body),
            Some(Body::Map(Mapping { key: None, .. }))
        )
    }

    fn set_key(&mut self, text: String, pos: Pos) {
        if let Some(Body::Map(mapping)) = self.stack.last_mut().map(|frame| &mut frame.body) {
            mapping.key = Some((text, pos));
        }
    }

    fn scalar(
        &mut self,
        text: String,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&granit_parser::Tag>,
        pos: Pos,
    ) -> Result<(), TreeError> {
        self.count(1, pos)?;
        let usage = tag_use(tag, pos)?;
        if self.awaiting_key() {
            self.remember(anchor, &Node::new(self.at(pos), Value::Str(text.clone())));
            self.set_key(text, pos);
            return Ok(());
        }
        let plain_null = style == ScalarStyle::Plain && is_null_text(&text);
        let (value, tag) = match usage {
            TagUse::Null => (Value::Null, Tag::None),
            TagUse::None if plain_null => (Value::Null, Tag::None),
            TagUse::None => (Value::Str(text), Tag::None),
            TagUse::Compose(tag) if plain_null => (Value::Null, tag),
            TagUse::Compose(tag) => (Value::Str(text), tag),
        };
        self.finish(pos, value, tag, anchor)
    }

    fn alias(&mut self, id: usize, pos: Pos) -> Result<(), TreeError> {
        let Some(anchored) = self.anchors.get(&id) else {
            return fail(pos, "this alias names no anchor defined before it");
        };
        if self.stack.len() + anchored.depth > MAX_DEPTH {
            return fail(
                pos,
                format!(
                    "the document nests more than {MAX_DEPTH} levels once aliases are expanded"
                ),
            );
        }
        let (size, node) = (anchored.size, anchored.node.clone());
        self.count(size, pos)?;
        if self.awaiting_key() {
            return match node.value {
                Value::Str(text) => {
                    self.set_key(text, pos);
                    Ok(())
                }
                _ => fail(
                    pos,
                    "a mapping key must be a single value, not a list or mapping",
                ),
            };
        }
        // The alias stands where it is written: errors about its value point here.
        self.deliver(Node {
            pos: self.at(pos),
            ..node
        })
    }

    /// Opens a sequence or mapping at `pos`, to be filled with `body`.
    fn start(
        &mut self,
        body: Body,
        anchor: usize,
        tag: Option<&granit_parser::Tag>,
        pos: Pos,
    ) -> Result<(), TreeError> {
        let tag = match tag_use(tag, pos)? {
            TagUse::Compose(tag) => tag,
            TagUse::None | TagUse::Null => Tag::None,
        };
        self.count(1, pos)?;
        if self.stack.len() >= MAX_DEPTH {
            return fail(
                pos,
                format!("the document nests more than {MAX_DEPTH} levels"),
            );
        }
        if self.awaiting_key() {
            return fail(
                pos,
                "a mapping key must be a single value, not a list or mapping",
            );
        }
        self.stack.push(Frame {
            pos,
            anchor,
            tag,
            body,
        });
        Ok(())
    }

    fn end(&mut self) -> Result<(), TreeError> {
        let Some(Frame {
            pos,
            anchor,
            tag,
            body,
        }) = self.stack.pop()
        else {
            return Ok(());
        };
        let value = match body {
            Body::Seq(items) => Value::Seq(items),
            Body::Map(Mapping {
                mut entries,
                mut seen,
                merged,
                ..
            }) => {
                // Keys written in the mapping win over merged ones (a key written with
                // `!reset` too: it removes the merged value); among merged mappings, the
                // first listed wins.
                for source in merged {
                    if let Value::Map(more) = source.value {
                        for entry in more {
                            if seen.insert(entry.key.clone()) {
                                entries.push(entry);
                            }
                        }
                    }
                }
                Value::Map(entries)
            }
        };
        self.finish(pos, value, tag, anchor)
    }
}

/// Parses one YAML document into a tree whose positions name file `file`. An empty
/// document is `None`. `!reset` and `!override` stay on their nodes.
pub(crate) fn parse(text: &str, file: u32) -> Result<Option<Node>, TreeError> {
    let mut b = Builder {
        file,
        stack: Vec::new(),
        anchors: BTreeMap::new(),
        nodes: 0,
        root: None,
        documents: 0,
    };
    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(pair) => pair,
            Err(err) => {
                let m = err.marker();
                let info = err.info();
                let info = if info.is_empty() {
                    format!("{:?}", err.kind())
                } else {
                    info
                };
                return fail(
                    marker_pos(m.line(), m.col()),
                    format!("YAML syntax error: {info}"),
                );
            }
        };
        let pos = pos_of(&span);
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
            Event::DocumentStart(..) => {
                b.documents += 1;
                if b.documents > 1 {
                    return fail(
                        pos,
                        "a Compose file holds one YAML document; this is a second one",
                    );
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                b.scalar(text.into_owned(), style, anchor, tag.as_deref(), pos)?;
            }
            Event::Alias(id) => b.alias(id, pos)?,
            Event::SequenceStart(_, anchor, tag) => {
                b.start(Body::Seq(Vec::new()), anchor, tag.as_deref(), pos)?;
            }
            Event::MappingStart(_, anchor, tag) => {
                b.start(Body::Map(Mapping::default()), anchor, tag.as_deref(), pos)?;
            }
            Event::SequenceEnd | Event::MappingEnd => b.end()?,
            // Metadata the parser may emit with other options: nothing to build.
            _ => {}
        }
    }
    Ok(b.root)
}

/// Gives `!reset` and `!override` their meaning within one file: a value tagged `!reset`
/// is removed (a `!reset` root is an empty document), every `!override` is the value
/// as written. After this, no node carries a tag.
pub(crate) fn strip_resets(node: &mut Node) {
    if node.tag == Tag::Reset {
        node.value = Value::Null;
    }
    node.tag = Tag::None;
    match &mut node.value {
        Value::Seq(items) => {
            items.retain(|n| n.tag != Tag::Reset);
            items.iter_mut().for_each(strip_resets);
        }
        Value::Map(entries) => {
            entries.retain(|e| e.value.tag != Tag::Reset);
            entries.iter_mut().for_each(|e| strip_resets(&mut e.value));
        }
        Value::Null | Value::Str(_) => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<Option<Node>, TreeError> {
        super::parse(text, 0)
    }

    fn tree(text: &str) -> Node {
        let mut node = parse(text).unwrap().unwrap();
        strip_resets(&mut node);
        node
    }

    fn map(node: &Node) -> Vec<(&str, &Value)> {
        match &node.value {
            Value::Map(entries) => entries
                .iter()
                .map(|e| (e.key.as_str(), &e.value.value))
                .collect(),
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn positions_of_keys_and_values() {
        let t = tree("a:\n  b: \"x\"\n  c:\n");
        let Value::Map(top) = &t.value else { panic!() };
        assert_eq!(top[0].key_pos.pos, Pos::new(1, 1));
        let Value::Map(inner) = &top[0].value.value else {
            panic!()
        };
        assert_eq!(inner[0].key_pos.pos, Pos::new(2, 3));
        assert_eq!(inner[0].value.pos.pos, Pos::new(2, 6));
        assert_eq!(inner[0].value.value, Value::Str("x".into()));
        assert_eq!(inner[1].value.value, Value::Null);
    }

    #[test]
    fn quoted_null_words_are_strings() {
        let t = tree("a: ~\nb: '~'\nc: null\nd: \"\"\n");
        assert_eq!(
            map(&t),
            vec![
                ("a", &Value::Null),
                ("b", &Value::Str("~".into())),
                ("c", &Value::Null),
                ("d", &Value::Str(String::new())),
            ]
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let t = tree("x: &base\n  a: 1\n  b: 2\ny:\n  <<: *base\n  b: 3\nz: *base\n");
        let Value::Map(top) = &t.value else { panic!() };
        let y = map(&top[1].value);
        assert_eq!(
            y,
            vec![
                ("b", &Value::Str("3".into())),
                ("a", &Value::Str("1".into()))
            ]
        );
        assert_eq!(top[2].value.pos.pos, Pos::new(7, 4));
        assert_eq!(map(&top[2].value).len(), 2);
    }

    #[test]
    fn merge_of_a_list_first_wins() {
        let t = tree("p: &p {a: 1}\nq: &q {a: 2, b: 2}\nr:\n  <<: [*p, *q]\n");
        let Value::Map(top) = &t.value else { panic!() };
        assert_eq!(
            map(&top[2].value),
            vec![
                ("a", &Value::Str("1".into())),
                ("b", &Value::Str("2".into()))
            ]
        );
    }

    #[test]
    fn reset_removes_and_override_keeps() {
        let t = tree("a: !reset 1\nb: !override [x]\nc: !reset [y]\n");
        let m = map(&t);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].0, "b");
    }

    #[test]
    fn errors_are_located() {
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(
            (e.pos, e.message.as_str()),
            (Pos::new(2, 1), "duplicate key `a`")
        );
        let e = parse("a: [1, 2\n").unwrap_err();
        assert_eq!(e.pos, Pos::new(1, 4));
        assert!(e.message.starts_with("YAML syntax error"), "{}", e.message);
        let e = parse("a: *nope\n").unwrap_err();
        assert_eq!(e.pos.line, 1);
        let e = parse("a: !custom 1\n").unwrap_err();
        assert_eq!(e.message, "unsupported YAML tag `!custom`");
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.pos.line, 2);
        let e = parse("? [a]\n: 1\n").unwrap_err();
        assert!(e.message.contains("mapping key"), "{}", e.message);
    }

    #[test]
    fn empty_documents() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# only a comment\n").unwrap(), None);
        assert_eq!(parse("---\n").unwrap().map(|n| n.value), Some(Value::Null));
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = format!("*a{}", i - 1);
            let items = vec![prev; 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("too large"), "{}", e.message);
    }

    #[test]
    fn deep_alias_chains_are_refused() {
        let mut text = String::from(
            "a0: &a0 [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
        );
        for i in 1..20 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!(
                "a{i}: &a{i} [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{prev}]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"
            ));
        }
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("nests"), "{}", e.message);
    }
}
